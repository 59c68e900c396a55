"""Query-string filters on list endpoints.

OfficeRnD filters lists by query parameters named after fields (``resourceId=...``) and compares
with operators (developer.officernd.com/docs/building-queries). roomd sends range filters as
``modifiedAt[$gte]=<ISO>``; the dotted form ``modifiedAt.$gte=<ISO>`` is accepted too. A parameter
this server does not understand is refused with 400 naming it: silently ignoring a filter would
hand a client every booking while it believes it asked for a few.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime

from roomd.sim.hybrid import recurrence
from roomd.sim.hybrid.errors import bad_request
from roomd.sim.hybrid.model import Booking, Member, Resource
from roomd.sim.hybrid.paging import PAGING_PARAMS
from roomd.sim.hybrid.times import parse_instant

_RANGE = re.compile(r"^(?P<field>[A-Za-z]+)(?:\[(?P<op1>\$[a-z]+)\]|\.(?P<op2>\$[a-z]+))$")
_OPS: dict[str, Callable[[datetime, datetime], bool]] = {
    "$gte": lambda a, b: a >= b,
    "$gt": lambda a, b: a > b,
    "$lte": lambda a, b: a <= b,
    "$lt": lambda a, b: a < b,
}
_BOOL = {"true": True, "false": False}

BookingPredicate = Callable[[Booking], bool]


def booking_filter(query: Mapping[str, str]) -> BookingPredicate:
    """Build the predicate for ``GET /bookings``.

    Equality: ``resourceId``, ``member``, ``reference``, ``parent``, ``canceled``, ``tentative``.
    Ranges (``$gte``, ``$gt``, ``$lte``, ``$lt``) on ``modifiedAt``, ``createdAt``, ``start`` and
    ``end``; for a recurring booking ``end`` is the end of its last occurrence (unbounded series
    always pass an ``end`` lower bound), so a window query finds a series that began long ago.
    """
    tests: list[BookingPredicate] = []
    for name, value in query.items():
        if name in PAGING_PARAMS:
            continue
        if name in _EQUAL:
            tests.append(_equal(_EQUAL[name], value))
            continue
        if name in ("canceled", "tentative"):
            flag = _BOOL.get(value.lower())
            if flag is None:
                raise bad_request(f"{name}: expected true or false, got {value!r}")
            tests.append(_flag(name, flag))
            continue
        match = _RANGE.match(name)
        if match is None:
            raise bad_request(f"{name}: unsupported filter on bookings")
        field = match.group("field")
        op = match.group("op1") or match.group("op2")
        if field not in _INSTANTS or op not in _OPS:
            raise bad_request(f"{name}: unsupported filter on bookings")
        tests.append(_range(_INSTANTS[field], op, parse_instant(value, name, status=400)))
    return lambda b: all(t(b) for t in tests)


_EQUAL = {
    "resourceId": "resource_id",
    "member": "member",
    "reference": "reference",
    "parent": "parent",
}


def _series_end(booking: Booking) -> datetime | None:
    return series_end_of(booking)


_INSTANTS: dict[str, Callable[[Booking], datetime | None]] = {
    "modifiedAt": lambda b: b.modified_at,
    "createdAt": lambda b: b.created_at,
    "start": lambda b: b.start,
    "end": _series_end,
}


def _equal(attr: str, value: str) -> BookingPredicate:
    return lambda b: getattr(b, attr) == value


def _flag(attr: str, flag: bool) -> BookingPredicate:
    return lambda b: getattr(b, attr) is flag


def _range(
    read: Callable[[Booking], datetime | None], op: str, bound: datetime
) -> BookingPredicate:
    compare = _OPS[op]

    def test(booking: Booking) -> bool:
        value = read(booking)
        if value is None:  # an unbounded series ends after any instant
            return op in ("$gte", "$gt")
        return compare(value, bound)

    return test


def series_end_of(booking: Booking) -> datetime | None:
    """End of a series' last occurrence (None when unbounded); a one-off's own end."""
    if booking.rrule is None:
        return booking.end
    rule = recurrence.parse_rule(booking.rrule, booking.start, booking.time_zone)
    return recurrence.last_end(rule, booking.rrule, booking.duration)


def member_filter(query: Mapping[str, str]) -> Callable[[Member], bool]:
    """``email`` (case-insensitive, as addresses are) and ``_id``; roomd maps people by email."""
    tests: list[Callable[[Member], bool]] = []
    for name, value in query.items():
        if name in PAGING_PARAMS:
            continue
        if name == "email":
            tests.append(_member_email(value.strip().lower()))
        elif name == "_id":
            tests.append(_member_id(value))
        else:
            raise bad_request(f"{name}: unsupported filter on members")
    return lambda m: all(t(m) for t in tests)


def resource_filter(query: Mapping[str, str]) -> Callable[[Resource], bool]:
    tests: list[Callable[[Resource], bool]] = []
    for name, value in query.items():
        if name in PAGING_PARAMS:
            continue
        if name == "_id":
            tests.append(_resource_id(value))
        elif name == "type":
            tests.append(_resource_type(value))
        else:
            raise bad_request(f"{name}: unsupported filter on resources")
    return lambda r: all(t(r) for t in tests)


def _member_email(wanted: str) -> Callable[[Member], bool]:
    return lambda m: m.email.lower() == wanted


def _member_id(wanted: str) -> Callable[[Member], bool]:
    return lambda m: m.id == wanted


def _resource_id(wanted: str) -> Callable[[Resource], bool]:
    return lambda r: r.id == wanted


def _resource_type(wanted: str) -> Callable[[Resource], bool]:
    return lambda r: wanted == "meeting_room"
