"""Expanding a recurring booking into its occurrences, for conflict checks and the no-show sweep.

A series is stored as OfficeRnD stores it: the first occurrence's ``start``/``end``, an RFC 5545
``recurrence.rrule`` and ``recurrence.exdates`` (UTC starts of removed occurrences). The rule is
evaluated in the room's IANA time zone (wall-clock arithmetic), so a weekly 09:00 meeting stays at
09:00 local across a DST change, as RFC 5545 section 3.3.10 requires for a DTSTART with a TZID.
``UNTIL`` must then be given in UTC (``...Z``), also per RFC 5545.

Expansion is bounded (``HORIZON`` after the window start, ``MAX_OCCURRENCES``) so that an unbounded
rule cannot make a request spin; a conflict is always found within the first cycle of two rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from dateutil.rrule import rrule, rrulestr

from roomd.sim.hybrid.errors import unprocessable

HORIZON = timedelta(days=731)
MAX_OCCURRENCES = 2000
_FORBIDDEN = ("DTSTART", "RDATE", "EXDATE", "EXRULE")


@dataclass(frozen=True)
class Occurrence:
    start: datetime  # UTC
    end: datetime  # UTC


def parse_rule(text: object, first_start: datetime, time_zone: str) -> rrule:
    """Validate a ``recurrence.rrule`` string; errors name the field and what is wrong."""
    if not isinstance(text, str) or not text.strip():
        raise unprocessable(f"recurrence.rrule: expected an RFC 5545 RRULE string, got {text!r}")
    body = text.strip()
    if body.upper().startswith("RRULE:"):
        body = body[len("RRULE:") :]
    upper = body.upper()
    if "FREQ=" not in upper:
        raise unprocessable(f"recurrence.rrule: {text!r} has no FREQ")
    for word in _FORBIDDEN:
        if word in upper:
            raise unprocessable(
                f"recurrence.rrule: {word} is not allowed in {text!r}; the series starts at "
                "start.dateTime and removed occurrences go in recurrence.exdates"
            )
    local_start = first_start.astimezone(ZoneInfo(time_zone))
    try:
        rule = rrulestr(body, dtstart=local_start)
    except (ValueError, TypeError) as exc:
        raise unprocessable(f"recurrence.rrule: {text!r} is not a valid RRULE ({exc})") from None
    if not isinstance(rule, rrule):
        raise unprocessable(f"recurrence.rrule: {text!r} must be a single RRULE")
    return rule


def expand(
    rule: rrule,
    first_start: datetime,
    duration: timedelta,
    *,
    exdates: Iterable[datetime] = (),
    overridden: Iterable[datetime] = (),
    window_start: datetime | None = None,
    window_end: datetime | None = None,
) -> Iterator[Occurrence]:
    """Occurrences overlapping ``[window_start, window_end)``, minus exdates and overridden starts.

    ``overridden`` are the original starts that exception child bookings replace: the child is a
    booking of its own and is checked as one.
    """
    skip = {d.astimezone(UTC) for d in exdates} | {d.astimezone(UTC) for d in overridden}
    lower = (window_start or first_start) - duration
    upper = window_end or (lower + HORIZON)
    upper = min(upper, lower + HORIZON)
    count = 0
    for local in rule:
        start = local.astimezone(UTC)
        if start >= upper:
            return
        count += 1
        if count > MAX_OCCURRENCES:
            return
        if start <= lower or start in skip:
            continue
        yield Occurrence(start, start + duration)


def is_occurrence(rule: rrule, candidate: datetime) -> bool:
    """Whether the aware ``candidate`` is one of the rule's starts (exceptions name real ones)."""
    found = rule.after(candidate, inc=True)
    return found is not None and found == candidate


def is_bounded(text: str) -> bool:
    """A rule with ``UNTIL`` or ``COUNT`` ends; without either it recurs forever (RFC 5545)."""
    parts = {p.split("=", 1)[0].strip().upper() for p in text.split(":")[-1].split(";")}
    return bool(parts & {"UNTIL", "COUNT"})


def last_end(rule: rrule, text: str, duration: timedelta) -> datetime | None:
    """End of the last occurrence, or None for an unbounded rule (used for window filters)."""
    if not is_bounded(text):
        return None
    last = None
    for n, local in enumerate(rule):
        last = local
        if n >= MAX_OCCURRENCES:
            break
    return None if last is None else last.astimezone(UTC) + duration
