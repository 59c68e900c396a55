"""``patternedRecurrence`` validation, normalisation and expansion, written from Graph's docs.

Sources: contrib resources/recurrencepattern.md, resources/recurrencerange.md and
concepts/outlook-schedule-recurring-events.md (graph-behaviour.md 2.7). Deliberately independent
of ``dateutil.rrule`` (roomd's client uses dateutil; two implementations catch each other's bugs).

Rules implemented:
- pattern types daily / weekly / absoluteMonthly / relativeMonthly / absoluteYearly /
  relativeYearly; ranges endDate (inclusive) / noEnd / numbered (counts occurrences, not periods);
- ``startDate`` must equal the date of the event's start; the first occurrence may be later;
- weekly with interval > 1 counts weeks from the week (starting ``firstDayOfWeek``) holding
  ``startDate``;
- relative patterns pick the index-th day of the month matching any of ``daysOfWeek``
  ("falls on the first day that satisfies the pattern"), ``last`` = the last such day;
- absolute patterns on a day the month lacks (31 in April) fall on the month's last day [INF:
  Outlook's behaviour for "day 31 of every month"];
- occurrences are built as wall-clock times in ``recurrenceTimeZone`` (default: the start's zone)
  and only then converted to UTC, so a 09:00 meeting stays at 09:00 across DST.
- the server echoes a normalised form (lower-case days, ``firstDayOfWeek``, ``index``, zeros),
  as in the event-recurring-create-response.json sample.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from roomd.sim.graph.wire import canonical_enum
from roomd.sim.graph.zones import UnknownTimeZone, resolve_zone

DAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
INDEXES = ("first", "second", "third", "fourth", "last")
PATTERN_TYPES = (
    "daily",
    "weekly",
    "absoluteMonthly",
    "relativeMonthly",
    "absoluteYearly",
    "relativeYearly",
)
RANGE_TYPES = ("endDate", "noEnd", "numbered")
MAX_OCCURRENCES = 5000  # guard for noEnd series expanded over huge windows


class RecurrenceError(ValueError):
    """The recurrence is invalid; the message names the offending property."""


@dataclass(frozen=True)
class Recurrence:
    """A validated recurrence (normalised)."""

    type: str
    interval: int
    days_of_week: tuple[str, ...]
    first_day_of_week: str
    index: str
    day_of_month: int
    month: int
    range_type: str
    start_date: date
    end_date: date | None
    count: int
    time_zone: str  # as given (Windows or IANA)

    def as_graph(self) -> dict[str, Any]:
        """The normalised ``patternedRecurrence`` Graph echoes back."""
        return {
            "pattern": {
                "type": self.type,
                "interval": self.interval,
                "month": self.month,
                "dayOfMonth": self.day_of_month,
                "daysOfWeek": list(self.days_of_week),
                "firstDayOfWeek": self.first_day_of_week,
                "index": self.index,
            },
            "range": {
                "type": self.range_type,
                "startDate": self.start_date.isoformat(),
                "endDate": self.end_date.isoformat() if self.end_date else "0001-01-01",
                "recurrenceTimeZone": self.time_zone,
                "numberOfOccurrences": self.count,
            },
        }


def _int(obj: dict[str, Any], key: str, where: str, default: int = 0) -> int:
    value = obj.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise RecurrenceError(f"{where}.{key} must be an integer, got {value!r}")
    return value


def _date(value: Any, where: str) -> date:
    if not isinstance(value, str):
        raise RecurrenceError(f"{where} must be a date string YYYY-MM-DD, got {value!r}")
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise RecurrenceError(f"{where} must be a date YYYY-MM-DD, got {value!r}") from exc


def parse(raw: Any, event_start_date: date, event_zone: str) -> Recurrence:
    """Validate a client's ``recurrence``; ``event_start_date`` is the start's local date."""
    if not isinstance(raw, dict):
        raise RecurrenceError("recurrence must be an object with pattern and range")
    pattern = raw.get("pattern")
    rng = raw.get("range")
    if not isinstance(pattern, dict):
        raise RecurrenceError("recurrence.pattern is required")
    if not isinstance(rng, dict):
        raise RecurrenceError("recurrence.range is required")
    # enum values are read case-insensitively and echoed canonically (wire.canonical_enum)
    ptype = canonical_enum(pattern.get("type"), PATTERN_TYPES)
    if ptype is None:
        raise RecurrenceError(
            f"recurrence.pattern.type must be one of {', '.join(PATTERN_TYPES)}, "
            f"got {pattern.get('type')!r}"
        )
    interval = _int(pattern, "interval", "recurrence.pattern", 0)
    if interval < 1:
        raise RecurrenceError(f"recurrence.pattern.interval must be positive, got {interval}")
    raw_days = pattern.get("daysOfWeek") or []
    if not isinstance(raw_days, list):
        raise RecurrenceError("recurrence.pattern.daysOfWeek must be a list")
    days: list[str] = []
    for d in raw_days:
        if not isinstance(d, str) or d.lower() not in DAYS:
            raise RecurrenceError(f"recurrence.pattern.daysOfWeek has an unknown day {d!r}")
        if d.lower() not in days:
            days.append(d.lower())
    fdow = pattern.get("firstDayOfWeek") or "sunday"
    if not isinstance(fdow, str) or fdow.lower() not in DAYS:
        raise RecurrenceError(f"recurrence.pattern.firstDayOfWeek is not a day: {fdow!r}")
    index = pattern.get("index") or "first"
    if not isinstance(index, str) or index.lower() not in INDEXES:
        raise RecurrenceError(
            f"recurrence.pattern.index must be one of {', '.join(INDEXES)}, got {index!r}"
        )
    day_of_month = _int(pattern, "dayOfMonth", "recurrence.pattern")
    month = _int(pattern, "month", "recurrence.pattern")
    if ptype in ("weekly", "relativeMonthly", "relativeYearly") and not days:
        raise RecurrenceError(f"recurrence.pattern.daysOfWeek is required for {ptype}")
    if ptype in ("absoluteMonthly", "absoluteYearly") and not 1 <= day_of_month <= 31:
        raise RecurrenceError(
            f"recurrence.pattern.dayOfMonth must be 1-31 for {ptype}, got {day_of_month}"
        )
    if ptype in ("absoluteYearly", "relativeYearly") and not 1 <= month <= 12:
        raise RecurrenceError(f"recurrence.pattern.month must be 1-12 for {ptype}, got {month}")
    if not 0 <= month <= 12:
        raise RecurrenceError(f"recurrence.pattern.month must be 0-12, got {month}")
    if not 0 <= day_of_month <= 31:
        raise RecurrenceError(f"recurrence.pattern.dayOfMonth must be 0-31, got {day_of_month}")

    rtype = canonical_enum(rng.get("type"), RANGE_TYPES)
    if rtype is None:
        raise RecurrenceError(
            f"recurrence.range.type must be one of {', '.join(RANGE_TYPES)}, "
            f"got {rng.get('type')!r}"
        )
    start_date = _date(rng.get("startDate"), "recurrence.range.startDate")
    if start_date != event_start_date:
        raise RecurrenceError(
            f"recurrence.range.startDate {start_date.isoformat()} must be the date of the "
            f"event's start ({event_start_date.isoformat()})"
        )
    end_date: date | None = None
    count = 0
    if rtype == "endDate":
        end_date = _date(rng.get("endDate"), "recurrence.range.endDate")
        if end_date < start_date:
            raise RecurrenceError(
                f"recurrence.range.endDate {end_date.isoformat()} is before startDate "
                f"{start_date.isoformat()}"
            )
    elif rtype == "numbered":
        count = _int(rng, "numberOfOccurrences", "recurrence.range")
        if count < 1:
            raise RecurrenceError(
                f"recurrence.range.numberOfOccurrences must be positive, got {count}"
            )
    tz_name = rng.get("recurrenceTimeZone") or event_zone
    if not isinstance(tz_name, str):
        raise RecurrenceError("recurrence.range.recurrenceTimeZone must be a string")
    try:
        resolve_zone(tz_name)
    except UnknownTimeZone as exc:
        raise RecurrenceError(f"recurrence.range.recurrenceTimeZone: {exc}") from exc
    return Recurrence(
        type=ptype,
        interval=interval,
        days_of_week=tuple(days),
        first_day_of_week=fdow.lower(),
        index=index.lower(),
        day_of_month=day_of_month,
        month=month,
        range_type=rtype,
        start_date=start_date,
        end_date=end_date,
        count=count,
        time_zone=tz_name,
    )


def from_graph(normalised: dict[str, Any]) -> Recurrence:
    """Rebuild from our own normalised echo (the stored form)."""
    start = date.fromisoformat(normalised["range"]["startDate"])
    return parse(normalised, start, normalised["range"]["recurrenceTimeZone"])


def _sun0(d: date) -> int:
    return (d.weekday() + 1) % 7


def _add_months(year: int, month: int, n: int) -> tuple[int, int]:
    total = year * 12 + (month - 1) + n
    return total // 12, total % 12 + 1


def _clamped(year: int, month: int, day: int) -> date:
    return date(year, month, min(day, calendar.monthrange(year, month)[1]))


def _relative(year: int, month: int, days: tuple[str, ...], index: str) -> date | None:
    wanted = {DAYS.index(d) for d in days}
    last = calendar.monthrange(year, month)[1]
    matching = [date(year, month, d) for d in range(1, last + 1)]
    matching = [d for d in matching if _sun0(d) in wanted]
    pos = INDEXES.index(index)
    if index == "last":
        return matching[-1] if matching else None
    return matching[pos] if pos < len(matching) else None


def _pattern_dates(rec: Recurrence) -> Iterator[date]:
    """Dates matching the pattern, in order, from startDate on (no range end applied)."""
    start = rec.start_date
    if rec.type == "daily":
        d = start
        while True:
            yield d
            d += timedelta(days=rec.interval)
    elif rec.type == "weekly":
        fdow = DAYS.index(rec.first_day_of_week)
        week = start - timedelta(days=(_sun0(start) - fdow) % 7)
        wanted = {DAYS.index(d) for d in rec.days_of_week}
        while True:
            for i in range(7):
                d = week + timedelta(days=i)
                if d >= start and _sun0(d) in wanted:
                    yield d
            week += timedelta(days=7 * rec.interval)
    elif rec.type in ("absoluteMonthly", "relativeMonthly"):
        y, m = start.year, start.month
        while True:
            if rec.type == "absoluteMonthly":
                cand: date | None = _clamped(y, m, rec.day_of_month)
            else:
                cand = _relative(y, m, rec.days_of_week, rec.index)
            if cand is not None and cand >= start:
                yield cand
            y, m = _add_months(y, m, rec.interval)
    else:  # yearly
        y = start.year
        while True:
            if rec.type == "absoluteYearly":
                cand = _clamped(y, rec.month, rec.day_of_month)
            else:
                cand = _relative(y, rec.month, rec.days_of_week, rec.index)
            if cand is not None and cand >= start:
                yield cand
            y += rec.interval


def occurrence_dates(rec: Recurrence, until: date | None = None) -> Iterator[date]:
    """Occurrence dates with the range applied; ``until`` bounds noEnd (inclusive)."""
    for produced, d in enumerate(_pattern_dates(rec)):
        if rec.range_type == "endDate" and rec.end_date is not None and d > rec.end_date:
            return
        if rec.range_type == "numbered" and produced >= rec.count:
            return
        if until is not None and d > until:
            return
        if d.year > 9000 or produced >= MAX_OCCURRENCES:
            return
        yield d


def expand(
    rec: Recurrence, first_start_utc: datetime, until_utc: datetime | None = None
) -> list[datetime]:
    """UTC start instants of every occurrence (original starts), bounded by ``until_utc``.

    The time of day is the series start's wall-clock time in ``recurrenceTimeZone``; a
    non-existent local time (spring-forward gap) resolves forward as zoneinfo's fold=0 does.
    """
    zone: ZoneInfo = resolve_zone(rec.time_zone)
    local_time: time = first_start_utc.astimezone(zone).time().replace(tzinfo=None)
    until_date = until_utc.astimezone(zone).date() + timedelta(days=1) if until_utc else None
    out: list[datetime] = []
    for d in occurrence_dates(rec, until_date):
        local = datetime.combine(d, local_time, tzinfo=zone)
        utc = local.astimezone(UTC)
        if until_utc is not None and utc > until_utc:
            break
        out.append(utc)
    return out


def last_date(rec: Recurrence) -> date | None:
    """The series' last occurrence date; None for noEnd."""
    if rec.range_type == "noEnd":
        return None
    last: date | None = None
    for d in occurrence_dates(rec):
        last = d
    return last
