"""roomd's client for the Hybrid booking API (OfficeRnD API v2 compatible).

Everything under ``{base}/api/v2/organizations/{org}`` (design.md section 5): resources, members,
bookings (cursor-paged listings, get, create, ``PATCH``, ``POST /bookings/{id}/cancel``) and
webhook registration. One ``httpx.AsyncClient`` with explicit timeouts and connection limits,
trusting ``ca_bundle`` when given. Transient failures are retried (``transport.with_retries``)
only where repeating the request cannot make a second booking: reads, ``PATCH``, cancel, and
creates guarded by a look-up by ``reference``.
"""

from __future__ import annotations

import ssl
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import httpx
import orjson

from roomd.aiotransport import Sender, transport_for
from roomd.hybrid.auth import TokenSource
from roomd.hybrid.config import HybridClientConfig
from roomd.hybrid.errors import BookingParseError, HybridError, NotFound, error_for_status
from roomd.hybrid.feed import ChangeFeed, walk_start
from roomd.hybrid.model import (
    HybridBooking,
    HybridMember,
    HybridResource,
    format_datetime,
    parse_booking,
    parse_datetime,
    parse_member,
    parse_resource,
)
from roomd.hybrid.transport import (
    TRANSIENT_STATUSES,
    attempts,
    retry_after_seconds,
    with_retries,
)
from roomd.hybrid.ttlcache import TTLCache
from roomd.observe import HYBRID_REQUESTS, HYBRID_RETRIES, get_logger

__all__ = ["PAGE_LIMIT", "HybridClient", "WebhookSubscription"]

PAGE_LIMIT = 50  # OfficeRnD's maximum (and default) ``$limit``
BOOKING_EVENTS = ("booking.created", "booking.updated", "booking.removed")
ABSENT_TTL_S = 60.0
"""How long "no booking carries this reference" (a look-up this process made) stands in for
the look-up before a create's first attempt."""

_RefKey = tuple[str, str | None, datetime | None]  # reference, parent, original start
_AbsentKey = tuple[_RefKey, str | None]  # ... and the resource looked in (None: every one)


@dataclass(frozen=True)
class _Listing:
    """One resource's bookings listed whole (``changes_since`` from no cursor): the references
    they carry, when the walk began (``at``, monotonic seconds) and the create count then."""

    at: float
    seq: int
    references: frozenset[str]


_log = get_logger(component="hybrid")


@dataclass(frozen=True)
class WebhookSubscription:
    """A registered webhook; ``secret`` signs its deliveries and is never shown in a repr."""

    id: str
    url: str
    event_types: tuple[str, ...]
    secret: str = field(repr=False)

    def reveal(self) -> str:
        """The signing secret, for the receiver (same protocol as roomd's Secret type)."""
        return self.secret


class _Unsure(Exception):
    """A create whose outcome is unknown (no answer, or a transient one): look up, then retry."""

    def __init__(self, reason: str, status: int = 0, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.retry_after = retry_after


class HybridClient:
    """Async client; use ``async with HybridClient(config) as hybrid: ...``."""

    def __init__(
        self,
        config: HybridClientConfig,
        *,
        feed_overlap: timedelta = timedelta(seconds=10),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``feed_overlap``: how far ``changes_since`` re-reads behind its cursor; ``clock``:
        seconds on a monotonic clock, for token expiry."""
        self._config = config
        # without ca_bundle, what httpx trusts: certifi's, or SSL_CERT_FILE with trust_env
        verify = httpx.create_ssl_context(trust_env=config.trust_env)
        if config.ca_bundle is not None:
            try:
                verify = ssl.create_default_context(cafile=str(config.ca_bundle))
            except (OSError, ssl.SSLError) as exc:
                reason = getattr(exc, "strerror", None) or str(exc)
                raise ValueError(
                    f"hybrid.ca_bundle: cannot use {config.ca_bundle} as a CA bundle ({reason})"
                ) from None
        t = config.timeouts
        limits = httpx.Limits(
            max_connections=config.max_connections,
            max_keepalive_connections=config.max_connections,
        )
        transport = transport_for(verify, limits, trust_env=config.trust_env)
        self._http = httpx.AsyncClient(
            verify=verify,
            timeout=httpx.Timeout(connect=t.connect, read=t.read, write=t.write, pool=t.pool),
            limits=limits,
            transport=transport,
            headers={"Accept": "application/json", "User-Agent": "roomd"},
            follow_redirects=False,
            trust_env=config.trust_env,
        )
        self._sender = Sender(self._http, transport)
        self._tokens = TokenSource(config, self._http, self._retrying, clock=clock)
        self._clock = clock
        self._feed_overlap = feed_overlap
        self._feeds: dict[str | None, ChangeFeed] = {}
        self._first_walk: datetime | None = None  # the server's time when the first began
        self._answered: dict[str | None, float] = {}  # feed -> when a walk's first page answered
        self._members_by_id: TTLCache[str, HybridMember] = TTLCache(
            config.member_cache_size, config.member_cache_ttl_s
        )
        self._members_by_email: TTLCache[str, HybridMember] = TTLCache(
            config.member_cache_size, config.member_cache_ttl_s
        )
        self._directory_loaded: TTLCache[str, bool] = TTLCache(1, config.member_cache_ttl_s)
        # references just looked up and found on no booking; per reference, the creates in
        # flight and a count bumped when one begins and when it ends
        self._absent: TTLCache[_AbsentKey, bool] = TTLCache(10_000, ABSENT_TTL_S)
        self._creating: dict[_RefKey, int] = {}
        self._create_epoch: TTLCache[_RefKey, int] = TTLCache(100_000, 10 * ABSENT_TTL_S)
        # a resource's last whole listing, and per reference the create count when a create of
        # it last began or ended: a listing vouches only for references no create touched since
        self._listings: OrderedDict[str, _Listing] = OrderedDict()
        self._create_seq = 0
        self._touched: TTLCache[str, int] = TTLCache(100_000, 10 * ABSENT_TTL_S)

    def __repr__(self) -> str:
        return f"HybridClient(api={self._config.api_root!r}, client_id={self._config.client_id!r})"

    @property
    def feed_overlap(self) -> timedelta:
        """How far ``changes_since`` re-reads behind its cursor."""
        return self._feed_overlap

    @property
    def first_walk_start(self) -> datetime | None:
        """The server's time when this client's earliest ``changes_since`` walk began (see
        ``walk_start``), known from its first page's answer: a walk whose first page answers
        later began no earlier. None before any first page answered."""
        return self._first_walk

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    # --- plumbing -------------------------------------------------------------------------------

    async def _retrying(self, send: Callable[[], Awaitable[httpx.Response]]) -> httpx.Response:
        return await with_retries(self._config.retry, send, what="token")

    def _scrub(self, text: str) -> str:
        for secret in self._tokens.secrets:
            text = text.replace(secret, "***")
        return text

    async def _send_once(
        self, method: str, path: str, params: Mapping[str, str] | None, body: object
    ) -> httpx.Response:
        """One request with a bearer token; after a 401, one fresh token and one more try."""
        url = self._config.api_root + path
        token = await self._tokens.token()
        for refreshed in (False, True):
            try:
                resp = await self._sender.request(
                    method,
                    url,
                    params=params,
                    json=body,
                    headers={"Authorization": f"Bearer {token}"},
                )
            except httpx.TransportError:
                HYBRID_REQUESTS.labels(status="error").inc()  # no answer at all
                raise
            HYBRID_REQUESTS.labels(status=str(resp.status_code)).inc()
            if resp.status_code != 401 or refreshed:
                return resp
            HYBRID_RETRIES.labels(reason="401").inc()
            await self._tokens.invalidate(token)
            token = await self._tokens.token()
        raise AssertionError("unreachable")  # pragma: no cover

    def _fail(self, resp: httpx.Response) -> HybridError:
        message, code = _server_message(resp)
        return error_for_status(resp.status_code, self._scrub(message), code)

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: object = None,
        answered: Callable[[httpx.Response], None] | None = None,
    ) -> Any:
        """A request safe to repeat: retried on transient failures; JSON body or typed error.
        ``answered`` is shown the successful response (its headers) before its body is read."""

        async def send() -> httpx.Response:
            return await self._send_once(method, path, params, body)

        resp = await with_retries(self._config.retry, send, what=f"{method} {path}")
        if resp.is_success:
            if answered is not None:
                answered(resp)
            return _json_or_none(resp)
        raise self._fail(resp)

    async def _pages(
        self,
        path: str,
        params: Mapping[str, str] | None = None,
        *,
        first_answered: Callable[[httpx.Response], None] | None = None,
    ) -> AsyncIterator[list[Any]]:
        """Every page of a ``{results, cursorNext}`` listing, following ``$cursorNext``;
        ``first_answered`` is shown the first page's response."""
        query = dict(params or {})
        query["$limit"] = str(PAGE_LIMIT)
        seen_cursors: set[str] = set()
        answered = first_answered
        while True:
            page = await self._call("GET", path, params=query, answered=answered)
            answered = None
            if isinstance(page, list):  # some servers answer a bare array: one page
                yield page
                return
            if not isinstance(page, Mapping) or not isinstance(page.get("results"), list):
                raise HybridError(
                    200, f"GET {path}: expected {{results, cursorNext}}, got {page!r}"[:300]
                )
            yield page["results"]
            cursor = page.get("cursorNext")
            if not cursor or not page["results"]:
                return  # an empty page ends the walk, whatever cursor came with it
            if not isinstance(cursor, str) or cursor in seen_cursors:
                raise HybridError(200, f"GET {path}: the server repeated cursor {cursor!r}")
            seen_cursors.add(cursor)
            query["$cursorNext"] = cursor

    # --- bookings -------------------------------------------------------------------------------

    async def iter_bookings(
        self, filters: Mapping[str, str] | None = None, /, **more: str
    ) -> AsyncIterator[HybridBooking]:
        """Every booking matching OfficeRnD list filters, across all pages: field equality
        (``resourceId=``, ``reference=``) and ranges (``{"modifiedAt[$gte]": ...}``, given in
        ``filters`` because such names are not Python keywords).

        A booking roomd cannot read is logged (``hybrid_booking_unreadable``, naming the booking
        and the field) and skipped, so one malformed record cannot stop the sync of every other
        booking; ``get_booking`` on it raises the same ``BookingParseError``.
        """
        async for booking in self._bookings({**(filters or {}), **more}):
            yield booking

    async def _bookings(
        self,
        query: Mapping[str, str],
        first_answered: Callable[[httpx.Response], None] | None = None,
        unreadable: list[str] | None = None,
    ) -> AsyncIterator[HybridBooking]:
        async for page in self._pages("/bookings", query, first_answered=first_answered):
            for item in page:
                try:
                    booking = parse_booking(item)
                except BookingParseError as exc:
                    _log.error("hybrid_booking_unreadable", problem=str(exc))
                    if unreadable is not None:
                        unreadable.append(str(exc))
                    continue
                yield booking

    async def get_booking(self, booking_id: str) -> HybridBooking:
        """One booking; ``NotFound`` if it does not exist."""
        return parse_booking(await self._call("GET", f"/bookings/{_seg(booking_id)}"))

    async def find_by_reference(
        self,
        reference: str,
        *,
        parent: str | None = None,
        original_start: datetime | None = None,
        include_canceled: bool = False,
        resource_id: str | None = None,
    ) -> HybridBooking | None:
        """The booking roomd created for ``reference`` (a meeting's iCalUId), if any; in the
        room ``resource_id`` only when given (a meeting in two rooms has a booking in each).

        Asks the server with the field filter ``reference=<value>`` (OfficeRnD v2 list endpoints
        filter on a field's value) and checks every result itself, so a server that ignores the
        filter costs a full listing but can never give a wrong answer. ``parent`` tells a series
        (None) from its exceptions, which may carry the same reference. Canceled bookings are
        skipped unless asked for: a new create must not be answered with a cancelled booking.

        With ``resource_id``, no request is made when the room's bookings were just listed
        whole (``changes_since`` from no cursor, within ``ABSENT_TTL_S``) and none carried the
        reference, and no create of it began since the listing did: an initial sync asks once
        per room instead of once per meeting.
        """
        key = (reference, parent, original_start)
        if resource_id is not None and self._listing_vouches(reference, resource_id):
            self._absent.put((key, resource_id), True)
            return None
        epoch = None if key in self._creating else self._create_epoch.get(key) or 0
        found: HybridBooking | None = None
        filters = {"reference": reference}
        if resource_id is not None:
            filters["resourceId"] = resource_id
        async for booking in self.iter_bookings(filters):
            if booking.reference != reference or booking.parent != parent:
                continue
            if resource_id is not None and booking.resource_id != resource_id:
                continue
            if parent is not None and booking.original_start != original_start:
                continue  # another exception of the same series
            if booking.canceled and not include_canceled:
                continue
            if found is None or (found.created_at or found.start) > (
                booking.created_at or booking.start
            ):
                found = booking  # the oldest wins, should duplicates ever exist
        if found is None and epoch == (self._create_epoch.get(key) or 0):  # no create meanwhile
            self._absent.put((key, resource_id), True)
        else:
            self._absent.discard((key, resource_id))
        return found

    def _listing_vouches(self, reference: str, resource_id: str | None) -> bool:
        """Whether the resource's last whole listing says no booking of it carries
        ``reference``, with no create of that reference begun since that walk began."""
        listing = self._listings.get(resource_id) if resource_id is not None else None
        if listing is None or self._clock() - listing.at > ABSENT_TTL_S:
            return False
        if reference in listing.references or any(k[0] == reference for k in self._creating):
            return False
        touched = self._touched.get(reference)
        return touched is None or touched <= listing.seq

    def _touch(self, reference: str) -> None:
        self._create_seq += 1
        self._touched.put(reference, self._create_seq)

    async def create_booking(self, payload: Mapping[str, Any], *, reference: str) -> HybridBooking:
        """Create a booking at most once per ``reference`` (design.md invariant 1).

        Before every attempt, look the reference up; if a booking already carries it, that booking
        is the answer. A create whose answer was lost (connection reset, timeout, 5xx, 429) is
        therefore retried safely: the retry finds the booking the first attempt made. Refusals
        (409 double booking, 422 validation, 401/403) are raised at once.

        The first attempt skips its look-up when this process has just looked the reference up
        (within ``ABSENT_TTL_S``: the round's own look-up for a lost link) and found nothing, with
        no create of it in flight during that look-up or since: only roomd writes its references,
        one roomd process owns the state, and each create uses the answer up before it sends, so
        a retry, a second create and a replay after a crash all look again. An initial sync
        makes a third fewer requests to Hybrid (bench/initial_sync.py). A whole listing of the
        booking's room vouches the same way (``find_by_reference``), and the look-up, when
        made, is in the booking's room (``resourceId`` of the payload).
        """
        if not reference:
            raise ValueError("create_booking: reference must not be empty")
        parent = payload.get("parent")
        key = (
            reference,
            parent if isinstance(parent, str) else None,
            _original_start(payload) if isinstance(parent, str) else None,
        )
        resource = payload.get("resourceId")
        room = resource if isinstance(resource, str) and resource else None
        vouched = (
            self._absent.get((key, None)) is not None
            or (room is not None and self._absent.get((key, room)) is not None)
            or self._listing_vouches(reference, room)
        )
        self._absent.discard((key, None))
        self._absent.discard((key, room))
        self._creating[key] = self._creating.get(key, 0) + 1
        self._create_epoch.put(key, (self._create_epoch.get(key) or 0) + 1)
        self._touch(reference)
        try:
            return await self._create_booking(
                payload, reference=reference, look_first=not vouched, resource_id=room
            )
        finally:
            self._creating[key] -= 1
            if not self._creating[key]:
                del self._creating[key]
            self._create_epoch.put(key, (self._create_epoch.get(key) or 0) + 1)
            self._touch(reference)

    async def _create_booking(
        self,
        payload: Mapping[str, Any],
        *,
        reference: str,
        look_first: bool,
        resource_id: str | None,
    ) -> HybridBooking:
        body = {**payload, "reference": reference}
        parent = payload.get("parent")
        parent_id = parent if isinstance(parent, str) else None
        # exceptions of one series share its reference: the occurrence tells them apart
        original = _original_start(payload) if parent_id is not None else None
        policy = self._config.retry

        def hook(exc: Exception) -> bool | float:
            if not isinstance(exc, _Unsure):
                return False
            if exc.retry_after is not None:
                return min(exc.retry_after, policy.retry_after_max)
            return True

        last: _Unsure | None = None
        try:
            async for attempt in attempts(policy, hook):
                with attempt:
                    if last is not None:
                        HYBRID_RETRIES.labels(reason="create_unsure").inc()
                        _log.info("hybrid_create_retry", reason=str(last), attempt=attempt.num)
                    if look_first or attempt.num > 1:
                        existing = await self.find_by_reference(
                            reference,
                            parent=parent_id,
                            original_start=original,
                            resource_id=resource_id,
                        )
                        if existing is not None:
                            return existing
                    try:
                        resp = await self._send_once("POST", "/bookings", None, body)
                    except httpx.TransportError as exc:
                        last = _Unsure(type(exc).__name__)
                        raise last from None
                    if resp.status_code in TRANSIENT_STATUSES:
                        after = retry_after_seconds(resp.headers.get("retry-after"))
                        last = _Unsure(f"HTTP {resp.status_code}", resp.status_code, after)
                        raise last
                    if resp.status_code == 409 and last is not None:
                        # An earlier attempt whose answer was lost may have committed after our
                        # look-up (a slow server): the "double booking" may be our own booking.
                        existing = await self.find_by_reference(
                            reference,
                            parent=parent_id,
                            original_start=original,
                            resource_id=resource_id,
                        )
                        if existing is not None:
                            return existing
                    if not resp.is_success:
                        raise self._fail(resp)
                    return parse_booking(_created(_json_or_none(resp)))
        except _Unsure as exc:
            raise HybridError(
                exc.status, f"create of booking {reference!r} did not complete: {exc}"
            ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def patch_booking(self, booking_id: str, changes: Mapping[str, Any]) -> HybridBooking:
        """Change fields of a booking (``PATCH``: sending the same change twice is harmless)."""
        data = await self._call("PATCH", f"/bookings/{_seg(booking_id)}", body=dict(changes))
        if data is None:
            return await self.get_booking(booking_id)
        return parse_booking(data)

    async def cancel_booking(self, booking_id: str) -> HybridBooking:
        """Cancel (``POST /bookings/{id}/cancel``; OfficeRnD's ``canceled`` is read-only).

        Cancelling is idempotent in effect: if a retried cancel is refused because the first one
        already went through, the booking is read back and returned when it is canceled.
        """
        try:
            data = await self._call("POST", f"/bookings/{_seg(booking_id)}/cancel", body={})
        except NotFound:
            raise
        except HybridError as exc:
            if exc.status in (401, 403):
                raise
            current = await self.get_booking(booking_id)
            if current.canceled:
                return current
            raise
        if isinstance(data, Mapping) and "_id" in data:
            return parse_booking(data)
        return await self.get_booking(booking_id)

    async def changes_since(
        self, cursor: datetime | None, *, resource_id: str | None = None
    ) -> tuple[list[HybridBooking], datetime | None]:
        """Bookings changed since ``cursor`` (all bookings when None) and the next cursor.

        Lists ``modifiedAt[$gte]`` = cursor minus an overlap and reports each version of a booking
        once (``feed.ChangeFeed``), so equal or slightly late timestamps are never missed. The
        next cursor is never later than the server's time when the walk began (the ``Date`` of
        its first page; roomd's clock minus the overlap if there is none): the listing's order
        is not promised, so a change made during a long walk may be on a page already read.
        Store the returned cursor and pass it back next time. This listing is the truth for
        Hybrid changes; webhooks only make them arrive sooner.

        Without ``resource_id`` (the organization's listing), a new version that its resource's
        own listing already delivered (``delivered``) moves the cursor and is remembered like any
        other but is not returned: nobody needs it again, and the first such listing after a
        start walks every booking the initial sync wrote (10,000 at 10,000 rooms), which were
        otherwise all held at once. Bookings are taken page by page (``FeedWalk``), so only what
        is returned is held, not the whole walk.
        """
        self._prune()
        feed = self._feeds.get(resource_id)
        if feed is None:
            feed = self._feeds[resource_id] = ChangeFeed(self._feed_overlap)
        filters: dict[str, str] = {}
        since = feed.query_from(cursor)
        if since is not None:
            filters["modifiedAt[$gte]"] = format_datetime(since)
        if resource_id is not None:
            filters["resourceId"] = resource_id
        started = datetime.now(UTC)
        caps: list[datetime] = []
        whole = since is None and resource_id is not None
        began, seq = self._clock(), self._create_seq
        unreadable: list[str] = []

        def answered(resp: httpx.Response) -> None:
            # the walk's start is known as soon as its first page answers: remembered at once,
            # so a listing that begins after any other walk's first answer starts no earlier
            cap = walk_start(resp.headers.get("Date"), started, self._feed_overlap)
            caps.append(cap)
            self._answered[resource_id] = time.monotonic()
            if self._first_walk is None or cap < self._first_walk:
                self._first_walk = cap

        walk = feed.walk(cursor)
        fresh: list[HybridBooking] = []
        references: set[str] = set()
        async for b in self._bookings(filters, first_answered=answered, unreadable=unreadable):
            if whole and b.reference:
                references.add(b.reference)
            if not walk.take(b):
                continue
            if resource_id is None and self.delivered(b, b.resource_id):
                continue  # its room's own listing reported it: moves the cursor, not returned
            fresh.append(b)
        if whole and resource_id is not None and not unreadable:
            self._remember_listing(resource_id, _Listing(began, seq, frozenset(references)))
        cap = caps[0] if caps else walk_start(None, started, self._feed_overlap)
        return fresh, walk.end(cap=cap)

    def _prune(self) -> None:
        """Forget what no longer counts: expired look-ups (a cache drops an expired entry only
        when asked for it again, and the initial sync asks about each room's meetings once, so
        at 10,000 rooms they stayed until the size bound, i.e. for ever) and listings too old to
        vouch. Called by every ``changes_since``, which the daemon makes at least once a poll
        interval (the organization listing); each cache scans at most once per its TTL."""
        for cache in (
            self._absent,
            self._create_epoch,
            self._touched,
            self._members_by_id,
            self._members_by_email,
            self._directory_loaded,
        ):
            cache.prune()
        self._forget_old_listings()

    def _forget_old_listings(self) -> None:
        while self._listings:
            oldest = next(iter(self._listings.values()))
            if self._clock() - oldest.at <= ABSENT_TTL_S:
                break
            self._listings.popitem(last=False)

    def _remember_listing(self, resource_id: str, listing: _Listing) -> None:
        """Keep the room's whole listing for ``find_by_reference``; listings too old to vouch
        are dropped (the oldest first), so memory holds only the last minute's rooms."""
        self._listings.pop(resource_id, None)
        self._listings[resource_id] = listing
        self._forget_old_listings()

    def answered_since(self, when: float, resource_id: str | None = None) -> bool:
        """Whether a ``changes_since`` walk for ``resource_id`` had its first page answered
        after ``when`` (``time.monotonic()``): Hybrid is answering that listing."""
        return self._answered.get(resource_id, -1e18) >= when

    def delivered(self, booking: HybridBooking, resource_id: str | None = None) -> bool:
        """Whether ``changes_since`` for ``resource_id`` already reported this version of the
        booking and the caller confirmed it (so it would not report it again)."""
        feed = self._feeds.get(resource_id)
        return feed is not None and feed.delivered(booking)

    def confirm_changes(self, resource_id: str | None = None) -> None:
        """Say that the cursor from the last ``changes_since`` (for ``resource_id``) is stored;
        until then its bookings are reported again, so a failed round loses nothing."""
        feed = self._feeds.get(resource_id)
        if feed is not None:
            feed.confirm()

    async def bookings_between(
        self, start: datetime, end: datetime, *, resource_id: str | None = None
    ) -> list[HybridBooking]:
        """Bookings that may hold the room between ``start`` and ``end`` (for a full sync):
        ``start[$lt]=end`` and ``end[$gte]=start``. For a series the server compares the end of
        its last occurrence (docs/hybrid-api.md), so a series that began long before the window
        is included; its occurrences are expanded by the caller from ``recurrence``."""
        if end <= start:
            raise ValueError(f"bookings_between: end {end.isoformat()} is not after start")
        filters = {"start[$lt]": format_datetime(end), "end[$gte]": format_datetime(start)}
        if resource_id is not None:
            filters["resourceId"] = resource_id
        return [b async for b in self.iter_bookings(filters)]

    # --- resources and members ------------------------------------------------------------------

    async def list_resources(self) -> list[HybridResource]:
        """Every resource (room) of the organization."""
        return [parse_resource(item) async for page in self._pages("/resources") for item in page]

    async def member_by_id(self, member_id: str) -> HybridMember:
        """A member by id (cached); ``NotFound`` if there is none."""
        cached = self._members_by_id.get(member_id)
        if cached is not None:
            return cached
        member = parse_member(await self._call("GET", f"/members/{_seg(member_id)}"))
        self._remember(member)
        return member

    async def member_by_email(self, email: str) -> HybridMember | None:
        """The member with this email address, compared case-insensitively (cached).

        Asks the server with the field filter ``email=`` (as given, then lower-cased) and compares
        case-insensitively itself; if that finds nothing, reads the member directory once per
        cache period, because a server may match filters case-sensitively while e-mail
        addresses are not (RFC 5321 in practice; Exchange treats them case-insensitively).
        """
        key = email.strip().casefold()
        if not key:
            raise ValueError("member_by_email: email must not be empty")
        cached = self._members_by_email.get(key)
        if cached is not None:
            return cached
        for query in dict.fromkeys((email.strip(), key)):
            async for page in self._pages("/members", {"email": query}):
                for item in page:
                    member = parse_member(item)
                    self._remember(member)
            hit = self._members_by_email.get(key)
            if hit is not None:
                return hit
        if self._directory_loaded.get("all") is None:
            # a directory larger than the cache evicts while it loads: match while walking
            found: HybridMember | None = None
            count = 0
            async for page in self._pages("/members"):
                for item in page:
                    member = parse_member(item)
                    count += 1
                    self._remember(member)
                    if found is None and (member.email or "").strip().casefold() == key:
                        found = member
            if count <= self._config.member_cache_size:
                # the whole directory is in the cache: a miss is a real "no such member"
                self._directory_loaded.put("all", True)
            if found is not None:
                self._remember(found)  # the most recently used entry: still cached
                return found
        return self._members_by_email.get(key)

    def _remember(self, member: HybridMember) -> None:
        self._members_by_id.put(member.id, member)
        if member.email:
            self._members_by_email.put(member.email.strip().casefold(), member)

    # --- token --------------------------------------------------------------------------------

    async def granted_scopes(self) -> frozenset[str]:
        """The scopes the token endpoint granted (fetching a token if none is held), so that
        ``roomd doctor`` can name a scope the API client lacks before a write needs it."""
        await self._tokens.token()
        return self._tokens.granted

    # --- webhooks -------------------------------------------------------------------------------

    async def register_webhook(
        self, url: str, event_types: tuple[str, ...] = BOOKING_EVENTS, description: str = "roomd"
    ) -> WebhookSubscription:
        """Register ``url`` for booking events (``POST /webhooks``); the answer carries the secret.

        Not retried: a lost answer would leave a registration whose secret roomd never saw.
        """
        body = {"url": url, "eventTypes": list(event_types), "description": description}
        resp = await self._send_once("POST", "/webhooks", None, body)
        if not resp.is_success:
            raise self._fail(resp)
        data = resp.json()
        if not isinstance(data, Mapping) or not isinstance(data.get("secret"), str):
            raise HybridError(resp.status_code, "POST /webhooks answered without a secret")
        ident = data.get("_id") or data.get("id") or ""
        return WebhookSubscription(
            id=str(ident),
            url=url,
            event_types=tuple(data.get("eventTypes") or event_types),
            secret=data["secret"],
        )

    async def list_webhooks(self) -> list[dict[str, Any]]:
        """Registered webhooks (``GET /webhooks``; needs scope ``flex.settings.webhooks.read``),
        so the daemon can find the registration it made on an earlier start."""
        return [dict(item) async for page in self._pages("/webhooks") for item in page]

    async def delete_webhook(self, webhook_id: str) -> None:
        """Remove a registration (``DELETE /webhooks/{id}``; scope
        ``flex.settings.webhooks.delete``); an unknown id is ``NotFound``."""
        await self._call("DELETE", f"/webhooks/{_seg(webhook_id)}")


def _seg(value: str) -> str:
    """A path segment, so an id can never change the path it is put into."""
    if not value:
        raise ValueError("an id must not be empty")
    return quote(value, safe="")


def _json_or_none(resp: httpx.Response) -> Any:
    if not resp.content:
        return None
    try:
        return orjson.loads(resp.content)  # 2.5x json's speed (roomd.graph.http.json_object)
    except ValueError:  # orjson.JSONDecodeError is one
        raise HybridError(resp.status_code, f"expected JSON, got {resp.text[:200]!r}") from None


def _created(data: Any) -> Any:
    """A create answer: the booking, or (as OfficeRnD sometimes answers) a list of one."""
    if isinstance(data, list) and len(data) == 1:
        return data[0]
    return data


def _server_message(resp: httpx.Response) -> tuple[str, str | None]:
    """The server's own explanation (``message``/``error_description``/``error`` or the text)
    and its machine-readable ``code`` if it sent one."""
    try:
        body = resp.json()
    except ValueError:
        return resp.text.strip()[:500] or resp.reason_phrase, None
    if not isinstance(body, Mapping):
        return str(body)[:500], None
    code = body.get("code")
    code = code if isinstance(code, str) else None
    for key in ("message", "error_description", "error", "detail", "title"):
        value = body.get(key)
        if isinstance(value, Mapping):
            value = value.get("message")
        if isinstance(value, str) and value:
            return value, code
    return str(body)[:500], code


def _original_start(payload: Mapping[str, Any]) -> datetime | None:
    """The occurrence an exception booking replaces, from the payload about to be sent."""
    for key in ("originalStart", "originalStartTime", "recurrenceId"):
        value = payload.get(key)
        if value is None:
            continue
        if isinstance(value, Mapping):
            value = value.get("dateTime")
        return parse_datetime(value, f"booking.{key}")
    return None
