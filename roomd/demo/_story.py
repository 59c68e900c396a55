"""The story ``roomd demo`` tells: every promise of the product, one step at a time.

Each step is something a person does on one side (an Outlook user through Graph, a Hybrid member
or administrator in the Hybrid app), then a wait, polling the other side, until the change shows
up there, verified field by field. How long that took is the propagation time the timeline and
the summary show. A step whose other side is still wrong when the wait times out fails the demo:
the demo is an end-to-end check of the real daemon as much as a show.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from roomd.demo._report import Report, Row
from roomd.demo._stage import DaemonStopped, Stage

STEP_TIMEOUT_S = 15.0
"""How long a step waits for the other side. Normally a second or two: Outlook changes wait for
roomd's poll (1 s in the demo), Hybrid changes arrive by webhook."""
PROBE_EVERY_S = 0.05
HOUR = timedelta(hours=1)

DOMAIN = "contoso.com"
ADELE = f"adelev@{DOMAIN}"
ALEX = f"alexw@{DOMAIN}"
MEGAN = f"meganb@{DOMAIN}"
LYNNE = f"lynner@{DOMAIN}"
NESTOR = f"nestorw@{DOMAIN}"
PAT = "pat@fabrikam.com"  # a Hybrid member with no mailbox in the tenant
ROOM_4A = f"room-4a@{DOMAIN}"
ROOM_4B = f"room-4b@{DOMAIN}"  # requires approval
BOARDROOM = f"boardroom@{DOMAIN}"  # requires check-in
HARBOUR = f"harbour@{DOMAIN}"

OUTLOOK_TO_HYBRID = "Outlook -> Hybrid"
HYBRID_TO_OUTLOOK = "Hybrid -> Outlook"
ROUND_TRIP = "Outlook -> Hybrid -> Outlook"

STORY = (
    # (title, direction, the Story method that plays it)
    ("An Outlook booking reaches Hybrid, real title", OUTLOOK_TO_HYBRID, "outlook_booking"),
    ("A Hybrid booking reaches every calendar", HYBRID_TO_OUTLOOK, "hybrid_booking"),
    ("An Outlook weekly series: one Hybrid series", OUTLOOK_TO_HYBRID, "series"),
    ("One occurrence moved in Outlook", OUTLOOK_TO_HYBRID, "occurrence_moved"),
    ("One occurrence cancelled in Outlook", OUTLOOK_TO_HYBRID, "occurrence_cancelled"),
    ("Deleted in Outlook, kept in Hybrid as canceled", OUTLOOK_TO_HYBRID, "deletion"),
    ("Two bookings in a room that needs approval", ROUND_TRIP, "pending_approval"),
    ("Approved in Hybrid: the room accepts", HYBRID_TO_OUTLOOK, "approval"),
    ("Rejected in Hybrid: the room declines", HYBRID_TO_OUTLOOK, "rejection"),
    ("A visitor with no mailbox books in Hybrid", HYBRID_TO_OUTLOOK, "no_mailbox"),
    ("A double booking refused, with the reason", ROUND_TRIP, "double_booking"),
    ("A booking in a room that needs check-in", HYBRID_TO_OUTLOOK, "checkin_booking"),
    ("No-show: the room released, the meeting kept", HYBRID_TO_OUTLOOK, "no_show"),
)


@dataclass(frozen=True)
class Seen:
    """What a probe of the other side found: ``ok`` once the change is there and right."""

    ok: bool
    text: str
    value: Any = None


def yes(text: str, value: Any = None) -> Seen:
    return Seen(True, text, value)


def no(text: str) -> Seen:
    return Seen(False, text)


Probe = Callable[[], Seen | Awaitable[Seen]]


class StepFailed(Exception):
    """The other side did not show what the step expects; the message says what and where."""


class Story:
    def __init__(self, stage: Stage, report: Report, timeout: float = STEP_TIMEOUT_S) -> None:
        self.stage = stage
        self.outlook = stage.outlook
        self.app = stage.hybrid_app
        self.report = report
        self.timeout = timeout
        self._acted_at = time.monotonic()
        self._took = 0.0
        self._member_names = {stage.member_id(p.email): p.display_name for p in stage.tenant.people}
        # tomorrow, midnight UTC: every meeting of the story is tomorrow (or weekly from then)
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        self._day = today + timedelta(days=1)
        self.rows = [Row(i + 1, title, way) for i, (title, way, _) in enumerate(STORY)]
        self.failure: str | None = None
        # what later steps need from earlier ones
        self._budget: dict[str, Any] = {}
        self._series: dict[str, Any] = {}
        self._occurrences: list[dict[str, Any]] = []
        self._approvals: dict[str, tuple[str, str]] = {}  # who -> (iCalUId, Hybrid booking id)
        self._board: dict[str, Any] = {}

    # --- running ----------------------------------------------------------------------------
    async def run(self) -> bool:
        """Every step in order; False at the first that fails (the rest are not run)."""
        for row, (_, _, method) in zip(self.rows, STORY, strict=True):
            self.report.step(row.number, row.title, row.direction)
            try:
                await getattr(self, method)()
            except DaemonStopped:
                row.result = "stopped"
                raise
            except Exception as exc:  # a person's action refused, or the other side wrong
                if isinstance(exc, StepFailed):
                    why = str(exc)
                else:
                    why = f"{type(exc).__name__}: {exc}"
                    self.report.note(f"FAILED: {why}")
                row.result = "FAILED"
                self.failure = f"step {row.number} ({row.title}) failed: {why}"
                return False
            row.result, row.took = "ok", self._took
        return True

    def acted(self, side: str, text: str) -> None:
        self._acted_at = time.monotonic()
        self.report.acted(side, text)

    async def expect(self, side: str, what: str, probe: Probe) -> Any:
        """Poll ``side`` until ``probe`` says the change is there and right; its value."""
        last = "nothing yet"
        while True:
            self.stage.check_running()
            seen = probe()
            if inspect.isawaitable(seen):
                seen = await seen
            assert isinstance(seen, Seen)
            elapsed = time.monotonic() - self._acted_at
            if seen.ok:
                self.report.seen(side, elapsed, seen.text)
                self._took = elapsed
                return seen.value
            last = seen.text
            if elapsed > self.timeout:
                message = f"{side}: {what}: not within {self.timeout:g} s (last seen: {last})"
                self.report.failed(side, elapsed, f"{what}: not within {self.timeout:g} s")
                self.report.note(f"last seen: {last}")
                raise StepFailed(message)
            self.report.waiting(side, f"waiting for {what}", elapsed)
            await asyncio.sleep(PROBE_EVERY_S)

    # --- the steps --------------------------------------------------------------------------
    async def outlook_booking(self) -> None:
        start, end = self.at(9), self.at(10)
        meeting = await self.outlook.book(ADELE, ROOM_4A, "Budget review", start, attendees=(ALEX,))
        self._budget = meeting
        self.acted(
            "Outlook",
            f'Adele Vance books Room 4A, {span(start, end)}: "Budget review", inviting Alex Wilber',
        )
        uid = meeting["iCalUId"]

        def in_hybrid() -> Seen:
            return self._one_booking(
                ROOM_4A,
                uid,
                summary="Budget review",
                member=ADELE,
                guests=(ALEX,),
                start=start,
                end=end,
            )

        self._budget["booking"] = await self.expect("Hybrid", "the Hybrid booking", in_hybrid)

        def room_copy_hides_title() -> Seen:
            copy = self.outlook.copy_of(ROOM_4A, uid)
            if copy is None:
                return no("Room 4A has no copy of the meeting")
            if copy["subject"] == "Budget review":
                return no('Room 4A\'s copy still reads "Budget review"')
            return yes(
                f'Room 4A\'s own copy reads "{copy["subject"]}": Exchange hides the title '
                "from the room; roomd read it from Adele's copy"
            )

        await self.expect("Outlook", "the room's copy without the title", room_copy_hides_title)

    async def hybrid_booking(self) -> None:
        start, end = self.at(14), self.at(15)
        self.app.create_booking(
            self.stage.room_id(HARBOUR),
            start,
            end,
            member=MEGAN,
            summary="Design review",
            members=[self.stage.member_id(LYNNE)],
        )
        self.acted(
            "Hybrid",
            f'Megan Bowen books Harbour, {span(start, end)}: "Design review", with Lynne Robbins',
        )
        meeting = await self.expect(
            "Outlook",
            "Megan's meeting",
            lambda: self._organizer_meeting(MEGAN, "Design review", start, (HARBOUR, LYNNE)),
        )
        uid = meeting["iCalUId"]
        await self.expect("Outlook", "Lynne's copy", lambda: self._copy(LYNNE, uid, "Lynne's"))
        await self.expect(
            "Outlook", "the room's copy", lambda: self._copy(HARBOUR, uid, "Harbour's")
        )

    async def series(self) -> None:
        start, end = self.at(11), self.at(11, 30)
        master = await self.outlook.book(
            ALEX, ROOM_4A, "Weekly sync", start, minutes=30, attendees=(NESTOR,), weekly_count=6
        )
        self._series = {"master": master}
        self.acted(
            "Outlook",
            f"Alex Wilber books Room 4A every {start:%A} {start:%H:%M}-{end:%H:%M} UTC, 6 times, "
            'from tomorrow: "Weekly sync"',
        )
        uid = master["iCalUId"]

        def one_series() -> Seen:
            found = [
                b
                for b in self.stage.bookings(ROOM_4A)
                if b.get("reference") == uid and not b.get("parent")
            ]
            if not found:
                return no("no booking yet")
            if len(found) > 1:
                return no(f"{len(found)} bookings for one series")
            b = found[0]
            rrule = (b.get("recurrence") or {}).get("rrule") or ""
            problems = [
                *_differences(b, summary="Weekly sync", canceled=False),
                *([] if hybrid_time(b["start"]) == start else [f"starts {b['start']}"]),
                *([] if "FREQ=WEEKLY" in rrule and "COUNT=6" in rrule else [f"rrule {rrule!r}"]),
            ]
            if problems:
                return no("; ".join(problems))
            return yes(f"one recurring booking, {rrule} (not 6 separate bookings)", b)

        self._series["booking"] = await self.expect("Hybrid", "one recurring booking", one_series)

    async def occurrence_moved(self) -> None:
        master = self._series["master"]
        self._occurrences = await self.outlook.instances(
            ALEX, master["id"], self._day, self._day + timedelta(days=60)
        )
        second = self._occurrences[1]
        was = graph_time(second["start"])
        moved_to = was + timedelta(hours=2)
        await self.outlook.move(ALEX, second["id"], moved_to, minutes=30)
        self.acted(
            "Outlook",
            f"Alex Wilber moves the {was:%a %d %b} occurrence from {was:%H:%M} to {moved_to:%H:%M}",
        )
        series_id = self._series["booking"]["_id"]

        def exception() -> Seen:
            for child in self._children(series_id):
                if hybrid_time(child["start"]) == moved_to and not child["canceled"]:
                    end = hybrid_time(child["end"])
                    return yes(f"an exception to the series, {span(moved_to, end)}")
            return no("no exception at the new time")

        await self.expect("Hybrid", "the moved occurrence", exception)
        await self.expect("Hybrid", "the series still live", lambda: self._series_live(series_id))

    async def occurrence_cancelled(self) -> None:
        third = self._occurrences[2]
        when = graph_time(third["start"])
        await self.outlook.cancel(ALEX, third["id"])
        self.acted("Outlook", f"Alex Wilber cancels the {when:%a %d %b} occurrence")
        series_id = self._series["booking"]["_id"]

        def left_out() -> Seen:
            series = self.app.booking(series_id)
            exdates = (series.get("recurrence") or {}).get("exdates") or []
            if any(hybrid_time({"dateTime": x}) == when for x in exdates):
                return yes(f"{when:%a %d %b} left out of the series (an exdate)")
            for child in self._children(series_id):
                if child["canceled"] and _original_start(child) == when:
                    return yes(f"{when:%a %d %b} canceled as an exception")
            return no(f"{when:%a %d %b} still in the series")

        await self.expect("Hybrid", "the cancelled occurrence", left_out)
        await self.expect("Hybrid", "the series still live", lambda: self._series_live(series_id))

    async def deletion(self) -> None:
        meeting = self._budget
        await self.outlook.delete(ADELE, meeting["id"])
        self.acted("Outlook", 'Adele Vance deletes "Budget review" from her calendar')
        uid = meeting["iCalUId"]

        def kept_canceled() -> Seen:
            found = [b for b in self.stage.bookings(ROOM_4A) if b.get("reference") == uid]
            if len(found) != 1:
                return no(f"{len(found)} bookings for the meeting")
            if not found[0]["canceled"]:
                return no("the booking is still live")
            return yes('the booking "Budget review" is still there, canceled (never deleted)')

        await self.expect("Hybrid", "the booking canceled", kept_canceled)
        await self.expect(
            "roomd", "the reason in the audit", self._audit(ROOM_4A, f"o:{uid}", "deleted")
        )

    async def pending_approval(self) -> None:
        lynne_at, nestor_at = self.at(10), self.at(16)
        lynne = await self.outlook.book(LYNNE, ROOM_4B, "Offsite planning", lynne_at)
        nestor = await self.outlook.book(NESTOR, ROOM_4B, "Team party", nestor_at)
        self.acted(
            "Outlook",
            f"Lynne Robbins books Room 4B (needs approval), {span(lynne_at, lynne_at + HOUR)}: "
            '"Offsite planning"',
        )
        self.report.note(
            f'and Nestor Wilke books it, {span(nestor_at, nestor_at + HOUR)}: "Team party"'
        )
        uids = {LYNNE: lynne["iCalUId"], NESTOR: nestor["iCalUId"]}

        def pending() -> Seen:
            found = {}
            for who, uid in uids.items():
                match = [b for b in self.stage.bookings(ROOM_4B) if b.get("reference") == uid]
                if len(match) != 1:
                    return no(f"{len(match)} bookings for {self.stage.name(who)}'s meeting")
                if not match[0]["tentative"] or match[0]["canceled"]:
                    return no(f"{self.stage.name(who)}'s booking is not pending")
                found[who] = match[0]["_id"]
            return yes("both bookings pending approval", found)

        ids = await self.expect("Hybrid", "two pending bookings", pending)
        self._approvals = {who: (uids[who], ids[who]) for who in uids}

        def tentative() -> Seen:
            for who, uid in uids.items():
                answer = self.outlook.room_answer(who, uid, ROOM_4B)
                if answer != "tentativelyAccepted":
                    return no(f"Room 4B answered {self.stage.name(who)}: {answer}")
            return yes('Room 4B answers "tentative" to both: approval pending')

        await self.expect("Outlook", "the room's tentative answer", tentative)

    async def approval(self) -> None:
        uid, booking_id = self._approvals[LYNNE]
        self.app.approve(booking_id)
        self.acted("Hybrid", "An administrator approves Lynne's booking")

        def accepted() -> Seen:
            answer = self.outlook.room_answer(LYNNE, uid, ROOM_4B)
            if answer != "accepted":
                return no(f"Room 4B's answer in Lynne's calendar: {answer}")
            return yes("Room 4B accepts Lynne's meeting")

        await self.expect("Outlook", "the room accepting", accepted)

    async def rejection(self) -> None:
        uid, booking_id = self._approvals[NESTOR]
        self.app.reject(booking_id)
        self.acted("Hybrid", "An administrator rejects Nestor's booking")

        def declined() -> Seen:
            answer = self.outlook.room_answer(NESTOR, uid, ROOM_4B)
            if answer != "declined":
                return no(f"Room 4B's answer in Nestor's calendar: {answer}")
            return yes("Room 4B declines Nestor's meeting (his calendar shows the decline)")

        await self.expect("Outlook", "the room declining", declined)

        def stays_canceled() -> Seen:
            found = [b for b in self.stage.bookings(ROOM_4B) if b.get("reference") == uid]
            if len(found) != 1 or not found[0]["canceled"]:
                return no(f"{len(found)} bookings, canceled: {[b['canceled'] for b in found]}")
            return yes("the booking stays canceled (rejected), once")

        await self.expect("Hybrid", "the rejected booking", stays_canceled)

    async def no_mailbox(self) -> None:
        start, end = self.at(15), self.at(16)
        self.app.create_booking(
            self.stage.room_id(ROOM_4A), start, end, member=PAT, summary="Supplier visit"
        )
        self.acted(
            "Hybrid",
            f"Pat Visitor (fabrikam.com, no mailbox here) books Room 4A, {span(start, end)}: "
            '"Supplier visit"',
        )

        async def reported() -> Seen:
            problem = ((await self.stage.readyz())["rooms"][ROOM_4A] or {}).get("problem")
            if not problem or PAT not in problem:
                return no(f"/readyz: Room 4A problem: {problem}")
            return yes(
                "not written to Outlook: nobody can organize it (no graph.service_mailbox "
                "configured, and never the room itself); /readyz and roomd status say so"
            )

        await self.expect("roomd", "the problem reported", reported)
        events = [e for e in self.outlook.events(ROOM_4A) if graph_time(e["start"]) == start]
        if events:
            raise StepFailed(f"Outlook: Room 4A has a meeting at {start:%H:%M} nobody organized")

    async def double_booking(self) -> None:
        start, end = self.at(15), self.at(16)
        meeting = await self.outlook.book(ADELE, ROOM_4A, "Sales kickoff", start)
        self.acted(
            "Outlook",
            f'Adele Vance books Room 4A, {span(start, end)}: "Sales kickoff" (Exchange sees '
            "the room free; Hybrid holds it for Pat)",
        )
        uid = meeting["iCalUId"]

        def declined() -> Seen:
            answer = self.outlook.room_answer(ADELE, uid, ROOM_4A)
            if answer != "declined":
                return no(f"Room 4A's answer in Adele's calendar: {answer}")
            return yes("Room 4A declines Adele's meeting, saying the slot is taken in Hybrid")

        await self.expect("Outlook", "the room declining", declined)
        await self.expect("roomd", "the reason", self._audit(ROOM_4A, f"o:{uid}", "409"))

        def only_pat() -> Seen:
            live = [
                b["summary"]
                for b in self.stage.bookings(ROOM_4A)
                if not b["canceled"] and hybrid_time(b["start"]) == start
            ]
            if live != ["Supplier visit"]:
                return no(f"live bookings at {start:%H:%M}: {live}")
            return yes("Pat's booking is the only one at that time")

        await self.expect("Hybrid", "no double booking", only_pat)

    async def checkin_booking(self) -> None:
        now = self.app.now()
        start = now.replace(second=0, microsecond=0) + timedelta(minutes=5)
        end = start + timedelta(minutes=30)
        booking = self.app.create_booking(
            self.stage.room_id(BOARDROOM),
            start,
            end,
            member=MEGAN,
            summary="Board prep",
            members=[self.stage.member_id(NESTOR)],
        )
        self.acted(
            "Hybrid",
            f'Megan Bowen books the Boardroom (needs check-in), {span(start, end)}: "Board prep", '
            "with Nestor Wilke",
        )
        meeting = await self.expect(
            "Outlook",
            "Megan's meeting",
            lambda: self._organizer_meeting(MEGAN, "Board prep", start, (BOARDROOM, NESTOR)),
        )
        uid = meeting["iCalUId"]
        await self.expect("Outlook", "Nestor's copy", lambda: self._copy(NESTOR, uid, "Nestor's"))
        await self.expect(
            "Outlook", "the room's copy", lambda: self._copy(BOARDROOM, uid, "the Boardroom's")
        )
        self._board = {"uid": uid, "booking": booking}

    async def no_show(self) -> None:
        uid, booking = self._board["uid"], self._board["booking"]
        self.app.advance_clock(30 * 60)
        released = self.app.run_noshow_sweep()
        if [b["_id"] for b in released] != [booking["_id"]]:
            raise StepFailed(f"Hybrid: the no-show sweep released {released!r}")
        self.acted(
            "Hybrid",
            "30 minutes later nobody has checked in: Hybrid cancels the booking (no-show)",
        )

        def released_room() -> Seen:
            if self.outlook.copy_of(BOARDROOM, uid) is not None:
                return no("the Boardroom's calendar still holds the meeting")
            answer = self.outlook.room_answer(MEGAN, uid, BOARDROOM)
            if answer != "declined":
                return no(f"the Boardroom's answer in Megan's calendar: {answer}")
            return yes("the Boardroom declines: its calendar is free again (Megan's shows it)")

        await self.expect("Outlook", "the room released", released_room)

        def meeting_kept() -> Seen:
            for who in (MEGAN, NESTOR):
                copy = self.outlook.copy_of(who, uid)
                if copy is None or copy.get("isCancelled"):
                    return no(f"{self.stage.name(who)}'s meeting is gone")
            return yes("Megan's and Nestor's meetings stay: they can still meet elsewhere")

        await self.expect("Outlook", "the meeting kept", meeting_kept)

    # --- looking at the other side ----------------------------------------------------------
    def at(self, hour: int, minute: int = 0) -> datetime:
        return self._day + timedelta(hours=hour, minutes=minute)

    def _one_booking(
        self,
        room: str,
        uid: str,
        *,
        summary: str,
        member: str,
        guests: tuple[str, ...],
        start: datetime,
        end: datetime,
    ) -> Seen:
        found = [b for b in self.stage.bookings(room) if b.get("reference") == uid]
        if not found:
            return no("no booking yet")
        if len(found) > 1:
            return no(f"{len(found)} bookings for one meeting")
        b = found[0]
        problems = _differences(
            b, summary=summary, member=self.stage.member_id(member), canceled=False
        )
        if (hybrid_time(b["start"]), hybrid_time(b["end"])) != (start, end):
            problems.append(f"at {b['start']['dateTime']}-{b['end']['dateTime']}")
        missing = [g for g in guests if self.stage.member_id(g) not in b["members"]]
        problems += [f"{self.stage.name(g)} not a member" for g in missing]
        if problems:
            return no("; ".join(problems))
        people = ", ".join(self._member_names.get(m, m) for m in b["members"])
        return yes(
            f'booking "{b["summary"]}" for {self._member_names.get(b["member"])}, '
            f"{span(start, end)}, with {people}",
            b,
        )

    def _organizer_meeting(
        self, organizer: str, subject: str, start: datetime, invited: tuple[str, ...]
    ) -> Seen:
        found = [
            e
            for e in self.outlook.events(organizer)
            if e["subject"] == subject and not e.get("isCancelled") and e.get("isOrganizer")
        ]
        if not found:
            return no(f"no meeting {subject!r} in {self.stage.name(organizer)}'s calendar")
        if len(found) > 1:
            return no(f"{len(found)} meetings {subject!r}")
        meeting = found[0]
        addresses = {a["emailAddress"]["address"].lower() for a in meeting["attendees"]}
        problems = [f"{self.stage.name(x)} not invited" for x in invited if x not in addresses]
        if graph_time(meeting["start"]) != start:
            problems.append(f"starts {meeting['start']['dateTime']}")
        if problems:
            return no("; ".join(problems))
        names = " and ".join(self.stage.name(x) for x in invited)
        return yes(
            f'{self.stage.name(organizer)}\'s calendar: "{subject}", organized by '
            f"{self.stage.name(organizer).split()[0]}, {names} invited",
            meeting,
        )

    def _copy(self, mailbox: str, uid: str, whose: str) -> Seen:
        copy = self.outlook.copy_of(mailbox, uid)
        if copy is None or copy.get("isCancelled"):
            return no(f"no copy in {self.stage.name(mailbox)}'s calendar")
        return yes(f"{whose} calendar: the same meeting (same iCalUId)")

    def _children(self, series_id: str) -> list[dict[str, Any]]:
        return [b for b in self.stage.bookings(ROOM_4A) if b.get("parent") == series_id]

    def _series_live(self, series_id: str) -> Seen:
        before, now = self._series["booking"], self.app.booking(series_id)
        if now["canceled"]:
            return no("the series was canceled")
        if (
            now["start"] != before["start"]
            or now["recurrence"]["rrule"] != (before["recurrence"]["rrule"])
        ):
            return no(f"the series changed: {now['start']} {now['recurrence']}")
        return yes("the rest of the series unchanged")

    def _audit(self, room: str, booking: str, word: str) -> Probe:
        async def probe() -> Seen:
            lines = await self.stage.audit(room, booking)
            for line in lines:
                if word in line:
                    return yes(f"audit: {line}")
            return no(f"audit: {lines}")

        return probe


def span(start: datetime, end: datetime) -> str:
    return f"{start:%a %d %b %H:%M}-{end:%H:%M} UTC"


def hybrid_time(value: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(str(value["dateTime"]).replace("Z", "+00:00")).astimezone(UTC)


def graph_time(value: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(str(value["dateTime"])[:19]).replace(tzinfo=UTC)


def _original_start(booking: dict[str, Any]) -> datetime | None:
    value = booking.get("originalStart")
    if value is None:
        return None
    return hybrid_time(value if isinstance(value, dict) else {"dateTime": value})


def _differences(booking: dict[str, Any], **expected: Any) -> list[str]:
    return [
        f"{key} is {booking.get(key)!r}, expected {want!r}"
        for key, want in expected.items()
        if booking.get(key) != want
    ]
