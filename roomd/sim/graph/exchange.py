"""Exchange's meeting behaviour across mailboxes: organizer copies, attendee copies, room copies
made by the Resource Booking Assistant (RBA), cancellations and responses.

Sources (graph-behaviour.md 2.1, 2.6, 2.7, 6): user-post-events.md ("Setting the location in an
event": the server accepts or rejects for the resource and creates the room's event; reschedules
update it), event-cancel.md (organizer only, 202), event-delete.md (organizer delete cancels the
meeting for attendees), event-decline.md / event-accept.md, Set-CalendarProcessing.md (RBA policy),
OfficeDocs-Support "calendar shows organizer name" (subject rewrite), and the third-party lab notes
(rooms remove their copy on cancel; a deleted/declined room copy flips the organizer's tracking to
Declined). Every copy shares the organizer copy's ``iCalUId`` and has its own ``id``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from roomd.sim.graph import payload
from roomd.sim.graph import recurrence as rec_mod
from roomd.sim.graph.clock import SimClock
from roomd.sim.graph.directory import Directory, Mailbox
from roomd.sim.graph.events import (
    Calendar,
    Event,
    new_change_key,
    new_event_id,
    new_ical_uid,
    occurrence_starts,
    series_instances,
)
from roomd.sim.graph.settings import Switches
from roomd.sim.graph.wire import GraphError, fmt_response_time
from roomd.sim.graph.zones import resolve_zone

NOT_ORGANIZER = "Your request can't be completed. You need to be an organizer to cancel a meeting."


@dataclass(frozen=True)
class RbaJob:
    room: str  # lower-case room address
    organizer: str  # lower-case organizer mailbox address
    ical_uid: str
    stage: str  # "deliver" | "process"


def not_found() -> GraphError:
    return GraphError(404, "ErrorItemNotFound", "The specified object was not found in the store.")


class Exchange:
    """All calendars of the tenant and the meeting logic between them."""

    def __init__(self, directory: Directory, clock: SimClock, switches: Switches) -> None:
        self.directory = directory
        self.clock = clock
        self.switches = switches
        self.calendars: dict[str, Calendar] = {}
        self.rba_queue: list[RbaJob] = []
        self._rba_handle: asyncio.TimerHandle | None = None
        self.rba_log: list[tuple[str, str, str]] = []  # (room, iCalUId, outcome)
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
                # [INF] rescheduling a series drops its exceptions and cancellations (Outlook
                # warns "changes to individual occurrences will be lost").
                for exc_id in list(event.exceptions.values()):
                    cal.remove(exc_id)
                event.exceptions.clear()
                event.cancelled_occurrences.clear()
            cal.touch(event, now)
            if event.is_organizer:
                master = self._master_of(cal, event)
                self._propagate(master, previous_attendees=before_attendees)
            return event
        master = self._master_of(cal, event)
        if master.is_organizer:
            self._propagate(master, previous_attendees=list(master.attendees))
        return event

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

    def _organizer_cancel(self, cal: Calendar, event: Event, original: datetime | None) -> None:
        now = self.clock.now()
        if original is not None or event.type == "exception":
            master = self._master_of(cal, event)
            orig = original if original is not None else event.original_start
            assert orig is not None
            if event.type == "exception":
                cal.remove(event.id)
            master.cancelled_occurrences.add(orig)
            cal.touch(master, now)
            self._propagate(master, previous_attendees=list(master.attendees))
            return
        cal.remove(event.id)
        self._propagate_cancel(event)

    def _attendee_leaves(self, cal: Calendar, event: Event, original: datetime | None) -> None:
        now = self.clock.now()
        if original is not None or event.type == "exception":
            master = self._master_of(cal, event)
            orig = original if original is not None else event.original_start
            assert orig is not None
            if event.type == "exception":
                cal.remove(event.id)
            master.cancelled_occurrences.add(orig)
            cal.touch(master, now)
            return
        cal.remove(event.id)
        self._set_tracking(event, cal.mailbox, "declined")

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
                self.enqueue(RbaJob(mbx.email.lower(), org.mailbox, org.ical_uid, "deliver"))
            else:
                self._sync_copy(self.calendar(mbx), org, None)
        for att in previous_attendees:
            gone = self.directory.find(att["emailAddress"]["address"])
            if gone is None or gone.email.lower() in current or gone.email.lower() == org.mailbox:
                continue
            if gone.is_room:
                self.enqueue(RbaJob(gone.email.lower(), org.mailbox, org.ical_uid, "deliver"))
            else:
                self._cancel_copy(self.calendar(gone), org.ical_uid, remove=False)

    def _propagate_cancel(self, org: Event) -> None:
        for mbx in self._attendee_mailboxes(org):
            if mbx.is_room:
                self.enqueue(RbaJob(mbx.email.lower(), org.mailbox, org.ical_uid, "deliver"))
            else:
                self._cancel_copy(self.calendar(mbx), org.ical_uid, remove=False)

    def _cancel_copy(self, cal: Calendar, ical_uid: str, remove: bool) -> None:
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

    def _sync_copy(
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

    # -- the Resource Booking Assistant -----------------------------------------------------
    def enqueue(self, job: RbaJob) -> None:
        if job not in self.rba_queue:
            self.rba_queue.append(job)
        self._schedule_rba()

    def _schedule_rba(self) -> None:
        delay = self.switches.rba_delay
        if delay is None or self._rba_handle is not None or not self.rba_queue:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._rba_handle = loop.call_later(delay, self._rba_tick)

    def _rba_tick(self) -> None:
        self._rba_handle = None
        self.run_rba_step()
        self._schedule_rba()

    def cancel_rba_timer(self) -> None:
        if self._rba_handle is not None:
            self._rba_handle.cancel()
            self._rba_handle = None

    def run_rba_step(self) -> int:
        """Process the jobs queued now (one stage); returns how many ran."""
        jobs, self.rba_queue = self.rba_queue, []
        for job in jobs:
            self._process(job)
        return len(jobs)

    def run_rba(self) -> int:
        """Process every pending RBA job, including the stages they enqueue."""
        total = 0
        for _ in range(100):
            ran = self.run_rba_step()
            if not ran:
                break
            total += ran
        return total

    def _process(self, job: RbaJob) -> None:
        found_room = self.directory.find(job.room)
        org_mbx = self.directory.find(job.organizer)
        if found_room is None or org_mbx is None:
            return
        room: Mailbox = found_room
        room_cal = self.calendar(room)
        org = self.calendar(org_mbx).find_by_ical(job.ical_uid)
        invited = org is not None and any(
            a["emailAddress"]["address"].lower() == job.room for a in org.attendees
        )
        if org is None or not invited or org.is_cancelled:
            remove = (
                self.switches.organizer_cancel == "remove" or room.processing.RemoveCanceledMeetings
            )
            self._cancel_copy(room_cal, job.ical_uid, remove=remove)
            self.rba_log.append((job.room, job.ical_uid, "cancelled"))
            return
        assert org is not None
        cp = room.processing
        if job.stage == "deliver" and self.switches.rba_two_step:
            # The request lands first with its real subject (contrib #3877 [OBS]).
            existing = room_cal.find_by_ical(org.ical_uid)
            self._sync_copy(
                room_cal,
                org,
                room,
                rewrite=False,
                response=existing.response if existing else "none",
            )
            self.enqueue(replace(job, stage="process"))
            return
        if cp.AutomateProcessing == "None":
            self._sync_copy(room_cal, org, room, rewrite=False)
            self.rba_log.append((job.room, job.ical_uid, "none"))
            return
        outcome, declined, truncate_to = self._evaluate(room, room_cal, org)
        if outcome == "decline":
            copy = room_cal.find_by_ical(org.ical_uid)
            if copy is not None:
                room_cal.remove(copy.id)
            self._track_room(org, job.room, "declined")
            self.rba_log.append((job.room, job.ical_uid, "declined"))
            return
        response = "accepted" if cp.AutomateProcessing == "AutoAccept" else "tentativelyAccepted"
        self._sync_copy(
            room_cal,
            org,
            room,
            response=response,
            rewrite=cp.AutomateProcessing == "AutoAccept",
            declined=declined,
            truncate_to=truncate_to,
        )
        self._track_room(org, job.room, response)
        self.rba_log.append((job.room, job.ical_uid, response))

    def _track_room(self, org: Event, room: str, response: str) -> None:
        now = self.clock.now()
        for att in org.attendees:
            if att["emailAddress"]["address"].lower() == room:
                if att["status"]["response"] != response:
                    att["status"] = {"response": response, "time": fmt_response_time(now)}
                    self.calendar(self.mailbox(org.mailbox)).touch(org, now)
                return

    def _evaluate(
        self, room: Mailbox, room_cal: Calendar, org: Event
    ) -> tuple[str, set[datetime], Any]:
        """The RBA's decision under Set-CalendarProcessing: (outcome, declined occurrences,
        truncate-to date). AutoUpdate never declines; AutoAccept declines on conflict, past
        the booking window or beyond MaximumDurationInMinutes."""
        cp = room.processing
        if cp.AutomateProcessing != "AutoAccept":
            return "tentative", set(), None
        now = self.clock.now()
        horizon = now + timedelta(days=cp.BookingWindowInDays)
        if org.duration > timedelta(minutes=cp.MaximumDurationInMinutes):
            return "decline", set(), None
        copy = room_cal.find_by_ical(org.ical_uid)
        already_accepted = copy is not None and copy.response == "accepted"
        if org.type != "seriesMaster":
            if org.start > horizon:
                return "decline", set(), None
            if not cp.AllowConflicts and self._busy(room_cal, org.ical_uid, [(org.start, org.end)]):
                return "decline", set(), None
            return "accept", set(), None
        if not cp.AllowRecurringMeetings:
            return "decline", set(), None
        assert org.recurrence is not None
        truncate_to = None
        last = rec_mod.last_date(org.recurrence)
        zone = resolve_zone(org.start_tz)
        if last is None or last > horizon.astimezone(zone).date():
            if org.start > horizon:
                return "decline", set(), None
            if cp.EnforceSchedulingHorizon:
                return "decline", set(), None
            truncate_to = horizon.astimezone(zone).date()
        until = horizon if truncate_to is not None else None
        occurrences = [
            (i.original_start or i.start, i.start, i.end)
            for i in series_instances(
                self.calendar(self.mailbox(org.mailbox)),
                org,
                org.start - timedelta(days=1),
                until or (org.start + timedelta(days=366 * 30)),
            )
        ]
        future = [o for o in occurrences if o[2] > now]
        conflicts = {orig for orig, s, e in future if self._busy(room_cal, org.ical_uid, [(s, e)])}
        if conflicts and not cp.AllowConflicts:
            share = 100 * len(conflicts) / max(1, len(future))
            if not already_accepted and (
                len(conflicts) > cp.MaximumConflictInstances or share > cp.ConflictPercentageAllowed
            ):
                return "decline", set(), None
            return "accept", conflicts, truncate_to
        return "accept", set(), truncate_to

    def _busy(self, cal: Calendar, ical_uid: str, spans: list[tuple[datetime, datetime]]) -> bool:
        lo = min(s for s, _ in spans)
        hi = max(e for _, e in spans)
        for inst in cal.instances(lo - timedelta(seconds=1), hi + timedelta(seconds=1)):
            ev = inst.event
            if ev.ical_uid == ical_uid or ev.is_cancelled or ev.show_as == "free":
                continue
            if not ev.is_organizer and ev.response not in ("accepted", "tentativelyAccepted"):
                continue  # a request still waiting for the RBA holds nothing yet
            for s, e in spans:
                if inst.start < e and inst.end > s:
                    return True
        return False


def room_subject(delete_subject: bool, add_organizer: bool, subject: str, organizer: str) -> str:
    """The room copy's subject (Set-CalendarProcessing AddOrganizerToSubject/DeleteSubject;
    OfficeDocs-Support "calendar shows organizer name"): both true -> the organizer's name."""
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
