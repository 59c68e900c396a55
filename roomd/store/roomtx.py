"""One write transaction, bound to one room.

A :class:`RoomTx` only exists inside ``Store.write(room)``: the store has already issued
``BEGIN IMMEDIATE`` and will commit when the ``async with`` block ends normally, or roll back when
it raises. Every method takes the room from the transaction itself, never from an argument, so a
transaction cannot touch another room's rows (design.md section 8: one room per transaction keeps a
later move to per-room leases small). Network calls do not belong inside the block (design.md
section 3, invariant 2): plan writes into the outbox here, make them after the commit.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import aiosqlite

from . import queries
from .errors import LinkConflict, StoreError, UnknownIntent
from .rows import (
    LINK_STATES,
    OUTBOX_STATES,
    DeltaState,
    HybridCursor,
    Link,
    LinkState,
    OutboxItem,
    OutboxState,
)
from .times import opt_to_db, to_db

_ENQUEUE = (
    "INSERT INTO outbox (room, intent_id, op, payload, state, attempts, next_at, "
    "created_at, updated_at) VALUES (?, ?, ?, ?, 'pending', 0, ?, ?, ?) "
    "ON CONFLICT (room, intent_id) DO NOTHING"
)
_UPSERT_LINK = (
    f"INSERT INTO links (room, {queries.LINK_COLUMNS}) VALUES "
    f"({', '.join('?' * (1 + len(queries.LINK_COLUMNS.split(', '))))}) "
    "ON CONFLICT (room, link_id) DO UPDATE SET "
    + ", ".join(
        f"{column} = excluded.{column}"
        for column in queries.LINK_COLUMNS.split(", ")
        if column not in ("link_id", "created_at")
    )
)
_MARK = (
    "UPDATE outbox SET state = ?, attempts = attempts + ?, "
    "next_at = CASE WHEN ? IN ('pending', 'failed') THEN ? ELSE next_at END, "
    "last_error = CASE WHEN ? = 'done' THEN NULL ELSE COALESCE(?, last_error) END, "
    "updated_at = ? WHERE room = ? AND intent_id = ?"
)
_AUDIT = "INSERT INTO audit (at, room, booking, side, action, reason) VALUES (?, ?, ?, ?, ?, ?)"


@dataclass(frozen=True)
class Enqueued:
    """One planned write for ``RoomTx.enqueue_many`` (the arguments of ``enqueue``)."""

    intent_id: str
    op: str
    payload: dict[str, Any]
    not_before: datetime | None = None
    again: bool = False


MAX_ERROR_CHARS = 1000
"""Stored error texts are cut to this length: they are for a person reading ``roomd status``."""


class RoomTx:
    """Writes (and reads that must see this transaction's own writes) for ``room``."""

    __slots__ = ("_active", "_clock", "_conn", "_path", "room")

    def __init__(
        self,
        conn: aiosqlite.Connection,
        room: str,
        path: Path,
        clock: Callable[[], datetime],
    ) -> None:
        self._conn = conn
        self.room = room
        self._path = path
        self._clock = clock
        self._active = True

    def __repr__(self) -> str:
        state = "open" if self._active else "ended"
        return f"<RoomTx room={self.room!r} {state}>"

    def _end(self) -> None:
        self._active = False

    def _check(self) -> aiosqlite.Connection:
        if not self._active:
            raise StoreError(
                self._path, f"transaction for room {self.room} has already ended; open a new one"
            )
        return self._conn

    def _now(self) -> str:
        return to_db(self._clock(), "clock()")

    async def _run(self, sql: str, params: tuple[Any, ...]) -> int:
        """One statement, one trip to the connection's thread: the cursor is not closed there
        (that was a second trip per statement), since a write leaves no rows behind and sqlite3
        resets its statement when it completes."""
        cursor = await self._check().execute(sql, params)
        return int(cursor.rowcount)

    async def _run_many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        """One statement for many rows, one trip to the connection's thread (a trip costs about
        50 us of CPU; a round planning 50 bookings made 150 of them)."""
        if rows:
            await self._check().executemany(sql, rows)

    # --- round status ------------------------------------------------------------------------

    async def record_round(
        self, *, ok: bool, error: str | None = None, at: datetime | None = None
    ) -> None:
        """Record the outcome of one sync round for this room.

        A success clears the last error and the failure streak; a failure keeps the previous
        success time so ``/readyz`` can tell how stale the room is. ``error`` must already be free
        of secrets: the store cannot know what a secret looks like. It is cut to
        :data:`MAX_ERROR_CHARS`.
        """
        if ok and error is not None:
            raise ValueError("record_round: error must be None when ok is True")
        when = to_db(at if at is not None else self._clock(), "at")
        if ok:
            await self._run(
                "UPDATE rooms SET last_round_at = ?, last_success_at = ?, last_error = NULL, "
                "consecutive_failures = 0, rounds_total = rounds_total + 1 WHERE room = ?",
                (when, when, self.room),
            )
        else:
            await self._run(
                "UPDATE rooms SET last_round_at = ?, last_error = ?, "
                "consecutive_failures = consecutive_failures + 1, "
                "rounds_total = rounds_total + 1 WHERE room = ?",
                (when, _short(error or "round failed"), self.room),
            )

    # --- cursors -----------------------------------------------------------------------------

    async def save_delta(
        self,
        window_start: datetime,
        window_end: datetime,
        delta_link: str,
        *,
        complete: bool = True,
    ) -> None:
        """Store the link to continue this room's delta query from, replacing any earlier one.

        Call it in the same transaction as the outbox rows planned from the page that returned
        the link: then a crash either keeps both or neither, and the page is simply re-read
        (design.md section 3, invariant 2). Graph's nextLinks go stale as a round pages forward,
        so the latest link is stored after every page ("Always continue from the latest link,
        and persist it after each page is applied", graph-behaviour.md section 1.7):
        ``complete=False`` for an ``@odata.nextLink`` (the round is still paging),
        ``complete=True`` for the ``@odata.deltaLink`` that ends it.
        """
        start = to_db(window_start, "window_start")
        end = to_db(window_end, "window_end")
        if start >= end:
            raise ValueError(f"save_delta: window_start {start} must be before window_end {end}")
        if not isinstance(delta_link, str) or not delta_link:
            raise ValueError("save_delta: delta_link must be a non-empty string")
        await self._run(
            "INSERT INTO delta_state "
            "(room, window_start, window_end, delta_link, complete, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (room) DO UPDATE SET "
            "window_start = excluded.window_start, window_end = excluded.window_end, "
            "delta_link = excluded.delta_link, complete = excluded.complete, "
            "updated_at = excluded.updated_at",
            (self.room, start, end, delta_link, 1 if complete else 0, self._now()),
        )

    async def clear_delta(self) -> None:
        """Forget this room's delta link, so the next round starts a fresh delta query.

        For when Graph rejects the token (HTTP 410 ``syncStateNotFound``/``resyncRequired``).
        """
        await self._run("DELETE FROM delta_state WHERE room = ?", (self.room,))

    async def get_delta(self) -> DeltaState | None:
        return await queries.get_delta(self._check(), self.room)

    async def save_hybrid_cursor(self, modified_since: datetime, resource_id: str = "") -> None:
        """Store where the next Hybrid ``modifiedAt[$gte]`` listing for this room starts, and
        for which Hybrid resource (a cursor is meaningless for another resource)."""
        await self._run(
            "INSERT INTO hybrid_cursor (room, resource_id, modified_since, updated_at) "
            "VALUES (?, ?, ?, ?) "
            "ON CONFLICT (room) DO UPDATE SET modified_since = excluded.modified_since, "
            "resource_id = excluded.resource_id, updated_at = excluded.updated_at",
            (self.room, resource_id, to_db(modified_since, "modified_since"), self._now()),
        )

    async def get_hybrid_cursor(self) -> HybridCursor | None:
        return await queries.get_hybrid_cursor(self._check(), self.room)

    # --- outbox ------------------------------------------------------------------------------

    async def enqueue(
        self,
        intent_id: str,
        op: str,
        payload: dict[str, Any],
        *,
        not_before: datetime | None = None,
        again: bool = False,
    ) -> bool:
        """Plan a remote write; returns False (and changes nothing) if ``intent_id`` exists.

        ``intent_id`` is the idempotency key: derive it from the change that caused the write
        (e.g. room + delta item id + change key), so a replayed delta page or webhook plans the
        same write once (design.md section 3, invariant 1). A finished (``done``) intent counts
        as existing, so it is not planned again.

        ``again``: a write that sets the other side to a state (an update named after the state
        it writes) and is owed once more when planned again, because the booking moved away and
        back since. Any earlier row of the intent is replaced by this one, at the end of the
        queue, so it runs after the writes planned in between; returns True.
        """
        row = self._outbox_row(intent_id, op, payload, not_before, self._now())
        if again:
            await self._run(
                "DELETE FROM outbox WHERE room = ? AND intent_id = ?", (self.room, intent_id)
            )
        inserted = await self._run(_ENQUEUE, row)
        return inserted == 1

    async def enqueue_many(self, items: list[Enqueued]) -> None:
        """``enqueue`` for each item, in order, in two trips (the ``again`` rows' deletes, then
        every insert). An intent planned twice in the list is enqueued one by one instead: its
        second ``again`` must replace the first, which deleting first would not do."""
        intents = [item.intent_id for item in items]
        if len(set(intents)) != len(intents):
            for item in items:
                await self.enqueue(
                    item.intent_id,
                    item.op,
                    item.payload,
                    not_before=item.not_before,
                    again=item.again,
                )
            return
        now = self._now()
        rows = [
            self._outbox_row(item.intent_id, item.op, item.payload, item.not_before, now)
            for item in items
        ]
        await self._run_many(
            "DELETE FROM outbox WHERE room = ? AND intent_id = ?",
            [(self.room, item.intent_id) for item in items if item.again],
        )
        await self._run_many(_ENQUEUE, rows)

    def _outbox_row(
        self,
        intent_id: str,
        op: str,
        payload: dict[str, Any],
        not_before: datetime | None,
        now: str,
    ) -> tuple[Any, ...]:
        if not isinstance(intent_id, str) or not intent_id:
            raise ValueError("enqueue: intent_id must be a non-empty string")
        if not isinstance(op, str) or not op:
            raise ValueError(f"enqueue {intent_id}: op must be a non-empty string")
        if not isinstance(payload, dict):
            raise TypeError(
                f"enqueue {intent_id}: payload must be a dict, got {type(payload).__name__}"
            )
        try:
            body = json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"enqueue {intent_id}: payload is not JSON-serialisable ({exc})"
            ) from None
        next_at = opt_to_db(not_before, "not_before") or now
        return (self.room, intent_id, op, body, next_at, now, now)

    async def mark_outbox(
        self,
        intent_id: str,
        *,
        state: OutboxState,
        error: str | None = None,
        next_at: datetime | None = None,
    ) -> None:
        """Record what happened to a planned write.

        ``done``, ``failed`` and ``dead`` record an attempt (``attempts`` goes up by one);
        ``failed`` is retried by ``due_outbox`` from ``next_at`` on (now, if not given);
        ``pending`` puts an item back in the queue without counting an attempt (an operator's
        retry of a dead item). ``error`` must be free of secrets; it is cut to
        :data:`MAX_ERROR_CHARS`. Raises :class:`UnknownIntent` if this room has no such intent.
        """
        changed = await self._run(
            _MARK, _mark_row(self.room, intent_id, state, error, next_at, self._now())
        )
        if changed != 1:
            raise UnknownIntent(
                self._path, f"room {self.room} has no outbox item with intent_id {intent_id!r}"
            )

    async def outbox_item(self, intent_id: str) -> OutboxItem | None:
        return await queries.outbox_item(self._check(), self.room, intent_id)

    async def due_outbox(self, now: datetime, limit: int = 100) -> list[OutboxItem]:
        return await queries.due_outbox(self._check(), self.room, now, limit)

    async def release_outbox(self, held_from: datetime) -> int:
        """Make this room's open rows planned for ``held_from`` or later due now; return how
        many. For writes held back on purpose (the mass-delete breaker) until an operator
        releases them."""
        return await self._run(
            "UPDATE outbox SET next_at = ?, updated_at = ? WHERE room = ? "
            "AND state IN ('pending', 'failed') AND next_at >= ?",
            (self._now(), self._now(), self.room, to_db(held_from, "held_from")),
        )

    async def prune_outbox(self, done_before: datetime) -> int:
        """Delete this room's ``done`` items last touched before ``done_before``; return how many.

        A pruned intent can be planned again, so keep ``done_before`` far behind anything that
        can still be replayed (a delta page or webhook is replayed within minutes; days are
        safe). ``failed`` and ``dead`` items are never pruned: they are owed or need a person.
        """
        return await self._run(
            "DELETE FROM outbox WHERE room = ? AND state = 'done' AND updated_at < ?",
            (self.room, to_db(done_before, "done_before")),
        )

    # --- links -------------------------------------------------------------------------------

    async def upsert_link(self, link: Link) -> None:
        """Insert or replace the link ``link.link_id`` in this room (``created_at`` is kept).

        Raises :class:`LinkConflict` if another link in this room already claims the same Hybrid
        booking/occurrence, room event or iCalUId/occurrence: two links for one thing is how
        duplicates start, so the store refuses instead of guessing which one is right.
        """
        try:
            await self._run(_UPSERT_LINK, _link_row(self.room, link, self._now()))
        except sqlite3.IntegrityError as exc:
            raise LinkConflict(self._path, await self._describe_conflict(link, exc)) from None

    async def upsert_links(self, links: list[Link]) -> None:
        """``upsert_link`` for each, in order, in one trip; on a conflict they are written one
        by one again (an upsert repeats harmlessly) so that the conflicting link is named."""
        now = self._now()
        rows = [_link_row(self.room, link, now) for link in links]
        try:
            await self._run_many(_UPSERT_LINK, rows)
        except sqlite3.IntegrityError:
            for link in links:
                await self.upsert_link(link)
            raise  # pragma: no cover - the loop above raised LinkConflict

    async def _describe_conflict(self, link: Link, exc: sqlite3.IntegrityError) -> str:
        conn = self._check()
        checks: list[tuple[str, Link | None]] = []
        if link.hybrid_id is not None:
            other = await queries.link_by_hybrid_id(
                conn, self.room, link.hybrid_id, link.original_start
            )
            checks.append((f"Hybrid booking {link.hybrid_id}", other))
        if link.room_event_id is not None:
            other = await queries.link_by_room_event_id(conn, self.room, link.room_event_id)
            checks.append((f"room event {link.room_event_id}", other))
        if link.ical_uid is not None:
            other = await queries.link_by_ical_uid(
                conn, self.room, link.ical_uid, link.original_start
            )
            checks.append((f"iCalUId {link.ical_uid}", other))
        occurrence = (
            f" (occurrence {queries.original_start_key(link.original_start)})"
            if link.original_start
            else ""
        )
        for what, other in checks:
            if other is not None and other.link_id != link.link_id:
                return (
                    f"room {self.room}: link {link.link_id} would claim {what}{occurrence}, "
                    f"already linked by {other.link_id}"
                )
        return f"room {self.room}: link {link.link_id} violates a constraint ({exc})"

    async def delete_link(self, link_id: str) -> bool:
        """Remove a link that should never have existed; returns False if there was none.

        Not for cancellations: a cancelled booking keeps its link with ``state='canceled'``, so a
        late echo of it is recognised instead of being created again. This is for a link planned
        for a write that was given up (``dead``) before anything was created remotely.
        """
        return (
            await self._run(
                "DELETE FROM links WHERE room = ? AND link_id = ?", (self.room, link_id)
            )
            == 1
        )

    async def get_link(self, link_id: str) -> Link | None:
        return await queries.get_link(self._check(), self.room, link_id)

    async def link_by_hybrid_id(
        self, hybrid_id: str, original_start: datetime | None = None
    ) -> Link | None:
        return await queries.link_by_hybrid_id(self._check(), self.room, hybrid_id, original_start)

    async def link_by_room_event_id(self, room_event_id: str) -> Link | None:
        return await queries.link_by_room_event_id(self._check(), self.room, room_event_id)

    async def link_by_ical_uid(
        self, ical_uid: str, original_start: datetime | None = None
    ) -> Link | None:
        return await queries.link_by_ical_uid(self._check(), self.room, ical_uid, original_start)

    async def links(
        self,
        *,
        state: LinkState | None = None,
        hybrid_parent_id: str | None = None,
        series_master_id: str | None = None,
    ) -> list[Link]:
        return await queries.links(
            self._check(),
            self.room,
            state=state,
            hybrid_parent_id=hybrid_parent_id,
            series_master_id=series_master_id,
        )

    # --- room flags --------------------------------------------------------------------------

    async def set_flag(self, key: str, value: str | None) -> None:
        """Set (or with None clear) one of this room's operator-facing flags."""
        if not key:
            raise ValueError("set_flag: key must be a non-empty string")
        if value is None:
            await self._run("DELETE FROM room_flags WHERE room = ? AND key = ?", (self.room, key))
            return
        await self._run(
            "INSERT INTO room_flags (room, key, value, updated_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (room, key) DO UPDATE SET value = excluded.value, "
            "updated_at = excluded.updated_at",
            (self.room, key, _short(value), self._now()),
        )

    async def flags(self) -> dict[str, str]:
        return (await queries.room_flags(self._check(), self.room)).get(self.room, {})

    # --- audit -------------------------------------------------------------------------------

    async def audit(
        self, booking: str, side: str, action: str, reason: str, *, at: datetime | None = None
    ) -> None:
        """Record a write roomd made (or refused to make) and why.

        ``booking`` is whatever an operator will search by (the Hybrid booking id, or the iCalUId
        when no booking exists yet); ``side`` is the system written to (``hybrid``/``outlook``).
        """
        when = to_db(at if at is not None else self._clock(), "at")
        await self._run(_AUDIT, _audit_row(self.room, when, booking, side, action, reason))

    async def audit_many(self, lines: list[tuple[str, str, str, str]]) -> None:
        """``audit`` for each (booking, side, action, reason), in order, in one trip."""
        when = self._now()
        await self._run_many(_AUDIT, [_audit_row(self.room, when, *line) for line in lines])

    async def prune_audit(self, before: datetime) -> int:
        """Delete this room's audit entries older than ``before``; return how many."""
        return await self._run(
            "DELETE FROM audit WHERE room = ? AND at < ?", (self.room, to_db(before, "before"))
        )


def _short(text: str) -> str:
    text = str(text)
    if len(text) <= MAX_ERROR_CHARS:
        return text
    return text[: MAX_ERROR_CHARS - 1] + "…"


def _mark_row(
    room: str,
    intent_id: str,
    state: OutboxState,
    error: str | None,
    next_at: datetime | None,
    now: str,
) -> tuple[Any, ...]:
    if state not in OUTBOX_STATES:
        raise ValueError(
            f"mark_outbox {intent_id}: state {state!r} is not one of {sorted(OUTBOX_STATES)}"
        )
    when = opt_to_db(next_at, "next_at") or now
    attempt = 0 if state == "pending" else 1
    last_error = _short(error) if error is not None else None
    return (state, attempt, state, when, state, last_error, now, room, intent_id)


def _link_row(room: str, link: Link, now: str) -> tuple[Any, ...]:
    if not isinstance(link, Link):
        raise TypeError(f"upsert_link: expected a Link, got {type(link).__name__}")
    if not link.link_id:
        raise ValueError("upsert_link: link_id must be a non-empty string")
    if link.state not in LINK_STATES:
        raise ValueError(
            f"upsert_link {link.link_id}: state {link.state!r} is not one of {sorted(LINK_STATES)}"
        )
    return (
        room,
        link.link_id,
        link.hybrid_id,
        link.hybrid_parent_id,
        queries.original_start_key(link.original_start),
        link.room_event_id,
        link.organizer_mailbox.lower() if link.organizer_mailbox else link.organizer_mailbox,
        link.organizer_event_id,
        link.ical_uid,
        link.series_master_id,
        link.hybrid_fingerprint,
        link.outlook_fingerprint,
        link.outlook_change_key,
        opt_to_db(link.hybrid_modified_at, "hybrid_modified_at"),
        link.state,
        now,
        now,
    )


def _audit_row(
    room: str, when: str, booking: str, side: str, action: str, reason: str
) -> tuple[str, ...]:
    for name, value in (
        ("booking", booking),
        ("side", side),
        ("action", action),
        ("reason", reason),
    ):
        if not isinstance(value, str) or not value:
            raise ValueError(f"audit: {name} must be a non-empty string")
    return (when, room, booking, side, action, reason)


Statement = tuple[str, tuple[Any, ...], bool]
"""One staged statement: its SQL, its parameters, and whether it must change exactly one row."""


class StagedTx:
    """The results one outbox drain commits for ``room`` (links, ``done`` marks, audit lines),
    staged in memory and run by ``Store.write_staged`` with its ``BEGIN IMMEDIATE`` and
    ``COMMIT`` in one trip to the writer's thread: a trip costs about 50 us of CPU, and the same
    writes through :class:`RoomTx` took six trips per booking in an initial sync
    (bench/README.md section 2).

    Only writes that return nothing are offered, so no caller acts on a row count before the
    statements have run. Each staged statement is expected to change exactly one row; when one
    does not, or SQLite raises, the store rolls the trip back and replays the same calls through
    a :class:`RoomTx`, which raises what it always raised (:class:`UnknownIntent`,
    :class:`LinkConflict` naming the other link, :class:`StoreError`)."""

    __slots__ = ("_now", "calls", "room", "statements")

    def __init__(self, room: str, now: str) -> None:
        self.room = room
        self._now = now
        self.statements: list[Statement] = []
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def __repr__(self) -> str:
        return f"<StagedTx room={self.room!r} {len(self.statements)} statements>"

    async def upsert_link(self, link: Link) -> None:
        """As :meth:`RoomTx.upsert_link`."""
        self.statements.append((_UPSERT_LINK, _link_row(self.room, link, self._now), True))
        self.calls.append(("upsert_link", (link,), {}))

    async def mark_outbox(
        self,
        intent_id: str,
        *,
        state: OutboxState,
        error: str | None = None,
        next_at: datetime | None = None,
    ) -> None:
        """As :meth:`RoomTx.mark_outbox`."""
        row = _mark_row(self.room, intent_id, state, error, next_at, self._now)
        self.statements.append((_MARK, row, True))
        self.calls.append(
            ("mark_outbox", (intent_id,), {"state": state, "error": error, "next_at": next_at})
        )

    async def audit(self, booking: str, side: str, action: str, reason: str) -> None:
        """As :meth:`RoomTx.audit` (at the time the transaction was opened)."""
        row = _audit_row(self.room, self._now, booking, side, action, reason)
        self.statements.append((_AUDIT, row, True))
        self.calls.append(("audit", (booking, side, action, reason), {}))

    async def replay(self, tx: RoomTx) -> None:
        """The staged calls again, one by one, through ``tx``."""
        for name, args, kwargs in self.calls:
            await getattr(tx, name)(*args, **kwargs)


def run_staged_group(conn: sqlite3.Connection, groups: list[list[Statement]]) -> list[bool]:
    """In the connection's own thread: ``BEGIN IMMEDIATE``, each group of statements in its own
    savepoint, ``COMMIT``; per group, whether it was committed. A group in which a statement
    expected to change one row did not, or which raised, is rolled back to its savepoint
    (False) and the others are committed. When the transaction itself fails, everything is
    rolled back and SQLite's error raised. The transaction is never left open, even when the
    caller stopped waiting (cancelled): the whole function runs once it has started."""
    done: list[bool] = []
    conn.execute("BEGIN IMMEDIATE")
    try:
        for statements in groups:
            conn.execute("SAVEPOINT staged")
            ok = True
            try:
                for sql, params, exactly_one in statements:
                    if conn.execute(sql, params).rowcount != 1 and exactly_one:
                        ok = False
                        break
            except Exception:  # SQLite's refusal, or a value it cannot bind: this group only
                ok = False
            if not ok:
                conn.execute("ROLLBACK TO staged")
            conn.execute("RELEASE staged")
            done.append(ok)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return done
