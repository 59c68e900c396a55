"""The room policies the Hybrid app applies on its own: approval and check-in (no-show).

As the seed product documents its rooms: a booking on a room that requires approval is created
``tentative: true`` and stays so until an administrator approves it (``tentative`` becomes false)
or rejects it (canceled, ``cancelReason: "rejected"``). On a room that requires check-in, a booking
nobody checked in to within ``checkInWindowMinutes`` after its start is canceled with
``cancelReason: "no_show"``, which a client tells apart from a person's cancellation
(``"member"``/``"admin"``). For a recurring booking each occurrence is checked in separately; a
missed occurrence becomes a canceled exception child (``parent`` + ``originalStart``), the rest of
the series stays. The sweep runs on the simulated clock and only when called, so tests decide when.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from roomd.sim.hybrid.errors import conflict
from roomd.sim.hybrid.model import Booking, CancelReason
from roomd.sim.hybrid.store import Store

ADMIN = "admin"


def approve(store: Store, booking_id: str) -> Booking:
    booking = store.booking(booking_id)
    _require_pending(booking)
    booking.tentative = False
    for child in store.children(booking.id):
        child.tentative = False
    return store.touch(booking, actor=ADMIN)


def reject(store: Store, booking_id: str) -> Booking:
    booking = store.booking(booking_id)
    _require_pending(booking)
    return store.cancel(booking.id, reason=CancelReason.REJECTED, actor=ADMIN)


def check_in(store: Store, booking_id: str, occurrence_start: datetime | None = None) -> Booking:
    """Check in to a booking (a series needs the occurrence's start; default: the current one)."""
    booking = store.booking(booking_id)
    if booking.canceled:
        raise conflict(f"booking {booking_id!r} is canceled", "booking_canceled")
    now = store.clock.now()
    actor = booking.member or "member"
    if booking.rrule is None:
        if booking.checked_in_at is not None:
            return booking
        booking.checked_in_at = now
        return store.touch(booking, actor=actor)
    start = occurrence_start or _current_occurrence(store, booking, now)
    booking.checked_in_occurrences.add(start)
    return booking


def run_noshow_sweep(store: Store) -> list[Booking]:
    """Cancel every booking (or occurrence) whose check-in window has passed without a check-in.

    Returns the canceled bookings (for a series: the canceled exception children).
    """
    now = store.clock.now()
    canceled: list[Booking] = []
    for booking in list(store.bookings.values()):
        resource = store.resources[booking.resource_id]
        if booking.canceled or not resource.requires_checkin:
            continue
        window = timedelta(minutes=resource.checkin_window_minutes)
        if booking.rrule is None:
            if booking.checked_in_at is None and _missed(booking.start, window, booking, now):
                store.cancel(booking.id, reason=CancelReason.NO_SHOW, actor="system")
                canceled.append(booking)
            continue
        since = booking.created_at - window - booking.duration
        for interval in list(store.intervals(booking, since, now)):
            if interval.start in booking.checked_in_occurrences:
                continue
            if not _missed(interval.start, window, booking, now):
                continue
            child = store.cancel_occurrence(
                booking, interval.start, reason=CancelReason.NO_SHOW, actor="system"
            )
            canceled.append(child)
    return canceled


def _missed(start: datetime, window: timedelta, booking: Booking, now: datetime) -> bool:
    """The window has closed, and it was still open when the booking was made (a booking entered
    after its window, e.g. synced late, is not a no-show)."""
    return start + window <= now and start + window > booking.created_at


def _require_pending(booking: Booking) -> None:
    if booking.canceled:
        raise conflict(f"booking {booking.id!r} is canceled", "booking_canceled")
    if not booking.tentative:
        raise conflict(f"booking {booking.id!r} is not pending approval", "not_pending")


def _current_occurrence(store: Store, booking: Booking, now: datetime) -> datetime:
    window = timedelta(minutes=store.resources[booking.resource_id].checkin_window_minutes)
    for interval in store.intervals(booking, now - window - booking.duration, now + window):
        if interval.start - window <= now <= interval.end:
            return interval.start
    raise conflict(f"booking {booking.id!r} has no occurrence to check in to now", "not_now")
