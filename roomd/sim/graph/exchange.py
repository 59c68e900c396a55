"""Exchange's meeting behaviour across mailboxes: what a write to one mailbox does to the others.

The organizer's writes (create, update, cancel) and attendees' answers (accept, decline, delete)
land here; copies.py keeps each copy in line and rba.py answers for rooms.

Sources (graph-behaviour.md 2.1, 2.6, 2.7, 6): user-post-events.md ("Setting the location in an
event": the server accepts or rejects for the resource and creates the room's event; reschedules
update it), event-cancel.md (organizer only, 202), event-delete.md (organizer delete cancels the
meeting for attendees), event-decline.md / event-accept.md, Set-CalendarProcessing.md (RBA policy),
OfficeDocs-Support "calendar shows organizer name" (subject rewrite), and the third-party lab notes
(rooms remove their copy on cancel; a deleted/declined room copy flips the organizer's tracking to
Declined). Every copy shares the organizer copy's ``iCalUId`` and has its own ``id``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from roomd.sim.graph import payload
from roomd.sim.graph.clock import SimClock
from roomd.sim.graph.copies import CopyKeeper
from roomd.sim.graph.directory import Directory, Mailbox
from roomd.sim.graph.events import (
    Calendar,
    Event,
    new_change_key,
    new_event_id,
    new_ical_uid,
    occurrence_starts,
)
from roomd.sim.graph.rba import BookingAssistant, RbaJob
from roomd.sim.graph.settings import Switches
from roomd.sim.graph.wire import GraphError, fmt_response_time
from roomd.sim.graph.zones import resolve_zone

NOT_ORGANIZER = "Your request can't be completed. You need to be an organizer to cancel a meeting."


def not_found() -> GraphError:
    return GraphError(404, "ErrorItemNotFound", "The specified object was not found in the store.")


class Exchange:
    """All calendars of the tenant and the meeting logic between them."""

    def __init__(self, directory: Directory, clock: SimClock, switches: Switches) -> None:
        self.directory = directory
        self.clock = clock
        self.switches = switches
        self.calendars: dict[str, Calendar] = {}
        self.copies = CopyKeeper(clock, switches, self.calendars)
        self.rba = BookingAssistant(directory, clock, switches, self, self.copies)
        # called as (mailbox address, event id, change kind, event or None)
        self.change_listeners: list[Callable[[str, str, str, Event | None], None]] = []

    # -- lookup -----------------------------------------------------------------------------
    def calendar(self, mailbox: Mailbox) -> Calendar:
        key = mailbox.email.lower()
        cal = self.calendars.get(key)
        if cal is None:
            cal = self.calendars[key] = Calendar(key)
            cal.on_change = lambda eid, kind, ev: self._changed(key, eid, kind, ev)
        return cal

    def _changed(self, mailbox: str, event_id: str, kind: str, event: Event | None) -> None:
        for listener in self.change_listeners:
            listener(mailbox, event_id, kind, event)

    def mailbox(self, key: str) -> Mailbox:
        mbx = self.directory.find(key)
        if mbx is None:
            raise GraphError(
                404,
                "ErrorInvalidUser",
                f"The requested user '{key}' is invalid.",
            )
        return mbx

    # -- create -----------------------------------------------------------------------------
    def create(self, mailbox: Mailbox, body: Any) -> tuple[Event, bool]:
        """POST /users/{id}/events -> (event, created). A repeated transactionId returns the
        existing event (graph-behaviour.md 2.3; behind ``transaction_id_dedupe``)."""
        cal = self.calendar(mailbox)
        if (
            isinstance(body, dict)
            and isinstance(body.get("transactionId"), str)
            and self.switches.transaction_id_dedupe
        ):
            existing_id = cal.by_transaction.get(body["transactionId"])
            if existing_id and existing_id in cal.events:
                return cal.events[existing_id], False
        now = self.clock.now()
        event = Event(
            id=new_event_id(),
            mailbox=cal.mailbox,
            ical_uid=new_ical_uid(now),
            type="singleInstance",
            start=now,
            end=now,
            created=now,
            modified=now,
            organizer=mailbox.address(),
        )
        payload.apply(event, body, self.directory, creating=True)
        cal.add(event)
        self._propagate(event, previous_attendees=[])
        return event, True

    # -- update -----------------------------------------------------------------------------
    def update(
        self, mailbox: Mailbox, event_id: str, body: Any, if_match: str | None = None
    ) -> Event:
        cal = self.calendar(mailbox)
        resolved = cal.resolve(event_id)
        if resolved is None:
            raise not_found()
        event, original = resolved
        if if_match is not None and if_match.strip() not in ("*", event.etag, event.change_key):
            raise GraphError(
                412,
                "ErrorIrresolvableConflict",
                "The send or update operation could not be performed because the change key "
                "passed in the request does not match the current change key for the item.",
            )
        now = self.clock.now()
        if original is not None:
            event = self._materialise_exception(cal, event, original, body)
        else:
            before_attendees = [dict(a) for a in event.attendees]
            snapshot = replace(event)
            touched = payload.apply(
                event, body, self.directory, creating=False, occurrence=event.type == "exception"
            )
            if event.type == "exception":
                self._check_boundary(cal, event)
            if event.type == "seriesMaster" and (
                {"start", "end", "recurrence"} & touched
                and (
                    snapshot.start != event.start
                    or snapshot.end != event.end
                    or snapshot.recurrence != event.recurrence
                )
            ):
                self._prune_series(cal, snapshot, event)
            cal.touch(event, now)
            if event.is_organizer:
                master = self._master_of(cal, event)
                self._propagate(master, previous_attendees=before_attendees)
            return event
        master = self._master_of(cal, event)
        if master.is_organizer:
            self._propagate(master, previous_attendees=list(master.attendees))
        return event

    def _prune_series(self, cal: Calendar, before: Event, master: Event) -> None:
        """[INF] Rescheduling a series (new time or pattern) drops its exceptions and
        cancellations (Outlook warns "changes to individual occurrences will be lost"); a new
        range alone (e.g. an earlier end for "this and following") keeps those still in it."""
        assert master.recurrence is not None
        same_pattern = (
            before.recurrence is not None
            and before.start == master.start
            and before.end == master.end
            and before.recurrence.as_graph()["pattern"] == master.recurrence.as_graph()["pattern"]
        )
        originals = set(master.exceptions) | master.cancelled_occurrences
        keep: set[datetime] = set()
        if same_pattern and originals:
            horizon = max(originals) + timedelta(seconds=1)
            keep = set(occurrence_starts(master, horizon)) & originals
        for orig in list(master.exceptions):
            if orig not in keep:
                cal.remove(master.exceptions.pop(orig))
        master.cancelled_occurrences &= keep

    def _master_of(self, cal: Calendar, event: Event) -> Event:
        if event.type == "exception" and event.series_master_id:
            return cal.events.get(event.series_master_id, event)
        return event

    def _materialise_exception(
        self, cal: Calendar, master: Event, original: datetime, body: Any
    ) -> Event:
        """PATCH on an occurrence id turns it into an ``exception`` item (event.md)."""
        now = self.clock.now()
        exc = replace(
            master,
            id=new_event_id(),
            change_key=new_change_key(),
            type="exception",
            start=original,
            end=original + master.duration,
            created=now,
            modified=now,
            recurrence=None,
            series_master_id=master.id,
            original_start=original,
            transaction_id=None,
            ext_props={},
            cancelled_occurrences=set(),
            exceptions={},
            attendees=[dict(a) for a in master.attendees],
            categories=list(master.categories),
        )
        payload.apply(exc, body, self.directory, creating=False, occurrence=True)
        self._check_boundary(cal, exc)
        master.exceptions[original] = exc.id
        cal.add(exc)
        cal.touch(master, now)
        return exc

    def _check_boundary(self, cal: Calendar, exc: Event) -> None:
        """ErrorOccurrenceCrossingBoundary (event-update.md): an occurrence may not move onto
        or before the day of the previous occurrence, nor onto or after the day of the next."""
        master = cal.events.get(exc.series_master_id or "")
        if master is None or exc.original_start is None:
            return
        zone = resolve_zone(master.start_tz)
        starts = occurrence_starts(master, exc.original_start + timedelta(days=3660))
        try:
            pos = starts.index(exc.original_start)
        except ValueError:
            return
        day = exc.start.astimezone(zone).date()
        prev_day = starts[pos - 1].astimezone(zone).date() if pos > 0 else None
        next_day = starts[pos + 1].astimezone(zone).date() if pos + 1 < len(starts) else None
        if (prev_day is not None and day <= prev_day) or (next_day is not None and day >= next_day):
            raise GraphError(
                400,
                "ErrorOccurrenceCrossingBoundary",
                "Modified occurrence is crossing or overlapping adjacent occurrence.",
            )

    # -- delete / cancel --------------------------------------------------------------------
    def delete(self, mailbox: Mailbox, event_id: str) -> None:
        """DELETE: the organizer's delete cancels the meeting for everyone (event-delete.md);
        an attendee's or room's delete removes only that copy and the organizer's tracking
        shows Declined [OBS lab notes]."""
        cal = self.calendar(mailbox)
        resolved = cal.resolve(event_id)
        if resolved is None:
            raise not_found()
        event, original = resolved
        if event.is_organizer:
            self._organizer_cancel(cal, event, original)
        else:
            self._attendee_leaves(cal, event, original)

    def cancel(self, mailbox: Mailbox, event_id: str) -> None:
        """POST /cancel: organizer only (event-cancel.md), else 400."""
        cal = self.calendar(mailbox)
        resolved = cal.resolve(event_id)
        if resolved is None:
            raise not_found()
        event, original = resolved
        if not event.is_organizer:
            raise GraphError(400, "ErrorAccessDenied", NOT_ORGANIZER)
        self._organizer_cancel(cal, event, original)

    def _cancel_occurrence(
        self, cal: Calendar, event: Event, original: datetime | None
    ) -> tuple[Event, datetime] | None:
        """Cancel one occurrence of a series (an exception or an occurrence given by its
        original start) in ``cal``; the master and that start, or None for a single event."""
        if original is None and event.type != "exception":
            return None
        master = self._master_of(cal, event)
        orig = original if original is not None else event.original_start
        assert orig is not None
        if event.type == "exception":
            cal.remove(event.id)
        master.cancelled_occurrences.add(orig)
        cal.touch(master, self.clock.now())
        return master, orig

    def _organizer_cancel(self, cal: Calendar, event: Event, original: datetime | None) -> None:
        cancelled = self._cancel_occurrence(cal, event, original)
        if cancelled is not None:
            master, _ = cancelled
            self._propagate(master, previous_attendees=list(master.attendees))
            return
        cal.remove(event.id)
        self._propagate_cancel(event)

    def _attendee_leaves(self, cal: Calendar, event: Event, original: datetime | None) -> None:
        cancelled = self._cancel_occurrence(cal, event, original)
        if cancelled is not None:
            master, orig = cancelled
            self._track_occurrence(master, orig, cal.mailbox, "declined")
            return
        cal.remove(event.id)
        self._set_tracking(event, cal.mailbox, "declined")

    def _track_occurrence(
        self, copy_master: Event, original: datetime, attendee: str, response: str
    ) -> None:
        """[INF] An answer for one occurrence shows on the organizer's instance of that date,
        which becomes an exception carrying the tracking (graph-behaviour.md 2.7: "the organizer
        sees Declined for that date")."""
        org_mbx = self.directory.find(copy_master.organizer_mailbox or "")
        if org_mbx is None:
            return
        org_cal = self.calendar(org_mbx)
        org = org_cal.find_by_ical(copy_master.ical_uid)
        if org is None or org.type != "seriesMaster" or original in org.cancelled_occurrences:
            return
        exc = org_cal.events.get(org.exceptions.get(original, ""))
        if exc is None:
            exc = self._materialise_exception(org_cal, org, original, {})
        now = self.clock.now()
        for att in exc.attendees:
            if att["emailAddress"]["address"].lower() == attendee:
                att["status"] = {"response": response, "time": fmt_response_time(now)}
                org_cal.touch(exc, now)
                return

    # -- responses --------------------------------------------------------------------------
    def respond(self, mailbox: Mailbox, event_id: str, action: str, body: Any) -> None:
        """POST /accept, /tentativelyAccept, /decline (event-accept.md, event-decline.md)."""
        cal = self.calendar(mailbox)
        resolved = cal.resolve(event_id)
        if resolved is None:
            raise not_found()
        event, original = resolved
        body = body if isinstance(body, dict) else {}
        send = body.get("sendResponse", True)
        if not isinstance(send, bool):
            raise GraphError(400, "ErrorInvalidRequest", "sendResponse must be true or false")
        if event.is_organizer:
            raise GraphError(
                400,
                "ErrorInvalidRequest",
                "Your request can't be completed. You can't respond to a meeting you organized.",
            )
        if action == "decline":
            if body.get("proposedNewTime") is not None and (
                not send or not event.allow_new_time_proposals
            ):
                raise GraphError(
                    400,
                    "ErrorInvalidRequest",
                    "proposedNewTime requires sendResponse true and a meeting that allows new "
                    "time proposals.",
                )
            self._attendee_leaves(cal, event, original)
            return
        response = "accepted" if action == "accept" else "tentativelyAccepted"
        if original is not None:
            return  # per-occurrence answers are not tracked further by the simulator
        now = self.clock.now()
        event.response = response
        event.response_time = now
        event.show_as = "busy" if response == "accepted" else "tentative"
        cal.touch(event, now)
        self._set_tracking(event, cal.mailbox, response)

    def _set_tracking(self, copy: Event, attendee: str, response: str) -> None:
        """Reflect an attendee's answer in the organizer copy's ``attendees[].status``."""
        if not copy.organizer_mailbox:
            return
        org_mbx = self.directory.find(copy.organizer_mailbox)
        if org_mbx is None:
            return
        org_cal = self.calendar(org_mbx)
        org = org_cal.find_by_ical(copy.ical_uid)
        if org is None:
            return
        now = self.clock.now()
        for att in org.attendees:
            if att["emailAddress"]["address"].lower() == attendee:
                if att["status"]["response"] != response:
                    att["status"] = {"response": response, "time": fmt_response_time(now)}
                    org_cal.touch(org, now)
                return

    # -- propagation ------------------------------------------------------------------------
    def _attendee_mailboxes(self, event: Event) -> list[Mailbox]:
        out = []
        for att in event.attendees:
            mbx = self.directory.find(att["emailAddress"]["address"])
            if mbx is not None and mbx.email.lower() != event.mailbox:
                out.append(mbx)
        return out

    def _propagate(self, org: Event, previous_attendees: list[dict[str, Any]]) -> None:
        """Send the organizer copy's state to every attendee copy; rooms go through the RBA."""
        if not org.is_organizer or org.type == "exception":
            return
        current = {m.email.lower() for m in self._attendee_mailboxes(org)}
        for mbx in self._attendee_mailboxes(org):
            if mbx.is_room:
                self.rba.enqueue(RbaJob(mbx.email.lower(), org.mailbox, org.ical_uid, "deliver"))
            else:
                self.copies.sync_copy(self.calendar(mbx), org, None)
        for att in previous_attendees:
            gone = self.directory.find(att["emailAddress"]["address"])
            if gone is None or gone.email.lower() in current or gone.email.lower() == org.mailbox:
                continue
            if gone.is_room:
                self.rba.enqueue(RbaJob(gone.email.lower(), org.mailbox, org.ical_uid, "deliver"))
            else:
                self.copies.cancel_copy(self.calendar(gone), org.ical_uid, remove=False)

    def _propagate_cancel(self, org: Event) -> None:
        for mbx in self._attendee_mailboxes(org):
            if mbx.is_room:
                self.rba.enqueue(RbaJob(mbx.email.lower(), org.mailbox, org.ical_uid, "deliver"))
            else:
                self.copies.cancel_copy(self.calendar(mbx), org.ical_uid, remove=False)
