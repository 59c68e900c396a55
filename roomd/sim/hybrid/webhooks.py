"""Webhook registrations and signed, retried deliveries of booking events.

Following OfficeRnD's webhooks (developer.officernd.com, "Webhooks"; the signature as verified in
OfficeRnD's own demo, repository officernd/webhooks-demo ``index.js``):

- ``POST /webhooks {url, eventTypes[], description}``; the answer carries the ``secret``.
- each event is ``POST url`` with body ``{"eventType": ..., "data": {"object": {...booking}}}``
  and header ``officernd-signature: t=<unix seconds>,v1=<hex>`` where
  ``v1 = HMAC-SHA256(secret, raw_body + "." + t)``.
- delivery is at least once and unordered: a non-2xx answer or a timeout is retried with doubling
  backoff, a bounded number of times; a retry re-signs with a fresh ``t`` and the same body.

``t`` is wall-clock time (a receiver compares it with its own clock), not the simulated clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import secrets
import ssl
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from roomd.sim.hybrid.errors import not_found, unprocessable
from roomd.sim.hybrid.faults import Faults
from roomd.sim.hybrid.ids import ObjectIds

EVENT_TYPES = ("booking.created", "booking.updated", "booking.removed")
SIGNATURE_HEADER = "officernd-signature"


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The ``officernd-signature`` value: ``t=<unix>,v1=<HMAC-SHA256(secret, body + "." + t)>``."""
    digest = hmac.new(secret.encode(), body + b"." + str(timestamp).encode(), hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


@dataclass
class Webhook:
    id: str
    url: str
    event_types: tuple[str, ...]
    description: str | None
    secret: str = field(repr=False)

    def to_json(self, *, with_secret: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {
            "_id": self.id,
            "url": self.url,
            "eventTypes": list(self.event_types),
            "description": self.description,
        }
        if with_secret:
            body["secret"] = self.secret
        return body


@dataclass
class Attempt:
    at: float  # wall-clock unix time
    status: int | None  # HTTP status, or None when the request failed
    error: str | None = None


@dataclass
class Delivery:
    """One event sent (or not) to one webhook; tests and the demo inspect these."""

    id: str
    webhook_id: str
    url: str
    event_type: str
    booking_id: str
    body: bytes
    faults: list[str] = field(default_factory=list)
    state: str = "pending"  # pending | held | delivered | failed | dropped
    attempts: list[Attempt] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "_id": self.id,
            "webhook": self.webhook_id,
            "url": self.url,
            "eventType": self.event_type,
            "bookingId": self.booking_id,
            "state": self.state,
            "faults": list(self.faults),
            "attempts": [{"at": a.at, "status": a.status, "error": a.error} for a in self.attempts],
            "body": json.loads(self.body),
        }


@dataclass
class DeliveryPolicy:
    max_attempts: int = 5
    retry_base_seconds: float = 1.0
    timeout_seconds: float = 5.0
    reorder_hold_seconds: float = 2.0


class WebhookDispatcher:
    """Registrations plus a sender; deliveries go out in event order unless a fault says not."""

    def __init__(
        self,
        faults: Faults,
        ids: ObjectIds,
        *,
        policy: DeliveryPolicy | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.faults = faults
        self.ids = ids
        self.policy = policy or DeliveryPolicy()
        self.webhooks: dict[str, Webhook] = {}
        self.deliveries: list[Delivery] = []
        self._ssl = ssl_context
        self._queue: asyncio.Queue[tuple[Delivery, Webhook, bool, bool]] = asyncio.Queue()
        self._held: list[tuple[Delivery, Webhook, bool, bool]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._timers: list[asyncio.TimerHandle] = []
        self._worker: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None

    # ---- registration ----------------------------------------------------------------------

    def register(self, body: dict[str, Any], now_id: str) -> Webhook:
        url = body.get("url")
        if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
            raise unprocessable(f"url: expected an http(s) URL, got {url!r}")
        if not urlsplit(url).hostname:
            raise unprocessable(f"url: {url!r} has no host")
        types = body.get("eventTypes")
        if not isinstance(types, list) or not types or not all(isinstance(t, str) for t in types):
            raise unprocessable(
                f"eventTypes: expected a non-empty list of {', '.join(EVENT_TYPES)}, got {types!r}"
            )
        for t in types:
            if t not in EVENT_TYPES:
                raise unprocessable(
                    f"eventTypes: unknown event type {t!r} (known: {', '.join(EVENT_TYPES)})"
                )
        description = body.get("description")
        if description is not None and not isinstance(description, str):
            raise unprocessable(f"description: expected a string, got {description!r}")
        unknown = set(body) - {"url", "eventTypes", "description"}
        if unknown:
            raise unprocessable(f"{sorted(unknown)[0]}: unknown webhook field", "unknown_field")
        hook = Webhook(now_id, url, tuple(dict.fromkeys(types)), description, secrets.token_hex(32))
        self.webhooks[hook.id] = hook
        return hook

    def unregister(self, webhook_id: str) -> None:
        if self.webhooks.pop(webhook_id, None) is None:
            raise not_found(f"webhook {webhook_id!r} not found")

    # ---- events ----------------------------------------------------------------------------

    def on_event(self, event_type: str, booking: dict[str, Any]) -> None:
        """Store listener: queue one delivery per subscribed webhook, applying faults."""
        body = json.dumps(
            {"eventType": event_type, "data": {"object": booking}}, separators=(",", ":")
        ).encode()
        for hook in list(self.webhooks.values()):
            if event_type not in hook.event_types:
                continue
            delivery = Delivery(
                id=self.ids.new_now(),
                webhook_id=hook.id,
                url=hook.url,
                event_type=event_type,
                booking_id=str(booking.get("_id")),
                body=body,
            )
            self.deliveries.append(delivery)
            if self.faults.take("webhook_drop"):
                delivery.faults.append("drop")
                delivery.state = "dropped"
                continue
            bad = self.faults.take("webhook_bad_signature")
            stale = self.faults.take("webhook_stale_timestamp")
            if bad:
                delivery.faults.append("bad_signature")
            if stale:
                delivery.faults.append("stale_timestamp")
            item = (delivery, hook, bad, stale)
            if self.faults.take("webhook_delay"):
                delivery.faults.append("delay")
                self._spawn(self._delayed(item, self.faults.webhook_delay_seconds))
            elif self.faults.take("webhook_reorder"):
                delivery.faults.append("reorder")
                delivery.state = "held"
                self._held.append(item)
                loop = asyncio.get_running_loop()
                self._timers.append(
                    loop.call_later(self.policy.reorder_hold_seconds, self._release_held)
                )
            else:
                self._queue.put_nowait(item)
                self._release_held()
            if self.faults.take("webhook_duplicate"):
                twin = Delivery(
                    id=self.ids.new_now(),
                    webhook_id=hook.id,
                    url=hook.url,
                    event_type=event_type,
                    booking_id=delivery.booking_id,
                    body=body,
                    faults=["duplicate"],
                )
                self.deliveries.append(twin)
                self._queue.put_nowait((twin, hook, bad, stale))

    def _release_held(self) -> None:
        held, self._held = self._held, []
        for item in held:
            item[0].state = "pending"
            self._queue.put_nowait(item)

    async def _delayed(self, item: tuple[Delivery, Webhook, bool, bool], seconds: float) -> None:
        await asyncio.sleep(seconds)
        self._queue.put_nowait(item)

    # ---- sending ---------------------------------------------------------------------------

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.policy.timeout_seconds)
        )
        self._worker = asyncio.create_task(self._run(), name="hybrid-sim-webhooks")

    async def stop(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        tasks = [t for t in (self._worker, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._worker = None
        self._tasks.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def idle(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Wait until every delivery has reached a final state (delivered, failed or dropped)."""
        deadline = time.monotonic() + timeout
        while any(d.state in ("pending", "held") for d in self.deliveries):
            if time.monotonic() > deadline:
                raise TimeoutError(f"webhook deliveries still pending after {timeout} s")
            await asyncio.sleep(0.01)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self) -> None:
        while True:
            delivery, hook, bad, stale = await self._queue.get()
            await self._attempt(delivery, hook, bad, stale)

    async def _attempt(self, delivery: Delivery, hook: Webhook, bad: bool, stale: bool) -> None:
        timestamp = int(time.time()) - (600 if stale else 0)
        secret = secrets.token_hex(32) if bad else hook.secret
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(secret, delivery.body, timestamp),
            "User-Agent": "roomd-hybrid-simulator",
        }
        attempt = Attempt(at=time.time(), status=None)
        delivery.attempts.append(attempt)
        assert self._session is not None
        try:
            async with self._session.post(
                delivery.url, data=delivery.body, headers=headers, ssl=self._ssl or True
            ) as response:
                attempt.status = response.status
                await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            attempt.error = type(exc).__name__
        if attempt.status is not None and 200 <= attempt.status < 300:
            delivery.state = "delivered"
        elif len(delivery.attempts) >= self.policy.max_attempts:
            delivery.state = "failed"
        else:
            backoff = self.policy.retry_base_seconds * 2 ** (len(delivery.attempts) - 1)
            self._spawn(self._retry(delivery, hook, bad, stale, backoff))

    async def _retry(
        self, delivery: Delivery, hook: Webhook, bad: bool, stale: bool, backoff: float
    ) -> None:
        await asyncio.sleep(backoff)
        await self._attempt(delivery, hook, bad, stale)
