"""Reading the Hybrid side of a room: listed bookings turned into ``HybridItem``s.

The ``modifiedAt`` listing (and the webhooks that bring a round forward) say what changed; this
shell adds what the engine needs to plan Outlook writes: the member's and guests' addresses,
and whether a cancellation came from a person or from the room's policy (a no-show release or a
rejected approval, design.md section 4). Recurring bookings and their exceptions are left to the
series work and not read here.
"""

from __future__ import annotations

from collections.abc import Sequence

from roomd.hybrid import HybridBooking

from .decide import LinkIndex
from .model import HybridItem, HybridState, Slot
from .ports import HybridPort

POLICY_REASONS = frozenset({"rejected"})
"""Cancel reasons that are the room's policy, like a no-show: the organizer keeps the meeting."""


def hybrid_state(booking: HybridBooking) -> HybridState:
    """Live, cancelled by a person, or released by the room's policy (a no-show, a rejected
    approval): the organizer keeps the meeting only in the last case."""
    if not booking.canceled:
        return HybridState.LIVE
    reason = (booking.cancel_reason or "").strip().lower()
    released = booking.no_show or reason in POLICY_REASONS
    return HybridState.RELEASED if released else HybridState.CANCELED


def is_series(booking: HybridBooking) -> bool:
    return booking.recurrence is not None or booking.parent is not None


class HybridReader:
    def __init__(self, hybrid: HybridPort) -> None:
        self._hybrid = hybrid

    async def items(
        self, bookings: Sequence[HybridBooking], links: LinkIndex, *, resource_id: str
    ) -> list[HybridItem]:
        latest: dict[str, HybridBooking] = {}
        for booking in bookings:
            if booking.resource_id == resource_id and not is_series(booking):
                latest[booking.id] = booking
        return [await self.item(b, links) for b in latest.values()]

    async def item(self, booking: HybridBooking, links: LinkIndex) -> HybridItem:
        state = hybrid_state(booking)
        problem = None
        slot = None
        if booking.end <= booking.start:
            problem = f"booking {booking.id} ends ({booking.end:%Y-%m-%d %H:%M}) before it starts"
        else:
            slot = Slot(booking.start, booking.end, booking.summary)
        organizer = None
        guests: list[str] = []
        linked = links.by_hybrid.get(booking.id) is not None
        if state is HybridState.LIVE and not linked and problem is None and not booking.reference:
            # a new booking made in Hybrid: its people become the meeting's organizer and guests
            if booking.member:
                organizer = await self._hybrid.member_email(booking.member)
            for member in booking.members:
                email = await self._hybrid.member_email(member)
                if email and email != organizer:
                    guests.append(email)
            guests += [v.lower() for v in booking.visitors if "@" in v]
            if organizer is None:
                problem = f"booking {booking.id}: its member has no email address"
        return HybridItem(
            hybrid_id=booking.id,
            state=state,
            slot=slot,
            tentative=booking.tentative,
            cancel_reason=booking.cancel_reason,
            reference=booking.reference,
            source=booking.source,
            organizer=organizer,
            guests=tuple(guests),
            description=booking.description,
            modified_at=booking.modified_at,
            problem=problem,
        )
