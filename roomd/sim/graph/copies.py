"""Keeping each mailbox's copy of a meeting in line with the organizer's copy.

Exchange keeps one copy per mailbox (graph-behaviour.md 2.2): attendees' copies follow the
organizer's at once; a room's copy is written by the Resource Booking Assistant (rba.py), rewritten
under its CalendarProcessing (Set-CalendarProcessing AddOrganizerToSubject / DeleteSubject /
DeleteComments / RemovePrivateProperty; OfficeDocs-Support "calendar shows organizer name").
Series carry their exceptions and cancelled occurrences over; a cancelled meeting leaves attendees
a "Canceled:" item (lab notes, graph-behaviour.md 2.6).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from roomd.sim.graph import recurrence as rec_mod
from roomd.sim.graph.clock import SimClock
from roomd.sim.graph.directory import Mailbox
from roomd.sim.graph.events import Calendar, Event, new_event_id
from roomd.sim.graph.settings import Switches


class CopyKeeper:
    def __init__(self, clock: SimClock, switches: Switches, calendars: dict[str, Calendar]) -> None:
        self.clock = clock
        self.switches = switches
        self.calendars = calendars

    def cancel_copy(self, cal: Calendar, ical_uid: str, remove: bool) -> None:
        copy = cal.find_by_ical(ical_uid)
        if copy is None:
            return
        if remove:
            cal.remove(copy.id)
            return
        if not copy.is_cancelled:
            copy.is_cancelled = True
            if not copy.subject.startswith("Canceled: "):
                copy.subject = f"Canceled: {copy.subject}"
            cal.touch(copy, self.clock.now())

    def sync_copy(
        self,
        cal: Calendar,
        org: Event,
        room: Mailbox | None,
        *,
        response: str | None = None,
        rewrite: bool = False,
        declined: set[datetime] | None = None,
        truncate_to: Any = None,
    ) -> Event:
        """Create or update one mailbox's copy of the organizer's meeting (and its series
        exceptions/cancellations). Touches the copy only when something visible changed."""
        now = self.clock.now()
        copy = cal.find_by_ical(org.ical_uid)
        created = copy is None
        if copy is None:
            copy = Event(
                id=new_event_id(),
                mailbox=cal.mailbox,
                ical_uid=org.ical_uid,
                type=org.type,
                start=org.start,
                end=org.end,
                created=now,
                modified=now,
                is_organizer=False,
                response="notResponded" if room is None else "none",
                show_as="tentative",
                organizer_mailbox=org.mailbox,
            )
        before = _fingerprint(copy)
        self._copy_fields(org, copy, room, rewrite)
        if truncate_to is not None and copy.recurrence is not None:
            graph = copy.recurrence.as_graph()
            graph["range"]["type"] = "endDate"
            graph["range"]["endDate"] = truncate_to.isoformat()
            copy.recurrence = rec_mod.from_graph(graph)
        if response is not None:
            if copy.response != response:
                copy.response_time = now
            copy.response = response
            copy.show_as = {"accepted": "busy", "tentativelyAccepted": "tentative"}.get(
                response, copy.show_as
            )
        self._sync_series(cal, org, copy, room, rewrite, declined or set())
        if created:
            cal.add(copy)
        elif _fingerprint(copy) != before:
            cal.touch(copy, now)
        return copy

    def _copy_fields(self, src: Event, dst: Event, room: Mailbox | None, rewrite: bool) -> None:
        dst.start, dst.end = src.start, src.end
        dst.start_tz, dst.end_tz = src.start_tz, src.end_tz
        dst.is_all_day = src.is_all_day
        dst.location = dict(src.location)
        dst.locations = [dict(x) for x in src.locations]
        dst.attendees = [
            {
                "type": a["type"],
                "status": dict(a["status"]),
                "emailAddress": dict(a["emailAddress"]),
            }
            for a in src.attendees
        ]
        dst.organizer = dict(src.organizer)
        dst.importance = src.importance
        dst.categories = []
        dst.recurrence = src.recurrence
        dst.type = src.type
        dst.is_cancelled = src.is_cancelled
        dst.allow_new_time_proposals = src.allow_new_time_proposals
        dst.body_type = src.body_type
        dst.subject, dst.body, dst.sensitivity = src.subject, src.body, src.sensitivity
        if room is not None and rewrite:
            cp = room.processing
            dst.subject = room_subject(
                cp.DeleteSubject, cp.AddOrganizerToSubject, src.subject, src.organizer["name"]
            )
            if cp.DeleteComments:
                dst.body = ""
            if cp.RemovePrivateProperty:
                dst.sensitivity = "normal"
        if room is not None:
            dst.location = {
                "displayName": room.display_name,
                "locationType": "conferenceRoom",
                "uniqueId": room.email,
                "uniqueIdType": "directory",
            }
            dst.locations = [dict(dst.location)]

    def _sync_series(
        self,
        cal: Calendar,
        org: Event,
        copy: Event,
        room: Mailbox | None,
        rewrite: bool,
        declined: set[datetime],
    ) -> None:
        if org.type != "seriesMaster":
            for exc_id in list(copy.exceptions.values()):
                cal.remove(exc_id)
            copy.exceptions.clear()
            copy.cancelled_occurrences.clear()
            return
        org_cal = self.calendars.get(org.mailbox)
        remove_mode = room is not None and self.switches.organizer_cancel == "remove"
        wanted_cancelled = set(declined)
        if remove_mode:
            wanted_cancelled |= org.cancelled_occurrences
        copy.cancelled_occurrences = wanted_cancelled
        now = self.clock.now()
        wanted_exc: dict[datetime, Event] = {}
        if org_cal is not None:
            for orig, exc_id in org.exceptions.items():
                org_exc = org_cal.events.get(exc_id)
                if org_exc is not None and orig not in wanted_cancelled:
                    wanted_exc[orig] = org_exc
        if not remove_mode:
            for orig in org.cancelled_occurrences - wanted_cancelled:
                ghost = replace(
                    org,
                    type="exception",
                    start=orig,
                    end=orig + org.duration,
                    recurrence=None,
                    original_start=orig,
                    is_cancelled=True,
                    subject=f"Canceled: {org.subject}",
                )
                wanted_exc[orig] = ghost
        for orig in list(copy.exceptions):
            if orig not in wanted_exc:
                cal.remove(copy.exceptions.pop(orig))
        for orig, src in wanted_exc.items():
            existing = cal.events.get(copy.exceptions.get(orig, ""))
            target = existing or Event(
                id=new_event_id(),
                mailbox=cal.mailbox,
                ical_uid=copy.ical_uid,
                type="exception",
                start=src.start,
                end=src.end,
                created=now,
                modified=now,
                is_organizer=False,
                organizer_mailbox=org.mailbox,
            )
            before = _fingerprint(target)
            self._copy_fields(src, target, room, rewrite)
            target.type = "exception"
            target.recurrence = None
            target.series_master_id = copy.id
            target.original_start = orig
            target.response, target.show_as = copy.response, copy.show_as
            if src.is_cancelled:
                target.is_cancelled = True
                if not target.subject.startswith("Canceled: "):
                    target.subject = f"Canceled: {target.subject}"
            if existing is None:
                copy.exceptions[orig] = target.id
                cal.add(target)
            elif _fingerprint(target) != before:
                cal.touch(target, now)


def room_subject(delete_subject: bool, add_organizer: bool, subject: str, organizer: str) -> str:
    """The room copy's subject (Set-CalendarProcessing AddOrganizerToSubject/DeleteSubject;
    OfficeDocs-Support "calendar shows organizer name"): both true -> the organizer's name.
    [INF] AddOrganizerToSubject alone puts the name before the subject."""
    if delete_subject and add_organizer:
        return organizer
    if delete_subject:
        return ""
    if add_organizer:
        return f"{organizer} {subject}".strip()
    return subject


def _fingerprint(event: Event) -> tuple[Any, ...]:
    return (
        event.subject,
        event.body,
        event.start,
        event.end,
        event.start_tz,
        event.is_all_day,
        repr(event.location),
        repr(event.attendees),
        event.recurrence,
        event.type,
        event.is_cancelled,
        event.sensitivity,
        event.response,
        event.show_as,
        frozenset(event.cancelled_occurrences),
        tuple(sorted(event.exceptions.items())),
    )
