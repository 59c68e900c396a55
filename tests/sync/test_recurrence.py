"""Recurring series: Graph's patternedRecurrence <-> Hybrid's RRULE, and their occurrences.

Each pattern type Graph documents (docs/graph-behaviour.md 2.7; recurrence-pattern-and-range-
snippets.json) is mapped to an RRULE and back under every range type, and its occurrences are
checked against two oracles that share nothing with roomd.sync.recurrence: dates written out by
hand from a calendar (Microsoft's own example: the weekly-enddate series' last occurrence is
Monday 2017-12-25), and python-dateutil's ``rrulestr`` over the same RRULE text.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from dateutil.rrule import rrulestr
from hypothesis import given, settings
from hypothesis import strategies as st

from roomd.sync import zones
from roomd.sync.recurrence import (
    graph_from_rrule,
    graph_occurrences,
    normalize_graph,
    occurrences,
    rrule_from_graph,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "graph"


def fixture(name: str) -> Any:
    """A Microsoft sample under tests/fixtures/graph (tests/fixtures/graph/README.md)."""
    return json.loads((FIXTURES / name).read_text())


SNIPPETS = fixture("recurrence-pattern-and-range-snippets.json")


def _snippet(name: str) -> dict[str, Any]:
    pattern: dict[str, Any] = SNIPPETS[name]["pattern"]
    return pattern


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _days(*texts: str) -> list[date]:
    return [date.fromisoformat(t) for t in texts]


# ---------------------------------------------------------------------------------------------
# zones


@pytest.mark.parametrize(
    ("windows", "iana"),
    [
        ("Pacific Standard Time", "America/Los_Angeles"),
        ("W. Europe Standard Time", "Europe/Berlin"),
        ("Romance Standard Time", "Europe/Paris"),
        ("Eastern Standard Time", "America/New_York"),
        ("GMT Standard Time", "Europe/London"),
        ("UTC", "UTC"),  # a name in both tables
    ],
)
def test_windows_names_become_iana_and_back(windows: str, iana: str) -> None:
    assert zones.to_iana(windows) == iana
    assert zones.is_windows_zone(windows)
    assert zones.to_windows(iana) == windows
    assert zones.to_windows(windows) == windows
    assert zones.zone_info(windows) == ZoneInfo(iana)


def test_iana_names_pass_through_and_case_of_windows_names_does_not_matter() -> None:
    for iana in ("Europe/Paris", "America/New_York", "Asia/Kolkata", "UTC"):
        assert zones.to_iana(iana) == iana
    assert zones.to_iana("pacific standard time") == "America/Los_Angeles"
    assert not zones.is_windows_zone("Europe/Paris")


@pytest.mark.parametrize(
    "name", ["Mars/Olympus_Mons", "tzone://Microsoft/Custom", "", "Pacific Standard", "../x"]
)
def test_an_unknown_zone_is_a_value_error_naming_it(name: str) -> None:
    with pytest.raises(ValueError, match="unknown time zone") as raised:
        zones.to_iana(name)
    assert repr(name) in str(raised.value)
    with pytest.raises(ValueError):
        zones.zone_info(name)


# ---------------------------------------------------------------------------------------------
# The table: one row per pattern, each run under every range type


@dataclass(frozen=True)
class Row:
    """A Graph pattern from its first start, what roomd must make of it, and its occurrences
    written out by hand: the first few (``dates``) and the one after them (``after``)."""

    id: str
    pattern: dict[str, Any]
    start: str  # local wall time of the series' first start
    zone: str
    rrule: str  # the RRULE without its range part
    normal: dict[str, Any]  # the pattern as normalize_graph must give it
    dates: list[date]
    after: date


ROWS = [
    Row(
        "daily",
        _snippet("daily_every_day"),
        "2027-03-26T09:00",
        "Romance Standard Time",
        "FREQ=DAILY",
        {"type": "daily", "interval": 1},
        _days("2027-03-26", "2027-03-27", "2027-03-28", "2027-03-29", "2027-03-30"),
        date(2027, 3, 31),
    ),
    Row(
        "daily-every-3",
        _snippet("daily_every_three_days"),
        "2027-01-30T14:00",
        "GMT Standard Time",
        "FREQ=DAILY;INTERVAL=3",
        {"type": "daily", "interval": 3},
        _days("2027-01-30", "2027-02-02", "2027-02-05", "2027-02-08"),
        date(2027, 2, 11),
    ),
    Row(
        "weekly-one-day",
        _snippet("weekly_every_thursday"),
        "2027-09-30T09:00",
        "Pacific Standard Time",
        "FREQ=WEEKLY;BYDAY=TH;WKST=SU",
        {"type": "weekly", "interval": 1, "daysOfWeek": ["thursday"], "firstDayOfWeek": "sunday"},
        _days("2027-09-30", "2027-10-07", "2027-10-14", "2027-10-21", "2027-10-28", "2027-11-04"),
        date(2027, 11, 11),
    ),
    Row(
        "weekly-several-days",
        {
            "type": "weekly",
            "interval": 1,
            "daysOfWeek": ["Friday", "Monday", "Wednesday"],
            "firstDayOfWeek": "Monday",
        },
        "2027-03-24T09:00",
        "Eastern Standard Time",
        "FREQ=WEEKLY;BYDAY=MO,WE,FR;WKST=MO",
        {
            "type": "weekly",
            "interval": 1,
            "daysOfWeek": ["monday", "wednesday", "friday"],
            "firstDayOfWeek": "monday",
        },
        _days("2027-03-24", "2027-03-26", "2027-03-29", "2027-03-31"),
        date(2027, 4, 2),
    ),
    Row(
        "weekly-every-other-mon-tue",
        _snippet("weekly_every_other_monday_tuesday"),
        "2027-01-04T10:00",
        "W. Europe Standard Time",
        "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,TU;WKST=SU",
        {
            "type": "weekly",
            "interval": 2,
            "daysOfWeek": ["monday", "tuesday"],
            "firstDayOfWeek": "sunday",
        },
        _days("2027-01-04", "2027-01-05", "2027-01-18", "2027-01-19", "2027-02-01"),
        date(2027, 2, 2),
    ),
    # [MS-OXCICAL] 2.1.3.2.2.2: "The Sunday and Monday of every two weeks, as interpreted by
    # someone who considers a week to start on Monday ... after a Sunday instance, there will be
    # a seven-day gap before the next instance on a Monday"
    Row(
        "weekly-every-other-sun-mon-week-starts-monday",
        {
            "type": "weekly",
            "interval": 2,
            "daysOfWeek": ["sunday", "monday"],
            "firstDayOfWeek": "monday",
        },
        "2027-01-04T09:00",
        "Europe/Paris",
        "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,SU;WKST=MO",
        {
            "type": "weekly",
            "interval": 2,
            "daysOfWeek": ["sunday", "monday"],
            "firstDayOfWeek": "monday",
        },
        _days("2027-01-04", "2027-01-10", "2027-01-18", "2027-01-24", "2027-02-01"),
        date(2027, 2, 7),
    ),
    Row(
        "weekly-every-other-sun-mon-week-starts-sunday",
        {"type": "weekly", "interval": 2, "daysOfWeek": ["sunday", "monday"]},
        "2027-01-04T09:00",
        "Europe/Paris",
        "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,SU;WKST=SU",
        {
            "type": "weekly",
            "interval": 2,
            "daysOfWeek": ["sunday", "monday"],
            "firstDayOfWeek": "sunday",
        },
        _days("2027-01-04", "2027-01-17", "2027-01-18", "2027-01-31", "2027-02-01"),
        date(2027, 2, 14),
    ),
    Row(
        "absolute-monthly",
        _snippet("absolutemonthly_15th"),
        "2027-01-15T09:00",
        "Romance Standard Time",
        "FREQ=MONTHLY;BYMONTHDAY=15",
        {"type": "absoluteMonthly", "interval": 1, "dayOfMonth": 15},
        _days("2027-01-15", "2027-02-15", "2027-03-15", "2027-04-15"),
        date(2027, 5, 15),
    ),
    Row(
        "absolute-monthly-quarterly",
        _snippet("absolutemonthly_quarterly_7th"),
        "2027-02-07T08:30",
        "Eastern Standard Time",
        "FREQ=MONTHLY;INTERVAL=3;BYMONTHDAY=7",
        {"type": "absoluteMonthly", "interval": 3, "dayOfMonth": 7},
        _days("2027-02-07", "2027-05-07", "2027-08-07", "2027-11-07"),
        date(2028, 2, 7),
    ),
    # A day the month lacks falls on its last day (EWS DayOfMonth element)
    Row(
        "absolute-monthly-31st",
        {"type": "absoluteMonthly", "interval": 1, "dayOfMonth": 31},
        "2027-01-31T09:00",
        "Europe/Paris",
        "FREQ=MONTHLY;BYMONTHDAY=-1",
        {"type": "absoluteMonthly", "interval": 1, "dayOfMonth": 31},
        _days("2027-01-31", "2027-02-28", "2027-03-31", "2027-04-30", "2027-05-31", "2027-06-30"),
        date(2027, 7, 31),
    ),
    Row(
        "absolute-monthly-30th",
        {"type": "absoluteMonthly", "interval": 1, "dayOfMonth": 30},
        "2027-01-30T09:00",
        "Europe/Paris",
        "FREQ=MONTHLY;BYMONTHDAY=28,29,30;BYSETPOS=-1",
        {"type": "absoluteMonthly", "interval": 1, "dayOfMonth": 30},
        _days("2027-01-30", "2027-02-28", "2027-03-30", "2027-04-30"),
        date(2027, 5, 30),
    ),
    Row(
        "absolute-monthly-29th-every-12-months",
        {"type": "absoluteMonthly", "interval": 12, "dayOfMonth": 29},
        "2028-02-29T09:00",
        "Europe/Paris",
        "FREQ=MONTHLY;INTERVAL=12;BYMONTHDAY=28,29;BYSETPOS=-1",
        {"type": "absoluteMonthly", "interval": 12, "dayOfMonth": 29},
        _days("2028-02-29", "2029-02-28", "2030-02-28", "2031-02-28"),
        date(2032, 2, 29),
    ),
    Row(
        "relative-monthly",
        _snippet("relativemonthly_second_wednesday"),
        "2027-01-13T09:00",
        "Pacific Standard Time",
        "FREQ=MONTHLY;BYDAY=2WE",
        {
            "type": "relativeMonthly",
            "interval": 1,
            "daysOfWeek": ["wednesday"],
            "index": "second",
        },
        _days("2027-01-13", "2027-02-10", "2027-03-10", "2027-04-14"),
        date(2027, 5, 12),
    ),
    Row(
        "relative-monthly-several-days",
        _snippet("relativemonthly_first_thursday_or_friday"),
        "2027-01-01T09:00",
        "Romance Standard Time",
        "FREQ=MONTHLY;BYDAY=TH,FR;BYSETPOS=1",
        {
            "type": "relativeMonthly",
            "interval": 1,
            "daysOfWeek": ["thursday", "friday"],
            "index": "first",
        },
        _days("2027-01-01", "2027-02-04", "2027-03-04", "2027-04-01", "2027-05-06"),
        date(2027, 6, 3),
    ),
    # The index counts over the days together ([MS-OXOCAL] 2.2.1.44.1 MonthNth): in October
    # 2027 (Fri 1, Thu 7, Fri 8) the second Thursday-or-Friday is Thursday the 7th
    Row(
        "relative-monthly-second-of-several-days",
        {
            "type": "relativeMonthly",
            "interval": 1,
            "daysOfWeek": ["thursday", "friday"],
            "index": "second",
        },
        "2027-10-07T09:00",
        "Romance Standard Time",
        "FREQ=MONTHLY;BYDAY=TH,FR;BYSETPOS=2",
        {
            "type": "relativeMonthly",
            "interval": 1,
            "daysOfWeek": ["thursday", "friday"],
            "index": "second",
        },
        _days("2027-10-07", "2027-11-05", "2027-12-03", "2028-01-07"),
        date(2028, 2, 4),
    ),
    Row(
        "relative-monthly-last",
        {"type": "relativeMonthly", "interval": 1, "daysOfWeek": ["Friday"], "index": "last"},
        "2027-01-29T09:00",
        "Romance Standard Time",
        "FREQ=MONTHLY;BYDAY=-1FR",
        {"type": "relativeMonthly", "interval": 1, "daysOfWeek": ["friday"], "index": "last"},
        _days("2027-01-29", "2027-02-26", "2027-03-26", "2027-04-30"),
        date(2027, 5, 28),
    ),
    Row(
        "relative-monthly-last-weekend-day",
        {
            "type": "relativeMonthly",
            "interval": 1,
            "daysOfWeek": ["Saturday", "Sunday"],
            "index": "last",
        },
        "2027-01-31T09:00",
        "Europe/Paris",
        "FREQ=MONTHLY;BYDAY=SA,SU;BYSETPOS=-1",
        {
            "type": "relativeMonthly",
            "interval": 1,
            "daysOfWeek": ["sunday", "saturday"],
            "index": "last",
        },
        _days("2027-01-31", "2027-02-28", "2027-03-28", "2027-04-25"),
        date(2027, 5, 30),
    ),
    # The concept page's sample starts on a Tuesday (2017-08-29): "the first occurrence may
    # come later if startDate doesn't fit the pattern"; August's first Thursday is past, and
    # every 2 months from August is October
    Row(
        "relative-monthly-start-not-on-pattern",
        fixture("patternedrecurrence-relativemonthly-noend.json")["recurrence"]["pattern"],
        "2017-08-29T12:00",
        "Pacific Standard Time",
        "FREQ=MONTHLY;INTERVAL=2;BYDAY=1TH",
        {"type": "relativeMonthly", "interval": 2, "daysOfWeek": ["thursday"], "index": "first"},
        _days("2017-10-05", "2017-12-07", "2018-02-01", "2018-04-05"),
        date(2018, 6, 7),
    ),
    Row(
        "absolute-yearly",
        _snippet("absoluteyearly_april_15"),
        "2027-04-15T09:00",
        "Eastern Standard Time",
        "FREQ=YEARLY;BYMONTH=4;BYMONTHDAY=15",
        {"type": "absoluteYearly", "interval": 1, "month": 4, "dayOfMonth": 15},
        _days("2027-04-15", "2028-04-15", "2029-04-15", "2030-04-15"),
        date(2031, 4, 15),
    ),
    Row(
        "absolute-yearly-february-29",
        {"type": "absoluteYearly", "interval": 1, "month": 2, "dayOfMonth": 29},
        "2028-02-29T09:00",
        "Europe/Paris",
        "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=-1",
        {"type": "absoluteYearly", "interval": 1, "month": 2, "dayOfMonth": 29},
        _days("2028-02-29", "2029-02-28", "2030-02-28", "2031-02-28"),
        date(2032, 2, 29),
    ),
    Row(
        "relative-yearly",
        _snippet("relativeyearly_last_wednesday_november"),
        "2027-11-24T09:00",
        "Pacific Standard Time",
        "FREQ=YEARLY;BYMONTH=11;BYDAY=-1WE",
        {
            "type": "relativeYearly",
            "interval": 1,
            "month": 11,
            "daysOfWeek": ["wednesday"],
            "index": "last",
        },
        _days("2027-11-24", "2028-11-29", "2029-11-28"),
        date(2030, 11, 27),
    ),
    Row(
        "relative-yearly-every-other-year",
        {"type": "relativeYearly", "interval": 2, "month": 9, "daysOfWeek": ["monday"]},
        "2027-09-06T09:00",
        "America/New_York",
        "FREQ=YEARLY;INTERVAL=2;BYMONTH=9;BYDAY=1MO",
        {
            "type": "relativeYearly",
            "interval": 2,
            "month": 9,
            "daysOfWeek": ["monday"],
            "index": "first",
        },
        _days("2027-09-06", "2029-09-03"),
        date(2031, 9, 1),
    ),
]


@dataclass(frozen=True)
class Case:
    """A row under one range: the Graph range, the RRULE's range part, the dates it holds."""

    row: Row
    range: dict[str, Any]
    rule_suffix: str | None  # None: an UNTIL (its value is checked in the range table below)
    dates: list[date]


def _cases() -> list[Any]:
    cases = []
    for row in ROWS:
        first = datetime.fromisoformat(row.start).date().isoformat()
        n = len(row.dates)
        ranges = [
            ("numbered", {"numberOfOccurrences": n}, f";COUNT={n}", row.dates),
            ("endDate-on-last", {"endDate": row.dates[-1].isoformat()}, None, row.dates),
            (
                "endDate-before-next",
                {"endDate": (row.after - timedelta(days=1)).isoformat()},
                None,
                row.dates,
            ),
            ("endDate-on-next", {"endDate": row.after.isoformat()}, None, [*row.dates, row.after]),
            ("noEnd", {}, "", [*row.dates, row.after]),
        ]
        for name, extra, suffix, dates in ranges:
            kind = name.split("-")[0]
            span = {"type": kind, "startDate": first, **extra}
            cases.append(pytest.param(Case(row, span, suffix, dates), id=f"{row.id}/{name}"))
    return cases


CASES = _cases()


def _start(case: Case) -> datetime:
    return datetime.fromisoformat(case.row.start).replace(tzinfo=zones.zone_info(case.row.zone))


def _window(case: Case) -> tuple[datetime, datetime]:
    """From a day before the start to the end of the last date the case expects (noEnd), or
    far beyond it (bounded ranges: the range itself must stop the series)."""
    start = _start(case)
    if case.range["type"] == "noEnd":
        end = datetime.combine(case.dates[-1], time(23, 59), start.tzinfo)
    else:
        end = start + timedelta(days=366 * 12)
    return (start - timedelta(days=1)).astimezone(UTC), end.astimezone(UTC)


def _rrulestr(rule: str, dtstart: datetime, window: tuple[datetime, datetime]) -> list[datetime]:
    """The oracle: dateutil's own RFC 5545 parser, expanded until the window closes."""
    found = []
    for start in rrulestr(rule, dtstart=dtstart):
        if start >= window[1]:
            break
        if start >= window[0]:
            found.append(start.astimezone(UTC))
    return found


@pytest.mark.parametrize("case", CASES)
def test_graph_pattern_maps_to_rrule_and_back(case: Case) -> None:
    recurrence = {"pattern": case.row.pattern, "range": case.range}
    rule = rrule_from_graph(
        recurrence, first_start_local=_start(case).replace(tzinfo=None), zone=case.row.zone
    )
    if case.rule_suffix is None:
        assert rule.startswith(case.row.rrule + ";UNTIL=")
        assert rule.endswith("Z")
    else:
        assert rule == case.row.rrule + case.rule_suffix
    normal = {
        "pattern": case.row.normal,
        "range": {**case.range, "recurrenceTimeZone": case.row.zone},
    }
    assert normalize_graph(recurrence, zone=case.row.zone) == normal
    assert graph_from_rrule(rule, dtstart_local=_start(case), zone=case.row.zone) == normal


@pytest.mark.parametrize("case", CASES)
def test_graph_occurrences_are_the_dates_written_out_by_hand(case: Case) -> None:
    recurrence = {"pattern": case.row.pattern, "range": case.range}
    start = _start(case)
    found = graph_occurrences(
        recurrence, first_start=start.astimezone(UTC), zone=case.row.zone, between=_window(case)
    )
    local = [f.astimezone(start.tzinfo) for f in found]
    assert [d.date() for d in local] == case.dates
    assert {d.time() for d in local} == {start.time()}, "the wall-clock time never moves"
    assert all(f.tzinfo is UTC for f in found)


@pytest.mark.parametrize("case", CASES)
def test_occurrences_agree_with_dateutils_rrulestr(case: Case) -> None:
    """The second oracle: dateutil's own parser over the very RRULE text roomd produced."""
    recurrence = {"pattern": case.row.pattern, "range": case.range}
    start = _start(case)
    rule = rrule_from_graph(recurrence, first_start_local=start, zone=case.row.zone)
    low, high = _window(case)
    oracle = _rrulestr(rule, start, (low, high))
    got = occurrences(
        rule, dtstart_local=start, zone=case.row.zone, exdates=(), between=(low, high)
    )
    assert got == oracle
    assert len(got) == len(case.dates)


# ---------------------------------------------------------------------------------------------
# Ranges: UNTIL is the end of the end date's local day, in UTC


@pytest.mark.parametrize(
    ("zone", "end", "until"),
    [
        ("Pacific Standard Time", "2017-12-31", "20180101T075959Z"),  # PST, UTC-8
        ("Romance Standard Time", "2027-01-31", "20270131T225959Z"),  # CET, UTC+1
        ("Romance Standard Time", "2027-06-30", "20270630T215959Z"),  # CEST, UTC+2
        ("Europe/Paris", "2027-03-27", "20270327T225959Z"),  # the night before the change
        ("Eastern Standard Time", "2027-12-31", "20280101T045959Z"),  # EST, UTC-5
        ("Asia/Kolkata", "2027-05-10", "20270510T182959Z"),  # UTC+5:30
        ("Pacific/Auckland", "2027-01-15", "20270115T105959Z"),  # NZDT, UTC+13
        # Chile's clocks skip from Saturday 24:00 to Sunday 01:00 (2027-09-05 04:00Z): the
        # day ends at the change
        ("America/Santiago", "2027-09-04", "20270905T035959Z"),
    ],
)
def test_end_date_becomes_until_at_the_end_of_that_local_day(
    zone: str, end: str, until: str
) -> None:
    first = date.fromisoformat(end) - timedelta(days=3)
    recurrence = {
        "pattern": {"type": "daily", "interval": 1},
        "range": {"type": "endDate", "startDate": first.isoformat(), "endDate": end},
    }
    start = datetime.combine(first, time(9))
    rule = rrule_from_graph(recurrence, first_start_local=start, zone=zone)
    assert rule == f"FREQ=DAILY;UNTIL={until}"
    assert graph_from_rrule(rule, dtstart_local=start, zone=zone)["range"]["endDate"] == end


def test_microsofts_weekly_enddate_example_ends_on_monday_december_25() -> None:
    """concepts/outlook-schedule-recurring-events.md: the event starts 2017-09-04 12:00 Pacific;
    the series ends on 2017-12-31, so its last occurrence is Monday 2017-12-25."""
    recurrence = fixture("patternedrecurrence-weekly-enddate.json")["recurrence"]
    created = fixture("event-recurring-create-request.json")
    start = datetime.fromisoformat(created["start"]["dateTime"])
    zone = created["start"]["timeZone"]
    rule = rrule_from_graph(recurrence, first_start_local=start, zone=zone)
    assert rule == "FREQ=WEEKLY;BYDAY=MO;WKST=SU;UNTIL=20180101T075959Z"
    found = graph_occurrences(
        recurrence,
        first_start=start,
        zone=zone,
        between=(_utc("2017-01-01T00:00"), _utc("2019-01-01T00:00")),
    )
    mondays = [date(2017, 9, 4) + timedelta(weeks=k) for k in range(17)]
    pacific = ZoneInfo("America/Los_Angeles")
    assert [f.astimezone(pacific).date() for f in found] == mondays
    assert mondays[-1] == date(2017, 12, 25)
    assert found[0] == _utc("2017-09-04T19:00")  # PDT, UTC-7
    assert found[-1] == _utc("2017-12-25T20:00")  # PST, UTC-8


def test_the_servers_echo_normalizes_to_what_roomd_sent() -> None:
    """Graph stores the request's recurrence and echoes it with lower-case days, placeholders
    (index, month, dayOfMonth, numberOfOccurrences) and recurrenceTimeZone filled in
    (event-recurring-create-response.json): both normalize to one form."""
    sent = fixture("event-recurring-create-request.json")
    echoed = fixture("event-recurring-create-response.json")
    zone = sent["start"]["timeZone"]
    ours = normalize_graph(sent["recurrence"], zone=zone)
    assert ours == normalize_graph(echoed["recurrence"], zone=zone)
    assert ours == {
        "pattern": {
            "type": "weekly",
            "interval": 1,
            "daysOfWeek": ["monday"],
            "firstDayOfWeek": "sunday",
        },
        "range": {
            "type": "endDate",
            "startDate": "2017-09-04",
            "endDate": "2017-12-31",
            "recurrenceTimeZone": "Pacific Standard Time",
        },
    }
    start = datetime.fromisoformat(echoed["start"]["dateTime"])
    assert rrule_from_graph(sent["recurrence"], first_start_local=start, zone=zone) == (
        rrule_from_graph(echoed["recurrence"], first_start_local=start, zone=zone)
    )


def test_snippet_ranges_map_to_count_until_or_nothing() -> None:
    pattern = _snippet("daily_every_day")
    expected = {
        "range_numbered_10": ("2017-04-02", "FREQ=DAILY;COUNT=10"),
        "range_enddate_july_2017": ("2017-07-01", "FREQ=DAILY;UNTIL=20170801T065959Z"),
        "range_noend_from_2017_05_15": ("2017-05-15", "FREQ=DAILY"),
    }
    for name, (first, rule) in expected.items():
        recurrence = {"pattern": pattern, "range": SNIPPETS[name]["range"]}
        start = datetime.fromisoformat(f"{first}T12:00")
        got = rrule_from_graph(recurrence, first_start_local=start, zone="Pacific Standard Time")
        assert got == rule, name


def test_an_absolute_yearly_day_the_month_lacks_is_its_last_day() -> None:
    """EWS DayOfMonth: "If for a particular month this value is larger than the number of days
    in the month, the last day of the month is assumed"."""
    recurrence = {
        "pattern": {"type": "absoluteYearly", "interval": 1, "month": 4, "dayOfMonth": 31},
        "range": {"type": "noEnd", "startDate": "2027-04-30"},
    }
    assert normalize_graph(recurrence, zone="UTC")["pattern"]["dayOfMonth"] == 30
    rule = rrule_from_graph(recurrence, first_start_local=datetime(2027, 4, 30, 9), zone="UTC")
    assert rule == "FREQ=YEARLY;BYMONTH=4;BYMONTHDAY=30"


def test_recurrence_time_zone_wins_over_the_events_zone() -> None:
    """recurrenceTimeZone "is the zone of startDate and endDate": an event whose start is given
    in UTC (roomd reads with Prefer: outlook.timezone="UTC") still recurs on Paris' clock."""
    recurrence = {
        "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday"]},
        "range": {
            "type": "numbered",
            "startDate": "2027-03-22",
            "numberOfOccurrences": 2,
            "recurrenceTimeZone": "Romance Standard Time",
        },
    }
    start = datetime(2027, 3, 22, 8, 0)  # naive: UTC, the event's zone
    found = graph_occurrences(
        recurrence,
        first_start=start,
        zone="UTC",
        between=(_utc("2027-03-01T00:00"), _utc("2027-05-01T00:00")),
    )
    assert found == [_utc("2027-03-22T08:00"), _utc("2027-03-29T07:00")]
    normal = normalize_graph(recurrence, zone="UTC")
    assert normal["range"]["recurrenceTimeZone"] == "Romance Standard Time"


# ---------------------------------------------------------------------------------------------
# RRULE -> Graph: the shapes Hybrid may hold


@pytest.mark.parametrize(
    ("rule", "start", "pattern", "span"),
    [
        # docs/hybrid-api.md's example: UNTIL is midnight UTC, 01:00 in Paris on New Year's Day,
        # so the last 09:00 occurrence is on 2026-12-31
        (
            "FREQ=WEEKLY;BYDAY=MO;UNTIL=20270101T000000Z",
            "2026-11-02T09:00",
            {"type": "weekly", "interval": 1, "daysOfWeek": ["monday"], "firstDayOfWeek": "monday"},
            {"type": "endDate", "endDate": "2026-12-31"},
        ),
        # ... while a 00:30 occurrence on January 1st (23:30Z) is still before UNTIL
        (
            "FREQ=DAILY;UNTIL=20270101T000000Z",
            "2026-12-28T00:30",
            {"type": "daily", "interval": 1},
            {"type": "endDate", "endDate": "2027-01-01"},
        ),
        (
            "FREQ=DAILY;UNTIL=20270101",  # a bare date: that local day, inclusive
            "2026-12-28T09:00",
            {"type": "daily", "interval": 1},
            {"type": "endDate", "endDate": "2027-01-01"},
        ),
        (
            "RRULE:FREQ=DAILY;COUNT=3",
            "2027-01-04T09:00",
            {"type": "daily", "interval": 1},
            {"type": "numbered", "numberOfOccurrences": 3},
        ),
        (
            "FREQ=WEEKLY",  # the day of the week comes from DTSTART
            "2027-01-06T09:00",
            {
                "type": "weekly",
                "interval": 1,
                "daysOfWeek": ["wednesday"],
                "firstDayOfWeek": "monday",
            },
            {"type": "noEnd"},
        ),
        (
            "FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR",  # Outlook's "every weekday"
            "2027-01-04T09:00",
            {
                "type": "weekly",
                "interval": 1,
                "daysOfWeek": ["monday", "tuesday", "wednesday", "thursday", "friday"],
                "firstDayOfWeek": "monday",
            },
            {"type": "noEnd"},
        ),
        (
            "FREQ=MONTHLY",
            "2027-01-15T09:00",
            {"type": "absoluteMonthly", "interval": 1, "dayOfMonth": 15},
            {"type": "noEnd"},
        ),
        (
            "FREQ=MONTHLY;INTERVAL=12;BYMONTHDAY=31",  # January only: never skipped
            "2027-01-31T09:00",
            {"type": "absoluteMonthly", "interval": 12, "dayOfMonth": 31},
            {"type": "noEnd"},
        ),
        (
            "FREQ=MONTHLY;BYDAY=MO;BYSETPOS=1;COUNT=7",  # [MS-OXCICAL] 2.1.3.2.2.4's form
            "2027-01-04T09:00",
            {"type": "relativeMonthly", "interval": 1, "daysOfWeek": ["monday"], "index": "first"},
            {"type": "numbered", "numberOfOccurrences": 7},
        ),
        (
            "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1",  # the last weekday of the month
            "2027-01-29T09:00",
            {
                "type": "relativeMonthly",
                "interval": 1,
                "daysOfWeek": ["monday", "tuesday", "wednesday", "thursday", "friday"],
                "index": "last",
            },
            {"type": "noEnd"},
        ),
        (
            "FREQ=YEARLY",
            "2027-04-15T09:00",
            {"type": "absoluteYearly", "interval": 1, "month": 4, "dayOfMonth": 15},
            {"type": "noEnd"},
        ),
        (
            "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=28,29;BYSETPOS=-1",  # February's last day
            "2028-02-29T09:00",
            {"type": "absoluteYearly", "interval": 1, "month": 2, "dayOfMonth": 29},
            {"type": "noEnd"},
        ),
        (
            "FREQ=YEARLY;BYDAY=SU;BYSETPOS=3;BYMONTH=6",  # [MS-OXCICAL] 2.1.3.2.2.6's example
            "2027-06-20T09:00",
            {
                "type": "relativeYearly",
                "interval": 1,
                "month": 6,
                "daysOfWeek": ["sunday"],
                "index": "third",
            },
            {"type": "noEnd"},
        ),
    ],
)
def test_hybrid_rules_become_the_patterned_recurrence_roomd_sends(
    rule: str, start: str, pattern: dict[str, Any], span: dict[str, Any]
) -> None:
    dtstart = datetime.fromisoformat(start)
    got = graph_from_rrule(rule, dtstart_local=dtstart, zone="Europe/Paris")
    expected_range = {"startDate": dtstart.date().isoformat(), **span}
    assert got == {
        "pattern": pattern,
        "range": {**expected_range, "recurrenceTimeZone": "Europe/Paris"},
    }
    # the pattern roomd sends holds the occurrences Hybrid holds
    window = (_utc("2026-01-01T00:00"), _utc("2029-01-01T00:00"))
    ours = graph_occurrences(got, first_start=dtstart, zone="Europe/Paris", between=window)
    theirs = occurrences(
        rule, dtstart_local=dtstart, zone="Europe/Paris", exdates=(), between=window
    )
    assert ours == theirs
    assert ours, "the window holds occurrences"


@pytest.mark.parametrize(
    ("rule", "named"),
    [
        ("FREQ=HOURLY", "FREQ=HOURLY"),
        ("FREQ=MINUTELY;INTERVAL=30", "FREQ=MINUTELY"),
        ("FREQ=DAILY;BYHOUR=9,14", "BYHOUR=9,14"),
        ("FREQ=WEEKLY;BYDAY=MO;BYMINUTE=30", "BYMINUTE=30"),
        ("FREQ=YEARLY;BYWEEKNO=20", "BYWEEKNO=20"),
        ("FREQ=YEARLY;BYYEARDAY=100", "BYYEARDAY=100"),
        ("FREQ=MONTHLY;BYMONTHDAY=1,15", "BYMONTHDAY=1,15"),
        ("FREQ=MONTHLY;BYMONTHDAY=30", "BYMONTHDAY=30"),  # RFC 5545 skips February
        ("FREQ=MONTHLY;BYMONTHDAY=-2", "BYMONTHDAY=-2"),
        ("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29", "BYMONTHDAY=29"),  # every fourth year only
        ("FREQ=MONTHLY;BYDAY=5MO", "BYDAY=5MO"),
        ("FREQ=MONTHLY;BYDAY=-2FR", "BYDAY=-2FR"),
        ("FREQ=MONTHLY;BYDAY=1MO,3MO", "BYDAY=1MO,3MO"),
        ("FREQ=MONTHLY;BYDAY=MO", "BYDAY=MO"),  # every Monday of the month
        ("FREQ=MONTHLY;BYDAY=MO,TU;BYSETPOS=1,2", "BYSETPOS=1,2"),
        ("FREQ=MONTHLY;BYDAY=1MO;BYSETPOS=1", "BYDAY=1MO"),
        ("FREQ=MONTHLY;BYMONTH=1,7", "BYMONTH=1,7"),
        ("FREQ=YEARLY;BYMONTH=1,7", "BYMONTH=1,7"),
        ("FREQ=YEARLY;BYDAY=1MO", "BYDAY without BYMONTH"),
        ("FREQ=YEARLY;BYMONTHDAY=15", "BYMONTHDAY without BYMONTH"),
        ("FREQ=MONTHLY;BYDAY=FR;BYMONTHDAY=13", "BYDAY with BYMONTHDAY"),
        ("FREQ=WEEKLY;BYDAY=1MO", "BYDAY"),
        ("FREQ=WEEKLY;BYSETPOS=1;BYDAY=MO,TU", "BYSETPOS=1"),
        ("FREQ=DAILY;INTERVAL=2;BYDAY=MO,WE", "INTERVAL=2"),
        ("FREQ=DAILY;COUNT=3;UNTIL=20270201T000000Z", "COUNT and UNTIL"),
        ("FREQ=DAILY;UNTIL=20261231T000000Z", "UNTIL"),  # before the series starts
        ("FREQ=DAILY;INTERVAL=0", "INTERVAL=0"),
        ("FREQ=DAILY;COUNT=0", "COUNT=0"),
        ("FREQ=WEEKLY;BYDAY=XX", "BYDAY=XX"),
        ("FREQ=WEEKLY;WKST=XX", "WKST=XX"),
        ("FREQ=FORTNIGHTLY", "FREQ=FORTNIGHTLY"),
        ("BYDAY=MO", "FREQ"),
        ("FREQ=DAILY;X-NAME=1", "X-NAME"),
        ("FREQ=DAILY;FREQ=WEEKLY", "FREQ"),
        ("FREQ=DAILY;UNTIL=tomorrow", "UNTIL=TOMORROW"),
    ],
)
def test_rules_graph_cannot_express_are_refused_naming_the_part(rule: str, named: str) -> None:
    with pytest.raises(ValueError) as raised:
        graph_from_rrule(rule, dtstart_local=datetime(2027, 1, 4, 9), zone="Europe/Paris")
    assert named in str(raised.value)


@pytest.mark.parametrize(
    ("pattern", "span", "named"),
    [
        ({"type": "hourly", "interval": 1}, {}, "pattern.type"),
        ({"type": "daily", "interval": 0}, {}, "pattern.interval"),
        ({"type": "daily", "interval": True}, {}, "pattern.interval"),
        ({"type": "weekly", "interval": 1}, {}, "pattern.daysOfWeek"),
        ({"type": "weekly", "interval": 1, "daysOfWeek": ["Funday"]}, {}, "pattern.daysOfWeek"),
        (
            {"type": "weekly", "interval": 1, "daysOfWeek": ["monday"], "firstDayOfWeek": "x"},
            {},
            "pattern.firstDayOfWeek",
        ),
        (
            {"type": "relativeMonthly", "interval": 1, "daysOfWeek": ["monday"], "index": "fifth"},
            {},
            "pattern.index",
        ),
        ({"type": "absoluteMonthly", "interval": 1, "dayOfMonth": 0}, {}, "pattern.dayOfMonth"),
        ({"type": "absoluteMonthly", "interval": 1, "dayOfMonth": 32}, {}, "pattern.dayOfMonth"),
        (
            {"type": "absoluteYearly", "interval": 1, "month": 0, "dayOfMonth": 4},
            {},
            "pattern.month",
        ),
        ({"type": "daily", "interval": 1}, {"type": "sometimes"}, "range.type"),
        ({"type": "daily", "interval": 1}, {"type": "numbered"}, "range.numberOfOccurrences"),
        (
            {"type": "daily", "interval": 1},
            {"type": "numbered", "numberOfOccurrences": 0},
            "range.numberOfOccurrences",
        ),
        ({"type": "daily", "interval": 1}, {"type": "endDate"}, "range.endDate"),
        (
            {"type": "daily", "interval": 1},
            {"type": "endDate", "endDate": "2027-01-03"},
            "range.endDate",
        ),
        ({"type": "daily", "interval": 1}, {"startDate": "2027-01-05"}, "range.startDate"),
        ({"type": "daily", "interval": 1}, {"startDate": "04/01/2027"}, "range.startDate"),
        (
            {"type": "daily", "interval": 1},
            {"recurrenceTimeZone": "Middle Earth Standard Time"},
            "Middle Earth Standard Time",
        ),
    ],
)
def test_graph_patterns_graph_would_refuse_are_value_errors_naming_the_field(
    pattern: dict[str, Any], span: dict[str, Any], named: str
) -> None:
    recurrence = {"pattern": pattern, "range": {"type": "noEnd", "startDate": "2027-01-04", **span}}
    with pytest.raises(ValueError) as raised:
        rrule_from_graph(recurrence, first_start_local=datetime(2027, 1, 4, 9), zone="UTC")
    assert named in str(raised.value)


# ---------------------------------------------------------------------------------------------
# Daylight saving: 09:00 stays 09:00 local


def _mondays(first: str, last: str) -> list[date]:
    day, end, out = date.fromisoformat(first), date.fromisoformat(last), []
    while day <= end:
        out.append(day)
        day += timedelta(weeks=1)
    return out


@pytest.mark.parametrize(
    ("zone", "first", "changes"),
    [
        # Europe: last Sunday of March (2027-03-28) and of October (2027-10-31)
        (
            "Europe/Paris",
            "2027-03-15",
            {
                "2027-03-22": "2027-03-22T08:00",
                "2027-03-29": "2027-03-29T07:00",
                "2027-10-25": "2027-10-25T07:00",
                "2027-11-01": "2027-11-01T08:00",
            },
        ),
        # United States: second Sunday of March (2027-03-14), first of November (2027-11-07)
        (
            "America/New_York",
            "2027-03-08",
            {
                "2027-03-08": "2027-03-08T14:00",
                "2027-03-15": "2027-03-15T13:00",
                "2027-11-01": "2027-11-01T13:00",
                "2027-11-08": "2027-11-08T14:00",
            },
        ),
    ],
)
def test_a_weekly_0900_series_keeps_0900_local_across_both_changes(
    zone: str, first: str, changes: dict[str, str]
) -> None:
    local = ZoneInfo(zone)
    start = datetime.fromisoformat(f"{first}T09:00").replace(tzinfo=local)
    window = (_utc("2027-01-01T00:00"), _utc("2028-01-01T00:00"))
    found = occurrences(
        "FREQ=WEEKLY;BYDAY=MO", dtstart_local=start, zone=zone, exdates=(), between=window
    )
    assert [f.astimezone(local).date() for f in found] == _mondays(first, "2027-12-27")
    assert {f.astimezone(local).time() for f in found} == {time(9)}
    by_day = {f.astimezone(local).date().isoformat(): f for f in found}
    for day, instant in changes.items():
        assert by_day[day] == _utc(instant), day
    assert {f.hour for f in found} == {int(v[11:13]) for v in changes.values()}


def test_paris_and_new_york_change_on_different_dates() -> None:
    """Between 2027-03-14 and 2027-03-28 New York is on summer time and Paris is not: the two
    09:00 meetings are five hours apart instead of six, and the Graph pattern agrees."""
    window = (_utc("2027-03-01T00:00"), _utc("2027-04-10T00:00"))
    paris, new_york = (
        graph_occurrences(
            {
                "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["Monday"]},
                "range": {"type": "noEnd", "startDate": "2027-03-01"},
            },
            first_start=datetime(2027, 3, 1, 9),
            zone=zone,
            between=window,
        )
        for zone in ("Romance Standard Time", "Eastern Standard Time")
    )
    gaps = [(ny - p).total_seconds() / 3600 for p, ny in zip(paris, new_york, strict=True)]
    assert gaps == [6, 6, 5, 5, 6, 6]  # Mar 1, 8 | 15, 22 | 29, Apr 5


# ---------------------------------------------------------------------------------------------
# occurrences(): exdates, the window, bad input


def test_exdates_remove_their_occurrence_and_the_window_is_half_open() -> None:
    paris = ZoneInfo("Europe/Paris")
    start = datetime(2027, 1, 4, 9, tzinfo=paris)
    rule = "FREQ=WEEKLY;BYDAY=MO;COUNT=5"
    every = occurrences(
        rule,
        dtstart_local=start,
        zone="Europe/Paris",
        exdates=(),
        between=(_utc("2027-01-01T00:00"), _utc("2027-03-01T00:00")),
    )
    assert every == [_utc(f"2027-{d}T08:00") for d in ("01-04", "01-11", "01-18", "01-25", "02-01")]
    fewer = occurrences(
        rule,
        dtstart_local=start,
        zone="Romance Standard Time",
        exdates=[_utc("2027-01-11T08:00"), datetime(2027, 1, 25, 9, tzinfo=paris)],
        between=(every[0], every[-1]),  # the first start is in, the last is out
    )
    assert fewer == [every[0], every[2]]


def test_naive_window_or_exdates_are_refused() -> None:
    start = datetime(2027, 1, 4, 9)
    with pytest.raises(ValueError, match=r"between\[0\]"):
        occurrences(
            "FREQ=DAILY",
            dtstart_local=start,
            zone="UTC",
            exdates=(),
            between=(datetime(2027, 1, 1), _utc("2027-02-01T00:00")),
        )
    with pytest.raises(ValueError, match="exdate"):
        occurrences(
            "FREQ=DAILY",
            dtstart_local=start,
            zone="UTC",
            exdates=[datetime(2027, 1, 5, 9)],
            between=(_utc("2027-01-01T00:00"), _utc("2027-02-01T00:00")),
        )


def test_occurrences_evaluates_rules_graph_cannot_express() -> None:
    """Hybrid may hold any RFC 5545 rule; occurrences() expands it even where graph_from_rrule
    refuses it, and agrees with dateutil's rrulestr."""
    start = datetime(2027, 1, 4, 9, tzinfo=ZoneInfo("Europe/Paris"))
    window = (_utc("2027-01-01T00:00"), _utc("2027-03-01T00:00"))
    for rule in (
        "FREQ=DAILY;BYHOUR=9,14;COUNT=5",
        "FREQ=MONTHLY;BYMONTHDAY=30;COUNT=3",
        "FREQ=MONTHLY;BYDAY=FR;BYMONTHDAY=13",
    ):
        got = occurrences(
            rule, dtstart_local=start, zone="Europe/Paris", exdates=(), between=window
        )
        oracle = _rrulestr(rule, start, window)
        assert got == oracle, rule


# ---------------------------------------------------------------------------------------------
# Properties over random patterns and ranges

DAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
INDEXES = ("first", "second", "third", "fourth", "last")
ZONES = (
    "Romance Standard Time",
    "Pacific Standard Time",
    "America/New_York",
    "Australia/Sydney",
    "Asia/Kolkata",
    "America/Santiago",
    "UTC",
)


def _spelled(day: str, style: int) -> str:
    return (day, day.capitalize(), day.upper())[style]


@st.composite
def _patterns(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(
        st.sampled_from(
            (
                "daily",
                "weekly",
                "absoluteMonthly",
                "relativeMonthly",
                "absoluteYearly",
                "relativeYearly",
            )
        )
    )
    pattern: dict[str, Any] = {"type": kind, "interval": draw(st.integers(1, 4))}
    style = draw(st.integers(0, 2))
    days = draw(st.lists(st.sampled_from(DAYS), min_size=1, max_size=7, unique=True))
    if kind in ("weekly", "relativeMonthly", "relativeYearly"):
        pattern["daysOfWeek"] = [_spelled(d, style) for d in days]
    if kind == "weekly" and draw(st.booleans()):
        pattern["firstDayOfWeek"] = _spelled(draw(st.sampled_from(DAYS)), style)
    if kind in ("relativeMonthly", "relativeYearly") and draw(st.booleans()):
        pattern["index"] = draw(st.sampled_from(INDEXES))
    if kind in ("absoluteYearly", "relativeYearly"):
        pattern["month"] = draw(st.integers(1, 12))
    if kind in ("absoluteMonthly", "absoluteYearly"):
        pattern["dayOfMonth"] = draw(st.integers(1, 31))
    if draw(st.booleans()):  # the placeholders the server echoes for fields a type ignores
        echo = {"index": "first", "month": 0, "dayOfMonth": 0, "daysOfWeek": []}
        pattern = {**{k: v for k, v in echo.items() if k not in pattern}, **pattern}
        if kind != "weekly":
            pattern.setdefault("firstDayOfWeek", "sunday")
    return pattern


@st.composite
def _series(draw: st.DrawFn) -> tuple[dict[str, Any], datetime, str]:
    pattern = draw(_patterns())
    first = draw(st.dates(date(2020, 1, 1), date(2035, 12, 31)))
    at = time(draw(st.integers(0, 23)), draw(st.sampled_from((0, 15, 30, 45))))
    zone = draw(st.sampled_from(ZONES))
    kind = draw(st.sampled_from(("endDate", "numbered", "noEnd")))
    span: dict[str, Any] = {"type": kind, "startDate": first.isoformat()}
    if kind == "endDate":
        span["endDate"] = (first + timedelta(days=draw(st.integers(0, 800)))).isoformat()
    if kind == "numbered":
        span["numberOfOccurrences"] = draw(st.integers(1, 15))
    elif draw(st.booleans()):
        span["numberOfOccurrences"] = 0  # echoed on ranges that ignore it
    if draw(st.booleans()):
        span["recurrenceTimeZone"] = zone
    return {"pattern": pattern, "range": span}, datetime.combine(first, at), zone


@settings(max_examples=150, deadline=None)
@given(_series())
def test_any_graph_pattern_survives_the_round_trip(series: tuple[dict[str, Any], datetime, str]):
    recurrence, start, zone = series
    rule = rrule_from_graph(recurrence, first_start_local=start, zone=zone)
    assert graph_from_rrule(rule, dtstart_local=start, zone=zone) == normalize_graph(
        recurrence, zone=zone
    )


@settings(max_examples=150, deadline=None)
@given(_series())
def test_occurrences_of_any_pattern_agree_with_rrulestr_and_its_range(
    series: tuple[dict[str, Any], datetime, str],
) -> None:
    recurrence, start, zone = series
    local = zones.zone_info(zone)
    aware = start.replace(tzinfo=local)
    low = (aware - timedelta(days=1)).astimezone(UTC)
    # a bounded range must stop the series itself; an open one is looked at for 800 days
    reach = timedelta(days=800 if recurrence["range"]["type"] == "noEnd" else 366 * 61)
    high = (aware + reach).astimezone(UTC)
    found = graph_occurrences(recurrence, first_start=start, zone=zone, between=(low, high))
    span = recurrence["range"]
    if span["type"] == "numbered":
        assert len(found) == span["numberOfOccurrences"]
    if span["type"] == "endDate":
        assert all(f.astimezone(local).date().isoformat() <= span["endDate"] for f in found)
    assert all(f.astimezone(local).date() >= start.date() for f in found)
    rule = rrule_from_graph(recurrence, first_start_local=start, zone=zone)
    assert found == _rrulestr(rule, aware, (low, high))
