"""The organization's state: rooms, members and bookings, with the double-booking rule.

A room can hold one booking at a time: a create or update that overlaps a booking that is not
canceled (tentative ones included, they hold the slot while awaiting approval), or any occurrence
of a recurring booking, is refused with 409. Every write sets ``modifiedAt`` to a server timestamp
that is strictly greater than every earlier one, so a client can page "changed since" by it and
keyset paging never skips a record that changes mid-listing (it moves to the end).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from roomd.sim.hybrid import recurrence
from roomd.sim.hybrid.clock import SimClock
from roomd.sim.hybrid.errors import conflict, not_found, unprocessable
from roomd.sim.hybrid.faults import Faults
from roomd.sim.hybrid.ids import ObjectIds, stable_id
from roomd.sim.hybrid.model import Booking, CancelReason, Member, Resource
from roomd.sim.hybrid.payloads import BookingFields, is_set
from roomd.sim.hybrid.times import format_instant, truncate_ms
from roomd.sim.tenant import Tenant

Listener = Callable[[str, dict[str, Any]], None]
"""Called with (event type, booking JSON) after each change: ``booking.created|updated|removed``."""


@dataclass(frozen=True)
class Interval:
    start: datetime
    end: datetime
    booking_id: str


class Store:
    """In-memory state of one organization; every method either succeeds or raises ApiError."""

    def __init__(self, tenant: Tenant, clock: SimClock, faults: Faults | None = None) -> None:
        self.org = tenant.hybrid_org
        self.clock = clock
        self.faults = faults or Faults()
        self.ids = ObjectIds()
        self._last_stamp: datetime | None = None
        seeded = self.stamp()
        offices = {
            room.building: stable_id(self.org, "office", room.building) for room in tenant.rooms
        }
        default_office = next(iter(offices.values()), stable_id(self.org, "office"))
        self.resources: dict[str, Resource] = {
            room.hybrid_id: Resource(
                id=room.hybrid_id,
                name=room.display_name,
                time_zone=room.time_zone,
                capacity=room.capacity,
                office=offices[room.building],
                requires_approval=room.requires_approval,
                requires_checkin=room.requires_checkin,
                checkin_window_minutes=room.checkin_window_minutes,
            )
            for room in tenant.rooms
        }
        self.members: dict[str, Member] = {}
        for person in tenant.people:
            member = Member(
                id=stable_id(self.org, "member", person.email.lower()),
                name=person.display_name,
                email=person.email,
                office=default_office,
                created_at=seeded,
            )
            self.members[member.id] = member
        self.bookings: dict[str, Booking] = {}
        # ids by room and by series (parent): the rig's initial syncs create tens of thousands of
        # bookings, and a create checks the room's bookings and each series' exceptions; a scan
        # of every booking per create made the simulator, not roomd, the benchmark's bottleneck
        self._in_room: dict[str, dict[str, None]] = {}
        self._of_parent: dict[str, dict[str, None]] = {}
        self.listeners: list[Listener] = []

    # ---- time and events -------------------------------------------------------------------

    def stamp(self) -> datetime:
        """A server timestamp strictly after the previous one (millisecond resolution); with the
        ``coarse_timestamps`` fault, whole seconds that may repeat (never go back)."""
        if self.faults.coarse_timestamps:
            now = self.clock.now().replace(microsecond=0)
            if self._last_stamp is not None and now < self._last_stamp:
                now = self._last_stamp
            self._last_stamp = now
            return now
        now = truncate_ms(self.clock.now())
        if self._last_stamp is not None and now <= self._last_stamp:
            now = self._last_stamp + timedelta(milliseconds=1)
        self._last_stamp = now
        return now

    def _emit(self, event_type: str, booking: Booking) -> None:
        snapshot = booking.to_json()
        for listener in list(self.listeners):
            listener(event_type, snapshot)

    # ---- lookups ---------------------------------------------------------------------------

    def resource(self, resource_id: str) -> Resource:
        found = self.resources.get(resource_id)
        if found is None:
            raise not_found(f"resource {resource_id!r} not found")
        return found

    def member(self, member_id: str) -> Member:
        found = self.members.get(member_id)
        if found is None:
            raise not_found(f"member {member_id!r} not found")
        return found

    def member_by_email(self, email: str) -> Member | None:
        wanted = email.strip().lower()
        return next((m for m in self.members.values() if m.email.lower() == wanted), None)

    def booking(self, booking_id: str) -> Booking:
        found = self.bookings.get(booking_id)
        if found is None:
            raise not_found(f"booking {booking_id!r} not found")
        return found

    def children(self, parent_id: str) -> list[Booking]:
        return [self.bookings[i] for i in self._of_parent.get(parent_id, ())]

    def in_room(self, resource_id: str) -> list[Booking]:
        return [self.bookings[i] for i in self._in_room.get(resource_id, ())]

    def _put(self, booking: Booking) -> None:
        """Store a new booking or the new version of one (every write goes through here, so
        that the room and series indexes stay right)."""
        old = self.bookings.get(booking.id)
        if old is not None and old.resource_id != booking.resource_id:
            self._in_room[old.resource_id].pop(old.id, None)
        if old is not None and old.parent is not None and old.parent != booking.parent:
            self._of_parent[old.parent].pop(old.id, None)
        self.bookings[booking.id] = booking
        self._in_room.setdefault(booking.resource_id, {})[booking.id] = None
        if booking.parent is not None:
            self._of_parent.setdefault(booking.parent, {})[booking.id] = None

    def add_member(self, name: str, email: str) -> Member:
        """Add a person (the demo and tests use it for organizers who join later)."""
        if self.member_by_email(email) is not None:
            raise conflict(f"member with email {email!r} already exists", "member_exists")
        office = next(iter(self.resources.values())).office if self.resources else ""
        member = Member(
            id=stable_id(self.org, "member", email.lower()),
            name=name,
            email=email,
            office=office,
            created_at=self.stamp(),
        )
        self.members[member.id] = member
        return member

    # ---- writes ----------------------------------------------------------------------------

    def create(self, fields: BookingFields, *, actor: str, source: str) -> Booking:
        """Validate and insert a booking; tentative when its room requires approval."""
        resource = self._known_resource(fields.resource_id)
        self._check_people(fields)
        start, end = fields.start, fields.end
        self._check_times(start, end)
        now = self.stamp()
        booking = Booking(
            id=self.ids.new(now),
            organization=self.org,
            resource_id=resource.id,
            start=start,
            end=end,
            time_zone=resource.time_zone,
            created_at=now,
            modified_at=now,
            created_by=actor,
            modified_by=actor,
            tentative=resource.requires_approval,
            source=source,
        )
        self._assign(booking, fields)
        if booking.parent is not None or booking.original_start is not None:
            self._check_exception(booking)
        if booking.rrule is not None:
            self._check_rule(booking)
            if booking.parent is not None:
                raise unprocessable("recurrence: an exception of a series cannot recur itself")
        self._check_free(booking)
        self._put(booking)
        self._emit("booking.created", booking)
        return booking

    def update(self, booking_id: str, fields: BookingFields, *, actor: str) -> Booking:
        """Apply a PATCH: only the fields present change; the result must still fit the room."""
        current = self.booking(booking_id)
        if current.canceled:
            raise conflict(
                f"booking {booking_id!r} is canceled and cannot be changed", "booking_canceled"
            )
        candidate = Booking(**{**current.__dict__, "exdates": list(current.exdates)})
        if fields.has("resource_id"):
            resource = self._known_resource(fields.resource_id)
            candidate.resource_id = resource.id
            if resource.id != current.resource_id:
                candidate.time_zone = resource.time_zone
                candidate.tentative = resource.requires_approval
        self._check_people(fields)
        self._assign(candidate, fields)
        if fields.has("start"):
            candidate.start = fields.start
        if fields.has("end"):
            candidate.end = fields.end
        self._check_times(candidate.start, candidate.end)
        if candidate.rrule is not None:
            if candidate.parent is not None:
                raise unprocessable("recurrence: an exception of a series cannot recur itself")
            self._check_rule(candidate)
        if candidate.parent is not None and candidate.original_start is not None:
            parent = self.bookings.get(candidate.parent)
            if parent is not None and parent.resource_id != candidate.resource_id:
                raise unprocessable("resourceId: an exception stays in its series' room")
        self._check_free(candidate, exclude={current.id})
        candidate.modified_at = self.stamp()
        candidate.modified_by = actor
        self._put(candidate)
        self._emit("booking.updated", candidate)
        return candidate

    def cancel(self, booking_id: str, *, reason: CancelReason, actor: str) -> Booking:
        """Mark canceled (kept, never deleted). Canceling twice changes nothing and succeeds."""
        booking = self.booking(booking_id)
        if booking.canceled:
            return booking
        self._mark_canceled(booking, reason, actor)
        for child in self.children(booking.id):
            if not child.canceled:
                self._mark_canceled(child, reason, actor)
        return booking

    def _mark_canceled(self, booking: Booking, reason: CancelReason, actor: str) -> None:
        now = self.stamp()
        booking.canceled = True
        booking.cancel_reason = reason
        booking.canceled_at = now
        booking.canceled_by = actor
        booking.modified_at = now
        booking.modified_by = actor
        self._emit("booking.removed", booking)

    def touch(self, booking: Booking, *, actor: str) -> Booking:
        """Record a server-side change (approval, check-in) and announce it."""
        booking.modified_at = self.stamp()
        booking.modified_by = actor
        self._emit("booking.updated", booking)
        return booking

    def cancel_occurrence(
        self, series: Booking, original_start: datetime, *, reason: CancelReason, actor: str
    ) -> Booking:
        """Cancel one occurrence of a series as a canceled exception child (how a no-show of
        one meeting of a series is recorded without touching the others)."""
        now = self.stamp()
        child = Booking(
            id=self.ids.new(now),
            organization=self.org,
            resource_id=series.resource_id,
            start=original_start,
            end=original_start + series.duration,
            time_zone=series.time_zone,
            created_at=now,
            modified_at=now,
            created_by=actor,
            modified_by=actor,
            summary=series.summary,
            description=series.description,
            member=series.member,
            members=list(series.members),
            visitors=list(series.visitors),
            parent=series.id,
            original_start=original_start,
            tentative=series.tentative,
            source=series.source,
            reference=series.reference,
        )
        self._put(child)
        self._emit("booking.created", child)
        self._mark_canceled(child, reason, actor)
        return child

    # ---- validation helpers ----------------------------------------------------------------

    def _known_resource(self, resource_id: object) -> Resource:
        if not isinstance(resource_id, str) or resource_id not in self.resources:
            raise unprocessable(f"resourceId: unknown resource {resource_id!r}", "unknown_resource")
        return self.resources[resource_id]

    def _check_people(self, fields: BookingFields) -> None:
        if (
            is_set(fields.member)
            and fields.member is not None
            and fields.member not in self.members
        ):
            raise unprocessable(f"member: unknown member {fields.member!r}", "unknown_member")
        if is_set(fields.members):
            for i, member_id in enumerate(fields.members):
                if member_id not in self.members:
                    raise unprocessable(
                        f"members[{i}]: unknown member {member_id!r}", "unknown_member"
                    )

    @staticmethod
    def _check_times(start: datetime, end: datetime) -> None:
        if end <= start:
            raise unprocessable(
                f"end: end.dateTime {format_instant(end)} must be after start.dateTime "
                f"{format_instant(start)}",
                "invalid_interval",
            )

    @staticmethod
    def _assign(booking: Booking, fields: BookingFields) -> None:
        for name in ("summary", "description", "member", "source", "reference", "parent"):
            if fields.has(name):
                setattr(booking, name, getattr(fields, name))
        for name in ("members", "visitors"):
            if fields.has(name):
                setattr(booking, name, list(getattr(fields, name)))
        if fields.has("original_start"):
            booking.original_start = fields.original_start
        if fields.has("recurrence"):
            if fields.recurrence is None:
                booking.rrule, booking.exdates = None, []
            else:
                booking.rrule, booking.exdates = fields.recurrence[0], list(fields.recurrence[1])

    @staticmethod
    def _check_rule(series: Booking) -> None:
        """The rule parses, and ``start`` is its first occurrence: RFC 5545 leaves a DTSTART
        that the rule does not produce undefined, so we refuse it instead of guessing."""
        assert series.rrule is not None
        rule = recurrence.parse_rule(series.rrule, series.start, series.time_zone)
        if not recurrence.is_occurrence(rule, series.start):
            raise unprocessable(
                f"start.dateTime: {format_instant(series.start)} is not an occurrence of "
                f"recurrence.rrule {series.rrule!r}; start the series on its first occurrence",
                "invalid_recurrence",
            )

    def _check_exception(self, child: Booking) -> None:
        """An exception child names a live series in the same room and one of its occurrences."""
        if child.parent is None or child.original_start is None:
            raise unprocessable(
                "parent: an exception needs both parent and originalStart", "invalid_exception"
            )
        parent = self.bookings.get(child.parent)
        if parent is None or parent.rrule is None:
            raise unprocessable(
                f"parent: {child.parent!r} is not a recurring booking", "invalid_exception"
            )
        if parent.canceled:
            raise conflict(f"parent: series {parent.id!r} is canceled", "booking_canceled")
        if parent.resource_id != child.resource_id:
            raise unprocessable(
                "resourceId: an exception must be in its series' room", "invalid_exception"
            )
        rule = recurrence.parse_rule(parent.rrule, parent.start, parent.time_zone)
        original = child.original_start
        if not recurrence.is_occurrence(rule, original) or original in set(parent.exdates):
            raise unprocessable(
                f"originalStart: {format_instant(original)} is not an occurrence of series "
                f"{parent.id!r}",
                "invalid_exception",
            )
        for other in self.children(parent.id):
            if other.original_start == original and other.id != child.id:
                raise conflict(
                    f"originalStart: occurrence {format_instant(original)} of series "
                    f"{parent.id!r} already has an exception ({other.id})",
                    "exception_exists",
                    existing=other.id,
                )
        child.tentative = child.tentative or parent.tentative

    # ---- the double-booking rule -----------------------------------------------------------

    def intervals(
        self,
        booking: Booking,
        window_start: datetime | None = None,
        window_end: datetime | None = None,
        extra_overridden: Iterable[datetime] = (),
    ) -> Iterator[Interval]:
        """The time ranges a booking occupies (each occurrence of a series, minus exdates and
        occurrences replaced by exception children)."""
        if booking.rrule is None:
            if (window_end is None or booking.start < window_end) and (
                window_start is None or booking.end > window_start
            ):
                yield Interval(booking.start, booking.end, booking.id)
            return
        rule = recurrence.parse_rule(booking.rrule, booking.start, booking.time_zone)
        overridden = [c.original_start for c in self.children(booking.id) if c.original_start]
        for occ in recurrence.expand(
            rule,
            booking.start,
            booking.duration,
            exdates=booking.exdates,
            overridden=[*overridden, *extra_overridden],
            window_start=window_start,
            window_end=window_end,
        ):
            yield Interval(occ.start, occ.end, booking.id)

    def _check_free(self, candidate: Booking, exclude: set[str] | None = None) -> None:
        excluded = exclude or set()
        mine = sorted(self.intervals(candidate), key=lambda i: i.start)
        if not mine:
            return
        lo, hi = mine[0].start, max(i.end for i in mine)
        extra: dict[str, list[datetime]] = {}
        if candidate.parent is not None and candidate.original_start is not None:
            extra[candidate.parent] = [candidate.original_start]
        theirs: list[Interval] = []
        for other in self.in_room(candidate.resource_id):
            if other.id in excluded or other.id == candidate.id or other.canceled:
                continue
            theirs.extend(self.intervals(other, lo, hi, extra.get(other.id, ())))
        theirs.sort(key=lambda i: i.start)
        clashes = _overlaps(mine, theirs)
        if clashes:
            room = self.resources[candidate.resource_id].name
            first_mine, first_theirs = clashes[0]
            raise conflict(
                f"{room} is already booked from {format_instant(first_theirs.start)} to "
                f"{format_instant(first_theirs.end)} (booking {first_theirs.booking_id}); "
                f"requested {format_instant(first_mine.start)} to {format_instant(first_mine.end)}",
                "booking_conflict",
                conflicts=[
                    {
                        "_id": t.booking_id,
                        "start": {"dateTime": format_instant(t.start)},
                        "end": {"dateTime": format_instant(t.end)},
                    }
                    for _, t in clashes[:10]
                ],
            )


def _overlaps(mine: list[Interval], theirs: list[Interval]) -> list[tuple[Interval, Interval]]:
    """Pairs of half-open intervals that overlap (back-to-back bookings do not)."""
    found: list[tuple[Interval, Interval]] = []
    j = 0
    for a in mine:
        while j < len(theirs) and theirs[j].end <= a.start:
            j += 1
        k = j
        while k < len(theirs) and theirs[k].start < a.end:
            if theirs[k].end > a.start:
                found.append((a, theirs[k]))
            k += 1
    return found
