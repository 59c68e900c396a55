"""One room's sync round: replay owed writes, read both feeds, plan, store, write.

The order is what makes crashes harmless (design.md invariants 1 and 2):

1. Drain the outbox first. A write that reached Graph or Hybrid before a crash, but whose result
   was never recorded, is replayed (idempotently) and recorded *before* its echo can be read
   from a feed, so the echo is recognised instead of looking like a new booking.
2. Read the room's calendarView delta and the Hybrid listing for its resource.
3. Plan with the pure engine (``decide.plan``), then store the links, the outbox rows, the audit
   lines and both feed positions in one transaction. A crash before the commit re-reads the
   same changes next time; after it, the outbox holds every write still owed.
4. Drain the outbox again: this round's writes go out now.

Idle rounds (nothing new on either side) write nothing to the database.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from roomd import observe
from roomd.config import RoomSettings, Settings
from roomd.graph import DeltaResult, GraphError, NotFound, SyncStateExpired
from roomd.hybrid import HybridBooking, HybridError
from roomd.store import Enqueued, Store, room_key

from .decide import LinkIndex, Op, Plan, cancels_one_occurrence, mass_delete, plan
from .inbound import ORGANIZER_GONE, OutlookReader, Window
from .inbound_series import OutlookSeriesReader
from .model import HybridItem, OutlookItem, OutlookState, RoomContext, read_fingerprint
from .outbound import HybridReader, hybrid_state
from .outbound_series import HybridSeriesReader
from .outbox import DrainStats, Executor
from .polling import PollResult, plan_poll
from .ports import GraphPort, GroupGraphPort, GroupHybridPort, HybridPort
from .series import Holder, plan_series, read_shape, refused_holders


@dataclass
class RoundStats:
    """What one room's round did; the fields of the canonical ``room_round`` log line.

    ``inbound`` counts changes read from the room's calendarView delta (flowing from Outlook
    towards Hybrid), ``outbound`` those read from the Hybrid listing.
    """

    inbound: int = 0
    outbound: int = 0
    conflicts: int = 0
    delta_pages: int = 0
    changes: dict[tuple[str, str], int] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    plan: Plan | None = None  # what the round decided (printed by a dry run)


class RoundFailed(Exception):
    """A round failed for a reason outside roomd (a service refused or did not answer): logged
    as a failed round, not as a crash."""


class RoundRunner(Protocol):
    """Does one room's sync round. The daemon owns scheduling, locking, recording and logging."""

    async def run_round(self, room: RoomSettings) -> RoundStats: ...

    def reconfigure(self, settings: Settings) -> None:
        """Take new settings that keep the same connections (rooms, sync tuning)."""

    async def aclose(self) -> None: ...


class GroupPoller(Protocol):
    """A runner that can also read many idle rooms together (the daemon's grouped ticks)."""

    @property
    def can_poll(self) -> bool: ...

    async def poll(self, rooms: Sequence[RoomSettings]) -> PollResult: ...

    async def hybrid_changes(self) -> set[str] | None: ...

    def hybrid_answering(self, since: float) -> bool: ...


HELD = datetime(9999, 1, 1, tzinfo=UTC)
"""``next_at`` of a write held back by the mass-delete breaker until ``roomd sync --force``."""
CANCEL_OPS = frozenset({"hybrid.cancel", "graph.cancel"})
UPDATE_OPS = frozenset({"hybrid.update", "graph.update"})
"""Named after the state they write, so a booking moved back to a time (or title) it was synced to
before plans one of them again: then it is owed again (``RoomTx.enqueue(again=True)``)."""

AWAIT_ROOM_ANSWER = timedelta(days=1)
"""How long roomd keeps asking the organizer's copy for the room's answer to a meeting it made."""


def series_masters(changes: list[dict[str, Any]], index: LinkIndex) -> list[str]:
    """The room copies' series masters a round's delta items touch. A removal no link knows
    may be an occurrence of a deleted series (occurrences are not linked one by one): then
    every live series of the room is read again."""
    found: dict[str, None] = {}
    unknown_removal = False
    for change in changes:
        master = change.get("seriesMasterId")
        if isinstance(master, str) and master:
            found[master] = None
        elif change.get("type") == "seriesMaster" and isinstance(change.get("id"), str):
            found[change["id"]] = None
        elif "@removed" in change and change.get("id") not in index.by_room_event:
            unknown_removal = True
    if unknown_removal:
        for link in index.all:
            if link.series_master_id and link.original_start is None and link.state == "active":
                found[link.series_master_id] = None
    return list(found)


def sync_window(settings: Settings, now: datetime) -> tuple[datetime, datetime]:
    """The calendarView window, on whole UTC days so that it (and so the token) keeps for a day.

    Graph freezes the window inside the delta token (docs/graph-behaviour.md 1.3): a new window
    means a new baseline, so moving it on every round would re-read every event every round.
    The daily move is the re-baseline that reconciles the whole window against the links.
    """
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return (
        today - timedelta(days=settings.sync.window_back_days),
        today + timedelta(days=settings.sync.window_ahead_days + 1),
    )


def room_context(
    settings: Settings,
    room: RoomSettings,
    fallback_member_id: str | None,
    now: datetime | None = None,
) -> RoomContext:
    return RoomContext(
        now=now,
        mailbox=room.mailbox,
        hybrid_id=room.hybrid_id,
        name=room.name,
        conflict=room.conflict,
        direction=room.direction,
        service_mailbox=settings.graph.service_mailbox,
        fallback_member_id=fallback_member_id,
        mass_delete_threshold=settings.sync.mass_delete_threshold,
        mass_delete_min=settings.sync.mass_delete_min,
        zone=room.time_zone or "UTC",
    )


class RoomSync:
    """The sync engine's round for each room, over the two ports and the store."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        graph: GraphPort,
        hybrid: HybridPort,
        clock: Callable[[], datetime],
    ) -> None:
        self._settings = settings
        self._store = store
        self._graph = graph
        self._hybrid = hybrid
        self._clock = clock
        self._outlook = OutlookReader(graph, hybrid)
        self._hybrid_reader = HybridReader(hybrid)
        self._outlook_series = OutlookSeriesReader(graph, hybrid)
        self._hybrid_series = HybridSeriesReader(hybrid)
        self.executor = Executor(store, graph, hybrid, clock)
        # a group poll's delta read of a room with news, handed to the room's whole round so
        # that the link it consumed is not read again (graph-behaviour.md 1.7): room key ->
        # (the stored link it was read from, its result or its 410)
        self._prefetched: dict[str, tuple[str, DeltaResult | SyncStateExpired]] = {}
        self._org_cursor: datetime | None = None
        self._grouped = (
            (graph, hybrid)
            if isinstance(graph, GroupGraphPort) and isinstance(hybrid, GroupHybridPort)
            else None
        )
        self._org_started = False

    @property
    def can_poll(self) -> bool:
        """Whether both ports read many rooms at once (test doubles may not)."""
        return self._grouped is not None

    async def poll(self, rooms: Sequence[RoomSettings]) -> PollResult:
        """Read a group of rooms due their poll with as few requests as possible: the rooms
        whose whole round would begin with a plain next delta round get it through ``$batch``
        (20 rooms per request). A room whose answer is empty keeps its new link as an idle
        round does (``Store.defer_delta``); every other room is in ``whole``, for a round of
        its own, which takes over the delta already read. The caller holds the rooms' locks
        and has read the Hybrid side for all of them (``hybrid_changes``)."""
        now = self._clock()
        window = sync_window(self._settings, now)
        keys = [room_key(r.mailbox) for r in rooms]
        deltas = await self._store.delta_states(keys)
        flags = await self._store.room_flags()
        work = await self._store.rooms_with_work(keys, now, now - AWAIT_ROOM_ANSWER)
        decided = plan_poll(keys, window, deltas, flags, work)
        result = PollResult(whole=set(decided.whole))
        if not decided.batch:
            return result
        assert self._grouped is not None, "poll() needs ports that read groups (can_poll)"
        read = await self._grouped[0].delta_rounds(decided.batch)
        for key, link in decided.batch.items():
            got = read.get(key)
            if isinstance(got, DeltaResult) and not got.changes and got.pages == 1:
                self._store.defer_delta(key, window[0], window[1], got.delta_link)
                result.idle.append(key)
                continue
            if isinstance(got, DeltaResult | SyncStateExpired):
                self._prefetched[key] = (link, got)
            result.whole.add(key)
        return result

    async def hybrid_changes(self) -> set[str] | None:
        """The configured rooms (mailboxes) with Hybrid changes their own listing has not
        shown yet, from one listing of the whole organization since the last one.

        What a room has not seen is never older than its stored cursor minus the overlap (its
        own listing delivered everything before), nor than the start of its last listing (a
        room with no cursor listed everything then). So the first organization listing starts
        from the oldest stored cursor or the start of this process's earliest room listing
        (``first_walk_start``: any listing that answers later began no earlier), whichever is
        older. None (nothing listed) until a room listing of this process has answered."""
        assert self._grouped is not None, "hybrid_changes() needs ports that read groups"
        hybrid = self._grouped[1]
        settings = self._settings
        if not self._org_started:
            first = hybrid.first_walk_start
            if first is None:
                return None
            cursors = await self._store.hybrid_cursors([r.mailbox for r in settings.rooms])
            self._org_cursor = min([first, *(c.modified_since for c in cursors.values())])
            self._org_started = True
        listed, cursor = await hybrid.changes_everywhere(self._org_cursor)
        touched: dict[str, list[HybridBooking]] = {}
        for booking in listed:
            room = settings.room_by_hybrid_id(booking.resource_id)
            if room is not None:
                touched.setdefault(room.mailbox, []).append(booking)
        changed: set[str] = set()
        if touched:
            overlap = hybrid.feed_overlap
            stored = await self._store.hybrid_cursors(list(touched))
            for mailbox, bookings in touched.items():
                row = stored.get(mailbox)
                room = settings.room_by_mailbox(mailbox)
                if (
                    row is None
                    or room is None
                    or row.resource_id not in ("", room.hybrid_id)
                    or any(
                        (b.modified_at is None or b.modified_at >= row.modified_since - overlap)
                        and not hybrid.delivered(b, room.hybrid_id)
                        for b in bookings
                    )
                ):
                    changed.add(mailbox)
        if cursor is not None:
            self._org_cursor = cursor
        hybrid.confirm_everywhere()
        return changed

    def hybrid_answering(self, since: float) -> bool:
        """Whether the organization listing begun at ``since`` (``time.monotonic()``) has had
        its first page answered: Hybrid is reachable, the rooms it shows follow when it ends."""
        return self._grouped is not None and self._grouped[1].answering_everywhere(since)

    def reconfigure(self, settings: Settings) -> None:
        self._settings = settings

    async def aclose(self) -> None:
        try:
            await self._graph.aclose()
        finally:
            await self._hybrid.aclose()

    async def run_round(
        self, room: RoomSettings, *, full: bool = False, dry_run: bool = False
    ) -> RoundStats:
        """One round. ``full`` re-reads the whole window on both sides and reconciles it
        against the links (the "Sync" button; also asked for by ``roomd sync --full`` through
        the room's ``full`` flag). ``dry_run`` plans and writes nothing anywhere: the plan is
        returned in ``RoundStats.plan``."""
        try:
            return await self._round(room, full=full, dry_run=dry_run)
        except (GraphError, HybridError) as exc:
            raise RoundFailed(f"{type(exc).__name__}: {exc}") from exc

    async def _round(self, room: RoomSettings, *, full: bool, dry_run: bool) -> RoundStats:
        settings = self._settings
        fallback = None
        if settings.hybrid.fallback_member:
            fallback = await self._hybrid.member_id(settings.hybrid.fallback_member)
        zone = room.time_zone
        if zone is None:  # the zone Hybrid evaluates the room's series in: its resource's
            with contextlib.suppress(HybridError):
                zone = await self._hybrid.resource_zone(room.hybrid_id)
        ctx = replace(room_context(settings, room, fallback, self._clock()), zone=zone or "UTC")
        stats = RoundStats()
        flags = (await self._store.room_flags(room.mailbox)).get(room.mailbox, {})
        force = "force" in flags
        full = full or "full" in flags
        first = DrainStats() if dry_run else await self.executor.drain(ctx)

        # --- read both sides --------------------------------------------------------------
        start, end = sync_window(settings, self._clock())
        stored = await self._store.get_delta(room.mailbox)
        link = None
        if (
            not full
            and stored is not None
            and (stored.window_start, stored.window_end)
            == (
                start,
                end,
            )
        ):
            link = stored.delta_link
        baseline = link is None
        prefetched = self._prefetched.pop(room_key(room.mailbox), None)
        try:
            if prefetched is not None and link is not None and prefetched[0] == link:
                if isinstance(prefetched[1], SyncStateExpired):
                    raise prefetched[1]
                delta = prefetched[1]
            else:
                delta = await self._graph.delta_round(
                    room.mailbox, window_start=start, window_end=end, delta_link=link
                )
        except SyncStateExpired:
            baseline = True
            delta = await self._graph.delta_round(
                room.mailbox, window_start=start, window_end=end, delta_link=None
            )
        cursor_row = await self._store.get_hybrid_cursor(room.mailbox)
        cursor = None
        if not full and cursor_row is not None and cursor_row.resource_id in ("", room.hybrid_id):
            cursor = cursor_row.modified_since  # else: remapped to another resource, list all
        if full:  # every booking that may hold the room in the window, whatever its age
            bookings = await self._hybrid.bookings_between(start, end, resource_id=room.hybrid_id)
            new_cursor = cursor_row.modified_since if cursor_row is not None else None
        else:
            bookings, new_cursor = await self._hybrid.changes_since(
                cursor, resource_id=room.hybrid_id
            )
        stats.inbound, stats.outbound, stats.delta_pages = (
            len(delta.changes),
            len(bookings),
            delta.pages,
        )

        # --- plan ---------------------------------------------------------------------------
        decided = Plan()
        # a round with nothing new reads only the links still waiting for the room's answer
        # (its cost must not grow with the bookings a room holds); a new baseline reads all
        awaiting = None if baseline else self._clock() - AWAIT_ROOM_ANSWER
        index = LinkIndex(
            await self._store.links(room.mailbox, state="active", awaiting_answer_since=awaiting)
        )
        answer_problems: list[str] = []
        answers = await self._room_answers(ctx, index, answer_problems)
        changes = list(delta.changes)
        if baseline:
            changes += self._unlisted(index, delta.changes, start, end)
        if changes or bookings or answers:
            index = LinkIndex(await self._store.links(room.mailbox))
            window = Window(start, end)
            outlook = await self._outlook.items(ctx, window, changes, index)
            outlook += answers
            hybrid = await self._hybrid_reader.items(bookings, index, resource_id=room.hybrid_id)
            await self._counterparts(ctx, window, index, outlook, hybrid)
            decided = plan(ctx, index, outlook, hybrid, force=True)
            await self._plan_series(ctx, window, changes, bookings, index, decided)
            if not force:
                # the feeds move on (a re-read token may expire and lose the deletions), but
                # the cancellations (of bookings, series, occurrences) wait in the outbox
                # until an operator releases them
                decided.breaker = mass_delete(ctx, index, decided)
        decided.problems += answer_problems

        stats.plan = decided
        if dry_run:
            _account(stats, decided, first, DrainStats(), room.mailbox, baseline)
            return stats

        cursor_kept = new_cursor is None or (
            cursor_row is not None
            and (cursor_row.modified_since, cursor_row.resource_id) == (new_cursor, room.hybrid_id)
        )
        if (
            stored is not None
            and cursor_kept
            and _idle(decided, flags, baseline, delta.changes, bookings, answers)
        ):
            # nothing read, nothing planned: only Graph's new delta link to keep, written with
            # the other idle rooms' (Store.defer_delta), not in a commit of its own
            self._store.defer_delta(room.mailbox, start, end, delta.delta_link)
            self._hybrid.confirm_changes(room.hybrid_id)
            _account(stats, decided, first, DrainStats(), room.mailbox, baseline)
            return stats

        # --- store the plan with both positions, in one transaction ----------------------
        async with self._store.write(room.mailbox) as tx:
            if force:  # the operator checked: held cancellations go out now
                await tx.release_outbox(HELD)
                await tx.set_flag("force", None)
                await tx.set_flag("breaker", None)
            if decided.breaker is not None:
                await tx.set_flag("breaker", decided.breaker)
                await tx.audit(room.mailbox, "none", "breaker", decided.breaker)
            # each kind in one trip to SQLite's thread (executemany), not one per booking
            await tx.upsert_links(list(decided.links))
            await tx.enqueue_many(
                [
                    Enqueued(
                        op.intent_id,
                        op.op,
                        op.payload,
                        not_before=HELD if _held(decided, op) else None,
                        again=op.op in UPDATE_OPS,
                    )
                    for op in decided.ops
                ]
            )
            await tx.audit_many(
                [(line.booking, line.side, line.action, line.reason) for line in decided.audit]
            )
            if stored is None or stored.delta_link != delta.delta_link or baseline:
                await tx.save_delta(start, end, delta.delta_link)
            if new_cursor is not None and (
                cursor_row is None
                or cursor_row.modified_since != new_cursor
                or cursor_row.resource_id != room.hybrid_id
            ):
                await tx.save_hybrid_cursor(new_cursor, room.hybrid_id)
            if "full" in flags:
                await tx.set_flag("full", None)
            if decided.problems:
                await tx.set_flag("problem", decided.problems[-1])
        self._hybrid.confirm_changes(room.hybrid_id)
        if decided.breaker is not None:
            observe.BREAKER_TRIPS.labels(room=room.mailbox).inc()

        second = await self.executor.drain(ctx)
        _account(stats, decided, first, second, room.mailbox, baseline)
        return stats

    async def _plan_series(
        self,
        ctx: RoomContext,
        window: Window,
        changes: list[dict[str, Any]],
        bookings: list[HybridBooking],
        index: LinkIndex,
        decided: Plan,
    ) -> None:
        """Series are read whole on both sides and planned into the same plan (series.py)."""
        masters = series_masters(changes, index) + await self._unanswered_series(ctx, index)
        holders, more, listed = await self._refusals_freed(bookings, index)
        outlook = await self._outlook_series.series(ctx, window, masters + more, index, ctx.zone)
        hybrid = await self._hybrid_series.series(
            [*bookings, *listed], index, resource_id=ctx.hybrid_id, room_zone=ctx.zone
        )
        if outlook or hybrid:
            plan_series(ctx, index, outlook, hybrid, decided, holders=holders)

    async def _refusals_freed(
        self, bookings: list[HybridBooking], index: LinkIndex
    ) -> tuple[dict[str, Holder], list[str], list[HybridBooking]]:
        """The bookings in this round's Hybrid feed that held the slot of an occurrence Hybrid
        refused (series.py ``_plan_restores``), and the series those occurrences belong to,
        read again on both sides (their room masters, their Hybrid series): their own feeds
        show nothing when the slot frees."""
        refused = refused_holders(index.all)
        holders: dict[str, Holder] = {}
        series: set[str] = set()
        for b in bookings:
            if b.id in refused:
                holders[b.id] = Holder(
                    b.id,
                    hybrid_state(b),
                    b.start,
                    b.end,
                    recurring=b.recurrence is not None,
                    changed=b.modified_at.isoformat() if b.modified_at else "",
                )
                series |= refused[b.id]
        masters: list[str] = []
        listed: list[HybridBooking] = []
        by_id = {link.link_id: link for link in index.all} if series else {}
        for link_id in sorted(series):
            link = by_id.get(link_id)
            if link is None or link.state != "active" or not link.hybrid_id:
                continue
            if link.series_master_id:
                masters.append(link.series_master_id)
            booking = await self._hybrid.get_booking(link.hybrid_id)
            if booking is not None:
                listed.append(booking)
        return holders, masters, listed

    async def _unanswered_series(self, ctx: RoomContext, index: LinkIndex) -> list[str]:
        """The room's copies of series roomd made that no delta has shown yet. calendarView
        delta lists occurrences, not masters (docs/graph-behaviour.md 1.4): a series whose
        organizer cancelled or split off every occurrence before the room answered has a copy
        with none, so the room's delta never names it, and the Hybrid series would go on
        holding the room on every date. Looked up by iCalUId while roomd waits for the room's
        answer (as ``_room_answers`` does for the organizer's copy)."""
        horizon = self._clock() - AWAIT_ROOM_ANSWER
        found: list[str] = []
        for link in index.all:
            if (
                link.room_event_id
                or link.state != "active"
                or link.original_start is not None
                or not link.organizer_event_id
                or not link.ical_uid
                or read_shape(link.hybrid_fingerprint or link.outlook_fingerprint) is None
                or (link.created_at is not None and link.created_at < horizon)
            ):
                continue
            with contextlib.suppress(GraphError):
                for copy in await self._graph.find_by_ical_uid(
                    ctx.mailbox, link.ical_uid, ("id", "type")
                ):
                    if copy.get("type") == "seriesMaster" and isinstance(copy.get("id"), str):
                        found.append(copy["id"])
        return found

    @staticmethod
    def _unlisted(
        index: LinkIndex, listed: list[dict[str, Any]], start: datetime, end: datetime
    ) -> list[dict[str, Any]]:
        """A new baseline (a new window, an expired token) lists what the room holds now; what
        was deleted since the last round read is simply not there, with no ``@removed`` to say
        so. Each linked meeting of the window it does not list is read as a removal, which the
        shell checks with a GET as every removal (gone, cancelled, or moved out of the window).
        A linked series is named by its master (no ``id``: the one-off reader passes it by),
        so that it is read whole again (series.py), deleted or not."""
        seen = {change.get("id") for change in listed}
        out: list[dict[str, Any]] = []
        for link in index.all:
            recorded = link.outlook_fingerprint or link.hybrid_fingerprint
            old = read_fingerprint(recorded)
            if link.series_master_id and link.original_start is None:
                out.append({"seriesMasterId": link.series_master_id})
                continue
            if (
                not link.room_event_id
                or link.room_event_id in seen
                or link.original_start is not None
                or link.series_master_id
                or read_shape(recorded) is not None  # series are read whole, elsewhere
                or old is None
                or old[0].end <= start
                or old[0].start >= end
            ):
                continue
            out.append({"id": link.room_event_id, "@removed": {"reason": "deleted"}})
        return out

    async def _room_answers(
        self, ctx: RoomContext, index: LinkIndex, problems: list[str]
    ) -> list[OutlookItem]:
        """Meetings roomd organized whose room copy has not appeared: the organizer's copy says
        whether the room declined (a conflict, its booking window), or whether the organizer
        deleted or cancelled the meeting before the room answered, which no delta of the room
        would ever show, since the room then never has a copy.

        A *series* the room declines whole is not cancelled in Hybrid: Exchange's default room
        declines any series that runs past its booking window (Set-CalendarProcessing
        -BookingWindowInDays 180, -EnforceSchedulingHorizon $true; docs/graph-behaviour.md
        2.7), which a Hybrid "every Monday" booking always does. The member's booking stays and
        the room shows a problem naming the setting (``problems``)."""
        out: list[OutlookItem] = []
        horizon = self._clock() - AWAIT_ROOM_ANSWER
        for link in index.all:
            if (
                link.room_event_id
                or not link.organizer_event_id
                or not link.organizer_mailbox
                or not link.ical_uid
                or (link.created_at is not None and link.created_at < horizon)
            ):
                continue
            try:
                copy = await self._graph.get_event(link.organizer_mailbox, link.organizer_event_id)
            except NotFound:
                out.append(
                    OutlookItem(
                        "",
                        OutlookState.GONE,
                        ical_uid=link.ical_uid,
                        reason=ORGANIZER_GONE,
                    )
                )
                continue
            except GraphError:
                continue
            if copy.get("isCancelled"):
                out.append(
                    OutlookItem(
                        "",
                        OutlookState.GONE,
                        ical_uid=link.ical_uid,
                        reason="cancelled in Outlook by the organizer",
                    )
                )
                continue
            for attendee in copy.get("attendees") or []:
                address = (attendee.get("emailAddress") or {}).get("address", "")
                status = (attendee.get("status") or {}).get("response")
                if str(address).lower() == ctx.mailbox and status == "declined":
                    if read_shape(link.hybrid_fingerprint or link.outlook_fingerprint):
                        problems.append(
                            f"the room declined the whole series of Hybrid booking "
                            f"{link.hybrid_id}; it is kept in Hybrid. A series with no end or "
                            "past the room's booking window is declined by Exchange: raise "
                            "Set-CalendarProcessing -BookingWindowInDays or set "
                            "-EnforceSchedulingHorizon $false for this room"
                        )
                        break
                    out.append(
                        OutlookItem(
                            "",
                            OutlookState.GONE,
                            ical_uid=link.ical_uid,
                            reason="declined by the room in Outlook",
                        )
                    )
        return out

    async def _counterparts(
        self,
        ctx: RoomContext,
        window: Window,
        index: LinkIndex,
        outlook: list[OutlookItem],
        hybrid: list[HybridItem],
    ) -> None:
        """Look on the other side for what a new item may already have there, so that a lost
        link is rebuilt instead of a second booking being made (design.md invariant 1)."""
        known = {h.hybrid_id for h in hybrid}
        uids = {o.ical_uid for o in outlook if o.ical_uid}
        for o in list(outlook):
            if o.state is not OutlookState.LIVE or o.problem or not o.ical_uid:
                continue
            if index.for_outlook(o) is not None:
                continue
            found = await self._hybrid.find_by_reference(o.ical_uid, resource_id=ctx.hybrid_id)
            if found is not None and found.id not in known and found.parent is None:
                hybrid.append(await self._hybrid_reader.item(found, index))
                known.add(found.id)
        for h in list(hybrid):
            if not h.reference or h.reference in uids or index.for_hybrid(h) is not None:
                continue
            with contextlib.suppress(GraphError):
                copies = await self._graph.find_by_ical_uid(ctx.mailbox, h.reference)
                for copy in copies:
                    event_id = copy.get("id")
                    if isinstance(event_id, str):
                        outlook.extend(await self._outlook.items(ctx, window, [copy], index))
                        break


def _held(decided: Plan, op: Op) -> bool:
    """A cancellation the mass-delete breaker holds back until an operator's ``sync --force``."""
    return decided.breaker is not None and (op.op in CANCEL_OPS or cancels_one_occurrence(op))


def _idle(
    decided: Plan,
    flags: dict[str, str],
    baseline: bool,
    changes: list[dict[str, Any]],
    bookings: list[HybridBooking],
    answers: list[OutlookItem],
) -> bool:
    """A round with nothing to store but the feeds' positions: no change read on either side,
    nothing planned, no operator flag to clear, not a new baseline."""
    return not (
        baseline
        or changes
        or bookings
        or answers
        or decided.ops
        or decided.links
        or decided.audit
        or decided.problems
        or decided.breaker is not None
        or "force" in flags
        or "full" in flags
    )


def _account(
    stats: RoundStats,
    decided: Plan,
    first: DrainStats,
    second: DrainStats,
    room: str,
    baseline: bool,
) -> None:
    stats.conflicts = decided.conflicts
    stats.changes = dict(decided.changes)
    stats.extra.update(
        {
            "baseline": baseline,
            "planned": len(decided.ops),
            "written": first.done + second.done,
            "write_failures": first.failed + second.failed,
            "gave_up": first.dead + second.dead,
        }
    )
    if decided.breaker is not None:
        stats.extra["breaker"] = decided.breaker
    if decided.conflicts:
        observe.CONFLICTS.labels(room=room).inc(decided.conflicts)
    for drained in (first, second):
        for direction, lag in drained.lags:
            observe.PROPAGATION_LAG.labels(direction=direction).observe(lag)
