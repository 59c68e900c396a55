"""Reading the Outlook side of a room: calendarView delta items turned into ``OutlookItem``s.

The delta feed says little on its own (docs/graph-behaviour.md 1.4–1.6, 6.2): the room's copy
shows the organizer's name instead of the subject, ``@removed`` also means "left the window",
and a cancelled meeting may stay as ``isCancelled: true``. This shell asks what the engine needs
to decide without guessing:

* the title from the organizer's copy (same iCalUId), falling back to "unknown";
* for ``@removed`` of a linked meeting, a GET of the room's copy: 404 is gone, a start outside
  the window is "left the window", ``isCancelled`` is a cancellation (invariant 4); the
  organizer's copy then says whether it was deleted, cancelled or declined by the room;
* Hybrid members for the organizer and attendees, only for meetings not yet linked (the only
  ones that can become a new Hybrid booking).

Series (occurrences, exceptions, masters) are left to the series work and not read here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from roomd.graph import AccessDenied, BadRequest, GraphError, NotFound

from .decide import LinkIndex
from .model import OutlookItem, OutlookState, RoomContext, Slot
from .ports import GraphPort, HybridPort

SERIES_TYPES = frozenset({"occurrence", "exception", "seriesMaster"})
_ORGANIZER_SELECT = ("id", "subject", "isCancelled", "attendees", "type")
SERIES_ORGANIZER_SELECT = ("id", "subject", "type")
"""What the series reader asks of an organizer's series (inbound_series.py): the look-ups read
ahead with this select are the ones it makes; another select would only miss the read-ahead."""


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime


def graph_time(value: object) -> datetime | None:
    """A Graph ``dateTimeTimeZone`` in UTC (roomd asks for UTC, docs/graph-behaviour.md 1.8)."""
    if not isinstance(value, Mapping):
        return None
    text = value.get("dateTime")
    if not isinstance(text, str) or not text:
        return None
    try:
        parsed = datetime.fromisoformat(text[:26].rstrip("Z"))
    except ValueError:
        return None
    zone = value.get("timeZone")
    if zone not in (None, "UTC", "Etc/UTC", "tzone://Microsoft/Utc"):
        return None  # roomd asked for UTC; anything else is a payload it must not guess at
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def instant(value: object) -> datetime | None:
    """A Graph ``DateTimeOffset`` (``2025-03-01T10:00:05.7654321Z``) in UTC, or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value[:26].rstrip("Z") if "." in value else value[:19])
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _address(entry: object) -> str | None:
    if not isinstance(entry, Mapping):
        return None
    email = entry.get("emailAddress")
    if not isinstance(email, Mapping):
        return None
    address = email.get("address")
    return address.strip().lower() if isinstance(address, str) and address.strip() else None


def organizer_address(event: Mapping[str, Any]) -> str | None:
    return _address(event.get("organizer"))


ORGANIZER_GONE = "cancelled (or deleted) in Outlook by the organizer"
"""The reason audited when the organizer's copy is gone (404): Graph shows a cancel and a delete
alike."""


async def why_gone(graph: GraphPort, organizer: str | None, organizer_event_id: str | None) -> str:
    """Cancelled by the organizer, or declined by the room: the organizer's copy tells.

    The organizer's copy gone is a cancellation: ``POST /cancel`` moves the organizer's item to
    Deleted Items (event-cancel.md), and ``DELETE`` by the organizer "sends a cancellation
    message to the meeting attendees" (event-delete.md); Graph shows the two alike (a 404), so
    the reason names the cancellation, the one thing both are (it said "deleted", which an
    operator reading ``roomd explain`` took as wrong for a series cancelled in Outlook)."""
    if not organizer or not organizer_event_id:
        return "removed from the room's calendar in Outlook"
    try:
        copy = await graph.get_event(organizer, organizer_event_id)
    except NotFound:
        return ORGANIZER_GONE
    except GraphError:
        return "removed from the room's calendar in Outlook"
    if copy.get("isCancelled"):
        return "cancelled in Outlook by the organizer"
    for attendee in copy.get("attendees") or []:
        if isinstance(attendee, Mapping) and attendee.get("type") == "resource":
            status = attendee.get("status")
            if isinstance(status, Mapping) and status.get("response") == "declined":
                return "declined by the room in Outlook"
    return "removed from the room's calendar in Outlook"


def _is_address(text: str) -> bool:
    local, at, domain = text.partition("@")
    return bool(at and local and "." in domain and " " not in text and "@" not in domain)


def _room_response(item: Mapping[str, Any]) -> str | None:
    status = item.get("responseStatus")
    if isinstance(status, Mapping) and isinstance(status.get("response"), str):
        return str(status["response"])
    return None


class OutlookReader:
    """Turns one round's delta items into ``OutlookItem``s for one room."""

    def __init__(self, graph: GraphPort, hybrid: HybridPort) -> None:
        self._graph = graph
        self._hybrid = hybrid

    async def items(
        self,
        room: RoomContext,
        window: Window,
        changes: Sequence[Mapping[str, Any]],
        links: LinkIndex,
    ) -> list[OutlookItem]:
        latest: dict[str, Mapping[str, Any]] = {}
        for change in changes:
            event_id = change.get("id")
            if isinstance(event_id, str) and event_id:
                latest[event_id] = change  # a later version of the same event wins
        copies = await self._organizer_copies(latest.values())
        await self._read_series_ahead(room, window, changes)
        out: list[OutlookItem] = []
        for event_id, change in latest.items():
            item = await self._one(room, window, event_id, change, links, copies)
            if item is not None:
                out.append(item)
        return out

    async def _organizer_copies(
        self, changes: Iterable[Mapping[str, Any]]
    ) -> dict[tuple[str, str], list[dict[str, Any]] | GraphError]:
        """The organizer's copies of the round's live one-off meetings, read 20 per JSON
        ``$batch`` before the items are made (one ``$filter=iCalUId`` request each cost an
        initial sync a Graph request per meeting). Removals, series and events without an
        organizer or iCalUId are left out; ``_organizer_copy`` reads any it lacks on its own."""
        wanted: list[tuple[str, str]] = []
        for change in changes:
            if "@removed" in change or change.get("isCancelled") is True:
                continue
            if change.get("type") in SERIES_TYPES or change.get("seriesMasterId"):
                continue
            organizer, ical_uid = organizer_address(change), change.get("iCalUId")
            if organizer and _is_address(organizer) and isinstance(ical_uid, str) and ical_uid:
                wanted.append((organizer, ical_uid))
        if len(wanted) < 2:
            return {}  # one look-up is one request either way
        return await self._graph.find_many_by_ical_uid(wanted, _ORGANIZER_SELECT)

    async def _read_series_ahead(
        self, room: RoomContext, window: Window, changes: Sequence[Mapping[str, Any]]
    ) -> None:
        """The series the round's delta items belong to are read whole next (series.py): the
        room's masters, their ``/instances`` and their organizers' copies. Read them here
        through JSON ``$batch`` for the series reader's requests to use, instead of three
        requests per series; a failure here only leaves those requests to be made."""
        masters: dict[str, None] = {}
        for change in changes:
            master = change.get("seriesMasterId")
            if change.get("type") == "seriesMaster":
                master = change.get("id")
            if isinstance(master, str) and master:
                masters[master] = None
        if not masters:
            return
        try:
            found = await self._graph.read_ahead_series(
                room.mailbox, list(masters), window.start, window.end
            )
            lookups = []
            for master in found.values():
                organizer, ical_uid = organizer_address(master), master.get("iCalUId")
                if organizer and isinstance(ical_uid, str) and ical_uid:
                    lookups.append((organizer, ical_uid))
            if lookups:
                await self._graph.read_ahead_copies(lookups, SERIES_ORGANIZER_SELECT)
        except GraphError:
            return

    async def _one(
        self,
        room: RoomContext,
        window: Window,
        event_id: str,
        change: Mapping[str, Any],
        links: LinkIndex,
        copies: Mapping[tuple[str, str], list[dict[str, Any]] | GraphError] | None = None,
    ) -> OutlookItem | None:
        if "@removed" in change:
            link = links.by_room_event.get(event_id)
            if link is None:
                return OutlookItem(event_id, OutlookState.GONE)  # never synced: nothing to do
            try:
                current = await self._graph.get_event(room.mailbox, event_id)
            except NotFound:
                reason = await why_gone(
                    self._graph, link.organizer_mailbox, link.organizer_event_id
                )
                return OutlookItem(
                    event_id, OutlookState.GONE, ical_uid=link.ical_uid, reason=reason
                )
            return await self._live(room, window, event_id, current, links, confirmed=True)
        if change.get("type") in SERIES_TYPES or change.get("seriesMasterId"):
            return None
        return await self._live(
            room, window, event_id, change, links, confirmed=False, copies=copies
        )

    async def _live(
        self,
        room: RoomContext,
        window: Window,
        event_id: str,
        event: Mapping[str, Any],
        links: LinkIndex,
        *,
        confirmed: bool,
        copies: Mapping[tuple[str, str], list[dict[str, Any]] | GraphError] | None = None,
    ) -> OutlookItem | None:
        ical_uid = event.get("iCalUId") if isinstance(event.get("iCalUId"), str) else None
        change_key = event.get("changeKey") if isinstance(event.get("changeKey"), str) else None
        start, end = graph_time(event.get("start")), graph_time(event.get("end"))
        if event.get("isCancelled") is True:
            return OutlookItem(
                event_id,
                OutlookState.CANCELLED,
                ical_uid=ical_uid,
                change_key=change_key,
                reason="cancelled in Outlook by the organizer",
            )
        if _room_response(event) == "declined":
            return OutlookItem(
                event_id, OutlookState.GONE, ical_uid=ical_uid, reason="declined by the room"
            )
        outside = (
            start is not None and end is not None and (end <= window.start or start >= window.end)
        )
        if confirmed and outside:
            return OutlookItem(event_id, OutlookState.LEFT_WINDOW, ical_uid=ical_uid)
        organizer = organizer_address(event)
        problem = None
        if not ical_uid:
            problem = f"event {event_id} has no iCalUId"
        elif start is None or end is None:
            problem = f"event {ical_uid} has no readable start/end in UTC"
        elif end <= start:
            problem = f"event {ical_uid} ends ({end:%Y-%m-%d %H:%M}) before it starts"
        elif organizer is None:
            problem = f"event {ical_uid} has no organizer"
        attendees: list[str] = []
        for attendee in event.get("attendees") or []:
            address = _address(attendee)
            kind = attendee.get("type") if isinstance(attendee, Mapping) else None
            if address is None or kind == "resource" or address == room.mailbox:
                continue
            if not _is_address(address):
                problem = problem or f"event {ical_uid}: attendee {address!r} is not an address"
                continue
            if address != organizer:
                attendees.append(address)
        if organizer is not None and not _is_address(organizer):
            problem = problem or f"event {ical_uid}: organizer {organizer!r} is not an address"
        room_subject = event.get("subject") if isinstance(event.get("subject"), str) else None
        if problem is not None:
            return OutlookItem(event_id, OutlookState.LIVE, ical_uid=ical_uid, problem=problem)
        assert start is not None and end is not None and organizer is not None
        assert ical_uid is not None
        title, organizer_event_id = await self._organizer_copy(
            organizer, ical_uid, (copies or {}).get((organizer, ical_uid))
        )
        # people as Hybrid members (the client caches the directory): a new meeting becomes a
        # booking for them, and so does one Outlook wins back after Hybrid cancelled it
        member_id = await self._hybrid.member_id(organizer)
        member_ids: list[str] = []
        visitors: list[str] = []
        for address in attendees:
            found = await self._hybrid.member_id(address)
            if found is not None:
                member_ids.append(found)
            else:
                visitors.append(address)
        return OutlookItem(
            event_id,
            OutlookState.LIVE,
            ical_uid=ical_uid,
            change_key=change_key,
            slot=Slot(start, end, title),
            organizer=organizer,
            organizer_event_id=organizer_event_id,
            member_id=member_id,
            member_ids=tuple(member_ids),
            visitors=tuple(visitors),
            room_response=_room_response(event),
            room_subject=room_subject,
            modified_at=instant(event.get("lastModifiedDateTime")),
        )

    async def _organizer_copy(
        self,
        organizer: str,
        ical_uid: str,
        prefetched: list[dict[str, Any]] | GraphError | None = None,
    ) -> tuple[str | None, str | None]:
        """The real subject and the organizer's event id (docs/graph-behaviour.md 6.2, way 2);
        (None, None) when the organizer is external or out of the app's reach. ``prefetched``:
        the answer of the round's batched look-up, when it had one (an error other than those
        meaning "out of reach" is asked again on its own, and raised as before)."""
        try:
            if prefetched is None or (
                isinstance(prefetched, GraphError)
                and not isinstance(prefetched, NotFound | AccessDenied | BadRequest)
            ):
                copies = await self._graph.find_by_ical_uid(organizer, ical_uid, _ORGANIZER_SELECT)
            elif isinstance(prefetched, GraphError):
                raise prefetched
            else:
                copies = prefetched
        except (NotFound, AccessDenied, BadRequest):
            return None, None
        for copy in copies:
            if copy.get("type") in SERIES_TYPES:
                continue
            subject = copy.get("subject")
            event_id = copy.get("id")
            return (
                subject if isinstance(subject, str) else None,
                event_id if isinstance(event_id, str) else None,
            )
        return None, None
