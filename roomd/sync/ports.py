"""The slices of Graph and Hybrid the sync engine's shells use, and their adapters.

The engine's shells (``inbound``, ``outbound``, ``outbox``, ``runner``) talk to these two ports
only, never to a client's wider surface, so what roomd needs from each service is listed on one
screen, and a contract test can run the same checks against the real clients on the
simulators. ``GraphAdapter`` and ``HybridAdapter`` are the production implementations.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from roomd.graph import AccessDenied, BadRequest, DeltaResult, GraphClient, GraphError, NotFound
from roomd.hybrid import HybridBooking, HybridClient, HybridError
from roomd.hybrid import NotFound as HybridNotFound

READ_AHEAD_TTL_S = 60.0
"""How long an answer read ahead (``GraphAdapter.read_ahead_series``) may stand in for its
request; each is used once."""

INSTANCES_PAGE = 200
"""Occurrences per ``/instances`` page: a year of a weekly series in one request, where Graph's
default page of 10 would take six."""


class GraphPort(Protocol):
    async def delta_round(
        self, mailbox: str, *, window_start: datetime, window_end: datetime, delta_link: str | None
    ) -> DeltaResult: ...

    async def get_event(self, mailbox: str, event_id: str) -> dict[str, Any]: ...

    async def read_ahead_series(
        self, mailbox: str, master_ids: Sequence[str], start: datetime, end: datetime
    ) -> dict[str, dict[str, Any]]: ...

    async def read_ahead_copies(
        self, lookups: Sequence[tuple[str, str]], select: Sequence[str]
    ) -> None: ...

    async def instances(
        self, mailbox: str, master_id: str, start: datetime, end: datetime
    ) -> list[dict[str, Any]]: ...

    async def find_by_ical_uid(
        self, mailbox: str, ical_uid: str, select: Sequence[str] = ()
    ) -> list[dict[str, Any]]: ...

    async def find_many_by_ical_uid(
        self, lookups: Sequence[tuple[str, str]], select: Sequence[str] = ()
    ) -> dict[tuple[str, str], list[dict[str, Any]] | GraphError]: ...

    async def create_event(
        self, organizer: str, event: Mapping[str, Any], *, idempotency_key: str
    ) -> dict[str, Any]: ...

    async def update_event(
        self, mailbox: str, event_id: str, changes: Mapping[str, Any]
    ) -> dict[str, Any]: ...

    async def cancel_event(self, organizer: str, event_id: str, *, comment: str) -> str: ...

    async def respond(
        self, mailbox: str, event_id: str, response: str, *, comment: str
    ) -> None: ...

    async def aclose(self) -> None: ...


class HybridPort(Protocol):
    async def changes_since(
        self, cursor: datetime | None, *, resource_id: str
    ) -> tuple[list[HybridBooking], datetime | None]: ...

    def confirm_changes(self, resource_id: str) -> None: ...

    async def bookings_between(
        self, start: datetime, end: datetime, *, resource_id: str
    ) -> list[HybridBooking]: ...

    async def member_id(self, email: str) -> str | None: ...

    async def member_email(self, member_id: str) -> str | None: ...

    async def find_by_reference(
        self, reference: str, *, resource_id: str | None = None
    ) -> HybridBooking | None: ...

    async def get_booking(self, booking_id: str) -> HybridBooking | None: ...

    async def children(self, parent_id: str) -> list[HybridBooking]: ...

    async def resource_zone(self, resource_id: str) -> str | None: ...

    async def create_booking(
        self, payload: Mapping[str, Any], *, reference: str
    ) -> HybridBooking: ...

    async def patch_booking(self, booking_id: str, changes: Mapping[str, Any]) -> HybridBooking: ...

    async def cancel_booking(self, booking_id: str) -> HybridBooking | None: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class GroupGraphPort(Protocol):
    """What the daemon's grouped reads need from Graph beyond ``GraphPort``."""

    async def delta_rounds(
        self, delta_links: Mapping[str, str]
    ) -> dict[str, DeltaResult | GraphError]: ...


@runtime_checkable
class GroupHybridPort(Protocol):
    """What the daemon's grouped reads need from Hybrid beyond ``HybridPort``."""

    @property
    def feed_overlap(self) -> timedelta: ...

    @property
    def first_walk_start(self) -> datetime | None: ...

    async def changes_everywhere(
        self, cursor: datetime | None
    ) -> tuple[list[HybridBooking], datetime | None]: ...

    def confirm_everywhere(self) -> None: ...

    def delivered(self, booking: HybridBooking, resource_id: str) -> bool: ...

    def answering_everywhere(self, since: float) -> bool: ...


class GraphAdapter:
    """``GraphPort`` over roomd's Graph client."""

    def __init__(self, client: GraphClient) -> None:
        self.client = client
        self._ahead: dict[tuple[Any, ...], tuple[float, Any]] = {}

    async def read_ahead_series(
        self, mailbox: str, master_ids: Sequence[str], start: datetime, end: datetime
    ) -> dict[str, dict[str, Any]]:
        """Read the masters and the [start, end) ``/instances`` of a room's series, 10 series
        per JSON ``$batch``, for the ``get_event`` and ``instances`` calls of the series reader
        that follow in the same round (one request each before: an initial sync spent three
        Graph requests per series). Returns the masters read."""
        self._forget_old()
        found = await self.client.events.series_many(
            mailbox, master_ids, start=start, end=end, page_size=INSTANCES_PAGE
        )
        now = time.monotonic()
        masters: dict[str, dict[str, Any]] = {}
        for master_id, (master, instances) in found.items():
            if _definite(master):
                self._ahead[("event", mailbox, master_id)] = (now, master)
            if _definite(instances):
                self._ahead[("instances", mailbox, master_id, start, end)] = (now, instances)
            if isinstance(master, dict):
                masters[master_id] = master
        return masters

    async def read_ahead_copies(
        self, lookups: Sequence[tuple[str, str]], select: Sequence[str]
    ) -> None:
        """Read ``find_by_ical_uid(mailbox, uid, select)`` for each pair, 20 per ``$batch``,
        for the calls that follow in the same round (the series' organizer copies)."""
        found = await self.client.events.find_many_by_ical_uid(lookups, select=select)
        now = time.monotonic()
        for (mailbox, ical_uid), answer in found.items():
            if _definite(answer):
                self._ahead[("ical", mailbox, ical_uid, tuple(select))] = (now, answer)

    def _ahead_of(self, key: tuple[Any, ...]) -> Any:
        """An answer read ahead for ``key``, used up (None when there is none, or too old);
        an error read ahead is raised as the request itself would have raised it."""
        entry = self._ahead.pop(key, None)
        if entry is None or time.monotonic() - entry[0] > READ_AHEAD_TTL_S:
            return None
        if isinstance(entry[1], GraphError):
            raise entry[1]
        return entry[1]

    def _forget_old(self) -> None:
        now = time.monotonic()
        for key in [k for k, (at, _) in self._ahead.items() if now - at > READ_AHEAD_TTL_S]:
            del self._ahead[key]

    async def delta_round(
        self, mailbox: str, *, window_start: datetime, window_end: datetime, delta_link: str | None
    ) -> DeltaResult:
        return await self.client.delta_round(
            mailbox, window_start=window_start, window_end=window_end, delta_link=delta_link
        )

    async def delta_rounds(
        self, delta_links: Mapping[str, str]
    ) -> dict[str, DeltaResult | GraphError]:
        """The next round of many rooms from their stored links, 20 per ``$batch`` (the
        daemon's grouped poll of idle rooms; json-batching.md)."""
        return await self.client.delta_rounds(delta_links)

    async def get_event(self, mailbox: str, event_id: str) -> dict[str, Any]:
        ahead = self._ahead_of(("event", mailbox, event_id))
        if ahead is not None:
            return dict(ahead)
        return await self.client.events.get(mailbox, event_id)

    async def instances(
        self, mailbox: str, master_id: str, start: datetime, end: datetime
    ) -> list[dict[str, Any]]:
        """A series' occurrences and exceptions in [start, end) (event-list-instances.md;
        cancelled occurrences are not listed)."""
        ahead = self._ahead_of(("instances", mailbox, master_id, start, end))
        if ahead is not None:
            return list(ahead)
        return await self.client.events.instances(
            mailbox, master_id, start=start, end=end, page_size=INSTANCES_PAGE
        )

    async def find_by_ical_uid(
        self, mailbox: str, ical_uid: str, select: Sequence[str] = ()
    ) -> list[dict[str, Any]]:
        ahead = self._ahead_of(("ical", mailbox, ical_uid, tuple(select)))
        if ahead is not None:
            return list(ahead)
        return await self.client.events.find_by_ical_uid(mailbox, ical_uid, select=select)

    async def find_many_by_ical_uid(
        self, lookups: Sequence[tuple[str, str]], select: Sequence[str] = ()
    ) -> dict[tuple[str, str], list[dict[str, Any]] | GraphError]:
        """Many ``find_by_ical_uid`` at once, 20 per JSON ``$batch``; each pair's copies or the
        error it answered."""
        return await self.client.events.find_many_by_ical_uid(lookups, select=select)

    async def create_event(
        self, organizer: str, event: Mapping[str, Any], *, idempotency_key: str
    ) -> dict[str, Any]:
        """Create once per key, even when roomd lost its own record of an earlier create (a
        restored or lost state database): the meeting carries roomd's tag, and the tag is
        looked for first (docs/graph-behaviour.md 2.3–2.4; Graph leaves a repeated
        transactionId's answer undocumented)."""
        tag = f"hybrid:{idempotency_key}"
        found = await self.client.events.find_by_tag(organizer, tag)
        if found:
            return found[0]
        return await self.client.events.create(
            organizer, event, idempotency_key=idempotency_key, tag=tag
        )

    async def update_event(
        self, mailbox: str, event_id: str, changes: Mapping[str, Any]
    ) -> dict[str, Any]:
        return await self.client.events.update(mailbox, event_id, changes, etag=None)

    async def cancel_event(self, organizer: str, event_id: str, *, comment: str) -> str:
        """Cancel once: after an ambiguous failure, read the event before trying again (a
        second cancel mails every attendee again, roomd/graph/events.py). Returns what
        happened, for the audit: ``cancelled``, ``cancelled_on_retry`` (the answer was lost
        but the cancel went through), ``already_cancelled`` or ``already_gone``."""
        try:
            current = await self.client.events.get(organizer, event_id)
        except NotFound:
            return "already_gone"
        if current.get("isCancelled"):
            return "already_cancelled"
        try:
            await self.client.events.cancel(organizer, event_id, comment=comment)
        except GraphError as exc:
            if exc.status is not None and exc.status < 500:
                raise
            try:
                current = await self.client.events.get(organizer, event_id)
            except NotFound:
                return "cancelled_on_retry"  # the organizer's copy moves to Deleted Items
            if not current.get("isCancelled"):
                raise
            return "cancelled_on_retry"
        return "cancelled"

    async def respond(self, mailbox: str, event_id: str, response: str, *, comment: str) -> None:
        events = self.client.events
        if response == "decline":
            await events.decline(mailbox, event_id, comment=comment)
        elif response == "accept":
            await events.accept(mailbox, event_id, comment=comment)
        elif response == "tentativelyAccept":
            await events.tentatively_accept(mailbox, event_id, comment=comment)
        else:
            raise ValueError(f"respond: unknown response {response!r}")

    async def aclose(self) -> None:
        await self.client.aclose()


class HybridAdapter:
    """``HybridPort`` over roomd's Hybrid client."""

    def __init__(self, client: HybridClient) -> None:
        self.client = client
        self._zones: dict[str, str | None] = {}

    async def changes_since(
        self, cursor: datetime | None, *, resource_id: str
    ) -> tuple[list[HybridBooking], datetime | None]:
        return await self.client.changes_since(cursor, resource_id=resource_id)

    def confirm_changes(self, resource_id: str) -> None:
        self.client.confirm_changes(resource_id)

    async def changes_everywhere(
        self, cursor: datetime | None
    ) -> tuple[list[HybridBooking], datetime | None]:
        """Bookings changed since ``cursor`` in every resource of the organization: the same
        ``modifiedAt[$gte]`` listing without ``resourceId`` (docs/hybrid-api.md, "Booking
        filters": each filter is optional), with the same overlap, memory and cap."""
        return await self.client.changes_since(cursor, resource_id=None)

    def confirm_everywhere(self) -> None:
        self.client.confirm_changes(None)

    def answering_everywhere(self, since: float) -> bool:
        """Whether the organization listing's walk had its first page answered after
        ``since`` (``time.monotonic()``)."""
        return self.client.answered_since(since)

    def delivered(self, booking: HybridBooking, resource_id: str) -> bool:
        """Whether the room's own listing (``changes_since`` for ``resource_id``) has
        already delivered this version of ``booking``."""
        return self.client.delivered(booking, resource_id)

    @property
    def feed_overlap(self) -> timedelta:
        """How far a listing re-reads behind its cursor: versions older than a room's cursor
        minus this were all delivered to that room's own listing."""
        return self.client.feed_overlap

    @property
    def first_walk_start(self) -> datetime | None:
        """When (server time) the first listing through this adapter's client began."""
        return self.client.first_walk_start

    async def bookings_between(
        self, start: datetime, end: datetime, *, resource_id: str
    ) -> list[HybridBooking]:
        return await self.client.bookings_between(start, end, resource_id=resource_id)

    async def member_id(self, email: str) -> str | None:
        member = await self.client.member_by_email(email)
        return member.id if member is not None else None

    async def member_email(self, member_id: str) -> str | None:
        try:
            member = await self.client.member_by_id(member_id)
        except HybridNotFound:
            return None
        return member.email.lower() if member.email else None

    async def find_by_reference(
        self, reference: str, *, resource_id: str | None = None
    ) -> HybridBooking | None:
        """The booking made for ``reference`` (canceled or not), in the room ``resource_id``
        when given: answered without a request right after the room's whole listing."""
        return await self.client.find_by_reference(
            reference, include_canceled=True, resource_id=resource_id
        )

    async def get_booking(self, booking_id: str) -> HybridBooking | None:
        try:
            return await self.client.get_booking(booking_id)
        except HybridNotFound:
            return None

    async def children(self, parent_id: str) -> list[HybridBooking]:
        """A series' exceptions (bookings with ``parent``), canceled ones included."""
        return [b async for b in self.client.iter_bookings(parent=parent_id)]

    async def resource_zone(self, resource_id: str) -> str | None:
        """The IANA zone Hybrid evaluates the room's recurring bookings in (the resource's
        ``timezone``, docs/hybrid-api.md); None when Hybrid does not list the room or its zone.
        Read once: a room does not move."""
        if resource_id not in self._zones:
            found = {r.id: r.timezone for r in await self.client.list_resources()}
            self._zones.update(found)
            self._zones.setdefault(resource_id, None)
        return self._zones[resource_id]

    async def create_booking(self, payload: Mapping[str, Any], *, reference: str) -> HybridBooking:
        return await self.client.create_booking(payload, reference=reference)

    async def patch_booking(self, booking_id: str, changes: Mapping[str, Any]) -> HybridBooking:
        return await self.client.patch_booking(booking_id, changes)

    async def cancel_booking(self, booking_id: str) -> HybridBooking | None:
        try:
            return await self.client.cancel_booking(booking_id)
        except HybridNotFound:
            return None

    async def aclose(self) -> None:
        await self.client.aclose()


def _definite(answer: object) -> bool:
    """An answer worth keeping for the request it stands for: a success, or a refusal the same
    request would meet again (404, 403, 400); not a failure that a retry may get past."""
    if not isinstance(answer, GraphError):
        return True
    return isinstance(answer, NotFound | AccessDenied | BadRequest)


def transient(exc: BaseException) -> bool:
    """Whether a failed write may succeed later unchanged: throttling, 5xx, no answer, auth
    (credentials get fixed); a refusal of the request itself (4xx) will not."""
    if isinstance(exc, GraphError):
        status = exc.status
        return status is None or status in (401, 403, 408, 429) or status >= 500
    if isinstance(exc, HybridError):
        return exc.status in (0, 401, 403, 408, 429) or exc.status >= 500
    return isinstance(exc, OSError | TimeoutError)
