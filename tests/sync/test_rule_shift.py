"""A series' rule as the room's zone must hold it (roomd/sync/rule_shift.py), table-driven, with
dateutil as the independent oracle: the moved rule, evaluated in the room's zone, has each of
the series' occurrences (evaluated in the organizer's zone) on the same instant or within the
hour the two zones' clock changes disagree on, in order, over years."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from dateutil.rrule import rrulestr

from roomd.sync.rule_shift import NotExpressible, day_shift, rule_in_zone

NY, LONDON, TOKYO = "America/New_York", "Europe/London", "Asia/Tokyo"


def oracle(rule: str, wall: datetime, zone: str, years: int = 12) -> list[datetime]:
    """dateutil's occurrences of ``rule`` from ``wall`` (naive, in ``zone``), as UTC."""
    tz = ZoneInfo(zone)
    start = wall.replace(tzinfo=tz)
    until = start + timedelta(days=366 * years)
    return [
        t.replace(tzinfo=tz).astimezone(UTC)
        for t in rrulestr(rule, dtstart=wall).between(wall, until.replace(tzinfo=None), inc=True)
    ]


CASES = [
    # organizer's rule, wall time there, organizer's zone, room's zone, rule expected in the room
    ("FREQ=MONTHLY;BYMONTHDAY=15", datetime(2027, 1, 15, 20), NY, LONDON, "BYMONTHDAY=16"),
    ("FREQ=MONTHLY;BYMONTHDAY=1", datetime(2027, 2, 1, 8), TOKYO, LONDON, "BYMONTHDAY=-1"),
    ("FREQ=MONTHLY;BYMONTHDAY=-1", datetime(2027, 1, 31, 20), NY, LONDON, "BYMONTHDAY=1"),
    ("FREQ=MONTHLY;BYMONTHDAY=-1", datetime(2027, 1, 31, 8), TOKYO, LONDON, "BYMONTHDAY=-2"),
    (
        "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=1",
        datetime(2027, 2, 1, 8),
        TOKYO,
        LONDON,
        "BYMONTH=1;BYMONTHDAY=-1",
    ),
    (
        "FREQ=YEARLY;BYMONTH=12;BYMONTHDAY=-1",
        datetime(2027, 12, 31, 20),
        NY,
        LONDON,
        "BYMONTH=1;BYMONTHDAY=1",
    ),
    (
        "FREQ=MONTHLY;BYDAY=1MO",
        datetime(2027, 2, 1, 20),
        NY,
        LONDON,
        "BYDAY=TU;BYMONTHDAY=2,3,4,5,6,7,8",
    ),
    (
        "FREQ=MONTHLY;INTERVAL=2;BYDAY=MO;BYSETPOS=2",
        datetime(2027, 2, 8, 20),
        NY,
        LONDON,
        "BYDAY=TU;BYMONTHDAY=9,10,11,12,13,14,15",
    ),
    ("FREQ=WEEKLY;BYDAY=MO,TH;WKST=MO", datetime(2027, 1, 4, 20), NY, LONDON, "BYDAY=TU,FR"),
    ("FREQ=DAILY;INTERVAL=3", datetime(2027, 1, 4, 20), NY, LONDON, "FREQ=DAILY;INTERVAL=3"),
    ("FREQ=MONTHLY;BYMONTHDAY=15", datetime(2027, 1, 15, 9), NY, LONDON, "BYMONTHDAY=15"),
]


@pytest.mark.parametrize(("rule", "wall", "zone", "room", "part"), CASES)
def test_a_moved_rule_has_every_occurrence_of_the_series_in_the_rooms_zone(
    rule: str, wall: datetime, zone: str, room: str, part: str
) -> None:
    start = wall.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)
    moved = rule_in_zone(rule, start, zone, room)
    assert part in moved
    ours = oracle(rule, wall, zone)
    room_wall = start.astimezone(ZoneInfo(room)).replace(tzinfo=None)
    theirs = oracle(moved, room_wall, room, years=13)[: len(ours)]
    assert theirs[0] == start
    assert len(theirs) == len(ours)
    # the same instants, but for the weeks one zone has changed its clocks and not the other
    assert all(abs(t - o) <= timedelta(hours=1) for o, t in zip(ours, theirs, strict=True))
    assert day_shift(start, zone, room) in (-1, 0, 1)


@pytest.mark.parametrize(
    ("rule", "wall", "zone", "why"),
    [
        # the 28th is the 29th in London, or the 1st of March when February has no 29th
        ("FREQ=MONTHLY;BYMONTHDAY=28", datetime(2027, 1, 28, 20), NY, "same days"),
        # the day after the last Monday may be the 1st of the next month
        ("FREQ=MONTHLY;BYDAY=-1MO", datetime(2027, 1, 25, 20), NY, "another month"),
        # the n-th of several weekdays
        ("FREQ=MONTHLY;BYDAY=TH,FR;BYSETPOS=2", datetime(2027, 1, 8, 20), NY, "several"),
        # February 29th, every year (the 28th in other years): March 1st, or 2nd in London
        ("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=28,29;BYSETPOS=-1", datetime(2028, 2, 29, 20), NY, ""),
    ],
)
def test_a_rule_no_single_rule_in_the_rooms_zone_has_is_refused_naming_why(
    rule: str, wall: datetime, zone: str, why: str
) -> None:
    start = wall.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)
    with pytest.raises(NotExpressible) as caught:
        rule_in_zone(rule, start, zone, LONDON)
    message = str(caught.value)
    assert rule in message and LONDON in message and zone in message
    assert why in message
