"""Typed, read-only views of Hybrid (OfficeRnD-compatible) objects, parsed with clear errors.

The shapes follow OfficeRnD's API v2 booking object (``tests/fixtures/hybrid/booking.schema.json``
lists every field the live API returns) and docs/design.md section 5. Only the fields roomd
relies on are typed; the whole payload stays available as ``raw`` so nothing the server sends
is lost. Times are timezone-aware UTC ``datetime``s inside roomd (design.md invariant 7); the API's
``dateTime`` strings are UTC ISO-8601, and a string without an offset is read as UTC because the
API documents its times as UTC.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from roomd.hybrid.errors import BookingParseError

__all__ = [
    "NO_SHOW_REASONS",
    "HybridBooking",
    "HybridMember",
    "HybridResource",
    "Recurrence",
    "booking_payload",
    "format_datetime",
    "parse_booking",
    "parse_datetime",
    "parse_member",
    "parse_resource",
]

# Keys under which an OfficeRnD-compatible server may say why a booking was cancelled. A no-show
# release (check-in window missed) must be told apart from a person cancelling (design.md sec. 4).
_CANCEL_REASON_KEYS = ("cancelReason", "cancellationReason", "canceledReason", "cancelledReason")
NO_SHOW_REASONS = frozenset({"no-show", "no_show", "noshow", "not-checked-in", "checkin-missed"})
_ORIGINAL_START_KEYS = ("originalStart", "originalStartTime", "recurrenceId")


def parse_datetime(value: object, where: str) -> datetime:
    """An API date-time string as an aware UTC ``datetime``; ``where`` names the field."""
    if not isinstance(value, str) or not value:
        raise BookingParseError(f"{where}: expected an ISO-8601 date-time string, found {value!r}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise BookingParseError(
            f"{where}: {value!r} is not an ISO-8601 date-time (e.g. 2026-11-25T09:00:00.000Z)"
        ) from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def format_datetime(value: datetime) -> str:
    """UTC ISO-8601 with milliseconds and ``Z``, the form OfficeRnD's API returns and accepts."""
    if value.tzinfo is None:
        raise ValueError(f"format_datetime: {value!r} has no time zone; roomd keeps times in UTC")
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class Recurrence:
    """RFC 5545 ``rrule`` (without the ``RRULE:`` prefix) and the excluded occurrence starts."""

    rrule: str
    exdates: tuple[datetime, ...] = ()


@dataclass(frozen=True)
class HybridBooking:
    """One Hybrid booking: one-off, a recurring series (``recurrence``), or an exception of a
    series (``parent`` + ``original_start``)."""

    id: str
    resource_id: str
    start: datetime
    end: datetime
    summary: str | None = None
    description: str | None = None
    timezone: str | None = None
    member: str | None = None
    members: tuple[str, ...] = ()
    visitors: tuple[str, ...] = ()
    recurrence: Recurrence | None = None
    parent: str | None = None
    original_start: datetime | None = None
    canceled: bool = False
    tentative: bool = False
    cancel_reason: str | None = None
    source: str | None = None
    reference: str | None = None
    created_at: datetime | None = None
    modified_at: datetime | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def no_show(self) -> bool:
        """Cancelled by the room's check-in policy, not by a person (design.md section 4)."""
        if not self.canceled or self.cancel_reason is None:
            return False
        return self.cancel_reason.strip().lower().replace(" ", "-") in NO_SHOW_REASONS


@dataclass(frozen=True)
class HybridMember:
    """A person in Hybrid; ``email`` is kept as the server sent it."""

    id: str
    email: str | None
    name: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class HybridResource:
    """A bookable Hybrid resource (a meeting room), with its IANA time zone. The booking policy
    (``bookingPolicy``: approval, check-in window) is read when the server exposes it, as the
    simulator does; None where it does not say."""

    id: str
    name: str | None
    timezone: str | None
    requires_approval: bool | None = None
    requires_checkin: bool | None = None
    checkin_window_minutes: int | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)
    # what `roomd rooms` matches room mailboxes by; OfficeRnD's ``office`` is the office's id
    capacity: int | None = None
    office: str | None = None
    kind: str | None = None  # OfficeRnD's ``type``: "meeting_room", desks, offices...


def _label(data: Mapping[str, Any]) -> str:
    ident = data.get("_id")
    return f"booking {ident}" if isinstance(ident, str) and ident else "booking"


def _opt_str(data: Mapping[str, Any], key: str, where: str) -> str | None:
    value = data.get(key)
    if value is None or isinstance(value, str):
        return value
    raise BookingParseError(f"{where}.{key}: expected a string, found {value!r}")


def _req_str(data: Mapping[str, Any], key: str, where: str) -> str:
    value = data.get(key)
    if isinstance(value, str) and value:
        return value
    raise BookingParseError(f"{where}.{key}: expected a non-empty string, found {value!r}")


def _bool(data: Mapping[str, Any], key: str, where: str) -> bool:
    value = data.get(key)
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    raise BookingParseError(f"{where}.{key}: expected true or false, found {value!r}")


def _id_list(data: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = data.get(key)
    if value is None:
        return ()
    if not isinstance(value, list):
        raise BookingParseError(f"{where}.{key}: expected a list, found {value!r}")
    out: list[str] = []
    for i, item in enumerate(value):
        if isinstance(item, Mapping):  # an expanded reference: {"_id": ...}
            item = item.get("_id")
        if not isinstance(item, str):
            raise BookingParseError(f"{where}.{key}[{i}]: expected an id string, found {item!r}")
        out.append(item)
    return tuple(out)


def _ref(data: Mapping[str, Any], key: str, where: str) -> str | None:
    """A reference field that is an id string, or an expanded object with an ``_id``."""
    value = data.get(key)
    if isinstance(value, Mapping):
        value = value.get("_id")
    if value is None or isinstance(value, str):
        return value
    raise BookingParseError(f"{where}.{key}: expected an id string, found {value!r}")


def _when(data: Mapping[str, Any], key: str, where: str) -> datetime:
    value = data.get(key)
    if isinstance(value, Mapping):
        return parse_datetime(value.get("dateTime"), f"{where}.{key}.dateTime")
    raise BookingParseError(f"{where}.{key}: expected an object with dateTime, found {value!r}")


def _opt_when(data: Mapping[str, Any], key: str, where: str) -> datetime | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, Mapping):
        return parse_datetime(value.get("dateTime"), f"{where}.{key}.dateTime")
    return parse_datetime(value, f"{where}.{key}")


def _recurrence(data: Mapping[str, Any], where: str) -> Recurrence | None:
    value = data.get("recurrence")
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise BookingParseError(f"{where}.recurrence: expected an object, found {value!r}")
    rrule = value.get("rrule")
    if rrule is None or rrule == "":
        return None
    if not isinstance(rrule, str):
        raise BookingParseError(f"{where}.recurrence.rrule: expected a string, found {rrule!r}")
    if rrule.upper().startswith("RRULE:"):
        rrule = rrule[len("RRULE:") :]
    raw_ex = value.get("exdates") or []
    if not isinstance(raw_ex, list):
        raise BookingParseError(f"{where}.recurrence.exdates: expected a list, found {raw_ex!r}")
    exdates = tuple(
        parse_datetime(x, f"{where}.recurrence.exdates[{i}]") for i, x in enumerate(raw_ex)
    )
    return Recurrence(rrule=rrule, exdates=exdates)


def parse_booking(data: object) -> HybridBooking:
    """Parse one booking object from the API; raise ``BookingParseError`` naming the bad field."""
    if not isinstance(data, Mapping):
        raise BookingParseError(f"booking: expected a JSON object, found {type(data).__name__}")
    where = _label(data)
    start = _when(data, "start", where)
    end = _when(data, "end", where)
    original_start = None
    for key in _ORIGINAL_START_KEYS:
        if data.get(key) is not None:
            original_start = _opt_when(data, key, where)
            break
    cancel_reason = None
    for key in _CANCEL_REASON_KEYS:
        if data.get(key) is not None:
            cancel_reason = _opt_str(data, key, where)
            break
    created = data.get("createdAt")
    modified = data.get("modifiedAt")
    return HybridBooking(
        id=_req_str(data, "_id", where),
        resource_id=_req_str(data, "resourceId", where),
        start=start,
        end=end,
        summary=_opt_str(data, "summary", where),
        description=_opt_str(data, "description", where),
        timezone=_opt_str(data, "timezone", where),
        member=_ref(data, "member", where),
        members=_id_list(data, "members", where),
        visitors=_id_list(data, "visitors", where),
        recurrence=_recurrence(data, where),
        parent=_ref(data, "parent", where),
        original_start=original_start,
        canceled=_bool(data, "canceled", where),
        tentative=_bool(data, "tentative", where),
        cancel_reason=cancel_reason,
        source=_opt_str(data, "source", where),
        reference=_opt_str(data, "reference", where),
        created_at=None if created is None else parse_datetime(created, f"{where}.createdAt"),
        modified_at=None if modified is None else parse_datetime(modified, f"{where}.modifiedAt"),
        raw=dict(data),
    )


def parse_member(data: object) -> HybridMember:
    """Parse one member object (``_id``, ``email``, ``name``)."""
    if not isinstance(data, Mapping):
        raise BookingParseError(f"member: expected a JSON object, found {type(data).__name__}")
    ident = data.get("_id")
    where = f"member {ident}" if isinstance(ident, str) else "member"
    return HybridMember(
        id=_req_str(data, "_id", where),
        email=_opt_str(data, "email", where),
        name=_opt_str(data, "name", where),
        raw=dict(data),
    )


def parse_resource(data: object) -> HybridResource:
    """Parse one resource object (``_id``, ``name``, ``timezone``)."""
    if not isinstance(data, Mapping):
        raise BookingParseError(f"resource: expected a JSON object, found {type(data).__name__}")
    ident = data.get("_id")
    where = f"resource {ident}" if isinstance(ident, str) else "resource"
    policy = data.get("bookingPolicy")
    if policy is not None and not isinstance(policy, Mapping):
        raise BookingParseError(f"{where}.bookingPolicy: expected an object, found {policy!r}")
    policy = policy or {}
    window = policy.get("checkInWindowMinutes")
    if window is not None and (not isinstance(window, int) or isinstance(window, bool)):
        raise BookingParseError(
            f"{where}.bookingPolicy.checkInWindowMinutes: expected minutes, found {window!r}"
        )
    approval = policy.get("requiresApproval")
    checkin = policy.get("requiresCheckIn")
    return HybridResource(
        id=_req_str(data, "_id", where),
        name=_opt_str(data, "name", where),
        timezone=_opt_str(data, "timezone", where),
        requires_approval=None if approval is None else _bool(policy, "requiresApproval", where),
        requires_checkin=None if checkin is None else _bool(policy, "requiresCheckIn", where),
        checkin_window_minutes=window,
        raw=dict(data),
        capacity=_lenient_count(data.get("capacity")),
        office=data.get("office") if isinstance(data.get("office"), str) else None,
        kind=data.get("type") if isinstance(data.get("type"), str) else None,
    )


def _lenient_count(value: object) -> int | None:
    """A whole number of seats, or None: a capacity roomd cannot read only weakens a room
    match, so it never makes a resource unreadable."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def booking_payload(
    *,
    resource_id: str,
    start: datetime,
    end: datetime,
    summary: str | None = None,
    description: str | None = None,
    member: str | None = None,
    members: Sequence[str] = (),
    visitors: Sequence[str] = (),
    rrule: str | None = None,
    exdates: Sequence[datetime] = (),
    source: str | None = "roomd",
) -> dict[str, Any]:
    """A create/PATCH body in the API's shape, times in UTC. ``timezone`` and ``canceled`` are
    read-only in OfficeRnD's API and are therefore never sent."""
    if end <= start:
        raise ValueError(f"booking_payload: end {end.isoformat()} is not after start")
    body: dict[str, Any] = {
        "resourceId": resource_id,
        "start": {"dateTime": format_datetime(start)},
        "end": {"dateTime": format_datetime(end)},
    }
    optional: dict[str, Any] = {
        "summary": summary,
        "description": description,
        "member": member,
        "source": source,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    if members:
        body["members"] = list(members)
    if visitors:
        body["visitors"] = list(visitors)
    if rrule is not None:
        body["recurrence"] = {
            "rrule": rrule,
            "exdates": [format_datetime(x) for x in exdates],
        }
    return body
