"""Recurring series in both languages: Hybrid's RFC 5545 RRULE and Graph's patternedRecurrence.

Hybrid stores a series as one booking whose ``recurrence.rrule`` is an RRULE value (no
``RRULE:`` prefix), evaluated in the room's IANA zone from the booking's start (DTSTART), with
``exdates`` for removed occurrences (docs/hybrid-api.md). Graph stores ``recurrence: {pattern,
range}`` (Microsoft Graph resources/patternedrecurrence.md, recurrencepattern.md,
recurrencerange.md; concepts/outlook-schedule-recurring-events.md; docs/graph-behaviour.md 2.7).

How the two map onto each other follows Microsoft's own iCalendar conversion, [MS-OXCICAL]
2.1.3.2.2 "Recurrence Templates" (daily, weekly, monthly, monthly-nth, yearly, yearly-nth). Two
points need care:

- **A day of the month that a month lacks.** Exchange puts the occurrence on the month's last day
  (EWS ``DayOfMonth`` element: "If for a particular month this value is larger than the number of
  days in the month, the last day of the month is assumed"); RFC 5545 skips that month. So
  ``dayOfMonth`` 31 is ``BYMONTHDAY=-1`` (as [MS-OXCICAL] maps it), 29 and 30 are
  ``BYMONTHDAY=28,29[,30];BYSETPOS=-1`` (the last of those days the month has), and February 29
  every year is ``BYMONTHDAY=-1``. A plain ``BYMONTHDAY=30`` over months that lack a 30th has no
  Graph form and is refused.
- **Several days with an index.** "If there are multiple days in daysOfWeek, the event falls on the
  first day that satisfies the pattern" (recurrencepattern.md): the index counts over the listed
  days together, as [MS-OXOCAL] 2.2.1.44.1 defines the ``MonthNth`` pattern ("the second
  occurrence of the days specified"), which is ``BYDAY=TH,FR;BYSETPOS=2`` ([MS-OXCICAL]
  2.1.3.2.2.4). One day uses the shorter ``BYDAY=2WE``.

Occurrences are generated on the wall clock of the series' zone and only then converted to UTC,
so a 09:00 meeting stays at 09:00 local across daylight-saving changes (RFC 5545 3.3.10 with a
DTSTART in a time zone; graph-behaviour.md 2.7 "Occurrences are generated in recurrenceTimeZone").

Pure: no I/O, no clock. python-dateutil's ``rrule`` expands the rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any, Final, Literal, Required, TypedDict

from dateutil import rrule as du

from roomd.sync.zones import zone_info

__all__ = [
    "GraphPattern",
    "GraphRange",
    "GraphRecurrence",
    "graph_from_rrule",
    "graph_occurrences",
    "normalize_graph",
    "occurrences",
    "rrule_from_graph",
]


class GraphPattern(TypedDict, total=False):
    """recurrencePattern as roomd sends and compares it: only the fields the type uses."""

    type: Required[str]
    interval: Required[int]
    daysOfWeek: list[str]
    firstDayOfWeek: str
    index: str
    month: int
    dayOfMonth: int


class GraphRange(TypedDict, total=False):
    """recurrenceRange as roomd sends and compares it: only the fields the type uses."""

    type: Required[str]
    startDate: Required[str]
    endDate: str
    numberOfOccurrences: int
    recurrenceTimeZone: str


class GraphRecurrence(TypedDict):
    """patternedRecurrence: an event's ``recurrence``."""

    pattern: GraphPattern
    range: GraphRange


# Python's weekday numbers (Monday 0) and the two spellings of each day
_GRAPH_DAYS: Final = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_RFC_DAYS: Final = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_SUNDAY: Final = 6
_MONDAY: Final = 0

_PATTERN_TYPES: Final = {
    name.casefold(): name
    for name in (
        "daily",
        "weekly",
        "absoluteMonthly",
        "relativeMonthly",
        "absoluteYearly",
        "relativeYearly",
    )
}
_RANGE_TYPES: Final = {name.casefold(): name for name in ("endDate", "noEnd", "numbered")}
_INDEXES: Final = {"first": 1, "second": 2, "third": 3, "fourth": 4, "last": -1}
_INDEX_NAMES: Final = {number: name for name, number in _INDEXES.items()}

# Days in each month: the fewest (February 28) and the most (February 29)
_SHORTEST: Final = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_LONGEST: Final = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)

_FREQS: Final[dict[str, Literal[0, 1, 2, 3, 4, 5, 6]]] = {
    "YEARLY": du.YEARLY,
    "MONTHLY": du.MONTHLY,
    "WEEKLY": du.WEEKLY,
    "DAILY": du.DAILY,
    "HOURLY": du.HOURLY,
    "MINUTELY": du.MINUTELY,
    "SECONDLY": du.SECONDLY,
}
# RFC 5545 3.3.10 BYxxx parts holding integers, with their allowed magnitudes
_INT_LISTS: Final = {
    "BYSECOND": (0, 60),
    "BYMINUTE": (0, 59),
    "BYHOUR": (0, 23),
    "BYMONTHDAY": (1, 31),
    "BYYEARDAY": (1, 366),
    "BYWEEKNO": (1, 53),
    "BYMONTH": (1, 12),
    "BYSETPOS": (1, 366),
}
_SIGNED: Final = frozenset({"BYMONTHDAY", "BYYEARDAY", "BYWEEKNO", "BYSETPOS"})


# ---------------------------------------------------------------------------------------------
# The side-independent form both directions go through


@dataclass(frozen=True, slots=True)
class _Pattern:
    """One recurrence pattern; ``days`` are Python weekday numbers, ``index`` 1..4 or -1."""

    type: str
    interval: int
    days: tuple[int, ...] = ()
    first_day: int = _SUNDAY
    index: int = 1
    month: int = 0
    day: int = 0


@dataclass(frozen=True, slots=True)
class _Range:
    """Where a series starts and stops; ``zone`` is the name the range is in, as given."""

    type: str
    start: date
    zone: str
    end: date | None = None
    count: int | None = None


@dataclass(frozen=True, slots=True)
class _Rule:
    """An RRULE split into its parts (RFC 5545 3.3.10); ``until`` is a date, an aware UTC
    datetime (the ``Z`` form) or a naive one (floating local time)."""

    freq: str
    interval: int = 1
    count: int | None = None
    until: date | datetime | None = None
    byday: tuple[tuple[int | None, int], ...] = ()
    ints: tuple[tuple[str, tuple[int, ...]], ...] = ()
    wkst: int | None = None

    def get(self, name: str) -> tuple[int, ...]:
        return dict(self.ints).get(name, ())


def _sunday_first(days: Iterable[int]) -> tuple[int, ...]:
    """Days in Graph's enumeration order (Sunday first), each once."""
    return tuple(sorted(set(days), key=lambda day: (day + 1) % 7))


# ---------------------------------------------------------------------------------------------
# Reading Graph


def _integer(raw: Mapping[str, Any], key: str, where: str, low: int, high: int | None) -> int:
    value = raw.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{where}.{key} must be an integer, not {value!r}")
    if value < low or (high is not None and value > high):
        top = "" if high is None else f"..{high}"
        raise ValueError(f"{where}.{key} {value} is outside {low}{top}")
    return value


def _weekday(value: object, where: str) -> int:
    if isinstance(value, str) and value.casefold() in _GRAPH_DAYS:
        return _GRAPH_DAYS.index(value.casefold())
    raise ValueError(f"{where} {value!r} is not a day of the week")


def _days_of_week(raw: Mapping[str, Any]) -> tuple[int, ...]:
    days = raw.get("daysOfWeek")
    if not isinstance(days, list | tuple) or not days:
        raise ValueError(f"pattern.daysOfWeek must list at least one day, not {days!r}")
    return _sunday_first(_weekday(day, "pattern.daysOfWeek") for day in days)


def _index(raw: Mapping[str, Any]) -> int:
    value = raw.get("index")
    if value is None:
        return 1  # optional; "first" by default (recurrencepattern.md)
    if isinstance(value, str) and value.casefold() in _INDEXES:
        return _INDEXES[value.casefold()]
    raise ValueError(f"pattern.index {value!r} is not first, second, third, fourth or last")


def _parse_pattern(raw: object) -> _Pattern:
    """A Graph recurrencePattern, keeping only the fields its type uses.

    Graph validates every field sent but echoes placeholders for the ones a type ignores
    (``"index":"first"``, ``"month":0``, ``"dayOfMonth":0`` on a weekly pattern;
    event-recurring-create-response.json): those are dropped here, so two patterns that mean
    the same compare equal."""
    if not isinstance(raw, Mapping):
        raise ValueError(f"recurrence.pattern must be an object, not {raw!r}")
    kind = raw.get("type")
    if not isinstance(kind, str) or kind.casefold() not in _PATTERN_TYPES:
        raise ValueError(f"pattern.type {kind!r} is not a recurrence pattern type Graph documents")
    kind = _PATTERN_TYPES[kind.casefold()]
    interval = _integer(raw, "interval", "pattern", 1, None)
    if kind == "daily":
        return _Pattern(kind, interval)
    if kind == "weekly":
        first = raw.get("firstDayOfWeek")
        # optional on the concept page, with Sunday as the default (graph-behaviour.md 2.7)
        first_day = _SUNDAY if first is None else _weekday(first, "pattern.firstDayOfWeek")
        return _Pattern(kind, interval, _days_of_week(raw), first_day=first_day)
    if kind == "absoluteMonthly":
        return _Pattern(kind, interval, day=_integer(raw, "dayOfMonth", "pattern", 1, 31))
    if kind == "relativeMonthly":
        return _Pattern(kind, interval, _days_of_week(raw), index=_index(raw))
    month = _integer(raw, "month", "pattern", 1, 12)
    if kind == "absoluteYearly":
        day = _integer(raw, "dayOfMonth", "pattern", 1, 31)
        # Exchange moves a day the month lacks to its last day (EWS DayOfMonth element), so
        # April 31 is April 30 and February 30 is February's last day
        return _Pattern(kind, interval, month=month, day=min(day, _LONGEST[month]))
    return _Pattern(kind, interval, _days_of_week(raw), index=_index(raw), month=month)


def _iso_date(raw: Mapping[str, Any], key: str) -> date:
    value = raw.get(key)
    if not isinstance(value, str):
        raise ValueError(f"range.{key} must be a date (YYYY-MM-DD), not {value!r}")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"range.{key} {value!r} is not a date (YYYY-MM-DD)") from None


def _parse_range(raw: object, zone: str) -> _Range:
    """A Graph recurrenceRange, keeping only the fields its type uses (Graph echoes
    ``numberOfOccurrences: 0`` and ``endDate: "0001-01-01"`` on ranges that ignore them).

    ``recurrenceTimeZone`` "is the zone of startDate and endDate and defaults to the event's
    zone" (recurrencerange.md): ``zone`` is that default."""
    if not isinstance(raw, Mapping):
        raise ValueError(f"recurrence.range must be an object, not {raw!r}")
    kind = raw.get("type")
    if not isinstance(kind, str) or kind.casefold() not in _RANGE_TYPES:
        raise ValueError(f"range.type {kind!r} is not endDate, noEnd or numbered")
    kind = _RANGE_TYPES[kind.casefold()]
    named = raw.get("recurrenceTimeZone")
    if named is not None and not isinstance(named, str):
        raise ValueError(f"range.recurrenceTimeZone must be a time-zone name, not {named!r}")
    series_zone = named or zone
    zone_info(series_zone)  # ValueError naming it when unknown
    start = _iso_date(raw, "startDate")
    if kind == "endDate":
        end = _iso_date(raw, "endDate")
        if end < start:
            raise ValueError(f"range.endDate {end} is before range.startDate {start}")
        return _Range(kind, start, series_zone, end=end)
    if kind == "numbered":
        count = _integer(raw, "numberOfOccurrences", "range", 1, None)
        return _Range(kind, start, series_zone, count=count)
    return _Range(kind, start, series_zone)


def _parse_graph(recurrence: Mapping[str, Any], zone: str) -> tuple[_Pattern, _Range]:
    if not isinstance(recurrence, Mapping):
        raise ValueError(f"recurrence must be an object, not {recurrence!r}")
    return _parse_pattern(recurrence.get("pattern")), _parse_range(recurrence.get("range"), zone)


# ---------------------------------------------------------------------------------------------
# Writing Graph


def _graph_body(pattern: _Pattern, range_: _Range) -> GraphRecurrence:
    """The patternedRecurrence for a pattern and range: only the properties the types use, since
    "any property that you include that does not have a supported value would result in an
    error" (outlook-schedule-recurring-events.md). Day names are lower-case, Graph's enum
    spelling; weekly always carries firstDayOfWeek (the resource page requires it)."""
    body: GraphPattern = {"type": pattern.type, "interval": pattern.interval}
    if pattern.type in ("absoluteYearly", "relativeYearly"):
        body["month"] = pattern.month
    if pattern.type in ("absoluteMonthly", "absoluteYearly"):
        body["dayOfMonth"] = pattern.day
    if pattern.type in ("weekly", "relativeMonthly", "relativeYearly"):
        body["daysOfWeek"] = [_GRAPH_DAYS[day] for day in _sunday_first(pattern.days)]
    if pattern.type == "weekly":
        body["firstDayOfWeek"] = _GRAPH_DAYS[pattern.first_day]
    if pattern.type in ("relativeMonthly", "relativeYearly"):
        body["index"] = _INDEX_NAMES[pattern.index]
    span: GraphRange = {"type": range_.type, "startDate": range_.start.isoformat()}
    if range_.end is not None:
        span["endDate"] = range_.end.isoformat()
    if range_.count is not None:
        span["numberOfOccurrences"] = range_.count
    span["recurrenceTimeZone"] = range_.zone
    return {"pattern": body, "range": span}


def normalize_graph(recurrence: Mapping[str, Any], *, zone: str) -> GraphRecurrence:
    """A Graph ``recurrence`` in the one form roomd compares and sends.

    "Compare recurrences after normalizing" (graph-behaviour.md 2.7): the server echoes what it
    stores with lower-case day names, ``firstDayOfWeek``, ``index:"first"``, ``month:0``,
    ``dayOfMonth:0``, ``numberOfOccurrences:0`` and ``recurrenceTimeZone`` filled in
    (event-recurring-create-response.json), so the request and the echo differ as text. The
    normal form keeps each type's fields only, fills the documented defaults (weekly
    ``firstDayOfWeek`` Sunday, relative ``index`` first, ``recurrenceTimeZone`` = ``zone``, the
    event's zone), lower-cases and orders the days (Sunday first) and clamps an absolute yearly
    day to its month (see :mod:`roomd.sync.recurrence`). Raises ValueError naming the first
    field Graph would refuse."""
    return _graph_body(*_parse_graph(recurrence, zone))


# ---------------------------------------------------------------------------------------------
# Writing an RRULE


def _interval(interval: int) -> list[str]:
    return [] if interval == 1 else [f"INTERVAL={interval}"]


def _month_day(day: int, month: int | None) -> list[str]:
    """BYMONTHDAY for Graph's ``dayOfMonth``, which falls on the month's last day in a month
    that lacks it (EWS DayOfMonth element), where RFC 5545 would skip the month."""
    shortest = 28 if month is None else _SHORTEST[month]
    longest = 31 if month is None else _LONGEST[month]
    if day <= shortest:
        return [f"BYMONTHDAY={day}"]
    if day >= longest:
        return ["BYMONTHDAY=-1"]  # the last day; [MS-OXCICAL] 2.1.3.2.2.3 maps -1 to day 31
    days = ",".join(str(d) for d in range(28, day + 1))
    return [f"BYMONTHDAY={days}", "BYSETPOS=-1"]  # the last of 28..day the month has


def _nth_day(days: tuple[int, ...], index: int) -> list[str]:
    """BYDAY for a relative pattern: ``2WE`` for one day, ``TH,FR;BYSETPOS=1`` for several
    (the index counts over the days together: [MS-OXOCAL] 2.2.1.44.1, [MS-OXCICAL]
    2.1.3.2.2.4)."""
    if len(days) == 1:
        return [f"BYDAY={index}{_RFC_DAYS[days[0]]}"]
    return [f"BYDAY={_rfc_days(days)}", f"BYSETPOS={index}"]


def _rfc_days(days: Iterable[int]) -> str:
    return ",".join(_RFC_DAYS[day] for day in sorted(set(days)))


def _pattern_parts(pattern: _Pattern) -> list[str]:
    every = _interval(pattern.interval)
    if pattern.type == "daily":
        return ["FREQ=DAILY", *every]
    if pattern.type == "weekly":
        # WKST always: with INTERVAL>1 it decides which weeks count ([MS-OXCICAL] 2.1.3.2.2.2),
        # and Graph's default week start (Sunday) is not RFC 5545's (Monday)
        return [
            "FREQ=WEEKLY",
            *every,
            f"BYDAY={_rfc_days(pattern.days)}",
            f"WKST={_RFC_DAYS[pattern.first_day]}",
        ]
    if pattern.type == "absoluteMonthly":
        return ["FREQ=MONTHLY", *every, *_month_day(pattern.day, None)]
    if pattern.type == "relativeMonthly":
        return ["FREQ=MONTHLY", *every, *_nth_day(pattern.days, pattern.index)]
    in_month = f"BYMONTH={pattern.month}"
    if pattern.type == "absoluteYearly":
        return ["FREQ=YEARLY", *every, in_month, *_month_day(pattern.day, pattern.month)]
    return ["FREQ=YEARLY", *every, in_month, *_nth_day(pattern.days, pattern.index)]


def _as_local(value: datetime, naive_zone: tzinfo, zone: tzinfo) -> datetime:
    """``value`` on ``zone``'s wall clock; a naive value is wall time in ``naive_zone``."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=naive_zone)
    return value.astimezone(zone)


def _end_of_day(day: date, zone: tzinfo) -> datetime:
    """The last second of a local day, in UTC: the next local midnight minus one second (a
    midnight that a DST change skips resolves to the instant of the change)."""
    midnight = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
    return midnight.astimezone(UTC) - timedelta(seconds=1)


def rrule_from_graph(
    recurrence: Mapping[str, Any], *, first_start_local: datetime, zone: str
) -> str:
    """The RRULE (no ``RRULE:`` prefix, as Hybrid stores it) for a Graph ``recurrence``, to be
    evaluated from the series' first start.

    ``zone`` is the event's zone (its ``start.timeZone``, Windows or IANA); the rule's dates
    and wall clock are in ``range.recurrenceTimeZone`` when the range names one, else in
    ``zone`` (recurrencerange.md). ``first_start_local`` is the series master's start: naive
    means wall time in ``zone``. Its date must be ``range.startDate`` ("startDate MUST equal the
    date part of the event start", graph-behaviour.md 2.7); ValueError otherwise.

    Ranges: ``endDate`` (inclusive, a date in the recurrence zone) becomes ``UNTIL`` at the end
    of that local day in UTC (RFC 5545 requires UTC UNTIL with a zoned DTSTART), so an
    occurrence on the end date is kept whatever its time; ``numbered`` becomes ``COUNT`` (Graph
    counts occurrences, as COUNT does); ``noEnd`` has neither. Patterns: see the module
    docstring. Raises ValueError naming the field Graph would refuse."""
    pattern, range_ = _parse_graph(recurrence, zone)
    series_zone = zone_info(range_.zone)
    start = _as_local(first_start_local, zone_info(zone), series_zone)
    if start.date() != range_.start:
        raise ValueError(
            f"range.startDate {range_.start} is not the date of the series' start "
            f"{start.isoformat()} in {range_.zone}"
        )
    parts = _pattern_parts(pattern)
    if range_.end is not None:
        parts.append(f"UNTIL={_end_of_day(range_.end, series_zone):%Y%m%dT%H%M%SZ}")
    if range_.count is not None:
        parts.append(f"COUNT={range_.count}")
    return ";".join(parts)


# ---------------------------------------------------------------------------------------------
# Reading an RRULE


def _rule_int(name: str, text: str, low: int, high: int, signed: bool) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"RRULE part {name}={text} is not an integer") from None
    if not low <= abs(value) <= high or (value < 0 and not signed):
        raise ValueError(f"RRULE part {name}={text} is out of range (RFC 5545 3.3.10)")
    return value


def _rule_day(name: str, text: str) -> tuple[int | None, int]:
    code, number = text[-2:], text[:-2]
    if code not in _RFC_DAYS:
        raise ValueError(f"RRULE part {name}={text} does not end in a day (MO..SU)")
    nth = _rule_int(name, number, 1, 53, True) if number not in ("", "+") else None
    return nth, _RFC_DAYS.index(code)


def _rule_until(text: str) -> date | datetime:
    try:
        if len(text) == 8:
            return datetime.strptime(text, "%Y%m%d").date()
        if text.endswith("Z"):
            return datetime.strptime(text, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        return datetime.strptime(text, "%Y%m%dT%H%M%S")
    except ValueError:
        raise ValueError(f"RRULE part UNTIL={text} is not an RFC 5545 date or date-time") from None


def _parse_rule(text: str) -> _Rule:
    """An RRULE value split into its parts, each checked against RFC 5545 3.3.10. Raises
    ValueError naming the part that is wrong."""
    if not isinstance(text, str):
        raise ValueError(f"RRULE must be text, not {text!r}")
    body = text.strip()
    if body.upper().startswith("RRULE:"):
        body = body[len("RRULE:") :]
    seen: dict[str, str] = {}
    for part in filter(None, body.split(";")):
        name, sep, value = part.partition("=")
        name, value = name.strip().upper(), value.strip().upper()
        if not sep or not value:
            raise ValueError(f"RRULE part {part!r} is not NAME=VALUE")
        if name in seen:
            raise ValueError(f"RRULE part {name} is given twice")
        seen[name] = value
    freq = seen.pop("FREQ", None)
    if freq not in _FREQS:
        raise ValueError(f"RRULE part FREQ={freq} is not an RFC 5545 frequency")
    interval = _rule_int("INTERVAL", seen.pop("INTERVAL", "1"), 1, 10**6, False)
    count_text, until_text = seen.pop("COUNT", None), seen.pop("UNTIL", None)
    if count_text is not None and until_text is not None:
        raise ValueError("RRULE parts COUNT and UNTIL: RFC 5545 allows one of them, not both")
    count = None if count_text is None else _rule_int("COUNT", count_text, 1, 10**6, False)
    until = None if until_text is None else _rule_until(until_text)
    wkst_text = seen.pop("WKST", None)
    wkst = None
    if wkst_text is not None:
        if wkst_text not in _RFC_DAYS:
            raise ValueError(f"RRULE part WKST={wkst_text} is not a day (MO..SU)")
        wkst = _RFC_DAYS.index(wkst_text)
    byday_text = seen.pop("BYDAY", "")
    byday = tuple(_rule_day("BYDAY", d) for d in byday_text.split(",")) if byday_text else ()
    ints: list[tuple[str, tuple[int, ...]]] = []
    for name in list(seen):
        if name not in _INT_LISTS:
            raise ValueError(f"RRULE part {name}={seen[name]} is not an RFC 5545 rule part")
        low, high = _INT_LISTS[name]
        signed = name in _SIGNED
        values = tuple(_rule_int(name, v, low, high, signed) for v in seen[name].split(","))
        ints.append((name, values))
    return _Rule(freq, interval, count, until, byday, tuple(ints), wkst)


def _until_utc(until: date | datetime | None, zone: tzinfo) -> datetime | None:
    """UNTIL as an aware UTC instant: a ``Z`` value as it is; a floating date-time as wall time
    in ``zone``; a bare date as the end of that local day (inclusive, like Graph's endDate).
    RFC 5545 asks for the ``Z`` form with a zoned DTSTART; the others are read, not refused."""
    if until is None:
        return None
    if isinstance(until, datetime):
        return (until if until.tzinfo else until.replace(tzinfo=zone)).astimezone(UTC)
    return _end_of_day(until, zone)


def _refuse(part: str, why: str) -> ValueError:
    return ValueError(f"RRULE part {part}: Graph's patternedRecurrence cannot express it ({why})")


def _visited_months(first_month: int, interval: int) -> frozenset[int]:
    return frozenset((first_month - 1 + k * interval) % 12 + 1 for k in range(12))


def _absolute_day(rule: _Rule, start: datetime, months: frozenset[int]) -> int:
    """Graph's ``dayOfMonth`` for a rule's BYMONTHDAY over the months it visits; ValueError
    when RFC 5545 would skip a month that Exchange would move to the month's last day."""
    monthdays, setpos = rule.get("BYMONTHDAY"), rule.get("BYSETPOS")
    longest = max(_LONGEST[m] for m in months)
    if len(monthdays) > 1:
        high = max(monthdays)
        if setpos == (-1,) and sorted(set(monthdays)) == list(range(28, high + 1)) and high > 28:
            return min(high, longest)  # "the last of 28..high the month has": clamp form
        listed = ",".join(map(str, monthdays))
        raise _refuse(f"BYMONTHDAY={listed}", "a pattern has one day of the month")
    if setpos:
        raise _refuse(f"BYSETPOS={setpos[0]}", "only with several days of the week")
    day = monthdays[0] if monthdays else start.day
    if day == -1:
        return longest  # the last day of the month: dayOfMonth 31 ([MS-OXCICAL] 2.1.3.2.2.3)
    name = f"BYMONTHDAY={day}" if monthdays else f"BYMONTHDAY (from DTSTART, day {day})"
    if day < 0:
        raise _refuse(name, "counting back from the month's end goes only to its last day")
    if day > min(_SHORTEST[m] for m in months):
        raise _refuse(
            name,
            f"RFC 5545 skips a month without a day {day}, where Exchange uses its last day",
        )
    return day


def _relative_days(rule: _Rule) -> tuple[tuple[int, ...], int]:
    """Graph's ``daysOfWeek`` and ``index`` for ``BYDAY=2WE`` or ``BYDAY=TH,FR;BYSETPOS=1``."""
    shown = ",".join(f"{n or ''}{_RFC_DAYS[d]}" for n, d in rule.byday)
    setpos = rule.get("BYSETPOS")
    if setpos:
        if len(setpos) != 1 or setpos[0] not in _INDEX_NAMES:
            listed = ",".join(map(str, setpos))
            raise _refuse(f"BYSETPOS={listed}", "one position: 1, 2, 3, 4 or -1 (last)")
        if any(n is not None for n, _ in rule.byday):
            raise _refuse(f"BYDAY={shown}", "numbered days with BYSETPOS")
        return _sunday_first(d for _, d in rule.byday), setpos[0]
    if len(rule.byday) != 1:
        raise _refuse(f"BYDAY={shown}", "several days need one BYSETPOS to pick among them")
    nth, day = rule.byday[0]
    if nth is None:
        raise _refuse(f"BYDAY={shown}", "every such day of a month or year; give a position")
    if nth not in _INDEX_NAMES:
        raise _refuse(f"BYDAY={shown}", "positions are first to fourth and last")
    return (day,), nth


def _pattern_from_rule(rule: _Rule, start: datetime) -> _Pattern:
    """The Graph pattern for a parsed RRULE; ValueError naming the part Graph cannot express.
    The accepted shapes are [MS-OXCICAL] 2.1.3.2.2's templates (without BYHOUR/BYMINUTE: a Graph
    occurrence starts at the event's start time) plus the clamp forms of the module docstring,
    and FREQ=DAILY;BYDAY=... which is weekly (Outlook's "every weekday")."""
    for name in ("BYSECOND", "BYMINUTE", "BYHOUR", "BYYEARDAY", "BYWEEKNO"):
        if rule.get(name):
            listed = ",".join(map(str, rule.get(name)))
            raise _refuse(f"{name}={listed}", "occurrences fall on days, at the event's start")
    if rule.freq not in ("DAILY", "WEEKLY", "MONTHLY", "YEARLY"):
        raise _refuse(f"FREQ={rule.freq}", "the shortest pattern is daily")
    months, setpos, monthdays = rule.get("BYMONTH"), rule.get("BYSETPOS"), rule.get("BYMONTHDAY")
    shown_months = ",".join(map(str, months))
    week_start = _MONDAY if rule.wkst is None else rule.wkst  # RFC 5545's default WKST
    if rule.freq in ("DAILY", "WEEKLY"):
        for name, values in (("BYMONTH", months), ("BYMONTHDAY", monthdays), ("BYSETPOS", setpos)):
            if values:
                listed = ",".join(map(str, values))
                raise _refuse(f"{name}={listed}", f"not with FREQ={rule.freq}")
        if any(n is not None for n, _ in rule.byday):
            raise _refuse("BYDAY", f"numbered days with FREQ={rule.freq}")
        days = _sunday_first(d for _, d in rule.byday)
        if rule.freq == "DAILY" and not days:
            return _Pattern("daily", rule.interval)
        if rule.freq == "DAILY" and rule.interval != 1:
            raise _refuse(f"INTERVAL={rule.interval}", "every n days, but only on some weekdays")
        return _Pattern("weekly", rule.interval, days or (start.weekday(),), first_day=week_start)
    if rule.freq == "MONTHLY":
        if months:
            raise _refuse(f"BYMONTH={shown_months}", "a monthly pattern visits every n-th month")
        if rule.byday and monthdays:
            raise _refuse("BYDAY with BYMONTHDAY", "a pattern has a day of the month or weekdays")
        if rule.byday:
            days, index = _relative_days(rule)
            return _Pattern("relativeMonthly", rule.interval, days, index=index)
        visited = _visited_months(start.month, rule.interval)
        return _Pattern("absoluteMonthly", rule.interval, day=_absolute_day(rule, start, visited))
    if len(months) > 1:
        raise _refuse(f"BYMONTH={shown_months}", "a yearly pattern has one month")
    if rule.byday:
        if not months:
            raise _refuse("BYDAY without BYMONTH", "positions count within one month")
        if monthdays:
            raise _refuse("BYDAY with BYMONTHDAY", "a pattern has a day of the month or weekdays")
        days, index = _relative_days(rule)
        return _Pattern("relativeYearly", rule.interval, days, index=index, month=months[0])
    if monthdays and not months:
        raise _refuse("BYMONTHDAY without BYMONTH", "RFC 5545 repeats it in every month")
    month = months[0] if months else start.month
    day = _absolute_day(rule, start, frozenset({month}))
    return _Pattern("absoluteYearly", rule.interval, month=month, day=day)


def graph_from_rrule(rrule: str, *, dtstart_local: datetime, zone: str) -> GraphRecurrence:
    """The patternedRecurrence roomd sends to create the Outlook series for a Hybrid series.

    ``rrule`` is Hybrid's ``recurrence.rrule``; ``dtstart_local`` the booking's start (aware, or
    naive wall time in ``zone``); ``zone`` the room's zone (IANA or Windows), which is sent as
    ``recurrenceTimeZone`` as given. ``startDate`` is the local date of the start ("startDate
    MUST equal the date part of the event start"). COUNT becomes a numbered range; UNTIL an
    endDate range ending on the last local date whose occurrence (at the start's wall-clock
    time) is not after UNTIL, so both sides hold the same occurrences; neither, noEnd. Weekly
    patterns carry ``firstDayOfWeek`` from WKST (RFC 5545's Monday when absent).

    Raises ValueError naming the part for rules Graph cannot express: sub-daily frequencies,
    BYHOUR/BYMINUTE/BYSECOND/BYYEARDAY/BYWEEKNO, several months or days of the month, a fifth or
    second-to-last weekday, a day of the month that RFC 5545 would skip in short months, a
    weekday filter on every-n-days, UNTIL before the start."""
    series_zone = zone_info(zone)
    start = _as_local(dtstart_local, series_zone, series_zone)
    rule = _parse_rule(rrule)
    pattern = _pattern_from_rule(rule, start)
    until = _until_utc(rule.until, series_zone)
    if rule.count is not None:
        return _graph_body(pattern, _Range("numbered", start.date(), zone, count=rule.count))
    if until is None:
        return _graph_body(pattern, _Range("noEnd", start.date(), zone))
    last = until.astimezone(series_zone).date()
    if datetime.combine(last, start.timetz()) > until:
        last -= timedelta(days=1)  # that day's occurrence would come after UNTIL
    if last < start.date():
        raise ValueError(f"RRULE part UNTIL: {until:%Y%m%dT%H%M%SZ} is before the series starts")
    return _graph_body(pattern, _Range("endDate", start.date(), zone, end=last))


# ---------------------------------------------------------------------------------------------
# Occurrences


def _aware(value: datetime, what: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} {value.isoformat()} has no time zone; give UTC")
    return value.astimezone(UTC)


def _dateutil_rule(rule: _Rule, start: datetime, zone: tzinfo) -> du.rrule:
    """dateutil's rrule for a parsed RRULE, from a DTSTART on the zone's wall clock: dateutil
    then steps through local dates and times, which is what keeps 09:00 at 09:00."""
    ints = dict(rule.ints)
    weekdays = [du.weekday(day, nth) for nth, day in rule.byday] or None
    return du.rrule(
        _FREQS[rule.freq],
        dtstart=start,
        interval=rule.interval,
        wkst=_MONDAY if rule.wkst is None else rule.wkst,  # not dateutil's global default
        count=rule.count,
        until=_until_utc(rule.until, zone),
        bysetpos=ints.get("BYSETPOS"),
        bymonth=ints.get("BYMONTH"),
        bymonthday=ints.get("BYMONTHDAY"),
        byyearday=ints.get("BYYEARDAY"),
        byweekno=ints.get("BYWEEKNO"),
        byweekday=weekdays,
        byhour=ints.get("BYHOUR"),
        byminute=ints.get("BYMINUTE"),
        bysecond=ints.get("BYSECOND"),
    )


# How far an occurrence's UTC instant can trail its predecessor's: a wall time that a DST
# change skips resolves to the offset before the change (PEP 495 fold=0)
_SLACK: Final = timedelta(days=1)


def occurrences(
    rrule: str,
    *,
    dtstart_local: datetime,
    zone: str,
    exdates: Iterable[datetime],
    between: tuple[datetime, datetime],
) -> list[datetime]:
    """The starts, as aware UTC datetimes in order, of a Hybrid series' occurrences with
    ``between[0] <= start < between[1]``, less those listed in ``exdates`` (UTC starts of removed
    occurrences, docs/hybrid-api.md).

    The rule is evaluated on ``zone``'s wall clock (the room's zone, IANA or Windows) from
    ``dtstart_local`` (aware, or naive wall time in ``zone``), as Hybrid does: "a weekly 09:00
    meeting stays at 09:00 local across a DST change". As in RFC 5545 and Graph, a start that
    does not fit the rule is not an occurrence. A wall time a DST change skips (02:30 on a
    spring-forward night) is read with the offset before the change, so it lands an hour later
    on the new clock; a repeated one is its first pass. The window and exdates must be aware.
    Raises ValueError naming a malformed part."""
    series_zone = zone_info(zone)
    start = _as_local(dtstart_local, series_zone, series_zone)
    low, high = _aware(between[0], "between[0]"), _aware(between[1], "between[1]")
    removed = {_aware(x, "exdate") for x in exdates}
    found = []
    for occurrence in _dateutil_rule(_parse_rule(rrule), start, series_zone):
        instant = occurrence.astimezone(UTC)
        if instant >= high + _SLACK:
            break
        if low <= instant < high and instant not in removed:
            found.append(instant)
    return sorted(found)


def graph_occurrences(
    recurrence: Mapping[str, Any],
    *,
    first_start: datetime,
    zone: str,
    between: tuple[datetime, datetime],
) -> list[datetime]:
    """The starts, as aware UTC datetimes in order, of a Graph series' occurrences inside
    ``between`` (half-open), through :func:`rrule_from_graph`: what the room's calendar holds
    for a series before any occurrence is cancelled or moved. ``first_start`` is the series
    master's start (aware, or naive wall time in ``zone``, the event's zone); occurrences are
    generated in ``range.recurrenceTimeZone`` when given, else ``zone`` (graph-behaviour.md
    2.7)."""
    _, range_ = _parse_graph(recurrence, zone)
    series_zone = zone_info(range_.zone)
    start = _as_local(first_start, zone_info(zone), series_zone)
    rule = rrule_from_graph(recurrence, first_start_local=start, zone=zone)
    return occurrences(rule, dtstart_local=start, zone=range_.zone, exdates=(), between=between)
