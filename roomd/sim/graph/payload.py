"""Reading a client's event JSON (POST/PATCH body) into an ``Event``, with Graph's refusals.

Writable properties follow contrib resources/event.md; ``transactionId`` cannot change after
create (event.md); ``singleValueExtendedProperties`` are upserted by id
(singlevaluelegacyextendedproperty-post-singlevalueextendedproperties.md); ``isAllDay`` needs
midnight start and end in one zone (event.md); read-only properties are ignored, unknown ones
refused (OData ``RequestBodyRead``).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, time
from typing import Any

from roomd.sim.graph import recurrence as rec_mod
from roomd.sim.graph.directory import Directory
from roomd.sim.graph.events import Event
from roomd.sim.graph.wire import NULL_TIME, GraphError, canonical_enum, parse_local
from roomd.sim.graph.zones import UnknownTimeZone, resolve_zone

WRITABLE = {
    "subject",
    "body",
    "start",
    "end",
    "isAllDay",
    "location",
    "locations",
    "attendees",
    "categories",
    "importance",
    "sensitivity",
    "showAs",
    "isReminderOn",
    "reminderMinutesBeforeStart",
    "allowNewTimeProposals",
    "responseRequested",
    "hideAttendees",
    "isOnlineMeeting",
    "onlineMeetingProvider",
    "recurrence",
    "transactionId",
    "singleValueExtendedProperties",
}
READ_ONLY = {
    "@odata.type",
    "@odata.etag",
    "@odata.context",
    "id",
    "iCalUId",
    "changeKey",
    "createdDateTime",
    "lastModifiedDateTime",
    "originalStartTimeZone",
    "originalEndTimeZone",
    "bodyPreview",
    "hasAttachments",
    "isCancelled",
    "isDraft",
    "isOrganizer",
    "organizer",
    "responseStatus",
    "seriesMasterId",
    "type",
    "webLink",
    "onlineMeetingUrl",
    "onlineMeeting",
    "uid",
}
ENUMS = {
    "importance": ("low", "normal", "high"),
    "sensitivity": ("normal", "personal", "private", "confidential"),
    "showAs": ("free", "tentative", "busy", "oof", "workingElsewhere", "unknown"),
}
ATTENDEE_TYPES = ("required", "optional", "resource")
# resources/location.md
LOCATION_TYPES = (
    "default",
    "conferenceRoom",
    "homeAddress",
    "businessAddress",
    "geoCoordinates",
    "streetAddress",
    "hotel",
    "restaurant",
    "localBusiness",
    "postalAddress",
)
UNIQUE_ID_TYPES = ("unknown", "locationStore", "directory", "private", "bing")
EXT_ID = re.compile(
    r"^(String|Integer|Boolean|SystemTime|Binary|Guid|Double|Currency|Long|Short)\s+"
    r"(\{[0-9a-fA-F-]{36}\}\s+(Name|Id)\s+\S.*|0x[0-9a-fA-F]{1,4})$"
)


def bad(message: str, code: str = "ErrorInvalidRequest") -> GraphError:
    return GraphError(400, code, message)


def parse_dtz(value: Any, name: str) -> tuple[datetime, str]:
    """A ``dateTimeTimeZone`` -> (UTC instant, zone name as given)."""
    if not isinstance(value, dict) or not isinstance(value.get("dateTime"), str):
        raise bad(f"{name}.dateTime is required (dateTimeTimeZone)", "ErrorInvalidParameter")
    zone_name = value.get("timeZone") or "UTC"
    if not isinstance(zone_name, str):
        raise bad(f"{name}.timeZone must be a string", "ErrorInvalidParameter")
    try:
        zone = resolve_zone(zone_name)
    except UnknownTimeZone as exc:
        raise GraphError(400, "TimeZoneNotSupportedException", f"{name}: {exc}") from exc
    try:
        local = parse_local(value["dateTime"])
    except ValueError as exc:
        raise bad(
            f"{name}.dateTime {value['dateTime']!r} is not an ISO 8601 date-time",
            "ErrorInvalidParameter",
        ) from exc
    if local.tzinfo is None:
        local = local.replace(tzinfo=zone)
    return local.astimezone(UTC), zone_name


def _attendees(raw: Any, directory: Directory) -> list[dict[str, Any]]:
    if not isinstance(raw, list):
        raise bad("attendees must be a list")
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, att in enumerate(raw):
        email = att.get("emailAddress") if isinstance(att, dict) else None
        address = email.get("address") if isinstance(email, dict) else None
        if not isinstance(email, dict) or not isinstance(address, str) or "@" not in address:
            raise bad(f"attendees[{i}].emailAddress.address must be an email address")
        raw_kind = att.get("type") or "required"
        kind = canonical_enum(raw_kind, ATTENDEE_TYPES)
        if kind is None:
            raise bad(f"attendees[{i}].type must be one of {ATTENDEE_TYPES}, got {raw_kind!r}")
        if address.lower() in seen:
            continue
        seen.add(address.lower())
        mailbox = directory.find(address)
        name = email.get("name") or (mailbox.display_name if mailbox else address)
        status = att.get("status") if isinstance(att.get("status"), dict) else None
        out.append(
            {
                "type": kind,
                "status": {
                    "response": (status or {}).get("response") or "none",
                    "time": (status or {}).get("time") or NULL_TIME,
                },
                "emailAddress": {"name": name, "address": address},
            }
        )
    return out


def _location(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise bad("location must be an object")
    name = raw.get("displayName") or ""
    enums: dict[str, str] = {}
    for prop, allowed, default in (
        ("locationType", LOCATION_TYPES, "default"),
        ("uniqueIdType", UNIQUE_ID_TYPES, "private"),
    ):
        value = canonical_enum(raw.get(prop) or default, allowed)
        if value is None:
            raise bad(f"location.{prop} must be one of {allowed}, got {raw.get(prop)!r}")
        enums[prop] = value
    loc: dict[str, Any] = {
        "displayName": name,
        "locationType": enums["locationType"],
        "uniqueId": raw.get("uniqueId") or name,
        "uniqueIdType": enums["uniqueIdType"],
    }
    if raw.get("locationEmailAddress"):
        loc["locationEmailAddress"] = raw["locationEmailAddress"]
    if isinstance(raw.get("address"), dict):
        loc["address"] = raw["address"]
    return loc


def apply(
    event: Event, body: Any, directory: Directory, *, creating: bool, occurrence: bool = False
) -> set[str]:
    """Apply a POST/PATCH body; returns the names of properties it set."""
    if not isinstance(body, dict):
        raise bad("The request body must be a JSON object (an event).", "RequestBodyRead")
    for key in body:
        if key not in WRITABLE and key not in READ_ONLY and not key.startswith("@"):
            raise bad(
                f"The property '{key}' does not exist on type 'microsoft.graph.event'. Make sure"
                " to only use property names that are defined by the type.",
                "RequestBodyRead",
            )
    touched: set[str] = set()
    if "subject" in body:
        if body["subject"] is not None and not isinstance(body["subject"], str):
            raise bad("subject must be a string")
        event.subject = body["subject"] or ""
        touched.add("subject")
    if "body" in body:
        b = body["body"] or {}
        if not isinstance(b, dict):
            raise bad("body must be an itemBody object")
        ctype = str(b.get("contentType") or "text").lower()
        if ctype not in ("text", "html"):
            raise bad(f"body.contentType must be text or html, got {b.get('contentType')!r}")
        event.body_type = ctype
        event.body = str(b.get("content") or "")
        touched.add("body")
    if "start" in body:
        event.start, event.start_tz = parse_dtz(body["start"], "start")
        touched.add("start")
    elif creating:
        raise bad("start is required", "ErrorInvalidParameter")
    if "end" in body:
        event.end, event.end_tz = parse_dtz(body["end"], "end")
        touched.add("end")
    elif creating:
        raise bad("end is required", "ErrorInvalidParameter")
    if event.end < event.start:
        raise bad("The end of the event is before its start.", "ErrorInvalidRequest")
    if "isAllDay" in body:
        event.is_all_day = bool(body["isAllDay"])
        touched.add("isAllDay")
    if event.is_all_day:
        for when, zone_name, name in (
            (event.start, event.start_tz, "start"),
            (event.end, event.end_tz, "end"),
        ):
            if when.astimezone(resolve_zone(zone_name)).time() != time(0):
                raise bad(
                    f"An all-day event's {name} must be midnight in its time zone.",
                    "ErrorPropertyValidationFailure",
                )
    if "location" in body:
        event.location = _location(body["location"] or {})
        # the locations[] entry carries no uniqueId (user-post-events.md Example 1 response)
        event.locations = (
            [
                {
                    k: v
                    for k, v in {**event.location, "uniqueIdType": "unknown"}.items()
                    if k != "uniqueId"
                }
            ]
            if event.location.get("displayName")
            else []
        )
        touched.add("location")
    if "locations" in body:
        if not isinstance(body["locations"], list):
            raise bad("locations must be a list")
        event.locations = [_location(x) for x in body["locations"]]
        if event.locations and "location" not in body:
            event.location = dict(event.locations[0])
        touched.add("locations")
    if "attendees" in body:
        event.attendees = _attendees(body["attendees"], directory)
        touched.add("attendees")
    if "categories" in body:
        cats = body["categories"] or []
        if not isinstance(cats, list) or not all(isinstance(c, str) for c in cats):
            raise bad("categories must be a list of strings")
        event.categories = list(cats)
        touched.add("categories")
    for prop, attr in (
        ("importance", "importance"),
        ("sensitivity", "sensitivity"),
        ("showAs", "show_as"),
    ):
        if prop in body:
            value = canonical_enum(body[prop], ENUMS[prop])
            if value is None:
                raise bad(f"{prop} must be one of {ENUMS[prop]}, got {body[prop]!r}")
            setattr(event, attr, value)
            touched.add(prop)
    for prop, attr in (
        ("isReminderOn", "is_reminder_on"),
        ("allowNewTimeProposals", "allow_new_time_proposals"),
        ("responseRequested", "response_requested"),
        ("hideAttendees", "hide_attendees"),
        ("isOnlineMeeting", "is_online_meeting"),
    ):
        if prop in body:
            if not isinstance(body[prop], bool):
                raise bad(f"{prop} must be true or false")
            setattr(event, attr, body[prop])
            touched.add(prop)
    if "reminderMinutesBeforeStart" in body:
        value = body["reminderMinutesBeforeStart"]
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad("reminderMinutesBeforeStart must be an integer")
        event.reminder_minutes = value
    if "transactionId" in body:
        tid = body["transactionId"]
        if creating:
            if tid is not None and not isinstance(tid, str):
                raise bad("transactionId must be a string")
            event.transaction_id = tid
        elif tid != event.transaction_id:
            raise bad(
                "The transactionId of an event cannot be changed after it is created.",
                "ErrorInvalidRequest",
            )
    if "singleValueExtendedProperties" in body:
        props = body["singleValueExtendedProperties"] or []
        if not isinstance(props, list):
            raise bad("singleValueExtendedProperties must be a list")
        for i, prop in enumerate(props):
            pid = prop.get("id") if isinstance(prop, dict) else None
            if not isinstance(pid, str) or not EXT_ID.match(pid.strip()):
                raise bad(
                    f"singleValueExtendedProperties[{i}].id {pid!r} is not a property id like "
                    "'String {guid} Name name'",
                    "ErrorInvalidProperty",
                )
            event.ext_props[pid.strip()] = str(prop.get("value", ""))
        touched.add("singleValueExtendedProperties")
    if "recurrence" in body:
        if occurrence:
            raise bad("An occurrence or exception cannot have a recurrence.")
        raw = body["recurrence"]
        if raw is None:
            event.recurrence = None
        else:
            local_date = event.start.astimezone(resolve_zone(event.start_tz)).date()
            try:
                event.recurrence = rec_mod.parse(raw, local_date, event.start_tz)
            except rec_mod.RecurrenceError as exc:
                raise bad(str(exc), "ErrorPropertyValidationFailure") from exc
        touched.add("recurrence")
    elif event.recurrence is not None and {"start"} & touched:
        # moving the series start moves recurrence.range.startDate with it
        local_date = event.start.astimezone(resolve_zone(event.start_tz)).date()
        graph = event.recurrence.as_graph()
        graph["range"]["startDate"] = local_date.isoformat()
        if (
            graph["range"]["type"] == "endDate"
            and graph["range"]["endDate"] < local_date.isoformat()
        ):
            graph["range"]["endDate"] = local_date.isoformat()
        try:
            event.recurrence = rec_mod.parse(graph, local_date, event.start_tz)
        except rec_mod.RecurrenceError as exc:
            raise bad(str(exc), "ErrorPropertyValidationFailure") from exc
    if not occurrence:
        event.type = "seriesMaster" if event.recurrence is not None else "singleInstance"
    return touched
