"""patternedRecurrence (issue 3 item 4; recurrencepattern.md, recurrencerange.md,
outlook-schedule-recurring-events.md; graph-behaviour.md 2.7)."""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from roomd.sim.graph import recurrence as rec

from .conftest import ADELE, ROOM, World, dtz, fixture, same_shape, tomorrow_at

SNIPPETS = fixture("recurrence-pattern-and-range-snippets.json")


def parse(pattern: dict[str, Any], rng: dict[str, Any], zone: str = "UTC") -> rec.Recurrence:
    return rec.parse({"pattern": pattern, "range": rng}, date.fromisoformat(rng["startDate"]), zone)


def dates(pattern: dict[str, Any], start: str, count: int) -> list[date]:
    r = parse(pattern, {"type": "numbered", "startDate": start, "numberOfOccurrences": count})
    return list(rec.occurrence_dates(r))


def test_documented_weekly_example_ends_on_the_last_monday() -> None:
    """outlook-schedule-recurring-events.md: starts 2017-09-04 12:00 Pacific, last occurrence
    Monday 2017-12-25; 12:00 local throughout although DST ends on 2017-11-05."""
    raw = fixture("patternedrecurrence-weekly-enddate.json")["recurrence"]
    r = rec.parse(raw, date(2017, 9, 4), "Pacific Standard Time")
    first = datetime(2017, 9, 4, 12, tzinfo=ZoneInfo("America/Los_Angeles")).astimezone(UTC)
    starts = rec.expand(r, first)
    assert starts[-1].astimezone(ZoneInfo("America/Los_Angeles")).date() == date(2017, 12, 25)
    assert len(starts) == 17
    local_hours = {s.astimezone(ZoneInfo("America/Los_Angeles")).hour for s in starts}
    assert local_hours == {12}
    assert {s.hour for s in starts} == {19, 20}  # UTC shifts by the DST hour


def test_every_documented_pattern_snippet() -> None:
    """Each snippet of the concept page, expanded from a known start."""
    got = {k: dates(v["pattern"], "2017-04-02", 4) for k, v in SNIPPETS.items() if "pattern" in v}
    d = date.fromisoformat
    assert got["daily_every_day"][:2] == [d("2017-04-02"), d("2017-04-03")]
    assert got["daily_every_three_days"][1] == d("2017-04-05")
    assert got["weekly_every_thursday"][0] == d("2017-04-06")
    # biweekly Mon+Tue from Sunday 2017-04-02: weeks start on Sunday (firstDayOfWeek default)
    assert got["weekly_every_other_monday_tuesday"] == [
        d("2017-04-03"),
        d("2017-04-04"),
        d("2017-04-17"),
        d("2017-04-18"),
    ]
    assert got["absolutemonthly_15th"][0] == d("2017-04-15")
    assert got["absolutemonthly_quarterly_7th"][:2] == [d("2017-04-07"), d("2017-07-07")]
    assert got["relativemonthly_second_wednesday"][0] == d("2017-04-12")
    assert got["relativemonthly_first_thursday_or_friday"][:2] == [d("2017-04-06"), d("2017-05-04")]
    assert got["absoluteyearly_april_15"][:2] == [d("2017-04-15"), d("2018-04-15")]
    assert got["relativeyearly_last_wednesday_november"][0] == d("2017-11-29")


def test_ranges_numbered_enddate_noend() -> None:
    """graph-behaviour.md 2.7 range table, citing resources/recurrencerange.md
    and the outlook-schedule-recurring-events.md snippets: numbered counts occurrences, endDate
    is inclusive, noEnd never ends."""
    daily = {"type": "daily", "interval": 1}
    numbered = parse(daily, SNIPPETS["range_numbered_10"]["range"])
    assert len(list(rec.occurrence_dates(numbered))) == 10
    end = parse(daily, SNIPPETS["range_enddate_july_2017"]["range"])
    got = list(rec.occurrence_dates(end))
    assert got[-1] == date(2017, 7, 31)  # endDate is inclusive
    noend = parse(daily, SNIPPETS["range_noend_from_2017_05_15"]["range"])
    assert rec.last_date(noend) is None
    assert list(rec.occurrence_dates(noend, until=date(2017, 5, 20)))[-1] == date(2017, 5, 20)


def test_day_31_falls_on_the_last_day_of_short_months() -> None:
    got = dates({"type": "absoluteMonthly", "interval": 1, "dayOfMonth": 31}, "2025-01-31", 3)
    assert got == [date(2025, 1, 31), date(2025, 2, 28), date(2025, 3, 31)]


def test_server_normalises_what_it_echoes() -> None:
    """event-recurring-create-response.json: lower-case days, firstDayOfWeek, index, zeros."""
    raw = fixture("event-recurring-create-request.json")["recurrence"]
    r = rec.parse(raw, date.fromisoformat(raw["range"]["startDate"]), "Pacific Standard Time")
    echoed = r.as_graph()
    sample = fixture("event-recurring-create-response.json")["recurrence"]
    assert not same_shape(echoed, sample)
    assert echoed["pattern"]["daysOfWeek"] == ["monday"]
    assert echoed["pattern"]["firstDayOfWeek"] == "sunday"
    assert echoed["range"]["numberOfOccurrences"] == 0


@pytest.mark.parametrize(
    ("pattern", "rng", "needle"),
    [
        ({"type": "hourly", "interval": 1}, {"type": "noEnd", "startDate": "2025-01-01"}, "type"),
        (
            {"type": "daily", "interval": 0},
            {"type": "noEnd", "startDate": "2025-01-01"},
            "interval",
        ),
        (
            {"type": "weekly", "interval": 1},
            {"type": "noEnd", "startDate": "2025-01-01"},
            "daysOfWeek",
        ),
        (
            {"type": "daily", "interval": 1},
            {"type": "noEnd", "startDate": "2025-01-02"},
            "startDate",
        ),
        (
            {"type": "daily", "interval": 1},
            {"type": "numbered", "startDate": "2025-01-01"},
            "numberOf",
        ),
        (
            {"type": "absoluteYearly", "interval": 1, "dayOfMonth": 5},
            {"type": "noEnd", "startDate": "2025-01-01"},
            "month",
        ),
    ],
)
def test_invalid_recurrences_name_the_bad_property(
    pattern: dict[str, Any], rng: dict[str, Any], needle: str
) -> None:
    with pytest.raises(rec.RecurrenceError, match=needle):
        rec.parse({"pattern": pattern, "range": rng}, date(2025, 1, 1), "UTC")


DAYS = st.lists(st.sampled_from(rec.DAYS), min_size=1, max_size=7, unique=True)


@settings(max_examples=150, deadline=None)
@given(
    kind=st.sampled_from(rec.PATTERN_TYPES),
    interval=st.integers(1, 4),
    days=DAYS,
    index=st.sampled_from(rec.INDEXES),
    dom=st.integers(1, 31),
    month=st.integers(1, 12),
    start=st.dates(date(2020, 1, 1), date(2030, 12, 31)),
    count=st.integers(1, 30),
)
def test_every_occurrence_matches_its_pattern(
    kind: str,
    interval: int,
    days: list[str],
    index: str,
    dom: int,
    month: int,
    start: date,
    count: int,
) -> None:
    """Invariants for all inputs: exactly ``count`` dates, strictly increasing, none before
    startDate, each on a day the pattern allows."""
    pattern = {
        "type": kind,
        "interval": interval,
        "daysOfWeek": days,
        "index": index,
        "dayOfMonth": dom,
        "month": month,
    }
    got = dates(pattern, start.isoformat(), count)
    assert len(got) == count
    assert got == sorted(set(got))
    assert got[0] >= start
    for d in got:
        sun0 = (d.weekday() + 1) % 7
        last = calendar.monthrange(d.year, d.month)[1]
        if kind == "weekly" or kind.startswith("relative"):
            assert rec.DAYS[sun0] in days
        if kind.startswith("absolute"):
            assert d.day == min(dom, last)
        if kind.endswith("Yearly"):
            assert d.month == month
        if kind == "daily":
            assert (d - start).days % interval == 0


@settings(max_examples=50, deadline=None)
@given(start=st.dates(date(2020, 1, 1), date(2030, 12, 31)), hour=st.integers(0, 23))
def test_wall_clock_time_survives_dst(start: date, hour: int) -> None:
    """Occurrences are built in the recurrence zone, so local time never drifts (2.7)."""
    zone = ZoneInfo("Europe/London")
    r = parse(
        {"type": "weekly", "interval": 1, "daysOfWeek": [rec.DAYS[(start.weekday() + 1) % 7]]},
        {"type": "numbered", "startDate": start.isoformat(), "numberOfOccurrences": 60},
        "GMT Standard Time",
    )
    first = datetime.combine(start, datetime.min.time(), zone).replace(hour=hour).astimezone(UTC)
    starts = rec.expand(r, first)
    expected_hour = first.astimezone(zone).hour
    assert {s.astimezone(zone).hour for s in starts} <= {expected_hour, (expected_hour + 1) % 24}
    assert sum(1 for s in starts if s.astimezone(zone).hour == expected_hour) >= 58


def weekly_series(world: World, start: datetime, count: int = 4, **kw: Any) -> dict[str, Any]:
    day = rec.DAYS[(start.weekday() + 1) % 7]
    return world.meeting(
        start,
        recurrence={
            "pattern": {
                "type": "weekly",
                "interval": 1,
                "daysOfWeek": [day],
                "firstDayOfWeek": "sunday",
            },
            "range": {
                "type": "numbered",
                "startDate": start.date().isoformat(),
                "numberOfOccurrences": count,
            },
        },
        **kw,
    )


async def create(world: World, body: dict[str, Any], mailbox: str = ADELE) -> dict[str, Any]:
    r = await world.graph.post(f"/users/{mailbox}/events", json=body)
    assert r.status_code == 201, r.text
    world.sim.control.run_rba()
    return dict(r.json())


async def instances(
    world: World, mailbox: str, master_id: str, start: datetime
) -> list[dict[str, Any]]:
    r = await world.graph.get(
        f"/users/{mailbox}/events/{master_id}/instances",
        params={
            "startDateTime": (start - timedelta(days=1)).isoformat(),
            "endDateTime": (start + timedelta(days=60)).isoformat(),
        },
    )
    assert r.status_code == 200, r.text
    return list(r.json()["value"])


async def test_series_master_and_instances(world: World) -> None:
    """user-post-events.md Example 3 (seriesMaster) and event-list-instances.md."""
    start = tomorrow_at(9)
    master = await create(world, weekly_series(world, start))
    assert master["type"] == "seriesMaster"
    assert master["seriesMasterId"] is None
    assert not same_shape(master, fixture("event-recurring-create-response.json"), subset=True)
    found = await instances(world, ADELE, master["id"], start)
    assert [i["type"] for i in found] == ["occurrence"] * 4
    assert {i["seriesMasterId"] for i in found} == {master["id"]}
    assert len({i["iCalUId"] for i in found}) == 4  # one per occurrence (event.md)
    assert not same_shape(
        found[0], fixture("event-instances-response.json")["value"][1], subset=True
    )
    occurrence = (await world.get(ADELE, found[1]["id"])).json()
    assert occurrence["type"] == "occurrence"
    assert occurrence["start"] == found[1]["start"]


async def test_patching_an_occurrence_makes_an_exception_that_reaches_the_room(
    world: World,
) -> None:
    """graph-behaviour.md 2.7 "Change one occurrence", citing
    event-list-instances.md (the sample's exception, "Changing meeting from 4/15 to 4/16") and
    user-post-events.md ("If the meeting is rescheduled, the server automatically updates the
    event in the resource's calendar")."""
    start = tomorrow_at(9)
    master = await create(world, weekly_series(world, start))
    second = (await instances(world, ADELE, master["id"], start))[1]
    moved = start + timedelta(days=8, hours=2)
    r = await world.graph.patch(
        f"/users/{ADELE}/events/{second['id']}",
        json={
            "start": {"dateTime": moved.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
            "end": {
                "dateTime": (moved + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S"),
                "timeZone": "UTC",
            },
        },
    )
    assert r.status_code == 200, r.text
    assert r.json()["type"] == "exception"
    world.sim.control.run_rba()
    room_master = (await world.events(ROOM))[0]
    kinds = sorted(i["type"] for i in await instances(world, ROOM, room_master["id"], start))
    assert kinds == ["exception", "occurrence", "occurrence", "occurrence"]


async def test_moving_an_occurrence_past_its_neighbour_is_refused(world: World) -> None:
    """event-update.md: ErrorOccurrenceCrossingBoundary."""
    start = tomorrow_at(9)
    master = await create(world, weekly_series(world, start))
    second = (await instances(world, ADELE, master["id"], start))[1]
    moved = start + timedelta(days=14, hours=1)
    r = await world.graph.patch(
        f"/users/{ADELE}/events/{second['id']}",
        json={
            "start": {"dateTime": moved.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
            "end": {
                "dateTime": (moved + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S"),
                "timeZone": "UTC",
            },
        },
    )
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "ErrorOccurrenceCrossingBoundary"
    assert not same_shape(
        r.json(), fixture("synthesized/error-400-occurrence-crossing-boundary.json")
    )


async def test_cancelled_occurrence_leaves_instances_and_the_room(world: World) -> None:
    """event-cancel.md on an occurrence id; event.md: instances exclude cancelled ones."""
    start = tomorrow_at(9)
    master = await create(world, weekly_series(world, start))
    third = (await instances(world, ADELE, master["id"], start))[2]
    r = await world.graph.post(f"/users/{ADELE}/events/{third['id']}/cancel", json={})
    assert r.status_code == 202
    world.sim.control.run_rba()
    assert third["id"] not in [i["id"] for i in await instances(world, ADELE, master["id"], start)]
    room_master = (await world.events(ROOM))[0]
    assert len(await instances(world, ROOM, room_master["id"], start)) == 3


async def test_series_with_a_conflict_is_declined_entirely_by_default(world: World) -> None:
    """Set-CalendarProcessing: ConflictPercentageAllowed/MaximumConflictInstances 0 -> decline."""
    start = tomorrow_at(9)
    await world.book(start=start + timedelta(days=14), organizer="meganb@contoso.com")
    master = await create(world, weekly_series(world, start))
    org = (await world.get(ADELE, master["id"])).json()
    assert [a["status"]["response"] for a in org["attendees"]] == ["declined"]
    assert len(await world.events(ROOM)) == 1  # only Megan's meeting


async def test_series_within_conflict_allowance_declines_only_that_occurrence(world: World) -> None:
    """graph-behaviour.md 2.7 "Series versus room policy" and checklist 7.5,
    citing Set-CalendarProcessing.md (ConflictPercentageAllowed / MaximumConflictInstances):
    a series within the allowance is accepted and its conflicting occurrence declined alone."""
    start = tomorrow_at(9)
    world.sim.control.set_calendar_processing(
        ROOM, MaximumConflictInstances=1, ConflictPercentageAllowed=50
    )
    await world.book(start=start + timedelta(days=14), organizer="meganb@contoso.com")
    await create(world, weekly_series(world, start))
    room_series = next(e for e in await world.events(ROOM) if e["type"] == "seriesMaster")
    found = await instances(world, ROOM, room_series["id"], start)
    assert len(found) == 3


async def test_no_end_series_is_declined_by_the_scheduling_horizon(world: World) -> None:
    """EnforceSchedulingHorizon $true: a series running past BookingWindowInDays is declined;
    $false: accepted, cut at the window."""
    start = tomorrow_at(9)
    body = weekly_series(world, start)
    body["recurrence"]["range"] = {"type": "noEnd", "startDate": start.date().isoformat()}
    await create(world, body)
    assert await world.events(ROOM) == []
    world.sim.control.set_calendar_processing(ROOM, EnforceSchedulingHorizon=False)
    body["subject"] = "again"
    await create(world, body)
    room = await world.only_event(ROOM)
    assert room["recurrence"]["range"]["type"] == "endDate"


async def test_series_in_a_dst_zone_keeps_local_time_in_calendar_view(world: World) -> None:
    """Occurrences expanded in the event's zone (DST-correct), reported in UTC."""
    world.sim.control.set_clock(datetime(2026, 3, 20, tzinfo=UTC))
    world.graph.headers["Authorization"] = f"Bearer {world.sim.control.token()}"
    body = world.meeting(datetime(2026, 3, 23, 9), room=None)
    body["start"] = {"dateTime": "2026-03-23T09:00:00", "timeZone": "GMT Standard Time"}
    body["end"] = {"dateTime": "2026-03-23T10:00:00", "timeZone": "GMT Standard Time"}
    body["recurrence"] = {
        "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday"]},
        "range": {"type": "numbered", "startDate": "2026-03-23", "numberOfOccurrences": 2},
    }
    await create(world, body)
    found = await world.view(
        ADELE, datetime(2026, 3, 22, tzinfo=UTC), datetime(2026, 4, 5, tzinfo=UTC)
    )
    assert [f["start"]["dateTime"] for f in found] == [
        "2026-03-23T09:00:00.0000000",  # GMT
        "2026-03-30T08:00:00.0000000",  # BST: still 09:00 in London
    ]


async def test_ending_a_series_early_keeps_earlier_exceptions(world: World) -> None:
    """ "This and following" as a shorter range keeps the exceptions still inside it; a new
    time drops them all [INF: Outlook warns that changes to occurrences will be lost]."""
    start = tomorrow_at(9)
    master = await create(world, weekly_series(world, start, count=4))
    found = await instances(world, ADELE, master["id"], start)
    url = f"/users/{ADELE}/events"
    await world.graph.patch(f"{url}/{found[0]['id']}", json={"subject": "First is special"})
    await world.graph.patch(f"{url}/{found[3]['id']}", json={"subject": "Last is special"})
    rec_body = master["recurrence"]
    rec_body["range"]["numberOfOccurrences"] = 2
    r = await world.graph.patch(f"{url}/{master['id']}", json={"recurrence": rec_body})
    assert r.status_code == 200, r.text
    kinds = [i["type"] for i in await instances(world, ADELE, master["id"], start)]
    assert kinds == ["exception", "occurrence"]
    later = start + timedelta(hours=2)
    await world.graph.patch(
        f"{url}/{master['id']}",
        json={"start": dtz(later), "end": dtz(later + timedelta(hours=1))},
    )
    kinds = [i["type"] for i in await instances(world, ADELE, master["id"], start)]
    assert kinds == ["occurrence", "occurrence"]


async def test_room_declining_one_occurrence_shows_on_the_organizers_instance(world: World) -> None:
    """graph-behaviour.md 2.7 (lab notes): a room declining one occurrence sends no message and
    the organizer sees Declined for that date; the rest of the series stays accepted."""
    start = tomorrow_at(9)
    master = await create(world, weekly_series(world, start, count=3))
    room_master = (await world.events(ROOM))[0]
    second = (await instances(world, ROOM, room_master["id"], start))[1]
    r = await world.graph.post(
        f"/users/{ROOM}/events/{second['id']}/decline", json={"sendResponse": False}
    )
    assert r.status_code == 202
    assert len(await instances(world, ROOM, room_master["id"], start)) == 2
    org = await instances(world, ADELE, master["id"], start)
    statuses = [(i["type"], i["attendees"][0]["status"]["response"]) for i in org]
    assert statuses == [
        ("occurrence", "accepted"),
        ("exception", "declined"),
        ("occurrence", "accepted"),
    ]


ORACLE_DAYS = st.lists(st.sampled_from(rec.DAYS), min_size=1, max_size=7, unique=True)


@settings(max_examples=300, deadline=None)
@given(
    kind=st.sampled_from(rec.PATTERN_TYPES),
    interval=st.integers(1, 5),
    days=ORACLE_DAYS,
    index=st.sampled_from(rec.INDEXES),
    dom=st.integers(1, 28),
    month=st.integers(1, 12),
    fdow=st.sampled_from(rec.DAYS),
    start=st.dates(date(2020, 1, 1), date(2030, 12, 31)),
    count=st.integers(1, 25),
)
def test_expansion_agrees_with_rfc5545_via_dateutil(
    kind: str,
    interval: int,
    days: list[str],
    index: str,
    dom: int,
    month: int,
    fdow: str,
    start: date,
    count: int,
) -> None:
    """An independent oracle: the same rule written as RFC 5545 and expanded by dateutil (which
    roomd's client uses; the simulator must not). Day-of-month is kept <= 28, where RFC 5545
    (skip the month) and Outlook (last day of the month) agree."""
    from dateutil import rrule

    weekday = {d: getattr(rrule, d[:2].upper()) for d in rec.DAYS}
    setpos = {"first": 1, "second": 2, "third": 3, "fourth": 4, "last": -1}[index]
    freq = {
        "daily": rrule.DAILY,
        "weekly": rrule.WEEKLY,
        "absoluteMonthly": rrule.MONTHLY,
        "relativeMonthly": rrule.MONTHLY,
        "absoluteYearly": rrule.YEARLY,
        "relativeYearly": rrule.YEARLY,
    }[kind]
    kw: dict[str, Any] = {"interval": interval, "count": count, "wkst": weekday[fdow]}
    if kind == "weekly":
        kw["byweekday"] = [weekday[d] for d in days]
    if kind.startswith("relative"):
        kw["byweekday"] = [weekday[d] for d in days]
        kw["bysetpos"] = setpos
    if kind.startswith("absolute"):
        kw["bymonthday"] = dom
    if kind.endswith("Yearly"):
        kw["bymonth"] = month
    expected = [
        d.date()
        for d in rrule.rrule(freq, dtstart=datetime.combine(start, datetime.min.time()), **kw)
    ]
    pattern = {
        "type": kind,
        "interval": interval,
        "daysOfWeek": days,
        "index": index,
        "dayOfMonth": dom,
        "month": month,
        "firstDayOfWeek": fdow,
    }
    assert dates(pattern, start.isoformat(), count) == expected


PACIFIC = {"Prefer": 'outlook.timezone="Pacific Standard Time"'}


def utc_z(when: datetime) -> str:
    """resources/event.md ``originalStart``: "ISO 8601 format and is always in UTC. For example,
    midnight UTC on Jan 1, 2014 is 2014-01-01T00:00:00Z"."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_an_occurrences_original_start_is_its_start(world: World) -> None:
    """resources/event.md: ``originalStart`` is "the start time of an event when it is initially
    created as an occurrence ... in a recurring series", in UTC whatever ``Prefer:
    outlook.timezone`` asks for; in /instances, /calendarView and GET, and by ``$select``."""
    start = tomorrow_at(9)
    master = await create(world, weekly_series(world, start))
    found = await instances(world, ADELE, master["id"], start)
    assert [i["originalStart"] for i in found] == [
        utc_z(start + timedelta(weeks=n)) for n in range(4)
    ]
    view = await world.view(ADELE, start - timedelta(days=1), start + timedelta(days=30))
    assert [i["originalStart"] for i in view] == [i["originalStart"] for i in found]
    r = await world.graph.get(f"/users/{ADELE}/events/{found[1]['id']}", headers=PACIFIC)
    assert r.json()["start"]["timeZone"] == "Pacific Standard Time"
    assert r.json()["originalStart"] == utc_z(start + timedelta(weeks=1))
    r = await world.graph.get(
        f"/users/{ADELE}/events/{master['id']}/instances",
        params={
            "startDateTime": start.isoformat(),
            "endDateTime": (start + timedelta(days=1)).isoformat(),
            "$select": "originalStart",
        },
    )
    assert r.status_code == 200, r.text
    assert [set(i) for i in r.json()["value"]] == [{"@odata.etag", "id", "originalStart"}]
    assert r.json()["value"][0]["originalStart"] == utc_z(start)


async def test_an_exceptions_original_start_stays_its_occurrences_after_a_move(
    world: World,
) -> None:
    """resources/event.md: an exception's ``originalStart`` is the start it had "when it is
    initially created as an occurrence or exception", in UTC: a PATCH that moves it changes
    ``start``, not ``originalStart``; the same in the PATCH answer, GET, /instances,
    /calendarView, the calendarView delta item and the room's copy."""
    start = tomorrow_at(9)
    master = await create(world, weekly_series(world, start))
    second = (await instances(world, ADELE, master["id"], start))[1]
    original = utc_z(start + timedelta(weeks=1))
    assert second["originalStart"] == original
    moved = start + timedelta(days=8, hours=2)
    r = await world.graph.patch(
        f"/users/{ADELE}/events/{second['id']}",
        json={"start": dtz(moved), "end": dtz(moved + timedelta(hours=1))},
        headers=PACIFIC,
    )
    assert r.status_code == 200, r.text
    patched = r.json()
    assert patched["type"] == "exception"
    assert patched["originalStart"] == original
    assert patched["start"]["timeZone"] == "Pacific Standard Time"
    assert (await world.get(ADELE, patched["id"])).json()["originalStart"] == original
    found = await instances(world, ADELE, master["id"], start)
    exc = next(i for i in found if i["type"] == "exception")
    assert (exc["originalStart"], exc["start"]["dateTime"][:19]) == (
        original,
        moved.strftime("%Y-%m-%dT%H:%M:%S"),
    )
    view = await world.view(ADELE, start - timedelta(days=1), start + timedelta(days=30))
    assert next(i for i in view if i["type"] == "exception")["originalStart"] == original
    items, _, _ = await world.delta_round(
        world.delta_url(ADELE, start - timedelta(days=1), start + timedelta(days=30))
    )
    assert next(i for i in items if i["type"] == "exception")["originalStart"] == original
    world.sim.control.run_rba()
    room_master = (await world.events(ROOM))[0]
    room_found = await instances(world, ROOM, room_master["id"], start)
    assert next(i for i in room_found if i["type"] == "exception")["originalStart"] == original


async def test_single_instances_series_masters_and_bare_occurrences_carry_no_original_start(
    world: World,
) -> None:
    """resources/event.md: ``originalStart`` "is not returned for events that are single
    instances", and a series master is no occurrence or exception; ``$select=originalStart``
    still names a property of the event type (200, without it). calendarView delta's bare
    occurrences keep their seven properties (graph-behaviour.md 1.4)."""
    start = tomorrow_at(9)
    single = await world.book(start=tomorrow_at(7), room=None)
    master = await create(world, weekly_series(world, start, room=None))
    assert "originalStart" not in single and "originalStart" not in master
    for event in (single, master):
        assert "originalStart" not in (await world.get(ADELE, event["id"])).json()
    assert all("originalStart" not in e for e in await world.events(ADELE))
    selected = await world.events(ADELE, **{"$select": "originalStart,subject"})
    assert [set(e) for e in selected] == [{"@odata.etag", "id", "subject"}] * 2
    view = await world.view(ADELE, start - timedelta(days=1), start + timedelta(days=30))
    assert [("originalStart" in i, i["type"]) for i in view[:2]] == [
        (False, "singleInstance"),
        (True, "occurrence"),
    ]
    items, _, _ = await world.delta_round(
        world.delta_url(ADELE, start - timedelta(days=1), start + timedelta(days=30))
    )
    assert {i["type"] for i in items} == {"singleInstance", "occurrence"}
    assert all("originalStart" not in i for i in items)
