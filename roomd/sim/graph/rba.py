"""The room's Resource Booking Assistant (RBA): it answers meeting requests for a room "shortly
after" the organizer's write, by the room's CalendarProcessing policy.

Sources: Set-CalendarProcessing.md (AutomateProcessing AutoAccept "free = accept; busy = decline",
AutoUpdate tentative, None; AllowConflicts, ConflictPercentageAllowed, MaximumConflictInstances,
BookingWindowInDays, EnforceSchedulingHorizon, MaximumDurationInMinutes, AllowRecurringMeetings),
user-post-events.md ("the server accepts or rejects the meeting request based on the free/busy
schedule of the resource"), contrib #3877 [OBS] (the copy shows the real subject first and the
organizer's name seconds later), graph-behaviour.md 2.1, 2.7, 6. Requests are handled in
arrival order; each stage waits ``rba_delay`` seconds of event-loop time, or for ``run_rba()``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from roomd.sim.graph import recurrence as rec_mod
from roomd.sim.graph.clock import SimClock
from roomd.sim.graph.copies import CopyKeeper
from roomd.sim.graph.directory import Directory, Mailbox
from roomd.sim.graph.events import Calendar, Event, series_instances
from roomd.sim.graph.settings import Switches
from roomd.sim.graph.wire import fmt_response_time
from roomd.sim.graph.zones import resolve_zone

if TYPE_CHECKING:
    from roomd.sim.graph.exchange import Exchange


@dataclass(frozen=True)
class RbaJob:
    room: str  # lower-case room address
    organizer: str  # lower-case organizer mailbox address
    ical_uid: str
    stage: str  # "deliver" | "process"


class BookingAssistant:
    def __init__(
        self,
        directory: Directory,
        clock: SimClock,
        switches: Switches,
        exchange: Exchange,
        copies: CopyKeeper,
    ) -> None:
        self.directory = directory
        self.clock = clock
        self.switches = switches
        self.exchange = exchange
        self.copies = copies
        self.rba_queue: list[RbaJob] = []
        self._rba_handle: asyncio.TimerHandle | None = None
        self.rba_log: list[tuple[str, str, str]] = []  # (room, iCalUId, outcome)

    def enqueue(self, job: RbaJob) -> None:
        if job not in self.rba_queue:
            self.rba_queue.append(job)
        self.schedule()

    def schedule(self) -> None:
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
        self.schedule()

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
        room_cal = self.exchange.calendar(room)
        org = self.exchange.calendar(org_mbx).find_by_ical(job.ical_uid)
        invited = org is not None and any(
            a["emailAddress"]["address"].lower() == job.room for a in org.attendees
        )
        if org is None or not invited or org.is_cancelled:
            remove = (
                self.switches.organizer_cancel == "remove" or room.processing.RemoveCanceledMeetings
            )
            self.copies.cancel_copy(room_cal, job.ical_uid, remove=remove)
            self.rba_log.append((job.room, job.ical_uid, "cancelled"))
            return
        assert org is not None
        cp = room.processing
        if job.stage == "deliver" and self.switches.rba_two_step:
            # The request lands first with its real subject (contrib #3877 [OBS]).
            existing = room_cal.find_by_ical(org.ical_uid)
            self.copies.sync_copy(
                room_cal,
                org,
                room,
                rewrite=False,
                response=existing.response if existing else "none",
            )
            self.enqueue(replace(job, stage="process"))
            return
        if cp.AutomateProcessing == "None":
            self.copies.sync_copy(room_cal, org, room, rewrite=False)
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
        self.copies.sync_copy(
            room_cal,
            org,
            room,
            response=response,
            rewrite=cp.AutomateProcessing == "AutoAccept",
            declined=declined | self._uninvited(org, job.room),
            truncate_to=truncate_to,
        )
        self._track_room(org, job.room, response)
        self.rba_log.append((job.room, job.ical_uid, response))

    def _uninvited(self, org: Event, room: str) -> set[datetime]:
        """The occurrences of the organizer's series whose exception no longer lists the room:
        an update of an occurrence's attendees "sends a meeting update to only the attendees
        that have changed" (event-update.md), so a room taken off one occurrence gets that
        occurrence's cancellation and holds it no more, as it holds only meetings it is invited
        to (user-post-events.md, "Setting the location in an event")."""
        if org.type != "seriesMaster" or not org.exceptions:
            return set()
        cal = self.exchange.calendar(self.exchange.mailbox(org.mailbox))
        out = set()
        for original, exc_id in org.exceptions.items():
            exc = cal.events.get(exc_id)
            if exc is not None and not any(
                a["emailAddress"]["address"].lower() == room for a in exc.attendees
            ):
                out.add(original)
        return out

    def _track_room(self, org: Event, room: str, response: str) -> None:
        now = self.clock.now()
        for att in org.attendees:
            if att["emailAddress"]["address"].lower() == room:
                if att["status"]["response"] != response:
                    att["status"] = {"response": response, "time": fmt_response_time(now)}
                    self.exchange.calendar(self.exchange.mailbox(org.mailbox)).touch(org, now)
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
                self.exchange.calendar(self.exchange.mailbox(org.mailbox)),
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
