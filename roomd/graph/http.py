"""The one HTTP client roomd uses for Graph: auth, concurrency caps, retries, typed errors.

What every request gets, and why:

* ``Prefer: outlook.timezone="UTC"`` (times come back in UTC; event-get.md) and
  ``Prefer: IdType="ImmutableId"`` (ids survive moves between folders; outlook-immutable-id.md),
  in one comma-separated ``Prefer`` header (RFC 7240 section 2 allows either form; one header
  also fits a ``$batch`` item's headers object), plus a fresh ``client-request-id``
  (best-practices-concept.md).
* At most ``max_per_mailbox`` (4) requests in flight per mailbox and ``max_concurrent`` overall
  (throttling.md / throttling-limits.md, "4 concurrent requests").
* Retries with capped, jittered exponential backoff (stamina) for 429, 503, 504 and connection
  failures; a ``Retry-After`` (seconds, possibly fractional, or an HTTP-date) replaces the backoff
  (throttling.md: "wait the number of seconds specified in the Retry-After header").
* A non-idempotent request (a POST without an idempotency key) is retried only when Graph cannot
  have acted on it: a 429 (the request was throttled, not run) or a connection that never opened.
  A 503/504 or a connection lost mid-request may hide a write that happened (throttling.md,
  "non-idempotent retries"), so those reach the caller.
* A 401 gets one fresh token and one more try; a second 401 is an ``AuthError``.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import httpx
import orjson
import stamina

from roomd.aiotransport import Sender, transport_for
from roomd.graph.auth import TokenProvider, ssl_context_for
from roomd.graph.config import GraphClientConfig
from roomd.graph.errors import (
    GraphConnectionError,
    GraphError,
    GraphProtocolError,
    NotFound,
    ServiceUnavailable,
    Throttled,
    error_from_parts,
)
from roomd.observe import GRAPH_REQUESTS, GRAPH_RETRIES, GRAPH_THROTTLED, get_logger


def _log() -> Any:
    """Looked up per call so that logging configured after import (the daemon, tests) applies."""
    return get_logger(component="graph.http")


BASE_PREFER = ('outlook.timezone="UTC"', 'IdType="ImmutableId"')
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "PATCH", "DELETE"})
_NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def user_path(mailbox: str, *rest: str) -> str:
    """``/users/{mailbox}/...`` with each segment percent-encoded; rejects an empty mailbox."""
    if not mailbox or not mailbox.strip() or "/" in mailbox:
        raise ValueError(f"mailbox: {mailbox!r} is not a mailbox address or id")
    segments = [quote(mailbox.strip(), safe="@")]
    for part in rest:
        if not part:
            raise ValueError("empty path segment (an event id is missing)")
        segments.append(quote(part, safe="=@"))
    return "/users/" + "/".join(segments)


def mailbox_of(url: str) -> str | None:
    """The mailbox a Graph URL addresses (``/users/{mailbox}/...``), lower-cased, if any."""
    path = urlsplit(url).path
    parts = [p for p in path.split("/") if p]
    for i, part in enumerate(parts[:-1]):
        if part.lower() == "users":
            return unquote(parts[i + 1]).lower()
    return None


class Slots:
    """A counting limit that can take several slots at once, first come first served, except
    that ``first`` waiters (writes) are served before the others (reads).

    Plain ``asyncio.Semaphore`` takes one slot per acquire; a ``$batch`` that Graph runs four items
    at a time needs several at once, atomically, or two batches could deadlock holding half each.
    Writes go first because a write is a change a user waits to see on the other side (a Hybrid
    booking reaching Outlook through a webhook), while a poll's read only looks for changes: with
    a thousand rooms polling, a write queued behind their reads for the 4 slots missed the 1 s
    target (bench/lag.py, Hybrid -> Outlook p99 1.17 s).
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.in_use = 0
        self.peak = 0
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()
        self._first: deque[tuple[int, asyncio.Future[None]]] = deque()

    async def acquire(self, n: int, *, first: bool = False) -> int:
        """Take ``min(n, capacity)`` slots; returns how many were taken (give that to release).
        ``first``: ahead of every waiter that is not."""
        n = max(1, min(n, self.capacity))
        ahead = self._first if first else (self._first or self._waiters)
        if not ahead and self.in_use + n <= self.capacity:
            self._take(n)
            return n
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (n, fut)
        queue = self._first if first else self._waiters
        queue.append(entry)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release(n)  # granted just as we were cancelled: give it back
            else:
                # _wake() may already have dropped our cancelled entry
                with contextlib.suppress(ValueError):
                    queue.remove(entry)
                self._wake()
            raise
        return n

    def idle(self) -> bool:
        """No slot taken and nobody waiting."""
        return self.in_use == 0 and not self._first and not self._waiters

    def _take(self, n: int) -> None:
        self.in_use += n
        self.peak = max(self.peak, self.in_use)

    def release(self, n: int) -> None:
        self.in_use -= n
        self._wake()

    def _wake(self) -> None:
        for queue in (self._first, self._waiters):
            while queue:
                n, fut = queue[0]
                if fut.done():
                    queue.popleft()
                    continue
                if self.in_use + n > self.capacity:
                    return  # in order: a later (or a read) waiter does not overtake
                queue.popleft()
                self._take(n)
                fut.set_result(None)


@dataclass
class _Attempt:
    reason: str = ""


class GraphHttp:
    """One ``httpx.AsyncClient`` for all of Graph, plus the token provider and the limits.

    Use as ``async with GraphHttp(config) as http:``, or call :meth:`aclose` when done.
    """

    def __init__(self, config: GraphClientConfig, tokens: TokenProvider | None = None) -> None:
        self.config = config
        self.base_url = config.base_url.rstrip("/")
        base = urlsplit(self.base_url)
        self._origin = (base.scheme, base.hostname, base.port)
        self.tokens = tokens if tokens is not None else TokenProvider(config)
        verify = ssl_context_for(config)
        limits = httpx.Limits(
            max_connections=config.max_connections,
            max_keepalive_connections=min(config.max_connections, 20),
            keepalive_expiry=30.0,
        )
        transport = transport_for(verify, limits, trust_env=True)
        self._client = httpx.AsyncClient(
            verify=verify,
            timeout=httpx.Timeout(
                config.read_timeout,
                connect=config.connect_timeout,
                pool=config.pool_timeout,
            ),
            limits=limits,
            headers={"Accept": "application/json"},
            # httpx honours proxies from the environment here (trust_env's default): so does
            # transport_for, by keeping httpx's own transport when one is set
            transport=transport,
        )
        self._sender = Sender(self._client, transport)
        # a mailbox's limit exists only while a request to it holds or waits for a slot: one per
        # mailbox ever read (every room and every organizer) took ~950 B each for ever
        self._mailboxes: dict[str, Slots] = {}
        self._mailbox_peak = 0
        self._paused_until: dict[str, float] = {}
        self.total = Slots(config.max_concurrent)

    async def __aenter__(self) -> GraphHttp:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close connections to Graph and to the identity platform."""
        await self._client.aclose()
        await self.tokens.aclose()

    def mailbox_slots(self, mailbox: str) -> Slots:
        """The concurrency limit of one mailbox while requests to it hold or wait for a slot
        (it is dropped when the last one lets go: see ``mailbox_peak``)."""
        key = mailbox.lower()
        slots = self._mailboxes.get(key)
        if slots is None:
            slots = self._mailboxes[key] = Slots(self.config.max_per_mailbox)
        return slots

    @property
    def mailbox_peak(self) -> int:
        """The most requests that ever ran at once to any one mailbox."""
        live = (s.peak for s in self._mailboxes.values())
        return max(self._mailbox_peak, *live) if self._mailboxes else self._mailbox_peak

    def mailbox_limits(self) -> int:
        """How many mailboxes' limits are held now (those with a request holding or waiting)."""
        return len(self._mailboxes)

    def _let_go(self, key: str, limit: Slots, n: int) -> None:
        limit.release(n)
        if limit.idle() and self._mailboxes.get(key) is limit:
            del self._mailboxes[key]
            self._mailbox_peak = max(self._mailbox_peak, limit.peak)

    def absolute(self, url: str) -> str:
        """A path under ``base_url``, or a link Graph handed out (nextLink, deltaLink), verbatim.

        A link to any other origin is refused: the bearer token must only go to Graph.
        """
        if url.startswith("/"):
            return self.base_url + url
        parts = urlsplit(url)
        if (parts.scheme, parts.hostname, parts.port) != self._origin:
            raise GraphProtocolError(
                None,
                "ForeignLink",
                f"refusing to follow a link outside {self.base_url}: "
                f"{parts.scheme}://{parts.netloc}{parts.path}",
            )
        return url

    def relative(self, url: str) -> str:
        """A link Graph handed out, as the relative URL a ``$batch`` item takes.

        json-batching.md: the item ``url`` is "the relative resource URL": where the absolute URL
        is ``https://graph.microsoft.com/v1.0/users`` the url is ``/users``. A delta link is such an
        absolute URL, so stripping ``base_url`` gives the same request inside a batch.
        """
        absolute = self.absolute(url)
        if not absolute.startswith(self.base_url + "/"):
            raise GraphProtocolError(
                None, "ForeignLink", f"link is not under {self.base_url}: {urlsplit(url).path}"
            )
        return absolute[len(self.base_url) :]

    async def request(
        self,
        method: str,
        url: str,
        *,
        mailbox: str | None,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        prefer: Sequence[str] = (),
        idempotent: bool | None = None,
        absent_after_retry_ok: bool = False,
        slots: Mapping[str, int] | None = None,
        total_slots: int = 1,
        write: bool | None = None,
    ) -> httpx.Response | None:
        """Send one request with retries; a 2xx response, or a typed :class:`GraphError`.

        ``idempotent`` defaults to the method's HTTP semantics (POST is not). With
        ``absent_after_retry_ok``, a 404 on a retry means an earlier attempt already succeeded
        (e.g. a DELETE whose answer was lost), and ``None`` is returned. ``write`` (by default:
        any method but GET) waits for a request slot ahead of reads (:class:`Slots`).
        """
        method = method.upper()
        first = write if write is not None else method not in ("GET", "HEAD")
        target = self.absolute(url)
        safe = idempotent if idempotent is not None else method in IDEMPOTENT_METHODS
        wanted: dict[str, int] = {}
        # one limiter per mailbox whatever the spelling: SMTP addresses are case-insensitive
        for key, n in slots.items() if slots is not None else [(mailbox, 1)] if mailbox else []:
            wanted[key.lower()] = wanted.get(key.lower(), 0) + n
        state = _Attempt()
        path = urlsplit(target).path

        def retry_hook(exc: Exception) -> bool | float:
            return self._retry_decision(exc, safe=safe, state=state)

        response: httpx.Response | None = None
        try:
            async for attempt in stamina.retry_context(
                on=retry_hook,
                attempts=self.config.retry_attempts,
                timeout=self.config.retry_timeout,
                wait_initial=self.config.retry_wait_initial,
                wait_max=self.config.retry_wait_max,
                wait_jitter=self.config.retry_wait_jitter,
            ):
                with attempt:
                    if attempt.num > 1:
                        GRAPH_RETRIES.labels(reason=state.reason).inc()
                        _log().info(
                            "graph_retry",
                            method=method,
                            path=path,
                            reason=state.reason,
                            attempt=attempt.num,
                        )
                    try:
                        response = await self._send_authorized(
                            method,
                            target,
                            params=params,
                            json=json,
                            headers=headers,
                            prefer=prefer,
                            slots=wanted,
                            total_slots=total_slots,
                            first=first,
                        )
                    except NotFound:
                        if absent_after_retry_ok and attempt.num > 1:
                            response = None
                        else:
                            raise
        except httpx.TransportError as exc:
            raise GraphConnectionError(
                None,
                type(exc).__name__,
                f"no answer from Graph: {exc}",
                method=method,
                path=path,
            ) from None
        return response

    def _retry_decision(self, exc: Exception, *, safe: bool, state: _Attempt) -> bool | float:
        """stamina's hook: ``False`` = give up, ``True`` = back off, a float = wait that long."""
        if isinstance(exc, Throttled):
            state.reason = "throttled"
        elif isinstance(exc, ServiceUnavailable) and exc.status in (503, 504) and safe:
            state.reason = str(exc.status)
        elif isinstance(exc, _NEVER_SENT) or (isinstance(exc, httpx.TransportError) and safe):
            state.reason = "connection"
            return True
        else:
            return False
        assert isinstance(exc, GraphError)
        if exc.retry_after is None:
            return True
        if exc.retry_after > self.config.max_retry_after:
            return False
        return exc.retry_after

    async def _send_authorized(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None,
        json: Any,
        headers: Mapping[str, str] | None,
        prefer: Sequence[str],
        slots: Mapping[str, int],
        total_slots: int,
        first: bool = False,
    ) -> httpx.Response:
        keys = sorted(k.lower() for k in slots)
        await self._wait_out_throttling(keys)
        held: list[tuple[str, Slots, int]] = []
        try:
            # Mailboxes in a fixed order, the overall limit last: no two requests can each hold
            # what the other waits for, and a busy mailbox does not tie up the overall limit.
            for key in keys:
                limit = self.mailbox_slots(key)
                try:
                    held.append((key, limit, await limit.acquire(slots[key], first=first)))
                except BaseException:
                    self._let_go(key, limit, 0)  # cancelled waiting: drop the limit if idle
                    raise
            held.append(("", self.total, await self.total.acquire(total_slots, first=first)))
            token = await self.tokens.token()
            response = await self._send(method, url, token, params, json, headers, prefer)
            if response.status_code == 401:
                GRAPH_RETRIES.labels(reason="token_rejected").inc()
                token = await self.tokens.refresh(rejected=token)
                response = await self._send(method, url, token, params, json, headers, prefer)
        finally:
            for key, limit, n in reversed(held):
                if limit is self.total:
                    limit.release(n)
                else:
                    self._let_go(key, limit, n)
        if response.status_code >= 400:
            error = error_from_parts(
                response.status_code,
                response.headers,
                response.content,
                method=method,
                path=urlsplit(url).path,
            )
            if isinstance(error, Throttled) and error.retry_after:
                self.pause(keys, error.retry_after)
            raise error
        return response

    def pause(self, mailboxes: Sequence[str], seconds: float) -> None:
        """Hold every request to these mailboxes for ``seconds``: Graph "continues to log resource
        usage while a client is being throttled" (throttling.md), so the other requests queued for
        a throttled mailbox wait out its ``Retry-After`` too instead of drawing more 429s."""
        now = asyncio.get_running_loop().time()
        until = now + min(seconds, self.config.max_retry_after)
        for key, was in list(self._paused_until.items()):
            if was <= now:  # over: forgotten, so the map holds only mailboxes paused now
                del self._paused_until[key]
        for key in mailboxes:
            key = key.lower()
            self._paused_until[key] = max(self._paused_until.get(key, 0.0), until)

    async def _wait_out_throttling(self, keys: Sequence[str]) -> None:
        loop = asyncio.get_running_loop()
        while True:
            until = max((self._paused_until.get(k, 0.0) for k in keys), default=0.0)
            delay = until - loop.time()
            if delay <= 0:
                return
            await asyncio.sleep(delay)

    async def _send(
        self,
        method: str,
        url: str,
        token: str,
        params: Mapping[str, str] | None,
        json: Any,
        headers: Mapping[str, str] | None,
        prefer: Sequence[str],
    ) -> httpx.Response:
        lines: list[tuple[str, str]] = [
            ("Authorization", f"Bearer {token}"),
            ("client-request-id", str(uuid.uuid4())),
        ]
        lines.append(("Prefer", ", ".join((*BASE_PREFER, *prefer))))
        lines += list((headers or {}).items())
        try:
            response = await self._sender.request(
                method, url, params=params, json=json, headers=lines
            )
        except httpx.TransportError:
            GRAPH_REQUESTS.labels(status="error").inc()
            raise
        GRAPH_REQUESTS.labels(status=str(response.status_code)).inc()
        if response.status_code == 429:
            GRAPH_THROTTLED.inc()
        return response

    async def get_json(
        self,
        url: str,
        *,
        mailbox: str | None,
        params: Mapping[str, str] | None = None,
        prefer: Sequence[str] = (),
    ) -> dict[str, Any]:
        """GET and decode a JSON object."""
        response = await self.request("GET", url, mailbox=mailbox, params=params, prefer=prefer)
        return json_object(response, "GET", url)

    async def collect(
        self,
        url: str,
        *,
        mailbox: str | None,
        params: Mapping[str, str] | None = None,
        prefer: Sequence[str] = (),
        max_pages: int = 1000,
    ) -> list[dict[str, Any]]:
        """Every item of a collection, following ``@odata.nextLink`` verbatim."""
        items: list[dict[str, Any]] = []
        page = await self.get_json(url, mailbox=mailbox, params=params, prefer=prefer)
        for _ in range(max_pages):
            items.extend(_values(page, url))
            link = page.get("@odata.nextLink")
            if not isinstance(link, str):
                return items
            page = await self.get_json(link, mailbox=mailbox, prefer=prefer)
        raise GraphProtocolError(None, "TooManyPages", f"more than {max_pages} pages at {url}")


def json_object(response: httpx.Response | None, method: str, url: str) -> dict[str, Any]:
    """The JSON object in a response body, or :class:`GraphProtocolError`."""
    if response is None:
        raise GraphProtocolError(None, "NoBody", f"{method} {urlsplit(url).path} returned no body")
    try:
        # orjson: a $batch answer of 20 events' pages decodes in 0.45 ms against json's 1.13
        body = orjson.loads(response.content)
    except ValueError:  # orjson.JSONDecodeError is one
        body = None
    if not isinstance(body, dict):
        raise GraphProtocolError(
            response.status_code,
            "NotJson",
            f"{method} {urlsplit(url).path} did not return a JSON object",
        )
    return body


def _values(page: Mapping[str, Any], url: str) -> list[dict[str, Any]]:
    value = page.get("value")
    if not isinstance(value, list):
        raise GraphProtocolError(None, "NoValue", f"{urlsplit(url).path}: page has no 'value' list")
    return [v for v in value if isinstance(v, dict)]
