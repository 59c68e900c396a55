"""Series in another zone than the room's (issue 8, scenario 7: "Recurrence is evaluated in the
room's zone"), end to end through both simulators and a real ``roomd run`` process: Hybrid
evaluates every rule in the room's zone (docs/hybrid-api.md), Outlook in the series' own
(``recurrenceTimeZone``, Microsoft Graph resources/recurrencerange.md), so an organizer in New
York booking Room 4A in London has occurrences that fall on another calendar day, or at another
hour in the weeks when only one of the two zones has changed its clocks."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from support.sync_world import ADELE, MEGAN, ROOM, SyncWorld, hybrid_time, wait_for
from sync.test_series_more import (
    LONDON,
    NEW_YORK,
    WINDOWS,
    Slots,
    all_instances,
    hybrid_slots,
    local,
    occurrences_of,
    open_outbox,
    organizer_master,
    room_answers,
    room_slots,
    roomd,
    series_bookings,
    settle,
    settled,
)

NY = ZoneInfo(NEW_YORK)
LON = ZoneInfo(LONDON)


def long_window(world: SyncWorld) -> None:
    """The room takes bookings a year ahead (Set-CalendarProcessing BookingWindowInDays)."""
    world.sims.call(
        lambda: world.sims.graph.control.set_calendar_processing(ROOM, BookingWindowInDays=400)
    )


def add_months(day: datetime, months: int) -> datetime:
    month = day.month - 1 + months
    return day.replace(year=day.year + month // 12, month=month % 12 + 1)


def last_audit(world: SyncWorld, lines: int = 14) -> list[tuple[str, str, str]]:
    """The audit trail's last lines, all bookings (for a failure's message)."""
    db = sqlite3.connect(world.directory / "roomd.sqlite3")
    try:
        rows = db.execute(
            "SELECT booking, action, reason FROM audit ORDER BY id DESC LIMIT ?", (lines,)
        ).fetchall()
    finally:
        db.close()
    return rows[::-1]


def quiet(world: SyncWorld) -> None:
    """Settled, and two more rounds plan and write nothing: nothing is retried for ever."""
    settled(world)
    daemon = world.daemon
    assert daemon is not None
    mark = daemon.mark()
    settle(world, 2.5)
    daemon.mark()
    rounds = [x for x in daemon.lines[mark:] if x.get("event") == "room_round"]
    assert len(rounds) >= 2
    busy = [r for r in rounds if r.get("planned") or r.get("written")]
    assert not busy, (busy, last_audit(world))
    assert [row for row in open_outbox(world) if row[1] in ("dead", "failed")] == []


def changes_counted(world: SyncWorld, outcome: str, direction: str = "outlook_to_hybrid") -> float:
    """``roomd_changes_total`` for Room 4A with ``outcome`` and ``direction``."""
    assert world.daemon is not None
    metrics = httpx.get(world.daemon.url("/metrics")).text
    return sum(
        float(x.split()[-1])
        for x in metrics.splitlines()
        if x.startswith("roomd_changes_total{")
        and f'outcome="{outcome}"' in x
        and f'direction="{direction}"' in x
        and ROOM in x
    )


# --- (a) a monthly or yearly rule that falls on another day in the room's zone ------------------


def monthly_from_new_york(count: int) -> tuple[datetime, Slots]:
    """20:00 in New York on the 15th of each month from next month: 01:00 (or 00:00) on the
    16th in London."""
    now = datetime.now(UTC).astimezone(NY)
    wall = add_months(now.replace(day=15, hour=20, minute=0, second=0, microsecond=0), 1)
    wanted = []
    for n in range(count):
        start = local(add_months(wall, n).replace(tzinfo=None), NEW_YORK)
        wanted.append((start, start + timedelta(hours=1)))
    return wall.replace(tzinfo=None), wanted


def test_a_monthly_series_on_the_next_day_in_the_rooms_zone_is_booked_in_hybrid(
    world: SyncWorld,
) -> None:
    long_window(world)
    world.start()
    wall, wanted = monthly_from_new_york(6)
    assert {s.astimezone(LON).day for s, _ in wanted} == {16}
    lo, hi = wanted[0][0] - timedelta(days=1), wanted[-1][1] + timedelta(days=1)
    master = world.book_series(
        ADELE,
        wall,
        subject="Monthly from New York",
        zone=WINDOWS[NEW_YORK],
        count=6,
        pattern={"type": "absoluteMonthly", "interval": 1, "dayOfMonth": 15},
    )
    wait_for(lambda: room_slots(world, lo, hi) == wanted, "the room's series")
    wait_for(lambda: hybrid_slots(world, lo, hi) == wanted, "every occurrence held in Hybrid")
    series = series_bookings(world)
    assert len(series) == 1
    assert hybrid_time(series[0]["start"]) == wanted[0][0]
    quiet(world)
    assert hybrid_slots(world, lo, hi) == wanted
    assert occurrences_of(world, ADELE, master["iCalUId"], lo, hi) == wanted


def test_a_yearly_series_on_the_previous_day_in_the_rooms_zone_is_booked_in_hybrid(
    world: SyncWorld,
) -> None:
    """A Tokyo organizer's 07:00 on the 1st of next month, every year: 22:00 (or 23:00 in
    summer) the day before, the last day of the month before, in London."""
    long_window(world)
    world.start()
    tokyo = ZoneInfo("Asia/Tokyo")
    now = datetime.now(UTC).astimezone(tokyo)
    wall = add_months(now.replace(day=1, hour=7, minute=0, second=0, microsecond=0), 1)
    wanted = []
    for n in range(2):
        start = wall.replace(year=wall.year + n).astimezone(UTC)
        wanted.append((start, start + timedelta(hours=1)))
    assert wanted[0][0].astimezone(LON).day != 1
    lo, hi = wanted[0][0] - timedelta(days=1), wanted[0][1] + timedelta(days=1)
    world.book_series(
        ADELE,
        wall.replace(tzinfo=None),
        subject="Yearly from Tokyo",
        zone="Tokyo Standard Time",
        count=2,
        pattern={"type": "absoluteYearly", "interval": 1, "dayOfMonth": 1, "month": wall.month},
    )
    wait_for(lambda: room_slots(world, lo, hi) == wanted[:1], "the room's series")
    wait_for(lambda: hybrid_slots(world, lo, hi) == wanted[:1], "the occurrence held in Hybrid")
    series = series_bookings(world)
    assert len(series) == 1
    assert hybrid_time(series[0]["start"]) == wanted[0][0]
    quiet(world)


def test_a_rule_hybrid_cannot_express_in_the_rooms_zone_fails_clearly_once(
    world: SyncWorld,
) -> None:
    """The 28th at 20:00 in New York is the 29th in London, or the 1st of March when February
    has no 29th: no single RFC 5545 rule in London's zone has those days. roomd writes nothing
    to Hybrid (a create Hybrid refuses with 422 would be a dead write), says why in the audit
    trail, ``/readyz`` and a metric, and does not try again every round."""
    long_window(world)
    daemon = world.start()
    now = datetime.now(UTC).astimezone(NY)
    wall = add_months(now.replace(day=28, hour=20, minute=0, second=0, microsecond=0), 1)
    master = world.book_series(
        ADELE,
        wall.replace(tzinfo=None),
        subject="The 28th from New York",
        zone=WINDOWS[NEW_YORK],
        count=12,
        pattern={"type": "absoluteMonthly", "interval": 1, "dayOfMonth": 28},
    )
    uid = master["iCalUId"]
    wait_for(
        lambda: any("not synced" in line for line in world.audit(f"o:{uid}")),
        "the audit line naming the series and why",
    )
    trail = world.audit(f"o:{uid}")
    line = next(x for x in trail if "not synced" in x)
    assert "Europe/London" in line and "BYMONTHDAY=28" in line, trail
    problem = httpx.get(daemon.url("/readyz")).json()["rooms"][ROOM]["problem"] or ""
    assert "The 28th from New York" in problem or uid in problem, problem
    assert changes_counted(world, "not_expressible") >= 1
    assert series_bookings(world) == []
    assert open_outbox(world) == []  # no write that can only fail
    settle(world, 2)
    assert len([x for x in world.audit(f"o:{uid}") if "not synced" in x]) == 1  # said once
    # `roomd explain` finds it by its iCalUId, though roomd never linked it, and says why
    told = roomd("explain", uid, config=daemon.config)
    assert told.returncode == 0, told.stderr
    assert "not synced" in told.stdout and "BYMONTHDAY=28" in told.stdout, told.stdout
    assert "Europe/London" in told.stdout, told.stdout


# --- (b) a shifted week whose rule-instant is taken in Hybrid --------------------------------


def cross_zone_weekly(world: SyncWorld) -> tuple[datetime, Slots, datetime, datetime]:
    """A New York organizer's 09:00 weekly meeting in Room 4A (London) across the March clock
    changes: 14:00 in London, 13:00 in the weeks New York has changed its clocks and London
    not yet."""
    now = datetime.now(UTC)
    march = datetime(now.year + 1 if now.month > 1 else now.year, 3, 1, 9)
    wall = march - timedelta(days=march.weekday())  # a Monday
    first = local(wall, NEW_YORK)
    weeks = [local(wall + timedelta(weeks=n), NEW_YORK) for n in range(6)]
    wanted = [(s, s + timedelta(hours=1)) for s in weeks]
    return wall, wanted, first - timedelta(days=1), wanted[-1][1] + timedelta(days=1)


def test_a_shifted_week_whose_rule_instant_is_taken_is_declined_saying_why(
    world: SyncWorld,
) -> None:
    """In a week the zones disagree, Hybrid's rule puts the occurrence at 14:00 London, the
    organizer's is at 13:00, held by an exception of the 14:00 occurrence. A booking holds
    14:00-15:00 that week: Hybrid takes no exception of an occurrence the series lacks
    (docs/hybrid-api.md), so the week cannot be held at 13:00 inside the series. Not fixed
    (it needs a booking of its own for that week): the room declines that week saying so
    (not "the room is already booked" at a time that is free), the audit trail names the
    zone, ``roomd_changes_total{outcome="not_expressible"}`` counts it, the rest of the
    series syncs, and no write is left to fail or retry."""
    long_window(world)
    world.start()
    wall, wanted, lo, hi = cross_zone_weekly(world)
    shifted = [s for s, _ in wanted if s.astimezone(LON).hour == 13]
    assert shifted, wanted
    week = shifted[0]
    rule_instant = week + timedelta(hours=1)
    held = world.hybrid_book(MEGAN, rule_instant, summary="Held in Hybrid at 14:00 London")
    other = (rule_instant, rule_instant + timedelta(hours=1))
    wait_for(lambda: room_slots(world, lo, hi) == [other], "Megan's booking in the room")
    master = world.book_series(
        ADELE, wall, subject="From New York", zone=WINDOWS[NEW_YORK], count=6
    )
    uid = master["iCalUId"]
    rest = [s for s in wanted if s[0] != week]
    wait_for(lambda: hybrid_slots(world, lo, hi) == sorted([*rest, other]), "the rest in Hybrid")
    wait_for(
        lambda: room_slots(world, lo, hi) == sorted([*rest, other]), "the room declining the week"
    )
    quiet(world)
    assert occurrences_of(world, ADELE, uid, lo, hi) == wanted  # the organizer keeps it
    assert not world.booking(held["_id"])["canceled"]
    declined = [x for x in world.audit(f"o:{uid}") if x.startswith("room_decline:")]
    assert len(declined) == 1, world.audit(f"o:{uid}")
    assert f"{week:%Y-%m-%d %H:%M}" in declined[0]
    assert "room's time zone (Europe/London)" in declined[0] and held["_id"] in declined[0]
    assert changes_counted(world, "not_expressible") == 1
    answers = room_answers(world, ADELE, master["id"], lo, hi)
    assert answers.pop(week) == "declined"
    assert set(answers.values()) == {"accepted"}, answers


# --- (c) a Hybrid member's edit of a cross-zone series ----------------------------------------


def outlook_master(world: SyncWorld, subject: str) -> dict[str, Any]:
    return organizer_master(world, ADELE, subject)


def test_a_hybrid_edit_of_a_cross_zone_series_keeps_the_organizers_zone(
    world: SyncWorld,
) -> None:
    """A member retitles, then lengthens, the New York organizer's series in Hybrid: Outlook's
    series takes the new title and end, and keeps its New York zone and pattern (its occurrences
    stay at 09:00 New York time, also in the weeks London disagrees)."""
    long_window(world)
    world.start()
    wall, wanted, lo, hi = cross_zone_weekly(world)
    master = world.book_series(
        ADELE, wall, subject="From New York", zone=WINDOWS[NEW_YORK], count=6
    )
    uid = master["iCalUId"]
    wait_for(lambda: hybrid_slots(world, lo, hi) == wanted, "the Hybrid series")
    settled(world)
    series = series_bookings(world)[0]

    world.hybrid_call(lambda: world.hybrid.update_booking(series["_id"], summary="Renamed"))
    wait_for(lambda: outlook_master(world, "Renamed"), "the new title in Outlook")
    settled(world)
    renamed = outlook_master(world, "Renamed")
    assert renamed["recurrence"] == master["recurrence"]
    assert renamed["start"] == master["start"] and renamed["end"] == master["end"]
    assert occurrences_of(world, ADELE, uid, lo, hi) == wanted

    first = hybrid_time(series["start"])
    world.hybrid_call(
        lambda: world.hybrid.update_booking(series["_id"], end=first + timedelta(minutes=90))
    )
    longer = [(s, s + timedelta(minutes=90)) for s, _ in wanted]
    wait_for(lambda: occurrences_of(world, ADELE, uid, lo, hi) == longer, "the longer series")
    quiet(world)
    after = outlook_master(world, "Renamed")
    assert after["recurrence"] == master["recurrence"]
    assert after["start"]["timeZone"] == master["start"]["timeZone"]
    assert hybrid_slots(world, lo, hi) == longer
    assert room_slots(world, lo, hi) == longer
    # the weeks the zones disagree: Hybrid's children carry the series' new title, and no
    # occurrence in Outlook has one of its own
    kids = [b for b in world.bookings() if b.get("parent") == series["_id"]]
    assert len(kids) == 2 and {k["summary"] for k in kids} == {"Renamed"}, kids
    subjects = {i["subject"] for i in all_instances(world, ADELE, master["id"], lo, hi)}
    assert subjects == {"Renamed"}

    # retimed an hour later in Hybrid: 10:00 New York time, every week
    world.hybrid_call(
        lambda: world.hybrid.update_booking(
            series["_id"],
            start=first + timedelta(hours=1),
            end=first + timedelta(hours=1, minutes=90),
        )
    )
    later = [(s + timedelta(hours=1), e + timedelta(hours=1)) for s, e in longer]
    wait_for(lambda: hybrid_slots(world, lo, hi) == later, "every week at 10:00 in Hybrid")
    wait_for(lambda: occurrences_of(world, ADELE, uid, lo, hi) == later, "the series at 10:00")
    wait_for(lambda: room_slots(world, lo, hi) == later, "the room's copy at 10:00")
    quiet(world)
    retimed = outlook_master(world, "Renamed")
    assert retimed["recurrence"]["range"]["recurrenceTimeZone"] == WINDOWS[NEW_YORK]
    assert retimed["recurrence"]["pattern"] == master["recurrence"]["pattern"]
    assert hybrid_slots(world, lo, hi) == later
    assert room_slots(world, lo, hi) == later
    assert {k["summary"] for k in world.live_bookings() if k.get("parent")} == {"Renamed"}
