"""Reading a series from Hybrid: the recurring booking, its exdates and its exception children.

A listing reports a series and each of its exceptions as separate bookings, each when it
changed; a change to any of them re-reads the whole series, so the engine always compares a
series with all its exceptions (docs/hybrid-api.md "Recurring bookings and exceptions").
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from roomd.hybrid import HybridBooking

from .decide import LinkIndex
from .model import HybridState, Slot
from .outbound import hybrid_state
from .ports import HybridPort
from .recurrence import graph_from_rrule, occurrences, rrule_from_graph
from .series import HybridSeries, Shape
from .zones import zone_info


def canonical_rrule(rrule: str, start: datetime, zone: str) -> str:
    """The rule in the one form both shells produce, so that a series Hybrid holds and its
    Outlook copy compare equal: through Graph's pattern and back (a rule Graph cannot express
    stays as written)."""
    try:
        local = start.astimezone(zone_info(zone))
        graph = graph_from_rrule(rrule, dtstart_local=local, zone=zone)
        return rrule_from_graph(graph, first_start_local=local, zone=zone)
    except ValueError:
        return rrule


def hybrid_shape(booking: HybridBooking, room_zone: str) -> Shape:
    """A recurring booking's shape, in the room's zone (Hybrid evaluates rules there)."""
    assert booking.recurrence is not None
    zone = booking.timezone or room_zone
    return Shape(
        canonical_rrule(booking.recurrence.rrule, booking.start, zone),
        zone,
        booking.start,
        booking.end,
        booking.summary,
    )


class HybridSeriesReader:
    def __init__(self, hybrid: HybridPort) -> None:
        self._hybrid = hybrid

    async def series(
        self,
        bookings: Sequence[HybridBooking],
        links: LinkIndex,
        *,
        resource_id: str,
        room_zone: str,
    ) -> list[HybridSeries]:
        listed = {b.id: b for b in bookings if b.resource_id == resource_id}
        ids = dict.fromkeys(
            b.id if b.recurrence is not None else b.parent
            for b in listed.values()
            if b.recurrence is not None or b.parent is not None
        )
        out = []
        for series_id in ids:
            if series_id is None:
                continue
            booking = listed.get(series_id)
            if booking is None or booking.recurrence is None:
                booking = await self._hybrid.get_booking(series_id)
            if booking is None or booking.recurrence is None:
                continue
            out.append(await self._one(booking, links, room_zone))
        return out

    async def _one(self, booking: HybridBooking, links: LinkIndex, room_zone: str) -> HybridSeries:
        state = hybrid_state(booking)
        problem = None
        shape = None
        if booking.end <= booking.start:
            problem = f"series {booking.id} ends before it starts"
        else:
            shape = hybrid_shape(booking, room_zone)
        exceptions: dict[datetime, Slot | None] = {}
        policy: set[datetime] = set()  # occurrences the room's policy released
        final: set[datetime] = set()  # canceled exception children: Hybrid cannot restore them
        assert booking.recurrence is not None
        for exdate in booking.recurrence.exdates:
            exceptions[exdate.replace(microsecond=0)] = None
        kids = [c for c in await self._hybrid.children(booking.id) if c.original_start is not None]
        rule = _occurrences_at(booking, room_zone, [c.original_start for c in kids])
        stale: list[datetime] = []
        for child in kids:
            assert child.original_start is not None
            original = child.original_start.replace(microsecond=0)
            if rule is not None and original not in rule:
                if not child.canceled:  # made for an earlier time of the series
                    stale.append(original)
                continue
            if child.canceled:
                exceptions[original] = None
                final.add(original)
                if hybrid_state(child) is HybridState.RELEASED:
                    policy.add(original)
            elif child.end > child.start:
                # its own title only when it is not the series': one occurrence retitled
                own = child.summary if child.summary != booking.summary else None
                exceptions[original] = Slot(child.start, child.end, own)
        organizer = None
        guests: list[str] = []
        linked = links.by_hybrid.get(booking.id) is not None
        if state is HybridState.LIVE and not linked and not booking.reference:
            if booking.member:
                organizer = await self._hybrid.member_email(booking.member)
            for member in booking.members:
                email = await self._hybrid.member_email(member)
                if email and email != organizer:
                    guests.append(email)
            guests += [v.lower() for v in booking.visitors if "@" in v]
            if organizer is None and problem is None:
                problem = f"series {booking.id}: its member has no email address"
        return HybridSeries(
            hybrid_id=booking.id,
            state=state,
            shape=shape,
            exceptions=exceptions,
            released=frozenset(policy),
            final=frozenset(final),
            stale=tuple(sorted(stale)),
            tentative=booking.tentative,
            cancel_reason=booking.cancel_reason,
            reference=booking.reference,
            organizer=organizer,
            guests=tuple(guests),
            description=booking.description,
            modified_at=booking.modified_at,
            problem=problem,
        )


def _occurrences_at(
    booking: HybridBooking, room_zone: str, originals: list[datetime | None]
) -> frozenset[datetime] | None:
    """Which of ``originals`` are occurrences of the series' rule as it is now: an exception
    child made before the series was retimed replaces none (Hybrid keeps it, holding its
    slot). None when the rule cannot be read (then every child counts)."""
    found = [t for t in originals if t is not None]
    if not found or booking.recurrence is None:
        return None
    try:
        return frozenset(
            occurrences(
                booking.recurrence.rrule,
                dtstart_local=booking.start,
                zone=booking.timezone or room_zone,
                exdates=(),
                between=(min(found), max(found) + timedelta(seconds=1)),
            )
        )
    except ValueError:
        return None
