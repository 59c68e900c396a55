"""Events as Graph returns them: the property set and order of the v1.0 samples
(contrib: api-reference/v1.0/api/user-post-events.md Example 1 response, event-get.md), times in
the ``Prefer: outlook.timezone`` zone (UTC if absent), ``originalStart`` on occurrences and
exceptions only (resources/event.md), and the bare occurrence shape of calendarView delta
(graph-behaviour.md 1.4; synthesized/calendarview-delta-bare-occurrences.json).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from roomd.sim.graph.events import Event, Instance, occurrence_ical_uid, to_rest_id
from roomd.sim.graph.recurrence import Recurrence
from roomd.sim.graph.wire import (
    NULL_TIME,
    fmt_dtz,
    fmt_instant,
    fmt_original_start,
    fmt_response_time,
)
from roomd.sim.graph.zones import resolve_zone

# Event properties (resources/event.md) that only some events carry, so ``$select`` may name
# them for any event: ``originalStart`` "is not returned for events that are single instances"
# (nor for series masters, which are no occurrence or exception of a series).
SOMETIMES_ABSENT = frozenset({"originalStart"})


class OutputZone:
    """The zone responses are written in, and the name echoed in ``timeZone``."""

    def __init__(self, name: str = "UTC", immutable_ids: bool = True) -> None:
        self.name = name
        self.zone: ZoneInfo = resolve_zone(name)
        # ids in the ImmutableId format (Prefer: IdType="ImmutableId") or the default REST one
        self.immutable_ids = immutable_ids

    def id(self, value: str | None) -> str | None:
        if value is None or self.immutable_ids:
            return value
        return to_rest_id(value)

    def dtz(self, when: datetime) -> dict[str, str]:
        return {"dateTime": fmt_dtz(when.astimezone(self.zone)), "timeZone": self.name}


def body_preview(html: str) -> str:
    text = html
    while "<" in text and ">" in text.split("<", 1)[1]:
        head, _, rest = text.partition("<")
        text = head + rest.partition(">")[2]
    return " ".join(text.split())[:255]


def render_event(
    event: Event,
    zone: OutputZone,
    *,
    instance: Instance | None = None,
    ext_filter: list[str] | None = None,
) -> dict[str, Any]:
    """The full event. ``instance`` renders an occurrence from its master."""
    kind = instance.kind if instance is not None else event.type
    start = instance.start if instance is not None else event.start
    end = instance.end if instance is not None else event.end
    event_id = str(zone.id(instance.id if instance is not None else event.id))
    series_master_id = event.series_master_id
    ical_uid = event.ical_uid
    recurrence: Recurrence | None = event.recurrence
    if kind == "occurrence" and instance is not None and instance.original_start is not None:
        series_master_id = event.id
        recurrence = None
        local = instance.original_start.astimezone(resolve_zone(event.start_tz))
        ical_uid = occurrence_ical_uid(event.ical_uid, local.date())
    original_start = _original_start(event, kind, instance)
    out: dict[str, Any] = {
        "@odata.etag": event.etag,
        "id": event_id,
        "createdDateTime": fmt_instant(event.created),
        "lastModifiedDateTime": fmt_instant(event.modified),
        "changeKey": event.change_key,
        "categories": list(event.categories),
        "transactionId": event.transaction_id,
        # resources/event.md JSON representation: originalStart next to originalStartTimeZone
        **({"originalStart": fmt_original_start(original_start)} if original_start else {}),
        "originalStartTimeZone": event.start_tz,
        "originalEndTimeZone": event.end_tz,
        "iCalUId": ical_uid,
        "reminderMinutesBeforeStart": event.reminder_minutes,
        "isReminderOn": event.is_reminder_on,
        "hasAttachments": False,
        "subject": event.subject,
        "bodyPreview": body_preview(event.body),
        "importance": event.importance,
        "sensitivity": event.sensitivity,
        "isAllDay": event.is_all_day,
        "isCancelled": event.is_cancelled,
        "isOrganizer": event.is_organizer,
        "responseRequested": event.response_requested,
        "seriesMasterId": zone.id(series_master_id),
        "showAs": event.show_as,
        "type": kind,
        "webLink": "https://outlook.office365.com/owa/?itemid="
        + quote(event_id, safe="")
        + "&exvsurl=1&path=/calendar/item",
        "onlineMeetingUrl": None,
        "isOnlineMeeting": event.is_online_meeting,
        "onlineMeetingProvider": "unknown",
        "allowNewTimeProposals": event.allow_new_time_proposals,
        "isDraft": False,
        "hideAttendees": event.hide_attendees,
        "responseStatus": {
            "response": event.response,
            "time": fmt_response_time(event.response_time) if event.response_time else NULL_TIME,
        },
        "body": {"contentType": event.body_type, "content": event.body},
        "start": zone.dtz(start),
        "end": zone.dtz(end),
        "location": dict(event.location) if event.location else _empty_location(),
        "locations": [dict(loc) for loc in event.locations],
        "recurrence": recurrence.as_graph() if recurrence is not None else None,
        "attendees": [_copy_attendee(a) for a in event.attendees],
        "organizer": {"emailAddress": dict(event.organizer)},
        "onlineMeeting": None,
    }
    if ext_filter is not None:
        out["singleValueExtendedProperties"] = [
            {"id": pid, "value": value}
            for pid, value in event.ext_props.items()
            if not ext_filter or pid in ext_filter
        ]
    return out


def _original_start(event: Event, kind: str, instance: Instance | None) -> datetime | None:
    """``originalStart`` (resources/event.md): "the start time of an event when it is initially
    created as an occurrence or exception in a recurring series. This property is not returned
    for events that are single instances." An occurrence's is its own start; an exception's is
    the start of the occurrence it replaces, however it has been moved since."""
    if kind == "occurrence" and instance is not None:
        return instance.original_start
    if kind == "exception":
        return event.original_start
    return None


def _empty_location() -> dict[str, Any]:
    return {
        "displayName": "",
        "locationType": "default",
        "uniqueIdType": "unknown",
        "address": {},
        "coordinates": {},
    }


def _copy_attendee(att: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": att["type"],
        "status": dict(att["status"]),
        "emailAddress": dict(att["emailAddress"]),
    }


def render_bare_occurrence(instance: Instance, zone: OutputZone) -> dict[str, Any]:
    """calendarView/delta occurrences: only these seven properties [OBS] (docs #7632)."""
    return {
        "@odata.type": "#microsoft.graph.event",
        "@odata.etag": instance.event.etag,
        "id": zone.id(instance.id),
        "seriesMasterId": zone.id(instance.event.id),
        "type": "occurrence",
        "start": zone.dtz(instance.start),
        "end": zone.dtz(instance.end),
    }


def render_removed(item_id: str, zone: OutputZone | None = None) -> dict[str, Any]:
    """``@removed`` items carry nothing else (delta-query-overview.md)."""
    return {
        "@odata.type": "#microsoft.graph.event",
        "id": zone.id(item_id) if zone is not None else item_id,
        "@removed": {"reason": "deleted"},
    }


def apply_select(item: dict[str, Any], select: str | None) -> dict[str, Any]:
    """``$select``: the named properties plus ``id`` and ``@odata.etag``, as Graph does."""
    if not select:
        return item
    wanted = {s.strip() for s in select.split(",") if s.strip()}
    return {k: v for k, v in item.items() if k in wanted or k in ("id", "@odata.etag")}
