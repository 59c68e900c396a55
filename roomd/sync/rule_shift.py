"""One series' rule, as another zone must hold it: Outlook evaluates a series' rule in its own
zone (``recurrenceTimeZone``, Microsoft Graph resources/recurrencerange.md), Hybrid in the
room's only (docs/hybrid-api.md), and a series must start on its first occurrence on both.

A New York organizer's 20:00 on the 15th of each month is 01:00 on the 16th in London: Hybrid
must hold ``BYMONTHDAY=16``, or it refuses the series (422, the start is no occurrence of the
rule). The rule is moved by the days the first occurrence moves between the two calendars
(``FREQ=WEEKLY;BYDAY=MO`` -> ``TU``; ``BYMONTHDAY=15`` -> ``16``; the 1st -> the last day of
the month before; the first Monday -> the Tuesday among the 2nd to the 8th), and the result
is checked by expanding both rules over years (every leap-year and month-length case):
each occurrence must have its counterpart, in the same order, within hours (the hour the two
zones' clock changes disagree on is the exception children's, ``series.zone_shifts``). A rule
no single RFC 5545 rule expresses in the other zone (the 28th in New York is the 29th in
London, or the 1st of March when February has no 29th) raises :class:`NotExpressible` with the
reason, for the caller to fail clearly instead of writing what Hybrid can only refuse.

Pure: no I/O, no clock.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache

from .recurrence import occurrences
from .zones import zone_info

__all__ = ["NotExpressible", "day_shift", "rule_in_zone", "same_occurrences"]

_DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_CLOSE = timedelta(hours=12)
"""How far an occurrence may be from its counterpart in the other zone: the zones' clock
changes disagree by an hour or two; a day apart is another occurrence."""
_HORIZON = {"YEARLY": 29 * 366, "MONTHLY": 29 * 366, "WEEKLY": 2 * 366, "DAILY": 2 * 366}
"""Days over which a moved rule is checked: monthly and yearly rules over a whole leap-year
cycle and more (the 29th of February, every month length after every weekday)."""


class NotExpressible(ValueError):
    """No single rule in the other zone has the series' occurrences; the message says why."""


def day_shift(start: datetime, zone: str, other: str) -> int:
    """The days ``other``'s calendar is ahead of ``zone``'s at ``start`` (aware)."""
    return (
        start.astimezone(zone_info(other)).date() - start.astimezone(zone_info(zone)).date()
    ).days


def rule_in_zone(rrule: str, start: datetime, zone: str, other: str) -> str:
    """The rule that, evaluated in ``other`` from ``start`` (the first occurrence, aware), has
    the occurrences ``rrule`` has in ``zone``: ``rrule`` itself when the first occurrence falls
    on the same day in both. Raises :class:`NotExpressible` naming the rule, both zones and
    why, and ValueError for a malformed rule."""
    return _rule_in_zone(rrule, start, zone, other)


@lru_cache(maxsize=4096)
def _rule_in_zone(rrule: str, start: datetime, zone: str, other: str) -> str:
    if zone == other:
        return rrule
    shift = day_shift(start, zone, other)
    parts = [(name, value) for name, _, value in (p.partition("=") for p in rrule.split(";"))]
    freq = dict(parts).get("FREQ", "")
    if shift == 0:
        candidate = rrule
    else:
        try:
            candidate = ";".join(f"{n}={v}" for n, v in _moved(parts, freq, shift))
        except _Unmovable as exc:
            raise _refusal(rrule, start, zone, other, str(exc)) from None
    if not _agrees(rrule, candidate, start, zone, other, freq):
        why = f"no {freq.lower()} rule has the same days there"
        raise _refusal(rrule, start, zone, other, why)
    return candidate


def same_occurrences(rrule: str, zone: str, other_rule: str, other: str, start: datetime) -> bool:
    """Whether ``rrule`` in ``zone`` and ``other_rule`` in ``other``, both from ``start``, are
    one series' rule as each zone holds it (what :func:`rule_in_zone` checks its answer by)."""
    freq = dict(p.partition("=")[::2] for p in rrule.split(";")).get("FREQ", "")
    return _agrees(rrule, other_rule, start, zone, other, freq)


class _Unmovable(Exception):
    pass


def _refusal(rrule: str, start: datetime, zone: str, other: str, why: str) -> NotExpressible:
    ours = start.astimezone(zone_info(zone))
    theirs = start.astimezone(zone_info(other))
    return NotExpressible(
        f"its rule {rrule} in {zone} ({ours:%a %Y-%m-%d %H:%M} there) falls on "
        f"{theirs:%a %Y-%m-%d %H:%M} in the room's zone {other}, and {why}: Hybrid evaluates "
        "a series' rule in the room's zone only"
    )


def _moved(parts: list[tuple[str, str]], freq: str, shift: int) -> list[tuple[str, str]]:
    names = {n for n, _ in parts}
    if "BYYEARDAY" in names or "BYWEEKNO" in names or "BYHOUR" in names:
        raise _Unmovable("its BYYEARDAY/BYWEEKNO/BYHOUR parts are not moved")
    if freq in ("DAILY", "WEEKLY"):
        return [(n, _weekdays(v, shift) if n in ("BYDAY", "WKST") else v) for n, v in parts]
    if freq not in ("MONTHLY", "YEARLY"):
        raise _Unmovable(f"FREQ={freq} is not moved")
    values = dict(parts)
    if "BYDAY" in values:
        return _moved_weekday(parts, values, shift)
    if "BYMONTHDAY" in values:
        return _moved_monthday(parts, values, shift)
    return parts  # the day comes from the start, which is already the other zone's


def _weekdays(value: str, shift: int) -> str:
    days = value.split(",")
    if any(day not in _DAYS for day in days):
        raise _Unmovable(f"numbered days {value} are not moved")
    return ",".join(_DAYS[(_DAYS.index(day) + shift) % 7] for day in days)


def _moved_monthday(
    parts: list[tuple[str, str]], values: dict[str, str], shift: int
) -> list[tuple[str, str]]:
    """``BYMONTHDAY=d`` (and a yearly rule's ``BYMONTH``) ``shift`` days on: past the month's
    first or last day into the month before or after, as the last or first day."""
    days = [int(x) for x in values["BYMONTHDAY"].split(",")]
    month_step = 0
    moved: list[int] = []
    for day in days:
        new = day + shift
        if day > 0 and new <= 0:  # the 1st, a day back: the month before's last
            new, step = new - 1, -1
        elif day < 0 and new >= 0:  # the last day, a day on: the month after's 1st
            new, step = new + 1, 1
        else:
            step = 0
        if moved and step != month_step:
            raise _Unmovable("its days of the month move into different months")
        month_step = step
        moved.append(new)
    out = []
    for name, value in parts:
        if name == "BYMONTHDAY":
            value = ",".join(str(x) for x in moved)
        elif name == "BYMONTH" and month_step:
            months = [(int(m) - 1 + month_step) % 12 + 1 for m in value.split(",")]
            value = ",".join(str(m) for m in months)
        out.append((name, value))
    return out


def _moved_weekday(
    parts: list[tuple[str, str]], values: dict[str, str], shift: int
) -> list[tuple[str, str]]:
    """``BYDAY=1MO`` (or ``BYDAY=MO;BYSETPOS=1``) ``shift`` days on: the next weekday among the
    days of the month the first Monday can be on, moved (``BYDAY=TU;BYMONTHDAY=2,...,8``)."""
    if "BYMONTHDAY" in values:
        raise _Unmovable("BYDAY with BYMONTHDAY is not moved")
    byday = values["BYDAY"]
    setpos = values.get("BYSETPOS")
    if "," in byday:
        raise _Unmovable("the n-th of several weekdays is no weekday in a fixed span of days")
    if setpos is not None:
        if "," in setpos:
            raise _Unmovable(f"BYSETPOS={setpos} is not moved")
        index, day = int(setpos), byday
    else:
        number, day = byday[:-2], byday[-2:]
        if not number:
            raise _Unmovable(f"BYDAY={byday} without a position is not moved")
        index = int(number)
    if day not in _DAYS or index == 0 or abs(index) > 4:
        raise _Unmovable(f"BYDAY={byday} is not moved")
    first = 7 * (index - 1) + 1 if index > 0 else 7 * index
    span = [first + n + shift for n in range(7)]
    if not (all(1 <= x <= 28 for x in span) or all(-28 <= x <= -1 for x in span)):
        raise _Unmovable(
            "the days it can fall on cross into another month there, which BYMONTHDAY cannot say"
        )
    out = []
    for name, value in parts:
        if name == "BYSETPOS":
            continue
        if name == "BYDAY":
            out.append((name, _DAYS[(_DAYS.index(day) + shift) % 7]))
            out.append(("BYMONTHDAY", ",".join(str(x) for x in span)))
            continue
        out.append((name, value))
    return out


def _agrees(rrule: str, candidate: str, start: datetime, zone: str, other: str, freq: str) -> bool:
    """Whether ``candidate`` in ``other`` starts at ``start`` and pairs, in order, each of
    ``rrule``'s occurrences in ``zone`` with one within :data:`_CLOSE`, over the horizon."""
    until = start + timedelta(days=_HORIZON.get(freq, 366))
    try:
        ours = occurrences(
            rrule, dtstart_local=start, zone=zone, exdates=(), between=(start, until)
        )
        theirs = occurrences(
            candidate,
            dtstart_local=start,
            zone=other,
            exdates=(),
            between=(start, until + timedelta(days=2)),
        )
    except ValueError:
        return False
    if not ours or not theirs:
        return False
    if ours[0] == start and theirs[0] != start:  # Hybrid: a series starts on its first occurrence
        return False
    if len(theirs) < len(ours) or len(theirs) > len(ours) + 1:
        return False
    if len(theirs) == len(ours) + 1 and theirs[-1] < until - timedelta(days=1):
        return False  # one more occurrence well inside the horizon
    return all(abs(t - o) <= _CLOSE for o, t in zip(ours, theirs, strict=False))
