"""What a person does in the Hybrid app, and the test switches: reachable in-process and over HTTP.

Tests and the demo act as a member or an administrator would in the Hybrid app (create, edit,
cancel a booking; approve, reject, check in), move the simulated clock, run the no-show sweep,
switch faults and read the webhook deliveries. The HTTP form lives under ``/_sim/`` (see
server.py) and answers the same JSON as the API; it needs no token (a local simulator only).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from roomd.sim.hybrid import policies
from roomd.sim.hybrid.auth import TokenIssuer
from roomd.sim.hybrid.clock import SimClock
from roomd.sim.hybrid.errors import unprocessable
from roomd.sim.hybrid.faults import Faults
from roomd.sim.hybrid.model import CancelReason
from roomd.sim.hybrid.payloads import parse_booking_body
from roomd.sim.hybrid.store import Store
from roomd.sim.hybrid.times import format_instant, parse_instant
from roomd.sim.hybrid.webhooks import WebhookDispatcher

APP_SOURCE = "hybrid_app"
"""``source`` of bookings made in the Hybrid app (API-created ones default to ``"api"``)."""


class Control:
    """The simulator's remote control. Every method returns API-shaped JSON (dicts)."""

    def __init__(
        self,
        store: Store,
        issuer: TokenIssuer,
        faults: Faults,
        webhooks: WebhookDispatcher,
        clock: SimClock,
    ) -> None:
        self._store = store
        self._issuer = issuer
        self._webhooks = webhooks
        self._clock = clock
        self.faults = faults

    # ---- people in the Hybrid app ----------------------------------------------------------

    def member_id(self, email: str) -> str:
        member = self._store.member_by_email(email)
        if member is None:
            raise unprocessable(f"member: no member with email {email!r}", "unknown_member")
        return member.id

    def add_member(self, name: str, email: str) -> dict[str, Any]:
        return self._store.add_member(name, email).to_json()

    def create_booking(
        self,
        resource_id: str,
        start: datetime | str,
        end: datetime | str,
        *,
        member: str,
        summary: str | None = None,
        rrule: str | None = None,
        exdates: list[datetime | str] | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """Book a room as ``member`` (an id or an email) would in the Hybrid app."""
        member_id = self.member_id(member) if "@" in member else member
        body: dict[str, Any] = {
            "resourceId": resource_id,
            "start": {"dateTime": _text(start)},
            "end": {"dateTime": _text(end)},
            "member": member_id,
            "summary": summary,
            **extra,
        }
        if rrule is not None:
            body["recurrence"] = {"rrule": rrule, "exdates": [_text(d) for d in exdates or []]}
        fields = parse_booking_body(body, patch=False)
        booking = self._store.create(fields, actor=member_id, source=APP_SOURCE)
        return booking.to_json()

    def update_booking(self, booking_id: str, **changes: Any) -> dict[str, Any]:
        """Edit as the booking's member would; keys are API field names (``start``, ``summary``),
        and ``start``/``end`` may be datetimes."""
        body = {
            k: ({"dateTime": _text(v)} if k in ("start", "end") and not isinstance(v, dict) else v)
            for k, v in changes.items()
        }
        booking = self._store.booking(booking_id)
        fields = parse_booking_body(body, patch=True)
        return self._store.update(booking_id, fields, actor=booking.member or "member").to_json()

    def cancel_booking(self, booking_id: str, *, by: str = "member") -> dict[str, Any]:
        """Cancel as the member (``by="member"``) or an administrator (``by="admin"``)."""
        reason = {"member": CancelReason.MEMBER, "admin": CancelReason.ADMIN}.get(by)
        if reason is None:
            raise unprocessable(f"by: expected 'member' or 'admin', got {by!r}")
        booking = self._store.booking(booking_id)
        actor = (booking.member or "member") if by == "member" else "admin"
        return self._store.cancel(booking_id, reason=reason, actor=actor).to_json()

    def approve(self, booking_id: str) -> dict[str, Any]:
        return policies.approve(self._store, booking_id).to_json()

    def reject(self, booking_id: str) -> dict[str, Any]:
        return policies.reject(self._store, booking_id).to_json()

    def check_in(
        self, booking_id: str, occurrence_start: datetime | str | None = None
    ) -> dict[str, Any]:
        start = None
        if occurrence_start is not None:
            start = parse_instant(_text(occurrence_start), "occurrenceStart")
        return policies.check_in(self._store, booking_id, start).to_json()

    def run_noshow_sweep(self) -> list[dict[str, Any]]:
        return [b.to_json() for b in policies.run_noshow_sweep(self._store)]

    # ---- reading state ---------------------------------------------------------------------

    def booking(self, booking_id: str) -> dict[str, Any]:
        return self._store.booking(booking_id).to_json()

    def bookings(self, resource_id: str | None = None) -> list[dict[str, Any]]:
        found = [b for b in self._store.bookings.values() if resource_id in (None, b.resource_id)]
        return [b.to_json() for b in sorted(found, key=lambda b: (b.created_at, b.id))]

    # ---- clock, tokens, faults, webhooks ---------------------------------------------------

    def now(self) -> datetime:
        return self._clock.now()

    def advance_clock(self, seconds: float) -> datetime:
        return self._clock.advance(seconds)

    def revoke_tokens(self) -> None:
        self._issuer.revoke_all()

    def set_client_secret(self, secret: str) -> None:
        """The API client's secret is now ``secret`` (a rotation in Hybrid): the old one is
        refused with ``invalid_client`` and the tokens issued with it stop working."""
        self._issuer.client_secret = secret
        self._issuer.revoke_all()

    def token_requests(self) -> int:
        """Token requests received so far, answered or refused."""
        return self._issuer.requests

    def set_faults(self, **switches: Any) -> dict[str, Any]:
        """E.g. ``set_faults(api_429=2, retry_after_seconds=3)``; see faults.Faults for names."""
        self.faults.set(**switches)
        return self.faults.to_json()

    def clear_faults(self) -> None:
        self.faults.clear()

    def deliveries(self) -> list[dict[str, Any]]:
        return [d.to_json() for d in self._webhooks.deliveries]

    async def webhooks_idle(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Wait until no webhook delivery is pending (each delivered, failed or dropped)."""
        await self._webhooks.idle(timeout)


def _text(value: datetime | str) -> str:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise unprocessable(f"{value.isoformat()}: naive datetime; give a timezone-aware one")
        return format_instant(value)
    return value
