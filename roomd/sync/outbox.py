"""Carrying out planned writes: the outbox executor.

Each outbox row was stored in the same transaction as the feed position it was planned from
(design.md invariant 2); here it is applied remotely, outside any transaction, then its result
(ids learnt, the state written) goes into the link, the row is marked done and the audit says
what happened, all in one transaction, right after the write (:data:`RECORD_EVERY`). A crash
between the remote write and that record replays the row: every write is idempotent (creates by
``transactionId`` plus roomd's tag on Graph and by ``reference`` on Hybrid, cancels checked
first, updates and answers repeatable).

Rows of one booking run in the order they were planned; a row waiting for a retry holds back the
later rows of its booking only. A transient failure is retried with capped exponential backoff;
a refusal (4xx) or :data:`MAX_ATTEMPTS` failures make the row ``dead``: it stays for an operator
(``roomd status`` counts it) and the room's ``problem`` flag names it. Every attempt is counted
in ``roomd_writes_total{room, side, outcome}``: ``done``, ``retry`` (failed, tried again later)
or ``dead``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from roomd import observe
from roomd.graph import BadRequest, NotFound
from roomd.hybrid import DoubleBooking, HybridBooking, booking_payload
from roomd.hybrid.model import format_datetime, parse_datetime
from roomd.store import Link, OutboxItem, Store

from .model import HybridStatus, RoomContext, Slot, fingerprint
from .outbound_series import hybrid_shape
from .ports import GraphPort, HybridPort, transient
from .recurrence import graph_from_rrule, occurrences
from .series import (
    CANCELLED,
    NOT_EXPRESSIBLE,
    REGULAR,
    RESTORE_OP,
    occurrence_link_id,
    refused_fingerprint,
    shape_fingerprint,
)
from .zones import to_windows, zone_info

MAX_ATTEMPTS = 8
RECORD_EVERY = 1
"""Rows applied before their results are committed together. More than one saves synced commits
(50 took an initial sync from 141 to 188 bookings per roomd CPU second), but widens the window in
which a crash leaves a write unrecorded, and a replay is idempotent only against the other side
as roomd left it: a Hybrid booking roomd made and someone cancelled before the replay is not
found by the create's look-up (a new create must not be answered with a cancelled booking), so
the replay books again. tests/sync/test_crash.py found it (ROOMD_CRASH_SEED=3849367747) with 50.
Batching needs the replay to know its own earlier attempt first (e.g. rows marked as begun, in
one commit per drain, before their writes)."""
BACKOFF_BASE_S = 5.0
BACKOFF_CAP_S = 1800.0
_ALL = datetime.max.replace(year=9000).astimezone()  # "every open row", whatever its next_at

_SERIES_CREATE_TRIES = 4
"""A series Hybrid refuses (409) is tried again without the occurrences in the way; another
booking may take one meanwhile, so a few times."""
_CLASH_HORIZON = timedelta(days=3 * 366)
"""How far ahead the occurrences of a series without an end are checked for clashes."""

NO_MAILBOX_CODES = frozenset(
    {"ErrorInvalidUser", "MailboxNotEnabledForRESTAPI", "Request_ResourceNotFound"}
)


_PENDING = "This room needs approval in the booking system; it is held for you until then."


class Refused(Exception):
    """A write that cannot succeed as planned; the message is for the operator."""


@dataclass
class Outcome:
    """What applying one row learnt: the link to store and the audit lines."""

    link: Link | None = None
    audit: list[tuple[str, str, str]] = field(default_factory=list)  # side, action, reason
    links: list[Link] = field(default_factory=list)  # other links learnt (occurrences)


@dataclass
class _Applied:
    """A row applied remotely whose result waits for the drain's next commit."""

    item: OutboxItem
    link_id: str
    outcome: Outcome


@dataclass
class _Batch:
    """What one drain applied and has not committed yet, and its rows' links as they now stand
    (read once when the drain starts; a later row of the same booking must see what an earlier
    one learnt, e.g. a new id). The room's lock keeps every other writer of them out meanwhile
    (design.md invariant 8)."""

    applied: list[_Applied] = field(default_factory=list)
    links: dict[str, Link] = field(default_factory=dict)


@dataclass
class DrainStats:
    done: int = 0
    failed: int = 0
    dead: int = 0
    lags: list[tuple[str, float]] = field(default_factory=list)  # (direction, seconds)
    problems: list[str] = field(default_factory=list)


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** max(attempts - 1, 0)))


class Executor:
    def __init__(
        self, store: Store, graph: GraphPort, hybrid: HybridPort, clock: Callable[[], datetime]
    ) -> None:
        self._store = store
        self._graph = graph
        self._hybrid = hybrid
        self._clock = clock

    async def drain(self, room: RoomContext) -> DrainStats:
        """Each row in the order planned; a row that waits (or just failed) holds its booking's
        later rows back, but only on the side it writes when the later row is the booking's
        Hybrid cancellation: a write to Outlook waiting for its retry must not keep the room
        held in Hybrid while a new booking planned after it (a "this and following" series
        taking over the old one's dates) is refused there for it (409)."""
        stats = DrainStats()
        held: dict[str, set[str]] = {}  # booking -> the sides its waiting rows write
        now = self._clock()
        batch = _Batch()
        due = await self._store.due_outbox(room.mailbox, _ALL, limit=1000)
        if due:
            wanted = {str(item.payload.get("link_id", "")) for item in due}
            batch.links = await self._store.get_links(room.mailbox, wanted)
        try:
            for item in due:
                link_id = str(item.payload.get("link_id", ""))
                side = item.op.partition(".")[0]
                if link_id in held and (item.op != "hybrid.cancel" or side in held[link_id]):
                    continue
                if item.next_at > now:
                    held.setdefault(link_id, set()).add(side)  # later rows of this booking wait
                    continue
                if not await self._apply(room, item, stats, batch):
                    held.setdefault(link_id, set()).add(side)
                if len(batch.applied) >= RECORD_EVERY:
                    await self._record(room, batch)
        finally:  # also when the drain is cancelled: what went out is recorded
            await self._record(room, batch)
        return stats

    async def _record(self, room: RoomContext, batch: _Batch) -> None:
        """The results of the rows applied since the last commit, in one transaction: each
        row's links, its ``done`` mark and its audit lines (one trip to SQLite's thread)."""
        if not batch.applied:
            return
        async with self._store.write_staged(room.mailbox) as tx:
            for done in batch.applied:
                if done.outcome.link is not None:
                    await tx.upsert_link(done.outcome.link)
                for other in done.outcome.links:
                    await tx.upsert_link(other)
                await tx.mark_outbox(done.item.intent_id, state="done")
                for side, action, reason in done.outcome.audit:
                    await tx.audit(done.link_id, side, action, reason)
        batch.applied.clear()

    async def _apply(
        self, room: RoomContext, item: OutboxItem, stats: DrainStats, batch: _Batch
    ) -> bool:
        link_id = str(item.payload.get("link_id", ""))
        link = batch.links.get(link_id)
        op = _OPS.get(item.op)
        try:
            if op is None:
                raise Refused(f"unknown outbox operation {item.op!r}")
            if link is None:
                raise Refused(f"link {link_id} is gone")
            outcome = await op(self, room, item.payload, link)
        except Exception as exc:  # every failure is recorded against its row, never lost
            return await self._failed(room, item, link_id, exc, stats)
        batch.applied.append(_Applied(item, link_id, outcome))
        for learnt in (outcome.link, *outcome.links):
            if learnt is not None:
                batch.links[learnt.link_id] = learnt
        stats.done += 1
        _count(room, item, "done")
        direction = "outlook_to_hybrid" if item.op.startswith("hybrid.") else "hybrid_to_outlook"
        since = item.created_at
        changed = item.payload.get("changed_at")
        if isinstance(changed, str):
            with contextlib.suppress(ValueError):
                since = parse_datetime(changed, "changed_at")
        stats.lags.append((direction, max(0.0, (self._clock() - since).total_seconds())))
        return True

    async def _failed(
        self, room: RoomContext, item: OutboxItem, link_id: str, exc: Exception, stats: DrainStats
    ) -> bool:
        error = f"{type(exc).__name__}: {exc}".strip()
        attempts = item.attempts + 1
        dead = not transient(exc) or attempts >= MAX_ATTEMPTS
        async with self._store.write(room.mailbox) as tx:
            if dead:
                await tx.mark_outbox(item.intent_id, state="dead", error=error)
                await tx.audit(link_id, _side(item.op), "gave_up", f"{item.op}: {error}")
                await tx.set_flag("problem", f"{item.op} for {link_id} gave up: {error}")
            else:
                await tx.mark_outbox(
                    item.intent_id,
                    state="failed",
                    error=error,
                    next_at=self._clock() + backoff(attempts),
                )
        if dead:
            stats.dead += 1
            stats.problems.append(error)
        else:
            stats.failed += 1
        _count(room, item, "dead" if dead else "retry")
        return False

    # --- the operations ------------------------------------------------------------------------

    async def _hybrid_create(
        self, room: RoomContext, payload: dict[str, Any], link: Link
    ) -> Outcome:
        b = payload["booking"]
        exdates = {parse_datetime(x, "exdate") for x in b.get("exdates") or ()}
        refused: dict[datetime, str] = {}  # occurrences Hybrid refuses: what holds each
        for _ in range(_SERIES_CREATE_TRIES):
            body = booking_payload(
                resource_id=b["resource_id"],
                start=parse_datetime(b["start"], "start"),
                end=parse_datetime(b["end"], "end"),
                summary=b.get("summary"),
                description=b.get("description"),
                member=b.get("member"),
                members=b.get("members") or (),
                visitors=b.get("visitors") or (),
                rrule=b.get("rrule"),
                exdates=sorted(exdates | set(refused)),
            )
            try:
                booking = await self._hybrid.create_booking(body, reference=payload["reference"])
                break
            except DoubleBooking as exc:
                clashes = {}
                if b.get("rrule"):  # a series: leave out the occurrences in the way, try again
                    found = await self._clashes(room, b, exdates | set(refused))
                    clashes = {t: why for t, why in found.items() if t not in refused}
                if not clashes:
                    return await self._refused_double_booking(room, link, str(exc))
                refused.update(clashes)
        else:
            raise Refused(f"Hybrid kept refusing the series (409) after leaving out {len(refused)}")
        audit = [("hybrid", "created", f"booking {booking.id}" + _tentative(booking))]
        occurrence_links: list[Link] = []
        if booking.recurrence is not None:
            occurrence_links = await self._decline_refused(
                room, b, link, booking, exdates, refused, audit
            )
        if booking.tentative and link.room_event_id:
            # an approval room: the room answers "tentative" until Hybrid approves or rejects
            try:
                await self._graph.respond(
                    room.mailbox, link.room_event_id, "tentativelyAccept", comment=_PENDING
                )
                audit.append(("outlook", "room_tentativelyAccept", "awaiting approval in Hybrid"))
            except NotFound:  # the meeting went meanwhile: the booking is recorded all the same
                audit.append(("outlook", "room_tentativelyAccept", "the room's copy was gone"))
        written = _fingerprint(booking, room)
        if booking.recurrence is None:
            # what roomd wrote, not what the booking holds now: a create replayed after a crash
            # finds the booking the first attempt made, maybe changed in Hybrid since, and that
            # change must still read as one (and reach Outlook)
            written = fingerprint(
                Slot(
                    parse_datetime(b["start"], "start"),
                    parse_datetime(b["end"], "end"),
                    b.get("summary"),
                ),
                "tentative" if booking.tentative else "booked",
            )
        return Outcome(
            link=replace(link, hybrid_id=booking.id, hybrid_fingerprint=written),
            audit=audit,
            links=occurrence_links,
        )

    async def _decline_refused(
        self,
        room: RoomContext,
        b: dict[str, Any],
        link: Link,
        booking: HybridBooking,
        asked: set[datetime],
        refused: dict[datetime, str],
        audit: list[tuple[str, str, str]],
    ) -> list[Link]:
        """The occurrences Hybrid refused (409) were left out of the series as exdates: the
        room declines each on its own occurrence (event-decline.md; the organizer sees
        "declined" for that date only), saying what holds it. Their occurrence links record
        them cancelled on both sides, so no round plans them again. Repeatable: a create
        replayed after a crash finds the series with those exdates and declines what the room
        still holds."""
        assert booking.recurrence is not None
        left_out = sorted({x.replace(microsecond=0) for x in booking.recurrence.exdates} - asked)
        if not left_out:
            return []
        missing = [t for t in left_out if t not in refused]
        if missing:  # replayed: what holds them, as it would have been said
            refused = {**await self._clashes(room, b, asked, skip=booking.id), **refused}
        links = []
        shifted = {parse_datetime(k, "shifts"): v for k, v in (b.get("shifts") or {}).items()}
        for at in left_out:
            why = refused.get(at, "the room is already booked in the booking system")
            # the occurrence as Outlook has it (a series in another zone than the room's)
            original = parse_datetime(shifted[at], "shifts") if at in shifted else at
            when = f"{original:%Y-%m-%d %H:%M} UTC"
            comment = None
            if original != at:
                why = _zone_refusal(room, at, why)
                comment = f"Declined: {why}."
                observe.CHANGES.labels(
                    room=room.mailbox, direction="outlook_to_hybrid", outcome=NOT_EXPRESSIBLE
                ).inc()
            declined = await self._room_declines(room, link, original, why, comment=comment)
            audit.append(
                (
                    "outlook",
                    "room_decline" if declined else "room_decline_skipped",
                    f"occurrence {when}: Hybrid refused it (409), {why}; left out of the series",
                )
            )
            # what holds it, so that the round whose feed shows it gone gives it back (a week
            # a zone shift moved in Hybrid is not: its exdate is at another time than its own)
            holder = _holder_of(why) if original == at else None
            links.append(_left_out(link, original, booking.id, holder=holder))
        return links

    async def _room_declines(
        self,
        room: RoomContext,
        link: Link,
        original: datetime,
        why: str,
        *,
        comment: str | None = None,
    ) -> bool:
        """The room declines one occurrence Hybrid refused, naming what holds it (or saying
        ``comment``); False when the room does not hold it (the meeting may have gone
        meanwhile: what roomd wrote in Hybrid is recorded all the same)."""
        with contextlib.suppress(NotFound):
            target = None
            if link.room_event_id:
                target = await self._occurrence(room.mailbox, link.room_event_id, original)
            if target is not None:
                await self._graph.respond(
                    room.mailbox,
                    str(target["id"]),
                    "decline",
                    comment=comment
                    or "Declined: the room is already booked at this time in the booking "
                    f"system ({why})",
                )
                return True
        return False

    async def _clashes(
        self,
        room: RoomContext,
        b: dict[str, Any],
        exdates: set[datetime],
        *,
        skip: str | None = None,
    ) -> dict[datetime, str]:
        """The occurrences of the series ``b`` (a create's booking) that another live booking
        of the room holds, each with what holds it, as Hybrid checks a double booking
        (docs/hybrid-api.md: every occurrence of a series, less exdates and occurrences an
        exception replaces, holds the room; back to back is fine). Read from the room's
        bookings over the series' span, so it works whatever a 409's body carries."""
        start, end = parse_datetime(b["start"], "start"), parse_datetime(b["end"], "end")
        length = end - start
        mine = occurrences(
            str(b["rrule"]),
            dtstart_local=start,
            zone=room.zone,
            exdates=exdates,
            between=(start, start + _CLASH_HORIZON),
        )
        if not mine:
            return {}
        lo, hi = mine[0], mine[-1] + length
        theirs: list[tuple[datetime, datetime, str]] = []
        for other in await self._hybrid.bookings_between(lo, hi, resource_id=room.hybrid_id):
            if other.canceled or (skip is not None and skip in (other.id, other.parent)):
                continue
            if other.recurrence is None:  # a one-off, or an exception child at its own time
                theirs.append((other.start, other.end, other.id))
                continue
            replaced = [
                c.original_start
                for c in await self._hybrid.children(other.id)
                if c.original_start is not None
            ]
            span = other.end - other.start
            with contextlib.suppress(ValueError):
                theirs += [
                    (t, t + span, other.id)
                    for t in occurrences(
                        other.recurrence.rrule,
                        dtstart_local=other.start,
                        zone=other.timezone or room.zone,
                        exdates=[*other.recurrence.exdates, *replaced],
                        between=(lo - span, hi),
                    )
                ]
        found: dict[datetime, str] = {}
        for t in mine:
            for s, e, booking_id in sorted(theirs):
                if s < t + length and t < e:
                    found[t] = _holding(booking_id, s, e)
                    break
        return found

    async def _refused_double_booking(self, room: RoomContext, link: Link, why: str) -> Outcome:
        """Hybrid refused the booking (409): the room declines the meeting, saying why."""
        comment = f"Declined: the room is already booked at this time in the booking system ({why})"
        if link.room_event_id:
            await self._graph.respond(room.mailbox, link.room_event_id, "decline", comment=comment)
        return Outcome(
            link=replace(link, state="canceled"),
            audit=[("outlook", "room_decline", f"Hybrid refused the booking (409): {why}")],
        )

    async def _hybrid_update(
        self, room: RoomContext, payload: dict[str, Any], link: Link
    ) -> Outcome:
        if not link.hybrid_id:
            raise Refused("the Hybrid booking was never created")
        changes = dict(payload["changes"])
        body: dict[str, Any] = {}
        for key in ("start", "end"):
            if key in changes:
                body[key] = {"dateTime": changes[key]}
        if "summary" in changes:
            body["summary"] = changes["summary"]
        if "rrule" in changes:  # a series: its new rule keeps the exdates it has
            current = await self._hybrid.get_booking(link.hybrid_id)
            exdates = current.recurrence.exdates if current and current.recurrence else ()
            # less those Outlook's reschedule dropped (series.py ``_dropped_exdates``: it gave
            # those occurrences back), and with those the plan asks for (Outlook's cancelled
            # occurrences at the new times); repeatable, as the result depends on neither order
            lift = {parse_datetime(x, "exdate") for x in changes.get("lift") or ()}
            kept = {x.replace(microsecond=0) for x in exdates} - lift
            wanted = {parse_datetime(x, "exdate") for x in changes.get("exdates") or ()}
            body["recurrence"] = {
                "rrule": changes["rrule"],
                "exdates": [format_datetime(x) for x in sorted(kept | wanted)],
            }
        booking = await self._hybrid.patch_booking(link.hybrid_id, body)
        return Outcome(
            link=replace(link, hybrid_fingerprint=_fingerprint(booking, room)),
            audit=[("hybrid", "updated", f"booking {booking.id}")],
        )

    async def _hybrid_cancel(
        self, room: RoomContext, payload: dict[str, Any], link: Link
    ) -> Outcome:
        if not link.hybrid_id:
            return Outcome(audit=[("hybrid", "cancel_skipped", "never created in Hybrid")])
        booking = await self._hybrid.cancel_booking(link.hybrid_id)
        if booking is None:
            return Outcome(audit=[("hybrid", "already_gone", f"booking {link.hybrid_id}")])
        return Outcome(
            audit=[("hybrid", "canceled", f"booking {booking.id}: {payload.get('reason', '')}")]
        )

    async def _graph_create(
        self, room: RoomContext, payload: dict[str, Any], link: Link
    ) -> Outcome:
        organizer = str(payload["organizer"])
        event = dict(payload["event"])
        key = str(payload["idempotency_key"])
        if payload.get("series"):
            event.update(_series_times(payload["series"], event))
        try:
            created = await self._graph.create_event(organizer, event, idempotency_key=key)
        except (NotFound, BadRequest) as exc:
            if exc.code not in NO_MAILBOX_CODES and not isinstance(exc, NotFound):
                raise
            fallback = payload.get("fallback_organizer")
            if not fallback:
                raise Refused(
                    f"{organizer} has no mailbox in the tenant and no graph.service_mailbox is "
                    "configured: the meeting was not created"
                ) from None
            attendees = list(event.get("attendees") or [])
            attendees.append({"emailAddress": {"address": organizer}, "type": "required"})
            event["attendees"] = attendees
            organizer = str(fallback)
            created = await self._graph.create_event(organizer, event, idempotency_key=key)
        event_id = created.get("id")
        ical_uid = created.get("iCalUId")
        if not isinstance(event_id, str) or not isinstance(ical_uid, str):
            raise Refused("Graph's answer to the create has no id or iCalUId")
        return Outcome(
            link=replace(
                link,
                organizer_mailbox=organizer,
                organizer_event_id=event_id,
                ical_uid=ical_uid,
            ),
            audit=[("outlook", "created", f"meeting organized by {organizer}")],
        )

    async def _graph_update(
        self, room: RoomContext, payload: dict[str, Any], link: Link
    ) -> Outcome:
        if not link.organizer_mailbox or not link.organizer_event_id:
            raise Refused("the organizer's copy of the meeting is unknown: cannot update it")
        changes = dict(payload["changes"])
        if payload.get("series"):
            changes.update(_series_times(payload["series"], changes))
        await self._graph.update_event(link.organizer_mailbox, link.organizer_event_id, changes)
        return Outcome(audit=[("outlook", "updated", f"organizer {link.organizer_mailbox}")])

    async def _hybrid_occurrence(
        self, room: RoomContext, payload: dict[str, Any], link: Link
    ) -> Outcome:
        """Move or cancel one occurrence of a Hybrid series: its exception child when it has
        one (or gets one), an exdate for a cancelled occurrence without one."""
        if not link.hybrid_id:
            raise Refused("the Hybrid series was never created")
        if payload.get("regular"):
            return await self._lift_exdate(room, payload, link)
        original = parse_datetime(payload["original_start"], "original_start")
        child = next(
            (
                c
                for c in await self._hybrid.children(link.hybrid_id)
                if c.original_start is not None and c.original_start == original
            ),
            None,
        )
        when = f"{original:%Y-%m-%d %H:%M} UTC"
        if payload.get("cancel"):
            if child is not None:
                await self._hybrid.cancel_booking(child.id)
                return Outcome(audit=[("hybrid", "occurrence_canceled", when)])
            if payload.get("stale"):  # only an exception child made for an earlier time
                return Outcome(audit=[("hybrid", "occurrence_gone", f"{when}: no exception")])
            series = await self._hybrid.get_booking(link.hybrid_id)
            if series is None or series.recurrence is None:
                raise Refused(f"series {link.hybrid_id} is gone")
            exdates = sorted({*series.recurrence.exdates, original})
            await self._hybrid.patch_booking(
                link.hybrid_id,
                {
                    "recurrence": {
                        "rrule": series.recurrence.rrule,
                        "exdates": [format_datetime(x) for x in exdates],
                    }
                },
            )
            return Outcome(audit=[("hybrid", "occurrence_exdate", when)])
        start = parse_datetime(payload["start"], "start")
        end = parse_datetime(payload["end"], "end")
        times: dict[str, Any] = {
            "start": {"dateTime": format_datetime(start)},
            "end": {"dateTime": format_datetime(end)},
        }
        if payload.get("title") is not None:  # the occurrence's own title (a retitle)
            times["summary"] = payload["title"]
        if child is not None:
            try:
                await self._hybrid.patch_booking(child.id, times)
            except DoubleBooking:
                await self._hybrid.cancel_booking(child.id)
                return await self._move_refused(room, link, payload, start, end)
            return Outcome(audit=[("hybrid", "occurrence_moved", when)])
        series = await self._hybrid.get_booking(link.hybrid_id)
        if series is None:
            raise Refused(f"series {link.hybrid_id} is gone")
        try:
            return await self._new_exception(
                series, link, original, start, end, title=payload.get("title")
            )
        except DoubleBooking:
            # the occurrence is left out (an exdate), as Hybrid refused it in a new series
            current = await self._hybrid.get_booking(link.hybrid_id)
            if current is not None and current.recurrence is not None:
                left_out = {x.replace(microsecond=0) for x in current.recurrence.exdates}
                if original not in left_out:
                    await self._hybrid.patch_booking(
                        link.hybrid_id,
                        {
                            "recurrence": {
                                "rrule": current.recurrence.rrule,
                                "exdates": [format_datetime(x) for x in sorted(left_out)]
                                + [format_datetime(original)],
                            }
                        },
                    )
            return await self._move_refused(room, link, payload, start, end)

    async def _lift_exdate(self, room: RoomContext, payload: dict[str, Any], link: Link) -> Outcome:
        """Outlook holds again an occurrence Hybrid has as an exdate (an organizer's reschedule
        drops the series' cancelled occurrences; series.py ``_lift_exdate``): the exdate goes.
        A 409, the slot taken meanwhile: the room declines the occurrence naming what holds
        it, and it is left out as any occurrence Hybrid refuses, with its holder (so it comes
        back when that frees). Repeatable: an exdate already lifted is not written again."""
        original = parse_datetime(payload["original_start"], "original_start")
        ours = parse_datetime(payload.get("series_start") or payload["original_start"], "start")
        end = parse_datetime(payload["end"], "end")
        when = f"{ours:%Y-%m-%d %H:%M} UTC"
        try:
            if not await self._exdate(link, original, present=False):
                return Outcome(audit=[("hybrid", "occurrence_gone", f"{when}: series gone")])
        except DoubleBooking:
            why = await self._holding_now(room, link, original, end)
            declined = await self._room_declines(room, link, ours, why)
            return Outcome(
                links=[_left_out(link, ours, link.hybrid_id, holder=_holder_of(why))],
                audit=[
                    (
                        "outlook",
                        "room_decline" if declined else "room_decline_skipped",
                        f"occurrence {when} is held again in Outlook, but Hybrid refused it "
                        f"(409), {why}; left out of the series",
                    )
                ],
            )
        return Outcome(audit=[("hybrid", "occurrence_exdate_lifted", when)])

    async def _move_refused(
        self, room: RoomContext, link: Link, payload: dict[str, Any], start: datetime, end: datetime
    ) -> Outcome:
        """Hybrid refused (409) to hold one occurrence where Outlook moved it, or to restore its
        slot first (lifting its exdate): as for an occurrence Hybrid refuses in a new series
        (scenario 9), the room declines that occurrence in Outlook naming what holds the slot,
        Hybrid leaves it out, and its occurrence link records it cancelled on both sides, so
        no round plans it again and no write is given up. ``series_start``: the occurrence as
        Outlook has it, when Hybrid's original start differs (a series in another zone)."""
        original = parse_datetime(payload["original_start"], "original_start")
        ours = parse_datetime(payload.get("series_start") or payload["original_start"], "start")
        why = "the room is already booked in the booking system"
        slots = ((start, end), (original, original + (end - start)))  # moved to, or restored
        lo, hi = min(start, original), max(end, original + (end - start))
        for other in await self._hybrid.bookings_between(lo, hi, resource_id=room.hybrid_id):
            if (
                not other.canceled
                and link.hybrid_id not in (other.id, other.parent)
                and any(other.start < e and s < other.end for s, e in slots)
            ):
                why = f"booking {other.id}, {other.start:%Y-%m-%d %H:%M}-{other.end:%H:%M} UTC"
                break
        when = f"{ours:%Y-%m-%d %H:%M} UTC"
        comment = None
        if ours != original and start == ours:  # a zone-shifted week's child (series.zone_shifts)
            why = _zone_refusal(room, original, why)
            comment = f"Declined: {why}."
        declined = await self._room_declines(room, link, ours, why, comment=comment)
        if declined and comment is not None:
            observe.CHANGES.labels(
                room=room.mailbox, direction="outlook_to_hybrid", outcome=NOT_EXPRESSIBLE
            ).inc()
        return Outcome(
            links=[_left_out(link, ours, link.hybrid_id)],
            audit=[
                (
                    "outlook",
                    "room_decline" if declined else "room_decline_skipped",
                    f"occurrence {when} moved to {start:%Y-%m-%d %H:%M} UTC: Hybrid refused it "
                    f"(409), {why}; left out of the series",
                )
            ],
        )

    async def _hybrid_restore(
        self, room: RoomContext, payload: dict[str, Any], link: Link
    ) -> Outcome:
        """An occurrence Hybrid refused whose slot freed (series.py ``_plan_restores``) goes
        back to the organizer, while they still hold it at that time: its exdate is lifted in
        Hybrid, then the room is asked again on the organizer's occurrence. A declined
        occurrence has left the room's calendar (docs/graph-behaviour.md 2.6: 404 afterwards;
        event.md: /instances lists no cancelled occurrence), so there is nothing to accept as
        the room, and answering for the room would bypass its booking assistant (the
        room-mailboxes article: rooms are only attendees). The room is re-invited instead:
        removed from the occurrence's attendees and added back, two updates that go to that
        attendee only (event-update.md: an update of only the attendees "sends a meeting update
        to only the attendees that have changed"), and its booking assistant accepts the
        occurrence if the room is free in Exchange ("free = accept; busy = decline",
        Set-CalendarProcessing AutomateProcessing AutoAccept; user-post-events.md). A 409 on
        the exdate: the slot is taken anew, the occurrence stays declined, recorded with what
        holds it now (its refusal is audited once, when it happened). Repeatable: a replay
        after a crash lifts nothing twice and asks the room only while it does not hold the
        occurrence; one that finds the organizer's occurrence gone puts the exdate back."""
        original = parse_datetime(payload["original_start"], "original_start")
        end = parse_datetime(payload["end"], "end")
        when = f"{original:%Y-%m-%d %H:%M} UTC"
        freed = f"booking {payload.get('holder')}, which held its slot, was {payload.get('freed')}"
        if not link.hybrid_id or not link.organizer_mailbox or not link.organizer_event_id:
            return Outcome(
                audit=[("hybrid", "restore_skipped", f"{when}: the series is not on both sides")]
            )
        target = await self._occurrence(link.organizer_mailbox, link.organizer_event_id, original)
        held_at = graph_start(target) if target is not None else None
        if target is None or held_at != original:
            gone = "cancelled it" if target is None else f"moved it to {held_at:%Y-%m-%d %H:%M} UTC"
            await self._exdate(link, original, present=True)
            return Outcome(
                links=[_left_out(link, original, link.hybrid_id)],
                audit=[
                    (
                        "hybrid",
                        "restore_skipped",
                        f"occurrence {when}: {freed}, but the organizer {gone}: it stays out of "
                        "the series",
                    )
                ],
            )
        try:
            if not await self._exdate(link, original, present=False):
                return Outcome(
                    audit=[("hybrid", "restore_skipped", f"{when}: the Hybrid series is gone")]
                )
        except DoubleBooking:
            why = await self._holding_now(room, link, original, end)
            holder = _holder_of(why)
            return Outcome(links=[_left_out(link, original, link.hybrid_id, holder=holder)])
        held = link.room_event_id is not None and (
            await self._occurrence(room.mailbox, link.room_event_id, original) is not None
        )
        await self._invite_room_again(room, link.organizer_mailbox, target, held=held)
        restored = replace(
            _left_out(link, original, link.hybrid_id),
            hybrid_fingerprint=REGULAR,  # the room's answer comes back through its delta
        )
        return Outcome(
            links=[restored],
            audit=[
                ("hybrid", "occurrence_restored", f"{when}: exdate lifted"),
                (
                    "outlook",
                    "restored",
                    f"occurrence {when}: {freed}; back in the series in Hybrid, and the room is "
                    "asked to hold it again for the organizer",
                ),
            ],
        )

    async def _exdate(self, link: Link, original: datetime, *, present: bool) -> bool:
        """Make ``original`` an exdate of the Hybrid series (``present``) or not; False when
        the series is gone. Writes only what differs."""
        assert link.hybrid_id is not None
        series = await self._hybrid.get_booking(link.hybrid_id)
        if series is None or series.recurrence is None or series.canceled:
            return False
        exdates = {x.replace(microsecond=0) for x in series.recurrence.exdates}
        if (original in exdates) == present:
            return True
        wanted = exdates | {original} if present else exdates - {original}
        await self._hybrid.patch_booking(
            link.hybrid_id,
            {
                "recurrence": {
                    "rrule": series.recurrence.rrule,
                    "exdates": [format_datetime(x) for x in sorted(wanted)],
                }
            },
        )
        return True

    async def _holding_now(
        self, room: RoomContext, link: Link, start: datetime, end: datetime
    ) -> str:
        """What holds [start, end) in the room in Hybrid now (a ``_holding`` text)."""
        for other in await self._hybrid.bookings_between(start, end, resource_id=room.hybrid_id):
            if (
                not other.canceled
                and link.hybrid_id not in (other.id, other.parent)
                and other.start < end
                and start < other.end
            ):
                return _holding(other.id, other.start, other.end)
        return "the room is already booked in the booking system"

    async def _invite_room_again(
        self, room: RoomContext, organizer: str, occurrence: dict[str, Any], *, held: bool
    ) -> None:
        """The room removed from the organizer's occurrence and added back (see
        ``_hybrid_restore``): each update goes to the room only. A replay after a crash between
        the two adds it back only; nothing is written when the room holds the occurrence and
        is its attendee."""
        attendees = [a for a in occurrence.get("attendees") or [] if isinstance(a, dict)]
        others = [
            {"emailAddress": a.get("emailAddress"), "type": a.get("type") or "required"}
            for a in attendees
            if str((a.get("emailAddress") or {}).get("address", "")).lower() != room.mailbox
        ]
        invited = len(others) < len(attendees)
        if held and invited:
            return
        me = {"emailAddress": {"address": room.mailbox, "name": room.name}, "type": "resource"}
        event_id = str(occurrence["id"])
        if invited:
            await self._graph.update_event(organizer, event_id, {"attendees": others})
        await self._graph.update_event(organizer, event_id, {"attendees": [*others, me]})

    async def _new_exception(
        self,
        series: HybridBooking,
        link: Link,
        original: datetime,
        start: datetime,
        end: datetime,
        *,
        title: str | None = None,
    ) -> Outcome:
        """An exception child for one occurrence that has none yet: the series' title unless
        the occurrence has its own (``title``)."""
        assert link.hybrid_id is not None
        when = f"{original:%Y-%m-%d %H:%M} UTC"
        held = series.recurrence.exdates if series.recurrence is not None else ()
        if original in {x.replace(microsecond=0) for x in held}:
            # cancelled in Hybrid by an exdate, moved in Outlook, and Outlook's move wins: an
            # exdate is no occurrence, so it has no exception until the exdate goes (422)
            assert series.recurrence is not None
            await self._hybrid.patch_booking(
                link.hybrid_id,
                {
                    "recurrence": {
                        "rrule": series.recurrence.rrule,
                        "exdates": [
                            format_datetime(x) for x in held if x.replace(microsecond=0) != original
                        ],
                    }
                },
            )
        body = booking_payload(
            resource_id=series.resource_id,
            start=start,
            end=end,
            summary=title if title is not None else series.summary,
            member=series.member,
        )
        body["parent"] = link.hybrid_id
        body["originalStart"] = format_datetime(original)
        await self._hybrid.create_booking(body, reference=series.reference or link.link_id)
        return Outcome(audit=[("hybrid", "occurrence_moved", when)])

    async def _graph_occurrence(
        self, room: RoomContext, payload: dict[str, Any], link: Link
    ) -> Outcome:
        """Move or cancel one occurrence of the organizer's series (event-update.md on an
        occurrence id makes it an exception; event-cancel.md cancels just that one). A released
        occurrence (a no-show) is declined as the room on the room's occurrence instead
        (event-decline.md): the organizer and the guests keep it."""
        original = parse_datetime(payload["original_start"], "original_start")
        when = f"{original:%Y-%m-%d %H:%M} UTC"
        if payload.get("release"):
            if not link.room_event_id:
                return Outcome(audit=[("outlook", "room_decline_skipped", f"{when}: no copy")])
            target = await self._occurrence(room.mailbox, link.room_event_id, original)
            if target is None:
                return Outcome(audit=[("outlook", "occurrence_gone", f"{when}: not in the room")])
            await self._graph.respond(
                room.mailbox,
                str(target["id"]),
                "decline",
                comment=str(
                    payload.get("comment")
                    or "Nobody checked in: the room was released for this occurrence."
                ),
            )
            why = "cancelled in Hybrid" if payload.get("comment") else "no-show"
            return Outcome(audit=[("outlook", "room_decline", f"occurrence {when} ({why})")])
        if not link.organizer_mailbox or not link.organizer_event_id:
            raise Refused("the organizer's series is unknown: cannot change an occurrence")
        target = await self._occurrence(link.organizer_mailbox, link.organizer_event_id, original)
        if target is None and not payload.get("cancel") and link.hybrid_id:
            # Hybrid's move or retitle won (hybrid_wins) over the organizer cancelling that
            # occurrence, but Graph cannot bring a cancelled occurrence back: Outlook's cancel
            # is final, as a canceled exception is in Hybrid (series.py _decline_cancelled),
            # so the occurrence goes in Hybrid too, recorded cancelled on both sides
            done = await self._hybrid_occurrence(
                room,
                {
                    "link_id": payload["link_id"],
                    "original_start": payload["original_start"],
                    "cancel": True,
                },
                link,
            )
            return Outcome(
                links=[_left_out(link, original, link.hybrid_id)],
                audit=[
                    *done.audit,
                    (
                        "hybrid",
                        "occurrence_final",
                        f"{when}: cancelled in Outlook, which cannot restore it: cancelled "
                        "here too",
                    ),
                ],
            )
        if target is None:
            return Outcome(audit=[("outlook", "occurrence_gone", f"{when}: not in the series")])
        if payload.get("cancel"):
            result = await self._graph.cancel_event(
                link.organizer_mailbox, str(target["id"]), comment="Cancelled in Hybrid"
            )
            return Outcome(audit=[("outlook", f"occurrence_{result}", when)])
        changes: dict[str, Any] = {
            "start": {"dateTime": payload["start"], "timeZone": "UTC"},
            "end": {"dateTime": payload["end"], "timeZone": "UTC"},
        }
        if payload.get("title") is not None:  # the occurrence's own title (a retitle)
            changes["subject"] = payload["title"]
        await self._graph.update_event(link.organizer_mailbox, str(target["id"]), changes)
        return Outcome(audit=[("outlook", "occurrence_moved", when)])

    async def _occurrence(
        self, mailbox: str, master_id: str, original: datetime
    ) -> dict[str, Any] | None:
        """The occurrence (or exception) of ``mailbox``'s series whose original start is
        ``original``, from /instances around it; None when the series does not hold it."""
        found = await self._graph.instances(
            mailbox, master_id, original - timedelta(days=1), original + timedelta(days=2)
        )
        for inst in found:
            stamp = inst.get("originalStart") or (inst.get("start") or {}).get("dateTime")
            with contextlib.suppress(ValueError):
                if parse_datetime(stamp, "originalStart").replace(microsecond=0) == original:
                    return inst
        return None

    async def _graph_cancel(
        self, room: RoomContext, payload: dict[str, Any], link: Link
    ) -> Outcome:
        if link.organizer_mailbox and link.organizer_event_id:
            result = await self._graph.cancel_event(
                link.organizer_mailbox,
                link.organizer_event_id,
                comment=str(payload.get("comment", "")),
            )
            return Outcome(audit=[("outlook", result, f"organizer {link.organizer_mailbox}")])
        if link.room_event_id:  # the organizer is out of reach: at least free the room
            await self._graph.respond(
                room.mailbox,
                link.room_event_id,
                "decline",
                comment=str(payload.get("comment", "")),
            )
            return Outcome(audit=[("outlook", "room_decline", "organizer's copy unknown")])
        return Outcome(audit=[("outlook", "cancel_skipped", "no meeting was ever created")])

    async def _graph_respond(
        self, room: RoomContext, payload: dict[str, Any], link: Link
    ) -> Outcome:
        response = str(payload["response"])
        if not link.room_event_id:
            return Outcome(
                audit=[("outlook", f"room_{response}_skipped", "the room has no copy (yet)")]
            )
        try:
            await self._graph.respond(
                room.mailbox, link.room_event_id, response, comment=str(payload.get("comment", ""))
            )
        except NotFound:
            return Outcome(audit=[("outlook", f"room_{response}", "the room's copy was gone")])
        return Outcome(audit=[("outlook", f"room_{response}", "answered as the room")])


_OPS: dict[str, Callable[[Executor, RoomContext, dict[str, Any], Link], Any]] = {
    "hybrid.create": Executor._hybrid_create,
    "hybrid.update": Executor._hybrid_update,
    "hybrid.cancel": Executor._hybrid_cancel,
    "graph.create": Executor._graph_create,
    "graph.update": Executor._graph_update,
    "graph.cancel": Executor._graph_cancel,
    "graph.respond": Executor._graph_respond,
    "hybrid.occurrence": Executor._hybrid_occurrence,
    "graph.occurrence": Executor._graph_occurrence,
    RESTORE_OP: Executor._hybrid_restore,
}


def _series_times(series: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
    """A series' start, end and recurrence as Graph wants them: on the wall clock of the
    series' zone (its startDate must be the date of the start, docs/graph-behaviour.md 2.7)."""
    zone = str(series["zone"])
    tz = zone_info(zone)
    start = parse_datetime(event["start"]["dateTime"], "start").astimezone(tz)
    end = parse_datetime(event["end"]["dateTime"], "end").astimezone(tz)
    name = _graph_zone(zone)
    return {
        "start": {"dateTime": start.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": name},
        "end": {"dateTime": end.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": name},
        "recurrence": graph_from_rrule(str(series["rrule"]), dtstart_local=start, zone=name),
    }


def _graph_zone(zone: str) -> str:
    """Windows names are what every Graph endpoint takes; IANA where none exists."""
    try:
        return to_windows(zone)
    except ValueError:
        return zone


def _zone_refusal(room: RoomContext, at: datetime, why: str) -> str:
    """Why a week of a series in another zone than the room's cannot be held (issue 8, 7):
    Hybrid evaluates the rule in the room's zone, which puts that week's occurrence at ``at``,
    an hour off the series' own time in a week only one zone has changed its clocks; the
    series' time is held by an exception of that occurrence, and Hybrid takes an exception
    only of an occurrence the series has (docs/hybrid-api.md), so the occurrence at ``at``
    must be free even when the series' own time is."""
    local = at.astimezone(zone_info(room.zone))
    return (
        f"the booking system evaluates the series in the room's time zone ({room.zone}), where "
        f"this week's occurrence falls at {local:%H:%M} ({at:%Y-%m-%d %H:%M} UTC), held by "
        f"{why}; it holds the series' own time in such a week only in place of that occurrence"
    )


def _left_out(
    series: Link, original: datetime, hybrid_id: str | None, *, holder: str | None = None
) -> Link:
    """The occurrence link of an occurrence Hybrid refused: cancelled on both sides (left out
    of the Hybrid series, declined by the room), so no round plans it again; ``holder``, the
    booking that holds its slot (``series.refused_fingerprint``), when it may be given back."""
    return Link(
        link_id=occurrence_link_id(series.link_id, original),
        original_start=original,
        hybrid_parent_id=hybrid_id,
        series_master_id=series.series_master_id,
        ical_uid=series.ical_uid,
        outlook_fingerprint=CANCELLED,
        hybrid_fingerprint=refused_fingerprint(holder) if holder else CANCELLED,
    )


def _holding(booking_id: str, start: datetime, end: datetime) -> str:
    """What holds a slot, in the words of the room's decline and the audit."""
    return f"booking {booking_id}, {start:%Y-%m-%d %H:%M}-{end:%H:%M} UTC"


def _holder_of(why: str) -> str | None:
    """The booking id in a ``_holding`` text; None for any other reason."""
    if not why.startswith("booking "):
        return None
    return why.removeprefix("booking ").partition(",")[0] or None


def graph_start(event: dict[str, Any]) -> datetime | None:
    """An event's start as UTC (roomd asks Graph for UTC), None when unreadable."""
    stamp = (event.get("start") or {}).get("dateTime")
    try:
        return parse_datetime(stamp, "start").replace(microsecond=0)
    except (ValueError, TypeError):
        return None


def _side(op: str) -> str:
    return "hybrid" if op.startswith("hybrid.") else "outlook"


def _count(room: RoomContext, item: OutboxItem, outcome: str) -> None:
    observe.WRITES.labels(room=room.mailbox, side=_side(item.op), outcome=outcome).inc()


def _fingerprint(booking: HybridBooking, room: RoomContext) -> str:
    """What the link records of the booking as written: a series by its shape."""
    status: HybridStatus = "tentative" if booking.tentative else "booked"
    if booking.recurrence is not None:
        return shape_fingerprint(hybrid_shape(booking, room.zone), status)
    return fingerprint(
        Slot(booking.start, booking.end, booking.summary),
        "tentative" if booking.tentative else "booked",
    )


def _tentative(booking: HybridBooking) -> str:
    return " (pending approval)" if booking.tentative else ""
