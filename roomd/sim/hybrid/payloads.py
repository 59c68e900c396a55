"""Validating booking request bodies: one clear error per problem, naming the field.

What a create (``POST /bookings``) or an update (``PATCH /bookings/{id}``) may carry follows the
OfficeRnD booking object; server-set fields (``canceled``, ``timezone``, ``tentative``, ...) are
read-only as OfficeRnD's documentation marks them, and sending one is an error rather than
silently ignored, so a client learns at once that ``canceled`` is set by ``POST .../cancel``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from roomd.sim.hybrid.errors import unprocessable
from roomd.sim.hybrid.times import parse_instant, truncate_ms

READ_ONLY = {
    "_id": "it is assigned by the server",
    "organization": "it is set by the server",
    "timezone": "it is the resource's time zone",
    "canceled": "cancel with POST /bookings/{id}/cancel",
    "cancelReason": "it is set when a booking is canceled",
    "canceledAt": "it is set when a booking is canceled",
    "canceledBy": "it is set when a booking is canceled",
    "tentative": "it follows the room's approval policy",
    "checkedIn": "members check in in the Hybrid app",
    "checkedInAt": "members check in in the Hybrid app",
    "createdAt": "it is set by the server",
    "modifiedAt": "it is set by the server",
    "createdBy": "it is set by the server",
    "modifiedBy": "it is set by the server",
}
WRITABLE = {
    "resourceId",
    "start",
    "end",
    "summary",
    "description",
    "member",
    "members",
    "visitors",
    "recurrence",
    "parent",
    "originalStart",
    "source",
    "reference",
}
NOT_PATCHABLE = {
    "parent": "an exception's series cannot change; cancel it and create another",
    "originalStart": "an exception's original occurrence cannot change",
}
_UNSET: Any = object()


@dataclass
class BookingFields:
    """The writable fields present in a request; absent ones stay ``_UNSET`` (PATCH semantics)."""

    resource_id: Any = _UNSET
    start: Any = _UNSET
    end: Any = _UNSET
    summary: Any = _UNSET
    description: Any = _UNSET
    member: Any = _UNSET
    members: Any = _UNSET
    visitors: Any = _UNSET
    recurrence: Any = _UNSET  # None, or (rrule text, exdates)
    parent: Any = _UNSET
    original_start: Any = _UNSET
    source: Any = _UNSET
    reference: Any = _UNSET

    def has(self, name: str) -> bool:
        return getattr(self, name) is not _UNSET


def is_set(value: object) -> bool:
    return value is not _UNSET


def parse_booking_body(body: dict[str, Any], *, patch: bool) -> BookingFields:
    """Check field names and types; semantic checks (room exists, no overlap) are the store's."""
    for name in body:
        if name in READ_ONLY:
            raise unprocessable(f"{name}: read-only field ({READ_ONLY[name]})", "read_only_field")
        if name not in WRITABLE:
            raise unprocessable(f"{name}: unknown booking field", "unknown_field")
        if patch and name in NOT_PATCHABLE:
            raise unprocessable(f"{name}: {NOT_PATCHABLE[name]}", "read_only_field")
    fields = BookingFields()
    if "resourceId" in body:
        fields.resource_id = _string(body["resourceId"], "resourceId", nullable=False)
    if "start" in body:
        fields.start = _date_time(body["start"], "start")
    if "end" in body:
        fields.end = _date_time(body["end"], "end")
    for key, attr in (
        ("summary", "summary"),
        ("description", "description"),
        ("source", "source"),
        ("reference", "reference"),
        ("member", "member"),
        ("parent", "parent"),
    ):
        if key in body:
            setattr(fields, attr, _string(body[key], key, nullable=True))
    for key in ("members", "visitors"):
        if key in body:
            setattr(fields, key, _string_list(body[key], key))
    if "originalStart" in body:
        value = body["originalStart"]
        fields.original_start = None if value is None else parse_instant(value, "originalStart")
    if "recurrence" in body:
        fields.recurrence = _recurrence(body["recurrence"])
    if not patch:
        for required, attr in (("resourceId", "resource_id"), ("start", "start"), ("end", "end")):
            if not fields.has(attr):
                raise unprocessable(f"{required}: required field is missing", "missing_field")
    return fields


def _string(value: object, where: str, *, nullable: bool) -> str | None:
    if value is None and nullable:
        return None
    if not isinstance(value, str):
        raise unprocessable(f"{where}: expected a string, got {value!r}")
    return value


def _string_list(value: object, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise unprocessable(f"{where}: expected a list of strings, got {value!r}")
    return list(value)


def _date_time(value: object, where: str) -> datetime:
    if not isinstance(value, dict) or "dateTime" not in value:
        raise unprocessable(
            f'{where}: expected {{"dateTime": "<ISO-8601 UTC>"}}, got {value!r}', "invalid_date"
        )
    return truncate_ms(parse_instant(value["dateTime"], f"{where}.dateTime"))


def _recurrence(value: object) -> tuple[str, list[datetime]] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise unprocessable(
            f'recurrence: expected {{"rrule": ..., "exdates": [...]}}, got {value!r}'
        )
    unknown = set(value) - {"rrule", "exdates"}
    if unknown:
        raise unprocessable(f"recurrence.{sorted(unknown)[0]}: unknown field", "unknown_field")
    rule = value.get("rrule")
    if not isinstance(rule, str) or not rule.strip():
        raise unprocessable(f"recurrence.rrule: expected an RFC 5545 RRULE string, got {rule!r}")
    raw = value.get("exdates") or []
    if not isinstance(raw, list):
        raise unprocessable(f"recurrence.exdates: expected a list of date-times, got {raw!r}")
    exdates = [parse_instant(d, f"recurrence.exdates[{i}]") for i, d in enumerate(raw)]
    return rule.strip(), exdates
