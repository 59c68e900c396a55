"""Reading a series from the room's calendar: its master and its occurrences in the window.

calendarView delta hands out occurrences, bare, and no master (docs/graph-behaviour.md 1.4);
a cancelled occurrence may come with no signal at all, and occurrence ids change when a series
is rescheduled. So every series a round touches is read whole: the room's copy of the master
(the rule, the first occurrence, the iCalUId), ``/instances`` over the sync window, and the
organizer's master for the real title. Occurrences the rule expects but the room does not hold
(cancelled, or declined by the room: a conflict, its booking window) count as cancelled.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from roomd.graph import AccessDenied, BadRequest, GraphError, NotFound

from .decide import LinkIndex
from .inbound import Window, graph_time, instant, organizer_address, why_gone
from .model import OutlookState, RoomContext, Slot
from .ports import GraphPort, HybridPort
from .recurrence import graph_occurrences, rrule_from_graph
from .series import OutlookSeries, Shape
from .zones import to_iana


def series_zone(master: Mapping[str, Any], fallback: str) -> str:
    """The zone the series' rule runs in (recurrencerange.md: recurrenceTimeZone, else the
    event's own zone)."""
    recurrence = master.get("recurrence") or {}
    range_ = recurrence.get("range") or {} if isinstance(recurrence, Mapping) else {}
    for name in (range_.get("recurrenceTimeZone"), master.get("originalStartTimeZone"), fallback):
        if isinstance(name, str) and name:
            try:
                return to_iana(name)
            except ValueError:
                continue
    return "UTC"


class OutlookSeriesReader:
    def __init__(self, graph: GraphPort, hybrid: HybridPort) -> None:
        self._graph = graph
        self._hybrid = hybrid

    async def series(
        self,
        room: RoomContext,
        window: Window,
        master_ids: Iterable[str],
        links: LinkIndex,
        room_zone: str,
    ) -> list[OutlookSeries]:
        out = []
        for master_id in dict.fromkeys(master_ids):
            item = await self._one(room, window, master_id, links, room_zone)
            if item is not None:
                out.append(item)
        return out

    async def _one(
        self, room: RoomContext, window: Window, master_id: str, links: LinkIndex, room_zone: str
    ) -> OutlookSeries | None:
        link = links.by_room_event.get(master_id)
        try:
            master = await self._graph.get_event(room.mailbox, master_id)
        except NotFound:
            if link is None:
                return None
            reason = await why_gone(self._graph, link.organizer_mailbox, link.organizer_event_id)
            return OutlookSeries(
                master_id, OutlookState.GONE, ical_uid=link.ical_uid, reason=reason
            )
        ical_uid = master.get("iCalUId") if isinstance(master.get("iCalUId"), str) else None
        if master.get("isCancelled") is True:
            return OutlookSeries(
                master_id,
                OutlookState.CANCELLED,
                ical_uid=ical_uid,
                reason="series cancelled in Outlook by the organizer",
            )
        recurrence = master.get("recurrence")
        first, end = graph_time(master.get("start")), graph_time(master.get("end"))
        organizer = organizer_address(master)
        problem = None
        if not isinstance(recurrence, Mapping) or not ical_uid:
            problem = f"series {master_id} has no recurrence or iCalUId"
        elif first is None or end is None or end <= first:
            problem = f"series {ical_uid} has no readable first occurrence"
        elif organizer is None:
            problem = f"series {ical_uid} has no organizer"
        if problem is not None:
            return OutlookSeries(master_id, OutlookState.LIVE, ical_uid=ical_uid, problem=problem)
        assert isinstance(recurrence, Mapping) and first is not None and end is not None
        assert organizer is not None and ical_uid is not None
        zone = series_zone(master, room_zone)
        rec = _with_zone(recurrence, zone)
        try:
            rrule = rrule_from_graph(rec, first_start_local=first, zone=zone)
            expected = graph_occurrences(
                rec, first_start=first, zone=zone, between=(window.start, window.end)
            )
        except ValueError as exc:
            return OutlookSeries(
                master_id, OutlookState.LIVE, ical_uid=ical_uid, problem=f"series {ical_uid}: {exc}"
            )
        instances = await self._graph.instances(room.mailbox, master_id, window.start, window.end)
        duration = end - first
        present: dict[datetime, Mapping[str, Any]] = {}
        for inst in instances:
            original = instant(inst.get("originalStart")) or graph_time(inst.get("start"))
            if original is not None:
                present[original.replace(microsecond=0)] = inst
        title, organizer_master = await self._organizer_master(organizer, ical_uid)
        titles = await self._occurrence_titles(
            organizer, organizer_master, title, window, present.values()
        )
        exceptions: dict[datetime, Slot | None] = {}
        occurrence_ids: dict[datetime, str] = {}
        for original in expected:
            found = present.get(original)
            if found is None:
                exceptions[original] = None
                continue
            if isinstance(found.get("id"), str):
                occurrence_ids[original] = found["id"]
            start, stop = graph_time(found.get("start")), graph_time(found.get("end"))
            own = titles.get(original)
            if (
                start is not None
                and stop is not None
                and ((start, stop) != (original, original + duration) or own is not None)
            ):
                exceptions[original] = Slot(start, stop, own)
        member_id = await self._hybrid.member_id(organizer)
        member_ids: list[str] = []
        visitors: list[str] = []
        for attendee in master.get("attendees") or []:
            email = (
                (attendee.get("emailAddress") or {}).get("address")
                if isinstance(attendee, Mapping)
                else None
            )
            if not isinstance(email, str) or attendee.get("type") == "resource":
                continue
            email = email.lower()
            if email in (organizer, room.mailbox):
                continue
            member = await self._hybrid.member_id(email)
            if member is not None:
                member_ids.append(member)
            else:
                visitors.append(email)
        response = (master.get("responseStatus") or {}).get("response")
        return OutlookSeries(
            master_id,
            OutlookState.LIVE,
            ical_uid=ical_uid,
            shape=Shape(rrule, zone, first, end, title),
            exceptions=exceptions,
            window=(window.start, window.end),
            occurrences=occurrence_ids,
            organizer=organizer,
            organizer_master_id=organizer_master,
            member_id=member_id,
            member_ids=tuple(member_ids),
            visitors=tuple(visitors),
            room_response=response if isinstance(response, str) else None,
            room_subject=master.get("subject") if isinstance(master.get("subject"), str) else None,
            modified_at=instant(master.get("lastModifiedDateTime")),
        )

    async def _occurrence_titles(
        self,
        organizer: str,
        master_id: str | None,
        title: str | None,
        window: Window,
        room_instances: Iterable[Mapping[str, Any]],
    ) -> dict[datetime, str]:
        """The occurrences whose title is not the series' (original start -> title), from the
        organizer's ``/instances``: the room's copy may hide subjects (DeleteSubject,
        AddOrganizerToSubject), as for one-off meetings. Read only when the room holds an
        exception (a retitled occurrence is one), so a series without any costs no request;
        empty when the series' title is unknown (no title can then be told apart)."""
        if title is None or master_id is None:
            return {}
        if not any(inst.get("type") == "exception" for inst in room_instances):
            return {}
        try:
            found = await self._graph.instances(organizer, master_id, window.start, window.end)
        except GraphError:
            return {}
        out: dict[datetime, str] = {}
        for inst in found:
            original = instant(inst.get("originalStart")) or graph_time(inst.get("start"))
            subject = inst.get("subject")
            if original is not None and isinstance(subject, str) and subject != title:
                out[original.replace(microsecond=0)] = subject
        return out

    async def _organizer_master(
        self, organizer: str, ical_uid: str
    ) -> tuple[str | None, str | None]:
        try:
            copies = await self._graph.find_by_ical_uid(
                organizer, ical_uid, ("id", "subject", "type")
            )
        except (NotFound, AccessDenied, BadRequest):
            return None, None
        except GraphError:
            return None, None
        for copy in copies:
            if copy.get("type") == "seriesMaster":
                subject, event_id = copy.get("subject"), copy.get("id")
                return (
                    subject if isinstance(subject, str) else None,
                    event_id if isinstance(event_id, str) else None,
                )
        return None, None


def _with_zone(recurrence: Mapping[str, Any], zone: str) -> dict[str, Any]:
    rec = dict(recurrence)
    range_ = dict(rec.get("range") or {})
    range_["recurrenceTimeZone"] = zone
    rec["range"] = range_
    return rec
