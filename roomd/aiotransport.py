"""httpx's client API over aiohttp's connection pool: the transport both of roomd's clients use.

Why: an HTTPS request through httpx's own transport (httpcore, anyio's TLS stream, h11) cost
about 2.2 ms of CPU on the benchmark machine, against 0.45 ms through this transport with the
same ``httpx.AsyncClient`` on top (0.2 ms for aiohttp alone): httpcore checks every idle pooled
connection's socket before each request (anyio builds two dicts of attributes and calls
``getpeername`` for each), and anyio's TLS stream and h11 run in Python where aiohttp's parser
is C and asyncio's TLS protocol reads whole records. An initial sync sends about one request
per booking, so that difference was most of roomd's CPU (bench/README.md section 2).

The clients keep speaking httpx (``httpx.Request`` in, ``httpx.Response`` out, httpx's
exceptions), so their retry rules, timeouts and tests stay as they were: this module only moves
bytes. What it maps:

* timeouts: httpx's ``connect``/``read``/``pool`` of each request become aiohttp's
  ``sock_connect``, ``sock_read`` and ``connect`` (which in aiohttp covers the wait for a pooled
  connection plus a new one's connect, so it is given pool + connect). aiohttp has no write
  timeout; a request body here is at most a few kB.
* errors: a connection that never opened raises ``httpx.ConnectError``/``ConnectTimeout`` (the
  request was not sent: the clients may retry even a POST), a read timeout ``ReadTimeout``, a
  connection lost or a malformed answer ``ReadError``/``RemoteProtocolError`` (it may have been
  acted on).
* bodies are read whole and handed to httpx undecoded (``auto_decompress=False``), so httpx
  decodes ``Content-Encoding`` as before; redirects are never followed here (httpx decides).
* proxies: httpx ignores environment proxies once a transport is given, so a client that
  honours the environment and finds a proxy there keeps httpx's own transport
  (:func:`transport_for` returns None).

Why not the ``httpx-aiohttp`` package (0.2.0), which does the same: it maps every
``aiohttp.ClientConnectionError`` to ``httpx.ConnectTimeout``, so a server that drops the
connection after reading a request (``ServerDisconnectedError``) would read as "never sent":
the Hybrid client retries a create that was never sent, and a lost answer would book twice.
It also keeps aiohttp's own resend of idempotent requests (tests/test_aiotransport.py tests
both here).

aiohttp's own retry of an idempotent request on a kept-alive connection found closed is turned
off: the clients' retry rules stay the only ones, and count every retry.
"""

from __future__ import annotations

import functools
import ssl
import urllib.request
from collections.abc import Mapping
from typing import Any

import aiohttp
import httpx

__all__ = ["AiohttpTransport", "Sender", "transport_for"]

_DROPPED = frozenset({"transfer-encoding"})  # the body is sent whole, with its Content-Length


def transport_for(
    verify: ssl.SSLContext, limits: httpx.Limits, *, trust_env: bool
) -> AiohttpTransport | None:
    """The transport for a client with these TLS settings and limits, or None where httpx's own
    must stay: ``trust_env`` with a proxy in the environment (HTTP(S)_PROXY, ALL_PROXY...)."""
    if trust_env and any(scheme != "no" for scheme in urllib.request.getproxies()):
        return None  # NO_PROXY alone names no proxy
    return AiohttpTransport(verify, limits)


class AiohttpTransport(httpx.AsyncBaseTransport):
    """An ``httpx.AsyncBaseTransport`` sending through one ``aiohttp.ClientSession``, made on
    the first request (a session belongs to the running event loop)."""

    def __init__(self, verify: ssl.SSLContext, limits: httpx.Limits) -> None:
        self._verify = verify
        self._limits = limits
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[tuple[float | None, ...], aiohttp.ClientTimeout] = {}

    def _open(self) -> aiohttp.ClientSession:
        limits = self._limits
        connector = aiohttp.TCPConnector(
            ssl=self._verify,
            limit=limits.max_connections or 0,
            limit_per_host=0,
            keepalive_timeout=(
                limits.keepalive_expiry if limits.keepalive_expiry is not None else 5.0
            ),
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            trust_env=False,
            skip_auto_headers=("Content-Type",),
            timeout=aiohttp.ClientTimeout(total=None),
        )
        # aiohttp sends an idempotent request again, once, when a kept-alive connection turns
        # out closed; the clients' own retries decide and count that (a DELETE whose answer was
        # lost is told apart by its retry: tests/graph/test_events.py), as with httpx's transport
        self._session._retry_connection = False
        return self._session

    def _timeout(self, request: httpx.Request) -> aiohttp.ClientTimeout:
        given: dict[str, Any] = request.extensions.get("timeout") or {}
        key = (given.get("connect"), given.get("read"), given.get("pool"))
        found = self._timeouts.get(key)
        if found is None:
            connect, read, pool = key
            found = self._timeouts[key] = aiohttp.ClientTimeout(
                total=None,
                connect=None if connect is None or pool is None else connect + pool,
                sock_connect=connect,
                sock_read=read,
            )
        return found

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._session or self._open()
        body = await request.aread()
        headers = [(k, v) for k, v in request.headers.multi_items() if k.lower() not in _DROPPED]
        try:
            async with session.request(
                request.method,
                str(request.url),
                data=body or None,
                headers=headers,
                allow_redirects=False,
                timeout=self._timeout(request),
            ) as answer:
                content = await answer.read()
                v = answer.version
                version = f"HTTP/{v.major}.{v.minor}".encode() if v else b"HTTP/1.1"
                return httpx.Response(
                    answer.status,
                    headers=list(answer.raw_headers),
                    stream=httpx.ByteStream(content),
                    extensions={"http_version": version},
                )
        # ``from None``: aiohttp's exceptions hold the request (its Authorization header)
        except aiohttp.ClientError as exc:
            raise _httpx_error(exc, request) from None
        except TimeoutError:  # aiohttp's own timeouts derive from it too
            raise httpx.ReadTimeout("timed out", request=request) from None
        except OSError as exc:  # a socket or TLS error aiohttp did not wrap: lost mid-request
            raise httpx.ReadError(type(exc).__name__, request=request) from None

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _httpx_error(exc: aiohttp.ClientError, request: httpx.Request) -> httpx.TransportError:
    """The httpx exception the clients' retry rules expect for an aiohttp failure."""
    message = type(exc).__name__
    if isinstance(exc, aiohttp.ClientConnectorError):  # its own str names the SSL context
        reason = exc.strerror or type(exc.os_error).__name__
        message = f"{message}: cannot connect to {exc.host}:{exc.port}: {reason}"
    elif isinstance(exc, aiohttp.ClientResponseError):  # its own str has the URL
        message = f"{message}: {exc.message}"
    elif str(exc):
        message = f"{message}: {exc}"
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(message, request=request)  # no connection: never sent
    if isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ServerFingerprintMismatch):
        return httpx.ConnectError(message, request=request)  # never sent
    if isinstance(exc, aiohttp.ServerTimeoutError):
        return httpx.ReadTimeout(message, request=request)
    if isinstance(exc, aiohttp.InvalidURL):
        return httpx.UnsupportedProtocol(message, request=request)
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
        return httpx.RemoteProtocolError(message, request=request)
    if isinstance(exc, aiohttp.ClientResponseError):  # an answer that is not HTTP
        return httpx.RemoteProtocolError(message, request=request)
    return httpx.ReadError(message, request=request)  # lost mid-request: may have been acted on


class Sender:
    """Sends one request the way ``client.request(...)`` would, straight to the aiohttp
    transport when the client has one.

    ``httpx.AsyncClient.request`` costs about as much CPU again as the transport under it
    (py-spy, initial sync: 11% of roomd's CPU against the transport's 9%): it merges the URL,
    headers, cookies and parameters, runs the auth and redirect machinery and copies every
    answer's cookies into a jar through ``urllib.request``. roomd's clients use none of that
    (bearer tokens in a header, absolute URLs, no redirects followed, no cookies), so a request
    is built from the client's own default headers and timeouts and handed to the transport.
    Without the transport (a proxy from the environment) the client sends it, as before.
    """

    def __init__(self, client: httpx.AsyncClient, transport: AiohttpTransport | None) -> None:
        self._client = client
        self._transport = transport
        self._timeout = client.timeout.as_dict()

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | list[tuple[str, str]] | None = None,
    ) -> httpx.Response:
        """The answer, its body read; httpx's exceptions for a failure."""
        if self._transport is None:
            return await self._client.request(
                method, url, params=params, json=json, headers=headers
            )
        merged = httpx.Headers(self._client.headers)
        if headers:
            merged.update(headers)
        request = httpx.Request(
            method,
            _parsed(url),
            params=params,
            json=json,
            headers=merged,
            extensions={"timeout": self._timeout},
        )
        response = await self._transport.handle_async_request(request)
        response.request = request
        await response.aread()
        return response


@functools.lru_cache(maxsize=32)
def _parsed(url: str) -> httpx.URL:
    """``httpx.URL(url)``, parsed once per URL: the same few are sent thousands of times (each
    Hybrid create posts to ``/bookings``, each Graph read to ``$batch``), and parsing one took
    about half of building the request (37 against 18 us per ``httpx.Request`` of a create,
    timeit). An ``httpx.URL`` is immutable, so one object serves every request; query
    parameters are merged into a copy. 32 URLs: the constant ones stay while per-booking and
    per-room URLs pass through (a few kB, not a cache that grows with rooms)."""
    return httpx.URL(url)
