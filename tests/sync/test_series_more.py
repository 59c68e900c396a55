"""Recurring series both ways, end to end, continued (issue "The sync engine, part 2: recurring
series and their exceptions, both ways, across DST"): an Outlook series split by "this and
following", whole-series edits on either side, old series, daylight-saving changes, a room that
declines some occurrences, Hybrid refusing one occurrence, a no-show of one occurrence, an
approval room, a series edited on both sides between two rounds, roomd SIGKILLed while it writes
a year-long series, and the operator's commands. Both simulators and a real ``roomd run``
process, as in test_series.py."""

from __future__ import annotations

import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from support.daemon import DaemonProcess
from support.sync_world import (
    ADELE,
    ALEX,
    APPROVAL_ROOM,
    APPROVAL_ROOM_ID,
    CHECKIN_ROOM,
    CHECKIN_ROOM_ID,
    MEGAN,
    PAT,
    ROOM,
    ROOM_ID,
    SyncWorld,
    at,
    hybrid_time,
    utc_of,
    wait_for,
)

from roomd.store import Link
from roomd.sync.decide import LinkIndex, Plan
from roomd.sync.model import HybridState, OutlookState, RoomContext
from roomd.sync.series import (
    Holder,
    HybridSeries,
    OutlookSeries,
    Shape,
    plan_series,
    shape_fingerprint,
)

Slots = list[tuple[datetime, datetime]]
LONDON = "Europe/London"
PARIS = "Europe/Paris"
NEW_YORK = "America/New_York"


def local(wall: datetime, zone: str) -> datetime:
    """A wall-clock time in ``zone`` as UTC."""
    return wall.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)


def local_weekly(wall: datetime, zone: str, weeks: int, minutes: int = 60) -> Slots:
    """A weekly series on ``zone``'s wall clock (the same local time every week), in UTC."""
    out = []
    for n in range(weeks):
        start = local(wall + timedelta(weeks=n), zone)
        out.append((start, start + timedelta(minutes=minutes)))
    return out


# --- what each side holds -----------------------------------------------------------------------


def series_bookings(world: SyncWorld, resource_id: str = ROOM_ID) -> list[dict[str, Any]]:
    """The room's Hybrid series (not their exception children), oldest first."""
    return [b for b in world.bookings(resource_id) if b.get("recurrence") and not b.get("parent")]


def children(world: SyncWorld, series_id: str) -> list[dict[str, Any]]:
    return [b for b in world.bookings() if b.get("parent") == series_id] + [
        b
        for b in world.sims.call(lambda: world.hybrid.bookings(None))
        if b.get("parent") == series_id and b.get("resourceId") != ROOM_ID
    ]


def hybrid_slots(world: SyncWorld, lo: datetime, hi: datetime, resource_id: str = ROOM_ID) -> Slots:
    """Every slot the Hybrid room holds in [lo, hi): each occurrence of each live series (less
    exdates and occurrences an exception child replaces), each live child and one-off."""

    def go() -> Slots:
        store = world.sims.hybrid.store
        out: Slots = []
        for booking in store.bookings.values():
            if booking.canceled or booking.resource_id != resource_id:
                continue
            out.extend((i.start, i.end) for i in store.intervals(booking, lo, hi))
        return sorted(out)

    return world.sims.call(go)


def room_slots(world: SyncWorld, lo: datetime, hi: datetime, mailbox: str = ROOM) -> Slots:
    """Every slot the room's calendar holds in [lo, hi) (what calendarView shows)."""

    def go() -> Slots:
        sim = world.sims.graph
        calendar = sim.exchange.calendar(sim.directory.find(mailbox))
        return sorted(
            (i.start, i.end) for i in calendar.instances(lo, hi) if not i.event.is_cancelled
        )

    return world.sims.call(go)


def weekly(first: datetime, weeks: int, minutes: int = 60, skip: tuple[int, ...] = ()) -> Slots:
    return [
        (first + timedelta(weeks=n), first + timedelta(weeks=n, minutes=minutes))
        for n in range(weeks)
        if n not in skip
    ]


def settle(world: SyncWorld, seconds: float = 3) -> None:
    """Let a few more rounds run (poll interval 1 s): whatever they would do again, they do."""
    time.sleep(seconds)


def organizer_master(
    world: SyncWorld, organizer: str, subject: str | None = None
) -> dict[str, Any]:
    return wait_for(
        lambda: next(
            (
                e
                for e in world.events(organizer)
                if e.get("type") == "seriesMaster"
                and not e.get("isCancelled")
                and (subject is None or e.get("subject") == subject)
            ),
            None,
        ),
        f"{organizer}'s series {subject or ''}",
    )


# --- 3. "this and following" in Outlook ---------------------------------------------------------


def test_this_and_following_in_outlook_ends_the_hybrid_series_and_starts_a_new_one(
    world: SyncWorld,
) -> None:
    world.start()
    first = at(9)
    master = world.book_series(ADELE, first, subject="Weekly sync", count=10)
    lo, hi = first - timedelta(days=1), first + timedelta(weeks=11)
    wait_for(lambda: hybrid_slots(world, lo, hi) == weekly(first, 10), "the Hybrid series")
    old = series_bookings(world)[0]

    # Outlook's "this and following" from the sixth occurrence: the series ends the week
    # before, a new series (a new meeting) takes over from the split; roomd is stopped
    # meanwhile, so that one round reads both (the new series first, as delta may list it)
    world.pause()
    split = first + timedelta(weeks=5)
    world.patch(
        ADELE,
        master["id"],
        recurrence={
            "pattern": master["recurrence"]["pattern"],
            "range": {
                "type": "endDate",
                "startDate": first.strftime("%Y-%m-%d"),
                "endDate": (split - timedelta(weeks=1)).strftime("%Y-%m-%d"),
                "recurrenceTimeZone": "UTC",
            },
        },
    )
    following = world.book_series(ADELE, split, subject="Weekly sync", count=5)
    time.sleep(1)  # the room's booking assistant answers both
    world.resume()

    def split_in_hybrid() -> bool:
        series = series_bookings(world)
        return len(series) == 2 and all(not s["canceled"] for s in series)

    wait_for(split_in_hybrid, "the Hybrid series ended and a new one")
    settle(world)
    old_now = world.booking(old["_id"])
    assert not old_now["canceled"]
    assert "UNTIL=" in old_now["recurrence"]["rrule"], old_now["recurrence"]
    new = next(s for s in series_bookings(world) if s["_id"] != old["_id"])
    assert new["reference"] == following["iCalUId"]
    assert hybrid_time(new["start"]) == split
    # nothing before the split cancelled, nothing after it doubled, on either side
    assert hybrid_slots(world, lo, hi) == weekly(first, 10)
    assert room_slots(world, lo, hi) == weekly(first, 10)
    assert not [a for a in world.audit(f"o:{following['iCalUId']}") if "decline" in a]


def test_a_split_series_frees_its_later_occurrences_before_the_new_series_is_booked() -> None:
    """The round that reads both halves of a split plans the old series' new end before the new
    series, whatever order the delta listed them in: Hybrid refuses (409) a series over
    occurrences another series still holds, and roomd would then decline the new series."""
    first = datetime(2027, 1, 4, 9, tzinfo=UTC)
    split = first + timedelta(weeks=5)
    rule = "FREQ=WEEKLY;BYDAY=MO;WKST=MO"
    old = Shape(f"{rule};COUNT=10", "UTC", first, first + timedelta(hours=1), "Weekly sync")
    link = Link(
        link_id="o:OLD",
        hybrid_id="h1",
        room_event_id="m-old",
        series_master_id="m-old",
        ical_uid="OLD",
        outlook_fingerprint=shape_fingerprint(old),
        hybrid_fingerprint=shape_fingerprint(old),
    )
    window = (first - timedelta(days=90), first + timedelta(days=365))

    def seen(master: str, uid: str, shape: Shape) -> OutlookSeries:
        return OutlookSeries(
            master,
            OutlookState.LIVE,
            ical_uid=uid,
            shape=shape,
            window=window,
            organizer=ADELE,
            organizer_master_id=f"org-{master}",
            member_id="member-adele",
        )

    ended = replace(old, rrule=f"{rule};UNTIL=20270201T235959Z")
    following = Shape(f"{rule};COUNT=5", "UTC", split, split + timedelta(hours=1), "Weekly sync")
    room = RoomContext(mailbox=ROOM, hybrid_id=ROOM_ID, name="Room 4A")
    out = Plan()
    plan_series(
        room,
        LinkIndex([link]),
        [seen("m-new", "NEW", following), seen("m-old", "OLD", ended)],  # the new one first
        [],
        out,
    )
    assert [op.op for op in out.ops] == ["hybrid.update", "hybrid.create"]
    assert out.ops[0].payload["link_id"] == "o:OLD"


# --- 4. the whole series edited on one side -----------------------------------------------------


def test_a_series_retimed_retitled_and_cancelled_in_outlook_is_followed_in_hybrid(
    world: SyncWorld,
) -> None:
    world.start()
    first = at(9)
    master = world.book_series(ADELE, first, subject="Weekly sync", count=6)
    series = wait_for(lambda: series_bookings(world), "the Hybrid series")[0]
    lo, hi = first - timedelta(days=1), first + timedelta(weeks=7)

    later = first + timedelta(hours=2)
    world.patch(
        ADELE,
        master["id"],
        subject="Weekly sync (moved)",
        start={"dateTime": later.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
        end={
            "dateTime": (later + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%S"),
            "timeZone": "UTC",
        },
    )
    wait_for(
        lambda: hybrid_slots(world, lo, hi) == weekly(later, 6, minutes=30),
        "the Hybrid series retimed",
    )
    assert world.booking(series["_id"])["summary"] == "Weekly sync (moved)"
    assert [s["_id"] for s in series_bookings(world)] == [series["_id"]]

    world.cancel(ADELE, master["id"])
    wait_for(lambda: world.booking(series["_id"])["canceled"], "the Hybrid series cancelled")
    settle(world, 2)
    assert hybrid_slots(world, lo, hi) == []
    assert [s["_id"] for s in series_bookings(world)] == [series["_id"]]  # kept, as canceled


def test_a_series_deleted_in_outlook_is_kept_in_hybrid_as_canceled(world: SyncWorld) -> None:
    world.start()
    first = at(10)
    master = world.book_series(ADELE, first, subject="Standup", count=4)
    series = wait_for(lambda: series_bookings(world), "the Hybrid series")[0]
    world.delete(ADELE, master["id"])
    wait_for(lambda: world.booking(series["_id"])["canceled"], "the Hybrid series cancelled")
    settle(world, 2)
    assert [s["_id"] for s in series_bookings(world)] == [series["_id"]]
    assert world.booking(series["_id"])["canceled"]


def test_a_hybrid_series_retimed_then_cancelled_is_followed_in_outlook(world: SyncWorld) -> None:
    world.start()
    first = at(14)
    booking = world.hybrid_book(
        ADELE,
        first,
        summary="Team lunch",
        members=[world.member_id(ALEX)],
        rrule="FREQ=WEEKLY;COUNT=6",
    )
    master = organizer_master(world, ADELE, "Team lunch")
    lo, hi = first - timedelta(days=1), first + timedelta(weeks=7)
    wait_for(lambda: room_slots(world, lo, hi) == weekly(first, 6), "the room's series")

    later = first + timedelta(hours=1)
    world.hybrid_call(
        lambda: world.hybrid.update_booking(
            booking["_id"], start=later, end=later + timedelta(minutes=45), summary="Long lunch"
        )
    )
    wait_for(
        lambda: room_slots(world, lo, hi) == weekly(later, 6, minutes=45),
        "the room's series retimed",
    )
    for mailbox in (ADELE, ALEX):
        copy = wait_for(lambda m=mailbox: world.copy_of(m, master["iCalUId"]), "a copy")
        assert utc_of(copy["start"]) == later, mailbox
        assert copy["subject"] == "Long lunch", mailbox

    world.hybrid_call(lambda: world.hybrid.cancel_booking(booking["_id"]))
    wait_for(lambda: room_slots(world, lo, hi) == [], "the room's series cancelled")
    wait_for(
        lambda: (world.copy_of(ALEX, master["iCalUId"]) or {}).get("isCancelled"),
        "the guest's series cancelled",
    )
    settle(world, 2)
    assert [b["_id"] for b in series_bookings(world)] == [booking["_id"]]
    assert len([e for e in world.events(ADELE) if e.get("type") == "seriesMaster"]) <= 1


# --- 5. a Hybrid series with exceptions -----------------------------------------------------------


def occurrences_of(
    world: SyncWorld, mailbox: str, ical_uid: str, lo: datetime, hi: datetime
) -> Slots:
    """The live occurrences of ``mailbox``'s copy of a series, through Graph's /instances."""
    copy = world.copy_of(mailbox, ical_uid)
    if copy is None or copy.get("isCancelled"):
        return []
    return sorted(
        (utc_of(i["start"]), utc_of(i["end"]))
        for i in all_instances(world, mailbox, copy["id"], lo, hi)
        if not i.get("isCancelled")
    )


def all_instances(
    world: SyncWorld, mailbox: str, event_id: str, lo: datetime, hi: datetime
) -> list[dict[str, Any]]:
    """GET /instances over [lo, hi), every page (Graph pages them, @odata.nextLink)."""
    http, auth = world._http, world._auth()
    r = http.get(
        f"/users/{mailbox}/events/{event_id}/instances",
        params={"startDateTime": lo.isoformat(), "endDateTime": hi.isoformat()},
        headers=auth,
    )
    found: list[dict[str, Any]] = []
    while True:
        assert r.status_code == 200, r.text
        page = r.json()
        found += page["value"]
        if not page.get("@odata.nextLink"):
            return found
        r = http.get(page["@odata.nextLink"], headers=auth)


def add_exception(
    world: SyncWorld, series: dict[str, Any], original: datetime, start: datetime, minutes: int = 60
) -> dict[str, Any]:
    """The member moves one occurrence in the Hybrid app: an exception child."""
    return world.hybrid_call(
        lambda: world.hybrid.create_booking(
            series["resourceId"],
            start,
            start + timedelta(minutes=minutes),
            member=series["member"],
            summary=series["summary"],
            parent=series["_id"],
            originalStart=original.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        )
    )


def test_a_hybrid_series_with_a_moved_and_a_cancelled_occurrence_has_them_in_outlook(
    world: SyncWorld,
) -> None:
    first = at(14)
    lo, hi = first - timedelta(days=1), first + timedelta(weeks=7)
    booking = world.hybrid_book(
        ADELE,
        first,
        summary="Team lunch",
        members=[world.member_id(ALEX)],
        rrule="FREQ=WEEKLY;COUNT=6",
        exdates=[first + timedelta(weeks=2)],
    )
    moved_to = first + timedelta(weeks=1, hours=2)
    add_exception(world, booking, first + timedelta(weeks=1), moved_to)
    world.start()
    master = organizer_master(world, ADELE, "Team lunch")
    expected = sorted([*weekly(first, 6, skip=(1, 2)), (moved_to, moved_to + timedelta(hours=1))])
    for mailbox in (ADELE, ROOM, ALEX):
        wait_for(
            lambda m=mailbox: occurrences_of(world, m, master["iCalUId"], lo, hi) == expected,
            f"{mailbox}'s series with one occurrence moved and one cancelled",
        )

    # later: another occurrence cancelled and another moved in Hybrid
    add_exception(world, booking, first + timedelta(weeks=4), first + timedelta(weeks=4, hours=-3))
    world.hybrid_call(
        lambda: world.hybrid.update_booking(
            booking["_id"],
            recurrence={
                "rrule": "FREQ=WEEKLY;COUNT=6",
                "exdates": [
                    (first + timedelta(weeks=w)).strftime("%Y-%m-%dT%H:%M:%S.000Z") for w in (2, 3)
                ],
            },
        )
    )
    earlier = first + timedelta(weeks=4, hours=-3)
    expected = sorted(
        [
            *weekly(first, 6, skip=(1, 2, 3, 4)),
            (moved_to, moved_to + timedelta(hours=1)),
            (earlier, earlier + timedelta(hours=1)),
        ]
    )
    for mailbox in (ADELE, ROOM, ALEX):
        wait_for(
            lambda m=mailbox: occurrences_of(world, m, master["iCalUId"], lo, hi) == expected,
            f"{mailbox}'s series with the later exceptions",
        )

    # the copies come back through delta: nothing is created, moved or cancelled again
    before = world.bookings()
    settle(world)
    assert world.bookings() == before
    assert hybrid_slots(world, lo, hi) == expected
    assert len([e for e in world.events(ADELE) if e.get("type") == "seriesMaster"]) == 1


# --- 6. a series older than a year -------------------------------------------------------------


def test_a_series_begun_over_a_year_ago_syncs_its_occurrences_in_the_window_once(
    world: SyncWorld,
) -> None:
    # an Outlook series booked in the room's zone 60 weeks ago, still running for ten weeks
    wall = at(9, days=1 - 7 * 60).replace(tzinfo=None)
    first = local(wall, LONDON)
    world.start()
    master = world.book_series(ADELE, wall, subject="Old weekly", count=70, zone=LONDON)
    booking = wait_for(lambda: series_bookings(world), "the Hybrid series")[0]
    assert hybrid_time(booking["start"]) == first
    assert "COUNT=70" in booking["recurrence"]["rrule"]
    assert booking["reference"] == master["iCalUId"]
    now = datetime.now(UTC)
    lo, hi = now - timedelta(days=80), now + timedelta(weeks=11)
    wanted = [s for s in local_weekly(wall, LONDON, 70) if lo <= s[0] < hi]
    assert len(wanted) > 10
    wait_for(lambda: hybrid_slots(world, lo, hi) == wanted, "the occurrences in the window")
    assert room_slots(world, lo, hi) == wanted

    # a Hybrid series begun as long ago
    old = world.hybrid_book(
        ALEX, at(15, days=1 - 7 * 60), summary="Old lunch", rrule="FREQ=WEEKLY;COUNT=65"
    )
    other = organizer_master(world, ALEX, "Old lunch")
    wait_for(lambda: world.copy_of(ROOM, other["iCalUId"]), "the room's copy of the old series")
    wait_for(
        lambda: room_slots(world, lo, hi) == hybrid_slots(world, lo, hi),
        "the room holding what Hybrid holds",
    )

    # several rounds later: nothing was made, changed or written again
    daemon = world.daemon
    assert daemon is not None
    settle(world, 2)
    bookings, events = world.bookings(), world.events(ADELE) + world.events(ALEX)
    mark = daemon.mark()
    settle(world, 4)
    daemon.mark()
    rounds = [x for x in daemon.lines[mark:] if x.get("event") == "room_round"]
    assert len(rounds) >= 3
    assert world.bookings() == bookings
    assert world.events(ADELE) + world.events(ALEX) == events
    assert all(not r.get("written") and not r.get("planned") for r in rounds), rounds
    assert [b["_id"] for b in series_bookings(world)] == [booking["_id"], old["_id"]]


def test_a_hybrid_series_without_an_end_is_not_cancelled_because_the_room_declines_it(
    world: SyncWorld,
) -> None:
    world.start()
    booking = world.hybrid_book(ALEX, at(15), summary="Every Monday", rrule="FREQ=WEEKLY")
    master = organizer_master(world, ALEX, "Every Monday")
    wait_for(
        lambda: room_response(world, ALEX, master["iCalUId"], ROOM) == "declined",
        "the room's answer (past its booking window)",
    )
    settle(world)
    assert not world.booking(booking["_id"])["canceled"]
    # the operator learns why the room shows no booking, and what to change
    detail = httpx.get(world.daemon.url("/readyz")).json()  # type: ignore[union-attr]
    assert "BookingWindowInDays" in (detail["rooms"][ROOM]["problem"] or "")


# --- 7. daylight-saving time, both ways --------------------------------------------------------

HARBOUR = "harbour@contoso.com"
HARBOUR_ID = "64f0a1b2c3d4e5f6a7b8c904"
WINDOWS = {PARIS: "Romance Standard Time", NEW_YORK: "Eastern Standard Time"}


def wall_times(slots: Slots, zone: str) -> set[str]:
    return {s.astimezone(ZoneInfo(zone)).strftime("%H:%M") for s, _ in slots}


def utc_offsets(slots: Slots, zone: str) -> set[timedelta | None]:
    return {s.astimezone(ZoneInfo(zone)).utcoffset() for s, _ in slots}


def year_of_weeks(world: SyncWorld, rooms: tuple[str, ...]) -> tuple[datetime, datetime]:
    """A year of weekly occurrences from ten weeks ago holds both DST changes, past and ahead;
    the rooms take bookings that far ahead (Set-CalendarProcessing BookingWindowInDays)."""
    for room in rooms:
        world.sims.call(
            lambda r=room: world.sims.graph.control.set_calendar_processing(
                r, BookingWindowInDays=400
            )
        )
    now = datetime.now(UTC)
    return now - timedelta(days=85), now + timedelta(weeks=43)


def test_an_outlook_series_keeps_its_local_time_in_hybrid_across_both_dst_changes(
    world: SyncWorld,
) -> None:
    lo, hi = year_of_weeks(world, (ROOM, HARBOUR))
    world.start()
    for zone, room, resource, hour in (
        (PARIS, ROOM, ROOM_ID, 9),
        (NEW_YORK, HARBOUR, HARBOUR_ID, 9),
    ):
        wall = at(hour, days=1 - 70).replace(tzinfo=None)
        world.book_series(
            ADELE, wall, subject=f"Weekly in {zone}", count=52, zone=WINDOWS[zone], room=room
        )
        wanted = [s for s in local_weekly(wall, zone, 52) if lo <= s[0] < hi]
        assert utc_offsets(wanted, zone) == {  # both sides of both changes are in the window
            ZoneInfo(zone).utcoffset(datetime(2027, 1, 1)),
            ZoneInfo(zone).utcoffset(datetime(2027, 7, 1)),
        }
        wait_for(
            lambda r=resource, w=wanted: hybrid_slots(world, lo, hi, r) == w,
            f"the Hybrid series at {hour}:00 {zone} all year",
        )
        assert wall_times(hybrid_slots(world, lo, hi, resource), zone) == {f"{hour:02d}:00"}
        assert room_slots(world, lo, hi, room) == wanted
    settle(world, 2)
    assert len(series_bookings(world)) == 1
    assert len(series_bookings(world, HARBOUR_ID)) == 1


@pytest.mark.parametrize("configured", [True, False], ids=["time_zone", "zone-from-hybrid"])
def test_an_outlook_series_in_another_zone_than_the_rooms_holds_the_same_times_in_hybrid(
    world: SyncWorld, configured: bool
) -> None:
    """Hybrid evaluates a rule in the room's zone only: the series is booked there with its
    rule, and each week the two zones' clocks disagree gets an exception child at the
    organizer's instant. Without ``time_zone`` in the configuration, the room's zone is read
    from its Hybrid resource."""
    # a New York organizer's 09:00 weekly meeting in Room 4A (London): 14:00 in London, but
    # 13:00 in the weeks when one of the two has changed its clocks and the other not yet
    lo, hi = year_of_weeks(world, (ROOM,))
    if configured:
        daemon = world.start()
    else:
        config = world.sims.write_config(world.directory, poll_interval=1)
        config.write_text(re.sub(r'(?m)^time_zone = ".*"\n', "", config.read_text()))
        assert "time_zone" not in config.read_text()
        daemon = world.daemon = DaemonProcess(config).start()
    wall = at(9, days=1 - 70).replace(tzinfo=None)
    master = world.book_series(
        ADELE, wall, subject="From New York", count=52, zone=WINDOWS[NEW_YORK]
    )
    wanted = [s for s in local_weekly(wall, NEW_YORK, 52) if lo <= s[0] < hi]
    assert wall_times(wanted, LONDON) == {"13:00", "14:00"}
    wait_for(lambda: room_slots(world, lo, hi) == wanted, "the room's series")
    wait_for(lambda: hybrid_slots(world, lo, hi) == wanted, "every occurrence at its instant")
    series = series_bookings(world)
    assert len(series) == 1
    assert hybrid_time(series[0]["start"]) == wanted[0][0]
    shifted = [s for s in wanted if s[0].astimezone(ZoneInfo(LONDON)).hour == 13]
    assert len(children(world, series[0]["_id"])) == len(shifted)  # one per shifted week
    # the copies come back: nothing is written again, on either side
    settled(world)
    mark = daemon.mark()
    settle(world, 3)
    daemon.mark()
    rounds = [x for x in daemon.lines[mark:] if x.get("event") == "room_round"]
    assert len(rounds) >= 2
    assert all(not r.get("planned") and not r.get("written") for r in rounds), rounds
    assert hybrid_slots(world, lo, hi) == wanted
    assert room_slots(world, lo, hi) == wanted
    assert occurrences_of(world, ADELE, master["iCalUId"], lo, hi) == wanted
    assert [row for row in open_outbox(world) if row[1] == "dead"] == []


def test_a_hybrid_series_keeps_its_local_time_in_outlook_across_both_dst_changes(
    world: SyncWorld,
) -> None:
    lo, hi = year_of_weeks(world, (ROOM, HARBOUR))
    world.start()
    # Room 4A is in London: 08:00 there is 09:00 in Paris, summer and winter (the EU changes
    # clocks on the same days); Harbour is in New York
    cases = ((LONDON, PARIS, ROOM, ROOM_ID, 8, 9), (NEW_YORK, NEW_YORK, HARBOUR, HARBOUR_ID, 9, 9))
    for room_zone, zone, room, resource, hour, seen_hour in cases:
        wall = at(hour, days=1 - 70).replace(tzinfo=None)
        first = local(wall, room_zone)
        subject = f"Hybrid weekly in {room}"
        world.hybrid_book(
            ALEX, first, summary=subject, resource_id=resource, rrule="FREQ=WEEKLY;COUNT=52"
        )
        wanted = [s for s in local_weekly(wall, room_zone, 52) if lo <= s[0] < hi]
        assert hybrid_slots(world, lo, hi, resource) == wanted
        master = organizer_master(world, ALEX, subject)
        for mailbox in (ALEX, room):
            wait_for(
                lambda m=mailbox, w=wanted, u=master["iCalUId"]: (
                    occurrences_of(world, m, u, lo, hi) == w
                ),
                f"{mailbox}'s occurrences at {seen_hour}:00 {zone} all year",
            )
        assert wall_times(occurrences_of(world, ALEX, master["iCalUId"], lo, hi), zone) == {
            f"{seen_hour:02d}:00"
        }
    settle(world, 2)
    assert len([e for e in world.events(ALEX) if e.get("type") == "seriesMaster"]) == 2
    assert len(series_bookings(world)) == 1
    assert len(series_bookings(world, HARBOUR_ID)) == 1


# --- 8. the room declines some occurrences ------------------------------------------------------


def test_occurrences_the_room_declines_are_left_out_of_the_hybrid_series(world: SyncWorld) -> None:
    # the room takes a series with up to two conflicts, declining just those occurrences
    # (Set-CalendarProcessing MaximumConflictInstances / ConflictPercentageAllowed)
    world.sims.call(
        lambda: world.sims.graph.control.set_calendar_processing(
            ROOM, MaximumConflictInstances=2, ConflictPercentageAllowed=50
        )
    )
    world.start()
    first = at(9)
    lo, hi = first - timedelta(days=1), first + timedelta(weeks=7)
    taken = first + timedelta(weeks=2, minutes=30)
    one_off = world.hybrid_book(MEGAN, taken, summary="Already booked")
    wait_for(lambda: room_slots(world, lo, hi), "the one-off in the room's calendar")

    master = world.book_series(ADELE, first, subject="Weekly sync", count=6)
    wanted = sorted([*weekly(first, 6, skip=(2,)), (taken, taken + timedelta(hours=1))])
    wait_for(lambda: room_slots(world, lo, hi) == wanted, "the room declining one occurrence")
    series = wait_for(lambda: series_bookings(world), "the Hybrid series")[0]
    wait_for(lambda: hybrid_slots(world, lo, hi) == wanted, "the Hybrid series less that one")
    settle(world)
    exdates = world.booking(series["_id"])["recurrence"]["exdates"]
    assert [hybrid_time({"dateTime": x}) for x in exdates] == [first + timedelta(weeks=2)]
    assert not world.booking(series["_id"])["canceled"]
    assert not world.booking(one_off["_id"])["canceled"]
    assert hybrid_slots(world, lo, hi) == wanted
    assert occurrences_of(world, ADELE, master["iCalUId"], lo, hi) == weekly(first, 6)


# --- 9. Hybrid refuses one occurrence of an Outlook series ----------------------------------------


def room_answers(
    world: SyncWorld, organizer: str, master_id: str, lo: datetime, hi: datetime
) -> dict[datetime, str]:
    """The room's answer to each occurrence, as the organizer's copy shows it, by UTC start."""
    out = {}
    for inst in all_instances(world, organizer, master_id, lo, hi):
        for attendee in inst.get("attendees") or []:
            if attendee["emailAddress"]["address"].lower() == ROOM:
                out[utc_of(inst["start"])] = str(attendee["status"]["response"])
    return out


@pytest.mark.parametrize("crash", [False, True], ids=["", "killed-once-written"])
def test_an_occurrence_hybrid_refuses_is_declined_by_the_room_and_the_rest_syncs(
    world: SyncWorld, monkeypatch: pytest.MonkeyPatch, crash: bool
) -> None:
    daemon = world.start()
    first = at(9)
    lo, hi = first - timedelta(days=1), first + timedelta(weeks=7)
    # a one-off Outlook cannot show (its member has no mailbox and no graph.service_mailbox is
    # configured) holds the third occurrence's slot in Hybrid: the room looks free in Exchange
    clash = first + timedelta(weeks=2)
    held = world.hybrid_book(PAT, clash + timedelta(minutes=30), summary="Held in Hybrid")
    wait_for(
        lambda: httpx.get(daemon.url("/readyz")).json()["rooms"][ROOM].get("problem"),
        "roomd's problem with the one-off it cannot show",
    )

    if crash:
        world.pause()
    master = world.book_series(ADELE, first, subject="Weekly sync", count=6)
    uid = master["iCalUId"]
    if crash:  # roomd is SIGKILLed once the series less that occurrence has landed in Hybrid
        rba_idle(world)
        assert kill_while_writing(world, Tripwire(world, monkeypatch), (1,)) == [1]
        assert len(series_bookings(world)) == 1
        assert room_slots(world, lo, hi) == weekly(first, 6)  # not declined yet
        assert world.daemon is not None
        daemon = world.daemon
    series = wait_for(lambda: series_bookings(world), "the Hybrid series")[0]
    wait_for(
        lambda: room_slots(world, lo, hi) == weekly(first, 6, skip=(2,)),
        "the room declining the refused occurrence",
    )
    wait_for(
        lambda: room_answers(world, ADELE, master["id"], lo, hi).get(clash) == "declined",
        "the organizer seeing the room's decline of that date",
    )
    settle(world)
    # Hybrid: the series less that occurrence, and the one-off it clashed with
    booking = world.booking(series["_id"])
    assert not booking["canceled"]
    assert [hybrid_time({"dateTime": x}) for x in booking["recurrence"]["exdates"]] == [clash]
    assert not world.booking(held["_id"])["canceled"]
    assert [s["_id"] for s in series_bookings(world)] == [series["_id"]]
    # Outlook: the organizer and the guests keep the whole series; the room accepted it and
    # declined that one date, saying why
    assert occurrences_of(world, ADELE, uid, lo, hi) == weekly(first, 6)
    assert room_slots(world, lo, hi) == weekly(first, 6, skip=(2,))
    answers = room_answers(world, ADELE, master["id"], lo, hi)
    assert answers.pop(clash) == "declined"
    assert set(answers.values()) == {"accepted"}, answers
    assert room_response(world, ADELE, uid, ROOM) == "accepted"
    trail = world.audit(f"o:{uid}")
    refused = [line for line in trail if "409" in line]
    assert refused and held["_id"] in refused[0], trail
    assert f"{clash:%Y-%m-%d %H:%M}" in refused[0], trail
    # recorded in the occurrence's link: later rounds plan nothing more for it
    mark = daemon.mark()
    settle(world, 3)
    daemon.mark()
    rounds = [x for x in daemon.lines[mark:] if x.get("event") == "room_round"]
    assert len(rounds) >= 2
    assert all(not r.get("planned") and not r.get("written") for r in rounds), rounds
    assert world.booking(series["_id"]) == booking


def test_a_series_deleted_while_roomd_was_leaving_out_a_refused_occurrence_is_cancelled(
    world: SyncWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """roomd is SIGKILLed once the series less the refused occurrence has landed in Hybrid, and
    the organizer deletes the series before it restarts: the room's copy is gone when the
    replayed write would decline that occurrence. The Hybrid series must be recorded all the
    same, so that the deletion cancels it instead of leaving the room held in Hybrid."""
    daemon = world.start()
    first = at(9)
    clash = first + timedelta(weeks=2)
    held = world.hybrid_book(PAT, clash + timedelta(minutes=30), summary="Held in Hybrid")
    wait_for(
        lambda: httpx.get(daemon.url("/readyz")).json()["rooms"][ROOM].get("problem"),
        "roomd's problem with the one-off it cannot show",
    )
    world.pause()
    master = world.book_series(ADELE, first, subject="Weekly sync", count=6)
    rba_idle(world)
    tripwire = Tripwire(world, monkeypatch)
    config = world.sims.write_config(world.directory, poll_interval=1)
    proc = DaemonProcess(config).start()
    assert proc.proc is not None
    tripwire.arm(proc.proc, 1)
    assert tripwire.fired.wait(15), "".join(proc.raw)[-3000:]
    tripwire.disarm()
    proc.proc.wait(timeout=10)
    series = series_bookings(world)
    assert len(series) == 1 and not series[0]["canceled"]
    world.delete(ADELE, master["id"])
    rba_idle(world)
    world.daemon = DaemonProcess(config).start()

    wait_for(lambda: world.booking(series[0]["_id"])["canceled"], "the Hybrid series cancelled")
    settle(world)
    assert [s["_id"] for s in series_bookings(world)] == [series[0]["_id"]]
    assert not world.booking(held["_id"])["canceled"]
    dead = [row for row in open_outbox(world) if row[1] == "dead"]
    assert [row[0] for row in dead] == [f"graph.create:{held['_id']}"], dead  # pat's, as before


# --- 9 (d). the refused occurrence given back when its slot frees --------------------------------


def refused_series(world: SyncWorld, crash: bool = False, monkeypatch: Any = None) -> Any:
    """Scenario 9 staged: a one-off Outlook cannot show (its member has no mailbox) holds the
    third occurrence's slot in Hybrid, so Hybrid refuses that occurrence of Adele's new weekly
    series and the room declines it. The first occurrence, the clash, the organizer's master,
    the Hybrid series, the one-off, and a window."""
    daemon = world.start()
    first = at(9)
    lo, hi = first - timedelta(days=1), first + timedelta(weeks=7)
    clash = first + timedelta(weeks=2)
    held = world.hybrid_book(PAT, clash + timedelta(minutes=30), summary="Held in Hybrid")
    wait_for(
        lambda: httpx.get(daemon.url("/readyz")).json()["rooms"][ROOM].get("problem"),
        "roomd's problem with the one-off it cannot show",
    )
    master = world.book_series(ADELE, first, subject="Weekly sync", count=6)
    series = wait_for(lambda: series_bookings(world), "the Hybrid series")[0]
    wait_for(
        lambda: room_slots(world, lo, hi) == weekly(first, 6, skip=(2,)),
        "the room declining the refused occurrence",
    )
    wait_for(
        lambda: [hybrid_time({"dateTime": x}) for x in exdates_of(world, series["_id"])] == [clash],
        "Hybrid's series without that occurrence",
    )
    return first, clash, master, series, held, (lo, hi)


@pytest.mark.parametrize(
    ("holder", "given_back"),
    [
        ("canceled", "canceled"),
        ("released", "released (nobody checked in)"),
        ("moved", "moved to 2027-01-18 14:00-15:00 UTC"),
        ("still there", None),
        ("unrelated", None),
    ],
)
def test_the_plan_gives_a_refused_occurrence_back_only_when_its_holder_left_its_slot(
    holder: str, given_back: str | None
) -> None:
    """Pure: the series read again for a round whose Hybrid feed shows the booking that held
    the refused occurrence's slot. Only a holder that left the slot gives it back; a past
    occurrence, or one the room's policy declined (no holder recorded), never."""
    first = datetime(2027, 1, 4, 9, tzinfo=UTC)
    shape = Shape("FREQ=WEEKLY;BYDAY=MO;WKST=MO;COUNT=6", "UTC", first, first + timedelta(hours=1))
    refused, declined, past = (first + timedelta(weeks=n) for n in (2, 3, 0))
    series = Link(
        link_id="o:S",
        hybrid_id="h1",
        room_event_id="m",
        series_master_id="m",
        ical_uid="S",
        outlook_fingerprint=shape_fingerprint(shape),
        hybrid_fingerprint=shape_fingerprint(shape),
    )
    occurrences = [
        Link(
            link_id=f"o:S@{at:%Y-%m-%dT%H:%M:%SZ}",
            original_start=at,
            hybrid_parent_id="h1",
            outlook_fingerprint="cancelled",
            hybrid_fingerprint=fp,
        )
        for at, fp in ((refused, "refused:b1"), (declined, "cancelled"), (past, "refused:b1"))
    ]
    gone = {at: None for at in (refused, declined, past)}
    outlook = OutlookSeries(
        "m",
        OutlookState.LIVE,
        ical_uid="S",
        shape=shape,
        exceptions=gone,
        window=(first - timedelta(days=90), first + timedelta(days=365)),
        organizer=ADELE,
        organizer_master_id="org-m",
    )
    hybrid = HybridSeries("h1", HybridState.LIVE, shape=shape, exceptions=gone)
    state = {"canceled": HybridState.CANCELED, "released": HybridState.RELEASED}
    slot = refused + timedelta(minutes=30)
    if holder == "moved":
        slot = refused + timedelta(hours=5)
    holders = {
        "b2" if holder == "unrelated" else "b1": Holder(
            "b2" if holder == "unrelated" else "b1",
            state.get(holder, HybridState.LIVE),
            slot,
            slot + timedelta(hours=1),
        )
    }
    room = RoomContext(
        mailbox=ROOM, hybrid_id=ROOM_ID, name="Room 4A", now=first + timedelta(days=1)
    )
    out = Plan()
    plan_series(room, LinkIndex([series, *occurrences]), [outlook], [hybrid], out, holders=holders)
    if given_back is None:
        assert out.ops == []
        return
    assert [(op.op, op.payload["original_start"]) for op in out.ops] == [
        ("hybrid.restore", f"{refused:%Y-%m-%dT%H:%M:%SZ}")
    ]
    assert out.ops[0].payload["freed"] == given_back
    assert out.ops[0].payload["holder"] == "b1"


def exdates_of(world: SyncWorld, series_id: str) -> list[str]:
    return list(world.booking(series_id)["recurrence"]["exdates"])


@pytest.mark.parametrize("how", ["canceled", "moved"])
def test_a_refused_occurrence_is_given_back_to_the_organizer_when_its_slot_frees(
    world: SyncWorld, how: str
) -> None:
    first, clash, master, series, held, (lo, hi) = refused_series(world)
    if how == "canceled":
        world.hybrid_call(lambda: world.hybrid.cancel_booking(held["_id"]))
    else:  # to the afternoon: the morning slot is free
        later = clash + timedelta(hours=5)
        world.hybrid_call(
            lambda: world.hybrid.update_booking(
                held["_id"], start=later, end=later + timedelta(hours=1)
            )
        )

    wait_for(lambda: exdates_of(world, series["_id"]) == [], "the exdate lifted in Hybrid")
    wait_for(
        lambda: room_slots(world, lo, hi) == weekly(first, 6),
        "the room holding the occurrence again",
    )
    settle(world)
    assert hybrid_slots(world, lo, hi) == sorted(
        weekly(first, 6)
        + ([(clash + timedelta(hours=5), clash + timedelta(hours=6))] if how == "moved" else [])
    )
    assert room_slots(world, lo, hi) == weekly(first, 6)
    assert occurrences_of(world, ADELE, master["iCalUId"], lo, hi) == weekly(first, 6)
    assert [s["_id"] for s in series_bookings(world)] == [series["_id"]]
    trail = world.audit(f"o:{master['iCalUId']}")
    restored = [line for line in trail if line.startswith("restored:")]
    assert len(restored) == 1, trail
    assert held["_id"] in restored[0] and f"{clash:%Y-%m-%d %H:%M}" in restored[0], trail
    assert how in restored[0], trail
    # recorded: later rounds plan nothing more for it
    daemon = world.daemon
    assert daemon is not None
    mark = daemon.mark()
    settle(world, 3)
    daemon.mark()
    rounds = [x for x in daemon.lines[mark:] if x.get("event") == "room_round"]
    assert len(rounds) >= 2
    assert all(not r.get("planned") and not r.get("written") for r in rounds), rounds


def test_a_refused_occurrence_whose_slot_is_taken_again_stays_declined_audited_once(
    world: SyncWorld,
) -> None:
    first, clash, master, series, held, (lo, hi) = refused_series(world)
    settle(world)
    trail = world.audit(f"o:{master['iCalUId']}")
    world.pause()  # between two rounds, the slot is freed and taken again by another booking
    world.hybrid_call(lambda: world.hybrid.cancel_booking(held["_id"]))
    again = world.hybrid_book(PAT, clash + timedelta(minutes=15), summary="Taken again")
    daemon = world.resume()
    wait_for(
        lambda: any(
            x.get("room") == ROOM and x.get("written") for x in daemon.events("room_round")
        ),
        "roomd trying the slot",
    )
    settle(world)
    assert [hybrid_time({"dateTime": x}) for x in exdates_of(world, series["_id"])] == [clash]
    assert room_slots(world, lo, hi) == sorted(
        [
            *weekly(first, 6, skip=(2,)),
        ]
    )
    assert world.audit(f"o:{master['iCalUId']}") == trail  # nothing more to say about it
    # the operator sees why it is left out, and what it waits for
    config = daemon.config
    story = roomd("explain", master["iCalUId"], config=config)
    assert story.returncode == 0, story.stderr
    assert f"refused (409) while booking {again['_id']} held its slot" in story.stdout
    # the booking that took it is the one whose going frees it now
    world.hybrid_call(lambda: world.hybrid.cancel_booking(again["_id"]))
    wait_for(lambda: room_slots(world, lo, hi) == weekly(first, 6), "the room holding it")
    settle(world)
    assert exdates_of(world, series["_id"]) == []
    assert hybrid_slots(world, lo, hi) == weekly(first, 6)
    restored = [x for x in world.audit(f"o:{master['iCalUId']}") if x.startswith("restored:")]
    assert len(restored) == 1 and again["_id"] in restored[0], restored
    story = roomd("explain", master["iCalUId"], config=config)
    assert f"restored       occurrence {clash:%Y-%m-%d %H:%M} UTC" in story.stdout, story.stdout
    assert "Hybrid:  the occurrence as the rule has it" in story.stdout, story.stdout


@pytest.mark.parametrize("change", ["cancelled", "moved"])
def test_a_refused_occurrence_the_organizer_cancelled_or_moved_meanwhile_is_not_restored(
    world: SyncWorld, change: str
) -> None:
    _first, clash, master, _, held, (lo, hi) = refused_series(world)
    occurrence = next(
        i for i in world.instances(ADELE, master["id"], lo, hi) if utc_of(i["start"]) == clash
    )
    uid = master["iCalUId"]
    later = clash + timedelta(hours=6)
    if change == "cancelled":
        world.cancel(ADELE, occurrence["id"])
        wait_for(
            lambda: clash not in dict(occurrences_of(world, ADELE, uid, lo, hi)),
            "the organizer's occurrence cancelled",
        )
    else:
        world.move(ADELE, occurrence["id"], later)
        wait_for(
            lambda: any(f"{later:%Y-%m-%d %H:%M}" in x for x in world.audit(f"o:{uid}")),
            "roomd reading the move",
        )
    settle(world)
    kept = [(s, e) for s, e in hybrid_slots(world, lo, hi) if s != clash + timedelta(minutes=30)]
    in_room = room_slots(world, lo, hi)
    world.hybrid_call(lambda: world.hybrid.cancel_booking(held["_id"]))
    settle(world, 4)
    assert hybrid_slots(world, lo, hi) == kept
    assert room_slots(world, lo, hi) == in_room
    assert clash not in dict(kept) and clash not in dict(in_room)
    trail = world.audit(f"o:{uid}")
    assert not [x for x in trail if x.startswith("restored:")], trail
    if change == "cancelled":  # roomd looked, and saw the organizer had let it go
        skipped = [x for x in trail if x.startswith("restore_skipped:")]
        assert len(skipped) == 1 and "the organizer cancelled it" in skipped[0], trail


@pytest.mark.parametrize("nth", [1, 2])
def test_sigkill_while_a_refused_occurrence_is_given_back_loses_and_doubles_nothing(
    world: SyncWorld, monkeypatch: pytest.MonkeyPatch, nth: int
) -> None:
    """roomd is SIGKILLed once the exdate is lifted in Hybrid (its 1st write after the slot
    frees), or once the room is taken off the organizer's occurrence (its 2nd, the first of the
    two that ask the room again), before it records either: restarted, the occurrence is back
    on both sides once, and audited once."""
    first, clash, master, series, held, (lo, hi) = refused_series(world)
    settle(world)
    tripwire = Tripwire(world, monkeypatch)
    world.pause()
    world.hybrid_call(lambda: world.hybrid.cancel_booking(held["_id"]))
    assert kill_while_writing(world, tripwire, (nth,)) == [nth]
    assert exdates_of(world, series["_id"]) == []  # the kill came after the lift
    assert clash not in dict(room_slots(world, lo, hi))  # before the room was asked again
    wait_for(lambda: room_slots(world, lo, hi) == weekly(first, 6), "the room holding it")
    settle(world)
    assert exdates_of(world, series["_id"]) == []
    assert hybrid_slots(world, lo, hi) == weekly(first, 6)
    assert [s["_id"] for s in series_bookings(world)] == [series["_id"]]
    assert children(world, series["_id"]) == []
    assert occurrences_of(world, ADELE, master["iCalUId"], lo, hi) == weekly(first, 6)
    attendees = {
        a["emailAddress"]["address"].lower()
        for i in all_instances(world, ADELE, master["id"], lo, hi)
        if utc_of(i["start"]) == clash
        for a in i.get("attendees") or []
    }
    assert ROOM in attendees
    restored = [x for x in world.audit(f"o:{master['iCalUId']}") if x.startswith("restored:")]
    assert len(restored) == 1, restored


def test_occurrences_the_room_or_a_member_declined_are_not_restored_when_a_slot_frees(
    world: SyncWorld,
) -> None:
    """Only an occurrence Hybrid refused goes back: one the room declined by its own policy (a
    conflict in Exchange) and one a member cancelled in Hybrid stay cancelled when the
    bookings around them go."""
    world.sims.call(
        lambda: world.sims.graph.control.set_calendar_processing(
            ROOM, MaximumConflictInstances=2, ConflictPercentageAllowed=50
        )
    )
    daemon = world.start()
    first = at(9)
    lo, hi = first - timedelta(days=1), first + timedelta(weeks=7)
    clash, fourth, fifth = (first + timedelta(weeks=n) for n in (2, 3, 4))
    held = world.hybrid_book(PAT, clash + timedelta(minutes=30), summary="Held in Hybrid")
    # Megan's one-off is in the room's calendar too: the room declines the fifth itself
    taken = world.hybrid_book(MEGAN, fifth + timedelta(minutes=30), summary="Megan's")
    wait_for(lambda: room_slots(world, lo, hi), "Megan's one-off in the room's calendar")
    wait_for(
        lambda: httpx.get(daemon.url("/readyz")).json()["rooms"][ROOM].get("problem"),
        "roomd's problem with the one-off it cannot show",
    )
    master = world.book_series(ADELE, first, subject="Weekly sync", count=6)
    uid = master["iCalUId"]
    series = wait_for(lambda: series_bookings(world), "the Hybrid series")[0]
    wait_for(
        lambda: (
            [hybrid_time({"dateTime": x}) for x in exdates_of(world, series["_id"])]
            == [clash, fifth]
        ),
        "Hybrid's series without the refused and the declined occurrence",
    )
    # the refused one goes back when Pat's booking goes
    world.hybrid_call(lambda: world.hybrid.cancel_booking(held["_id"]))
    wait_for(lambda: clash in dict(room_slots(world, lo, hi)), "the refused one given back")
    wait_for(lambda: clash in dict(hybrid_slots(world, lo, hi)), "and in Hybrid")
    # a member cancels the fourth in Hybrid
    recurrence = {
        "rrule": world.booking(series["_id"])["recurrence"]["rrule"],
        "exdates": [*exdates_of(world, series["_id"]), _iso(fourth)],
    }
    world.hybrid_call(lambda: world.hybrid.update_booking(series["_id"], recurrence=recurrence))
    wait_for(
        lambda: fourth not in dict(occurrences_of(world, ADELE, uid, lo, hi)),
        "the fourth cancelled in Outlook",
    )
    settle(world)
    # Megan's booking goes: the fifth, which the room declined itself, stays declined
    world.hybrid_call(lambda: world.hybrid.cancel_booking(taken["_id"]))
    wait_for(lambda: not room_slots(world, fifth, fifth + timedelta(hours=2)), "Megan's gone")
    settle(world, 4)
    wanted = weekly(first, 6, skip=(3, 4))
    assert hybrid_slots(world, lo, hi) == wanted
    assert room_slots(world, lo, hi) == wanted
    restored = [x for x in world.audit(f"o:{uid}") if x.startswith("restored:")]
    assert len(restored) == 1 and f"{clash:%Y-%m-%d %H:%M}" in restored[0], restored


def _iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.000Z")


# --- 10. a no-show of one occurrence -------------------------------------------------------------


def test_a_no_show_of_one_occurrence_releases_that_occurrence_of_the_room_only(
    world: SyncWorld,
) -> None:
    world.start()
    first = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=3)
    lo, hi = first - timedelta(days=1), first + timedelta(weeks=5)
    series = world.hybrid_book(
        ADELE,
        first,
        resource_id=CHECKIN_ROOM_ID,
        summary="Board prep",
        members=[world.member_id(ALEX)],
        rrule="FREQ=WEEKLY;COUNT=4",
    )
    master = organizer_master(world, ADELE, "Board prep")
    uid = master["iCalUId"]
    for mailbox in (ADELE, ALEX, CHECKIN_ROOM):
        wait_for(
            lambda m=mailbox: occurrences_of(world, m, uid, lo, hi) == weekly(first, 4),
            f"{mailbox}'s series",
        )
    world.hybrid_call(lambda: world.hybrid.advance_clock(30 * 60))
    missed = world.hybrid_call(lambda: world.hybrid.run_noshow_sweep())
    assert [(m["parent"], m["cancelReason"]) for m in missed] == [(series["_id"], "no_show")]

    wait_for(
        lambda: occurrences_of(world, CHECKIN_ROOM, uid, lo, hi) == weekly(first, 4, skip=(0,)),
        "the room's first occurrence released",
    )
    settle(world)
    assert occurrences_of(world, CHECKIN_ROOM, uid, lo, hi) == weekly(first, 4, skip=(0,))
    # the organizer and the guest keep the meeting: only the room was released
    assert occurrences_of(world, ADELE, uid, lo, hi) == weekly(first, 4)
    assert occurrences_of(world, ALEX, uid, lo, hi) == weekly(first, 4)
    assert not world.booking(series["_id"])["canceled"]
    assert len([b for b in world.bookings(CHECKIN_ROOM_ID) if not b.get("parent")]) == 1


# --- 11. an approval room -----------------------------------------------------------------------


def room_response(world: SyncWorld, organizer: str, uid: str, room: str) -> str | None:
    copy = world.copy_of(organizer, uid)
    for attendee in (copy or {}).get("attendees") or []:
        if attendee["emailAddress"]["address"].lower() == room:
            return str(attendee["status"]["response"])
    return None


def test_an_outlook_series_in_an_approval_room_is_tentative_until_approved(
    world: SyncWorld,
) -> None:
    world.start()
    master = world.book_series(ADELE, at(10), room=APPROVAL_ROOM, subject="Offsite", count=4)
    uid = master["iCalUId"]
    series = wait_for(lambda: series_bookings(world, APPROVAL_ROOM_ID), "the Hybrid series")[0]
    assert series["tentative"] is True
    wait_for(
        lambda: room_response(world, ADELE, uid, APPROVAL_ROOM) == "tentativelyAccepted",
        "the room answering tentatively",
    )
    world.hybrid_call(lambda: world.hybrid.approve(series["_id"]))
    wait_for(
        lambda: room_response(world, ADELE, uid, APPROVAL_ROOM) == "accepted",
        "the room accepting the series once approved",
    )
    settle(world, 2)
    assert len(world.bookings(APPROVAL_ROOM_ID)) == 1
    assert not world.booking(series["_id"])["tentative"]


def test_a_rejected_outlook_series_is_declined_whole_by_the_room(world: SyncWorld) -> None:
    world.start()
    first = at(10)
    lo, hi = first - timedelta(days=1), first + timedelta(weeks=5)
    master = world.book_series(ADELE, first, room=APPROVAL_ROOM, subject="Offsite", count=4)
    uid = master["iCalUId"]
    series = wait_for(lambda: series_bookings(world, APPROVAL_ROOM_ID), "the Hybrid series")[0]
    world.hybrid_call(lambda: world.hybrid.reject(series["_id"]))
    wait_for(
        lambda: room_response(world, ADELE, uid, APPROVAL_ROOM) == "declined",
        "the room declining the series",
    )
    wait_for(lambda: room_slots(world, lo, hi, APPROVAL_ROOM) == [], "the room's calendar free")
    settle(world)
    assert room_slots(world, lo, hi, APPROVAL_ROOM) == []
    assert occurrences_of(world, ADELE, uid, lo, hi) == weekly(first, 4)  # the organizer keeps it
    assert world.booking(series["_id"])["canceled"]
    assert len(world.bookings(APPROVAL_ROOM_ID)) == 1


# --- 12. a series edited on both sides between two rounds -------------------------------------


def conflicts_counted(world: SyncWorld) -> float:
    metrics = httpx.get(world.daemon.url("/metrics")).text  # type: ignore[union-attr]
    found = re.search(rf'roomd_conflicts_total\{{room="{re.escape(ROOM)}"\}} (\S+)', metrics)
    return float(found.group(1)) if found else 0.0


@pytest.mark.parametrize("rule", ["outlook_wins", "hybrid_wins"])
def test_a_series_edited_on_both_sides_between_two_rounds_follows_the_rooms_conflict_rule(
    world: SyncWorld, rule: str
) -> None:
    world.start(sync=f'conflict = "{rule}"')
    # an Outlook series, retimed whole on both sides; a Hybrid series, one occurrence of which
    # is moved on both sides
    first, lunch = at(8), at(13)
    lo, hi = first - timedelta(days=1), first + timedelta(weeks=7)
    master = world.book_series(ADELE, first, subject="Weekly sync", count=6)
    booking = world.hybrid_book(
        ALEX,
        lunch,
        summary="Team lunch",
        members=[world.member_id(MEGAN)],
        rrule="FREQ=WEEKLY;COUNT=6",
    )
    wait_for(lambda: series_bookings(world) and len(series_bookings(world)) == 2, "both in Hybrid")
    lunch_master = organizer_master(world, ALEX, "Team lunch")
    both = sorted([*weekly(first, 6), *weekly(lunch, 6)])
    wait_for(lambda: room_slots(world, lo, hi) == both, "both series in the room")
    synced = next(s for s in series_bookings(world) if s["_id"] != booking["_id"])
    settle(world, 2)

    world.pause()
    # the whole Outlook series: an hour later in Outlook, two hours later in Hybrid
    in_outlook, in_hybrid = first + timedelta(hours=1), first + timedelta(hours=2)
    world.patch(
        ADELE,
        master["id"],
        start={"dateTime": in_outlook.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
        end={
            "dateTime": (in_outlook + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S"),
            "timeZone": "UTC",
        },
    )
    world.hybrid_call(
        lambda: world.hybrid.update_booking(
            synced["_id"], start=in_hybrid, end=in_hybrid + timedelta(hours=1)
        )
    )
    # the lunch's third occurrence: half an hour earlier in Outlook, an hour later in Hybrid
    third = lunch + timedelta(weeks=2)
    occurrence = next(
        i for i in world.instances(ALEX, lunch_master["id"], lo, hi) if utc_of(i["start"]) == third
    )
    o_moved, h_moved = third - timedelta(minutes=30), third + timedelta(hours=1)
    world.move(ALEX, occurrence["id"], o_moved)
    add_exception(world, booking, third, h_moved)
    # its fifth: moved in Outlook, cancelled in Hybrid
    fifth = lunch + timedelta(weeks=4)
    occurrence = next(
        i for i in world.instances(ALEX, lunch_master["id"], lo, hi) if utc_of(i["start"]) == fifth
    )
    world.move(ALEX, occurrence["id"], fifth + timedelta(minutes=30))
    world.hybrid_call(
        lambda: world.hybrid.update_booking(
            booking["_id"],
            recurrence={
                "rrule": "FREQ=WEEKLY;COUNT=6",
                "exdates": [fifth.strftime("%Y-%m-%dT%H:%M:%SZ")],
            },
        )
    )
    time.sleep(1)  # the room's booking assistant answers
    world.resume()

    series_to = in_outlook if rule == "outlook_wins" else in_hybrid
    lunch_to = o_moved if rule == "outlook_wins" else h_moved
    lunch_wanted = [*weekly(lunch, 6, skip=(2, 4)), (lunch_to, lunch_to + timedelta(hours=1))]
    if rule == "outlook_wins":
        lunch_wanted.append((fifth + timedelta(minutes=30), fifth + timedelta(minutes=90)))
    lunch_wanted.sort()
    wanted = sorted([*weekly(series_to, 6), *lunch_wanted])
    wait_for(lambda: hybrid_slots(world, lo, hi) == wanted, f"Hybrid as {rule} says")
    wait_for(lambda: room_slots(world, lo, hi) == wanted, f"the room as {rule} says")
    settle(world)
    assert hybrid_slots(world, lo, hi) == wanted
    assert room_slots(world, lo, hi) == wanted
    # the organizers' and the guest's calendars show the winner too
    assert occurrences_of(world, ADELE, master["iCalUId"], lo, hi) == weekly(series_to, 6)
    for mailbox in (ALEX, MEGAN):
        assert occurrences_of(world, mailbox, lunch_master["iCalUId"], lo, hi) == lunch_wanted
    # one series each, no exception doubled
    assert sorted(s["_id"] for s in series_bookings(world)) == sorted(
        [synced["_id"], booking["_id"]]
    )
    originals = [str(c["originalStart"]) for c in children(world, booking["_id"])]
    assert len(originals) == len(set(originals)) == (2 if rule == "outlook_wins" else 1)
    assert children(world, synced["_id"]) == []
    # counted and audited, naming the rule; no write given up
    assert conflicts_counted(world) == 3
    detail = httpx.get(world.daemon.url("/readyz")).json()  # type: ignore[union-attr]
    assert not detail["rooms"][ROOM]["problem"], detail
    series_trail = world.audit(f"o:{master['iCalUId']}")
    lunch_trail = world.audit(f"h:{booking['_id']}")
    assert [x for x in series_trail if x.startswith("conflict:") and rule in x], series_trail
    assert [
        x
        for x in lunch_trail
        if x.startswith("conflict:") and rule in x and f"{third:%Y-%m-%dT%H:%M}" in x
    ], lunch_trail


# --- 13. roomd SIGKILLed while it writes a year-long series -----------------------------------


class Tripwire:
    """Kills roomd from inside a simulator once the n-th write it asked for has been carried
    out, before the answer is sent: the write landed and roomd never learns it did (as in
    test_crash.py). Writes are the Hybrid store's changes and every successful Graph request
    that is not a read."""

    def __init__(self, world: SyncWorld, monkeypatch: pytest.MonkeyPatch) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[str] | None = None
        self._left = 0
        self.fired = threading.Event()
        world.sims.call(lambda: world.sims.hybrid.store.listeners.append(lambda *_: self.wrote()))
        front = world.sims.graph._front  # the Graph simulator's HTTP front
        execute = front.execute

        async def executed(req: Any, verdict: Any = None) -> Any:
            res = await execute(req, verdict)
            if req.method != "GET" and req.path != "/$batch" and 200 <= res.status < 300:
                self.wrote()
            return res

        monkeypatch.setattr(front, "execute", executed)

    def arm(self, proc: subprocess.Popen[str], nth: int) -> None:
        with self._lock:
            self._proc, self._left = proc, nth
            self.fired.clear()

    def disarm(self) -> bool:
        with self._lock:
            self._proc = None
            return self.fired.is_set()

    def wrote(self) -> None:
        with self._lock:
            if self._proc is None:
                return
            self._left -= 1
            if self._left > 0:
                return
            self._proc.kill()
            self._proc = None
            self.fired.set()


def open_outbox(world: SyncWorld) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(world.directory / "roomd.sqlite3", timeout=5)
    try:
        return db.execute(
            "SELECT intent_id, state, last_error FROM outbox WHERE state != 'done'"
        ).fetchall()
    finally:
        db.close()


def kill_while_writing(world: SyncWorld, tripwire: Tripwire, writes: tuple[int, ...]) -> list[int]:
    """Start roomd and SIGKILL it at its n-th write, for each n of ``writes`` in turn, until
    it has nothing left to write; then start it for good. The write counts that killed it."""
    config = world.sims.write_config(world.directory, poll_interval=1)
    killed = []
    for nth in writes:
        proc = DaemonProcess(config).start()
        world.daemon = proc
        assert proc.proc is not None
        tripwire.arm(proc.proc, nth)
        fired = tripwire.fired.wait(15)
        tripwire.disarm()
        proc.proc.kill()
        assert proc.proc.wait(timeout=10) == -signal.SIGKILL, "".join(proc.raw)[-3000:]
        if not fired:
            break
        killed.append(nth)
    world.daemon = DaemonProcess(config).start()
    world.daemon.wait_log(lambda x: x.get("event") == "started")
    return killed


def settled(world: SyncWorld, timeout: float = 40) -> None:
    """Until two rounds in a row plan and write nothing and no write is owed."""
    daemon = world.daemon
    assert daemon is not None
    deadline = time.monotonic() + timeout
    quiet = 0
    seen = 0
    while time.monotonic() < deadline:
        rounds = [x for x in daemon.events("room_round") if x.get("room") == ROOM]
        for line in rounds[seen:]:
            still = line.get("outcome") == "ok" and not any(
                line.get(k) for k in ("planned", "written", "write_failures", "gave_up")
            )
            quiet = quiet + 1 if still else 0
        seen = len(rounds)
        if quiet >= 2 and not open_outbox(world):
            return
        time.sleep(0.2)
    raise AssertionError(f"roomd did not settle: {open_outbox(world)} {rounds[-3:]}")


def year_series(world: SyncWorld) -> tuple[datetime, list[datetime], datetime, datetime]:
    """A weekly series of 52 from tomorrow at 09:00 in the room's zone (London), in a room that
    takes bookings that far ahead: its wall time, its occurrences' UTC starts, and a window."""
    world.sims.call(
        lambda: world.sims.graph.control.set_calendar_processing(ROOM, BookingWindowInDays=400)
    )
    # roomd must not count on Graph deduplicating a repeated transactionId (graph-behaviour 2.3)
    world.sims.call(lambda: world.sims.graph.control.set_switches(transaction_id_dedupe=False))
    wall = at(9).replace(tzinfo=None)
    starts = [start for start, _ in local_weekly(wall, LONDON, 52)]
    return wall, starts, starts[0] - timedelta(days=1), starts[-1] + timedelta(days=2)


def rba_idle(world: SyncWorld) -> None:
    control = world.sims.graph.control
    wait_for(lambda: world.sims.call(control.pending_rba) == 0, "the room's RBA idle", 10)


def _field(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {"dateTime": value}


MOVED = {3: timedelta(hours=2), 10: timedelta(hours=-1), 20: timedelta(days=1)}
CANCELLED = (5, 30)


def with_exceptions(starts: list[datetime]) -> Slots:
    """The 52 weeks less the cancelled occurrences, the moved ones at their new times."""
    out = []
    for n, start in enumerate(starts):
        if n not in CANCELLED:
            start += MOVED.get(n, timedelta(0))
            out.append((start, start + timedelta(hours=1)))
    return sorted(out)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_sigkill_while_an_outlook_series_with_exceptions_is_written_doubles_and_loses_nothing(
    world: SyncWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    wall, starts, lo, hi = year_series(world)
    tripwire = Tripwire(world, monkeypatch)
    master = world.book_series(
        ADELE, wall, subject="Weekly sync", count=52, zone="GMT Standard Time"
    )
    uid = master["iCalUId"]
    occurrences = {utc_of(i["start"]): i for i in all_instances(world, ADELE, master["id"], lo, hi)}
    for n, by in MOVED.items():
        world.move(ADELE, occurrences[starts[n]]["id"], starts[n] + by)
    for n in CANCELLED:
        world.cancel(ADELE, occurrences[starts[n]]["id"])
    rba_idle(world)
    wanted = with_exceptions(starts)
    assert room_slots(world, lo, hi) == wanted

    # the series and its three moved occurrences are four writes to Hybrid
    killed = kill_while_writing(world, tripwire, (1, 1, 2, 1, 1))
    print("KILLED", killed)
    assert len(killed) >= 3, killed
    settled(world)

    series = series_bookings(world)
    assert len(series) == 1, series
    booking = series[0]
    assert booking["reference"] == uid and not booking["canceled"]
    exdates = sorted(hybrid_time({"dateTime": x}) for x in booking["recurrence"]["exdates"])
    assert exdates == [starts[n] for n in CANCELLED]
    moved = sorted(
        (hybrid_time(_field(c["originalStart"])), hybrid_time(c["start"]))
        for c in children(world, booking["_id"])
    )
    assert moved == sorted((starts[n], starts[n] + by) for n, by in MOVED.items())
    assert hybrid_slots(world, lo, hi) == wanted
    assert room_slots(world, lo, hi) == wanted
    assert occurrences_of(world, ADELE, uid, lo, hi) == wanted
    masters = [e for e in world.events(ADELE) if e.get("type") == "seriesMaster"]
    assert len(masters) == 1 and not masters[0].get("isCancelled")
    room_masters = [
        e for e in world.events(ROOM) if e.get("iCalUId") == uid and e["type"] == "seriesMaster"
    ]
    assert len(room_masters) == 1
    assert [row for row in open_outbox(world) if row[1] == "dead"] == []


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_sigkill_while_a_hybrid_series_with_exceptions_is_written_doubles_and_loses_nothing(
    world: SyncWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, starts, lo, hi = year_series(world)
    tripwire = Tripwire(world, monkeypatch)
    booking = world.hybrid_book(
        ALEX,
        starts[0],
        summary="Team lunch",
        members=[world.member_id(MEGAN)],
        rrule="FREQ=WEEKLY;COUNT=52",
        exdates=[starts[n] for n in CANCELLED],
    )
    for n, by in MOVED.items():
        add_exception(world, booking, starts[n], starts[n] + by)
    wanted = with_exceptions(starts)
    assert hybrid_slots(world, lo, hi) == wanted

    # the organizer's series, then its three moved and two cancelled occurrences, are six
    # writes to Graph
    killed = kill_while_writing(world, tripwire, (1, 1, 2, 1, 3, 1))
    print("KILLED", killed)
    assert len(killed) >= 3, killed
    settled(world)
    rba_idle(world)

    masters = [e for e in world.events(ALEX) if e.get("type") == "seriesMaster"]
    assert len(masters) == 1 and not masters[0].get("isCancelled"), masters
    uid = masters[0]["iCalUId"]
    for mailbox in (ALEX, MEGAN, ROOM):
        copies = [e for e in world.events(mailbox) if e.get("iCalUId") == uid]
        assert len([e for e in copies if e.get("type") == "seriesMaster"]) == 1, mailbox
        assert occurrences_of(world, mailbox, uid, lo, hi) == wanted, mailbox
    assert room_slots(world, lo, hi) == wanted
    assert [s["_id"] for s in series_bookings(world)] == [booking["_id"]]
    assert len(children(world, booking["_id"])) == len(MOVED)
    assert hybrid_slots(world, lo, hi) == wanted
    assert [row for row in open_outbox(world) if row[1] == "dead"] == []


# --- the operator's commands ------------------------------------------------------------------


def roomd(*args: str, config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "roomd", *args, "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_dry_run_plans_a_series_as_one_and_explain_shows_it_with_its_exceptions(
    world: SyncWorld,
) -> None:
    first = at(9)
    master = world.book_series(ADELE, first, subject="Weekly sync", count=10)
    occurrences = world.instances(ADELE, master["id"], at(0), at(0, days=30))
    world.move(ADELE, occurrences[1]["id"], utc_of(occurrences[1]["start"]) + timedelta(hours=2))
    world.cancel(ADELE, occurrences[2]["id"])
    time.sleep(1)  # the room's booking assistant answers
    config = world.sims.write_config(world.directory, poll_interval=1)

    plan = roomd("sync", "--full", "--dry-run", "--room", ROOM, config=config)
    assert plan.returncode == 0, plan.stderr
    creates = [line for line in plan.stdout.splitlines() if line.strip().startswith("create")]
    assert len(creates) == 1, plan.stdout  # one series, not one booking per occurrence
    assert "FREQ=WEEKLY" in creates[0]
    assert "1 moved and 1 cancelled" in creates[0], plan.stdout
    assert world.bookings() == []

    done = roomd("sync", "--full", "--room", ROOM, config=config)
    assert done.returncode == 0, done.stderr
    series = wait_for(lambda: series_bookings(world), "the Hybrid series")[0]
    again = roomd("sync", "--full", "--dry-run", "--room", ROOM, config=config)
    assert "nothing to do" in again.stdout, again.stdout

    story = roomd("explain", master["iCalUId"], config=config)
    assert story.returncode == 0, story.stderr
    text = story.stdout
    assert series["_id"] in text
    assert "FREQ=WEEKLY" in text, text
    moved, cancelled = (utc_of(o["start"]) for o in occurrences[1:3])
    assert f"@{moved:%Y-%m-%dT%H:%M:%SZ}" in text, text  # the moved occurrence's link
    assert f"@{cancelled:%Y-%m-%dT%H:%M:%SZ}" in text, text  # the cancelled one's
    # in words: the rule, and each exception's state on both sides
    assert "series 'Weekly sync' FREQ=WEEKLY" in text, text
    assert "Hybrid:  cancelled" in text and "Outlook: cancelled" in text, text
