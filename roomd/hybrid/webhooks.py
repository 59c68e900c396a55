"""The receiver for Hybrid's booking webhooks: ``POST /hooks/hybrid`` on the daemon's HTTP app.

Webhooks are a fast path only. OfficeRnD delivers at least once, unordered, and may lose a
delivery (design.md section 5), so roomd's periodic ``modifiedAt`` listing
(``HybridClient.changes_since``) remains the truth; an event here just makes a change arrive sooner.

Verification follows the ``officernd-signature: t=<unix>,v1=<hex>`` header. OfficeRnD's own
webhooks demo (repository officernd/webhooks-demo, ``index.js``) computes
``HMAC-SHA256(secret, raw_body + "." + t)``; a community integration signs ``t + "." + raw_body``.
Both are accepted, against every ``v1=`` value in the header (several during a secret rotation),
compared in constant time. A timestamp more than ``tolerance_s`` away from roomd's clock is
refused as a replay. Refusals are 401 (signature, staleness) or 400 (body), nothing is queued,
and every outcome is counted in ``roomd_webhooks_total{source="hybrid", outcome}``. The secret and
the signature never reach a log line.

A verified delivery is a hint, so its booking object need not be complete: a ``booking.removed``
may carry only the ``_id``. Anything that names a booking ``_id`` or a ``resourceId`` is accepted;
only a body that is not JSON, or that names neither, is refused with 400 (a refusal makes the
sender retry and may get the webhook disabled).

The handler does no work itself: a verified, new event is put on the sink and answered 202 at
once; the daemon consumes the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from aiohttp import web

from roomd.hybrid.errors import BookingParseError
from roomd.hybrid.model import HybridBooking, parse_booking, parse_datetime
from roomd.hybrid.ttlcache import TTLCache
from roomd.observe import WEBHOOKS, get_logger

__all__ = [
    "EVENT_TYPES",
    "HOOK_PATH",
    "SIGNATURE_HEADER",
    "WebhookEvent",
    "hybrid_webhook_routes",
    "sign",
    "verify_signature",
]

HOOK_PATH = "/hooks/hybrid"
SIGNATURE_HEADER = "officernd-signature"
EVENT_TYPES = frozenset({"booking.created", "booking.updated", "booking.removed"})
MAX_BODY = 1024 * 1024  # a booking event is a few kB; refuse anything absurd before reading it

_log = get_logger(component="hybrid_webhooks")


class SecretLike(Protocol):
    """roomd's Secret type (or anything) that hands out its value only on request."""

    def reveal(self) -> str: ...


@dataclass(frozen=True)
class WebhookEvent:
    """One verified, new booking event: the booking and/or resource it names, at least one.

    ``booking`` is the object as the sender saw it then, when the delivery carried all of it;
    None for a partial object. ``modified_at`` is None when the delivery does not say.
    """

    event_type: str
    booking_id: str | None
    resource_id: str | None
    booking: HybridBooking | None
    received_at: float
    modified_at: datetime | None = None
    raw: Mapping[str, Any] = field(repr=False, compare=False, default_factory=dict)


Sink = Callable[[WebhookEvent], None] | asyncio.Queue[WebhookEvent]


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The header value OfficeRnD sends (vendor form); for tests and for roomd's own tools."""
    digest = hmac.new(secret.encode(), body + b"." + str(timestamp).encode(), hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def _parse_header(header: str) -> tuple[str, list[str]] | None:
    timestamp: str | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            timestamp = value.strip()
        elif key == "v1":
            signatures.append(value.strip().lower())
    if timestamp is None or not signatures:
        return None
    return timestamp, signatures


def verify_signature(secret: str, body: bytes, header: str | None) -> int | None:
    """The signed timestamp if ``header`` signs ``body`` with ``secret`` in either form, else None.

    Every candidate is compared with ``hmac.compare_digest`` and all comparisons run, so the
    time taken does not depend on which (if any) matched.
    """
    if not header:
        return None
    parsed = _parse_header(header)
    if parsed is None:
        return None
    t, candidates = parsed
    if not t.isdigit():
        return None
    key = secret.encode()
    stamp = t.encode()
    expected = [
        hmac.new(key, body + b"." + stamp, hashlib.sha256).hexdigest(),  # OfficeRnD's demo
        hmac.new(key, stamp + b"." + body, hashlib.sha256).hexdigest(),  # community form
    ]
    ok = False
    for candidate in candidates:
        for want in expected:
            ok |= hmac.compare_digest(candidate.encode(), want.encode())
    return int(t) if ok else None


def hybrid_webhook_routes(
    secret: SecretLike | str,
    sink: Sink,
    *,
    clock: Callable[[], float] = time.time,
    tolerance_s: float = 300,
    dedupe_size: int = 4096,
    dedupe_ttl_s: float = 3600,
    max_body: int = MAX_BODY,
    path: str = HOOK_PATH,
) -> list[web.RouteDef]:
    """Routes for the daemon's aiohttp app: ``app.add_routes(hybrid_webhook_routes(...))``.

    ``sink`` is an ``asyncio.Queue`` (a full queue answers 503 so the sender retries later) or a
    callable that must not block. Deliveries are de-duplicated by (booking ``_id``, resource,
    ``modifiedAt``, event type), or by the whole body when it has no ``modifiedAt``, for
    ``dedupe_ttl_s``, in at most ``dedupe_size`` entries.
    """
    seen: TTLCache[tuple[str, str, str, str], bool] = TTLCache(dedupe_size, dedupe_ttl_s)

    def secret_value() -> str:
        return secret if isinstance(secret, str) else secret.reveal()

    def refuse(status: int, outcome: str, message: str) -> web.Response:
        WEBHOOKS.labels(source="hybrid", outcome=outcome).inc()
        _log.warning("hybrid_webhook_refused", outcome=outcome, status=status)
        resp = web.json_response({"error": message}, status=status)
        if status == 413:
            resp.force_close()  # do not read the rest of an oversized body to keep the connection
        return resp

    async def receive(request: web.Request) -> web.Response:
        if request.content_length is not None and request.content_length > max_body:
            return refuse(413, "bad_body", "body too large")
        if _parse_header(request.headers.get(SIGNATURE_HEADER, "")) is None:
            # unsigned: refused before a byte of the body is read or buffered
            return refuse(401, "bad_signature", "signature does not verify")
        body = bytearray()
        async for chunk in request.content.iter_any():  # however the sender split it
            body += chunk
            if len(body) > max_body:
                return refuse(413, "bad_body", "body too large")
        raw = bytes(body)
        key_text = secret_value()
        if not key_text:
            # No secret yet (registration still under way): anything "signed" with an empty key
            # would verify, so nothing is accepted; 503 makes the sender try again later.
            return refuse(503, "not_ready", "receiver has no signing secret yet; retry later")
        signed_at = verify_signature(key_text, raw, request.headers.get(SIGNATURE_HEADER))
        if signed_at is None:
            return refuse(401, "bad_signature", "signature does not verify")
        if abs(clock() - signed_at) > tolerance_s:
            return refuse(401, "stale", "signature timestamp outside the accepted window")
        try:
            event = _parse_event(raw, received_at=clock())
        except ValueError as exc:
            return refuse(400, "bad_body", str(exc)[:300])
        if event is None:
            WEBHOOKS.labels(source="hybrid", outcome="ignored").inc()
            return web.json_response({"status": "ignored"}, status=202)
        version = _object(event.raw).get("modifiedAt")
        if not isinstance(version, str) or not version:
            # Without a version stamp only an identical body is known to be the same delivery.
            version = "body:" + hashlib.sha256(raw).hexdigest()
        key = (event.booking_id or "", event.resource_id or "", version, event.event_type)
        if key in seen:
            WEBHOOKS.labels(source="hybrid", outcome="duplicate").inc()
            return web.json_response({"status": "duplicate"}, status=200)
        if isinstance(sink, asyncio.Queue):
            try:
                sink.put_nowait(event)
            except asyncio.QueueFull:
                return refuse(503, "overloaded", "receiver queue is full; retry later")
        else:
            sink(event)
        seen.put(key, True)
        WEBHOOKS.labels(source="hybrid", outcome="accepted").inc()
        return web.json_response({"status": "received"}, status=202)

    return [web.post(path, receive)]


def _parse_event(body: bytes, *, received_at: float) -> WebhookEvent | None:
    """The event in ``{"eventType", "data": {"object": booking}}``; None for other event types.

    Raises ValueError for a body that is not JSON or does not name a booking or a resource.
    """
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError("body is not JSON") from None
    if not isinstance(doc, dict):
        raise ValueError("body: expected a JSON object")
    event_type = doc.get("eventType")
    if not isinstance(event_type, str):
        raise ValueError("eventType: expected a string")
    if event_type not in EVENT_TYPES:
        return None
    obj = _object(doc)
    booking_id = _id_of(obj.get("_id"))
    resource_id = _id_of(obj.get("resourceId"))
    if booking_id is None and resource_id is None:
        raise ValueError("data.object: names neither a booking (_id) nor a resource (resourceId)")
    try:
        booking: HybridBooking | None = parse_booking(obj)
    except BookingParseError:
        booking = None  # partial (or odd): still a hint about what changed
    modified_at = booking.modified_at if booking is not None else None
    if booking is None:
        with contextlib.suppress(BookingParseError):  # absent or unreadable: not known
            modified_at = parse_datetime(obj.get("modifiedAt"), "data.object.modifiedAt")
    return WebhookEvent(
        event_type=event_type,
        booking_id=booking_id,
        resource_id=resource_id,
        booking=booking,
        received_at=received_at,
        modified_at=modified_at,
        raw=doc,
    )


def _object(doc: Mapping[str, Any]) -> Mapping[str, Any]:
    """``data.object`` of a delivery, or an empty mapping when there is none."""
    data = doc.get("data")
    obj = data.get("object") if isinstance(data, Mapping) else None
    return obj if isinstance(obj, Mapping) else {}


def _id_of(value: object) -> str | None:
    """An id given as a string or as an expanded object with an ``_id``; None otherwise."""
    if isinstance(value, Mapping):
        value = value.get("_id")
    return value if isinstance(value, str) and value else None
