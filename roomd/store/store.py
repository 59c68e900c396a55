"""Opening the state database and the :class:`Store` handle the daemon and CLI use.

Concurrency model (design.md sections 2, 3 and 8):

- The database runs in WAL mode, so readers never wait for the writer and vice versa.
- One writer connection, serialised by an ``asyncio.Lock``: ``Store.write(room)`` takes the lock,
  issues ``BEGIN IMMEDIATE`` (the write lock is taken up front, so a transaction never fails half
  way with "database is locked" after reading), yields a :class:`RoomTx` bound to that one room,
  and commits, or rolls back if the block raised.
- ``Store.write_staged(room)`` is the same transaction for the outbox drain's results, run in
  one trip to the writer's thread instead of one per statement; results of several rooms that
  wait at the same time are committed together (a group commit, each in its own savepoint), and
  each caller returns once its own rows are on disk (bench/README.md section 2).
- A separate read connection (opened ``mode=ro``) serves the ``Store`` read methods; it sees the
  last committed state, never a transaction in progress.
- ``synchronous=FULL``: a commit is on disk before ``write()`` returns, so an outbox item marked
  ``done`` stays done after a power cut.
- An idle round (nothing read, nothing planned) still gets a new delta link from Graph and has a
  success to record: ``defer_delta`` and ``defer_success`` keep both in memory, readers of this
  process see them, and ``flush_idle`` writes every room's in one transaction (the daemon does
  once per poll interval, ``close`` does too): idle polling costs one synced commit per interval,
  not one per room.
  Losing them in a crash is harmless: the older stored link replays nothing (the rounds after
  it were idle) or has expired (a new baseline); any write for the room writes them first.

``open_store(path, readonly=True)`` opens only the read connection, never creates the file and
never migrates: that is for ``roomd status``, which may run as another user beside the daemon.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import aiosqlite

from roomd import utc

from . import queries
from .errors import SchemaTooNew, StoreError, sqlite_problem
from .migrations import MIGRATIONS, Migration, check_sequence, latest_version
from .roomtx import RoomTx, StagedTx, Statement, run_staged_group
from .rows import (
    AuditEntry,
    DeltaState,
    HybridCursor,
    Link,
    LinkState,
    OutboxItem,
    RoomStatus,
    room_key,
)
from .schema import current_version, migrate, rollback_quietly
from .times import to_db

BUSY_TIMEOUT_S = 5.0
"""How long SQLite waits for another process's lock before giving up."""

READER_CACHE_KIB = 512
"""The read connection's SQLite page cache (2,000 KiB by default). In WAL mode a connection
drops its whole cache when it starts a read after another connection's commit, and the writer
commits all the time, so the reader's cache held little that was read again; full, it is
up to 2 MB of the daemon's heap (bench/README.md section 1). Set once the file
is known to be a roomd database (the pragma reads the file)."""
READER_CACHE = f"PRAGMA cache_size = -{READER_CACHE_KIB}"

WRITABLE_CHECK_TIMEOUT_S = 5.0
"""``check_writable`` reports "not writable" if the writer is busy for longer than this: a round's
transaction holds no network call, so a writer busy this long is itself a fault."""

FILE_MODE = 0o640
"""The database holds organizer addresses and event ids: not for every local user to read."""


async def open_store(
    path: Path | str,
    *,
    readonly: bool = False,
    clock: Callable[[], datetime] = utc.now,
    migrations: tuple[Migration, ...] = MIGRATIONS,
) -> Store:
    """Open (and, unless ``readonly``, create and migrate) the state database at ``path``.

    Raises :class:`SchemaTooNew` when the database was written by a newer roomd, and
    :class:`StoreError` for every other reason the file cannot be used (missing directory, missing
    file in read-only mode, not a roomd database, corrupt, permission denied). ``clock`` supplies
    the timestamps the store writes; ``migrations`` exists for tests of the upgrade path.
    """
    path = Path(path)
    check_sequence(migrations)
    latest = latest_version(migrations)
    _check_location(path, readonly)
    if readonly:
        ro = await _connect(path, readonly=True)
        try:
            version = await current_version(ro, path)
            if version > latest:
                raise SchemaTooNew(path, version, latest)
            if version == 0:
                raise StoreError(path, "is empty: roomd has not initialised it yet")
            if version < latest:
                raise StoreError(
                    path,
                    f"database schema version {version} is older than this roomd's ({latest}); "
                    "run the daemon of this roomd version once to upgrade it",
                )
            await ro.execute(READER_CACHE)
        except BaseException:
            await ro.close()
            raise
        return Store(path, reader=ro, writer=None, clock=clock)

    _create_file(path)
    writer = await _connect(path, readonly=False)
    reader: aiosqlite.Connection | None = None
    try:
        # Recognise the file before changing anything in it (even its journal mode).
        version = await current_version(writer, path)
        if version > latest:
            raise SchemaTooNew(path, version, latest)
        await _enable_wal(writer, path)
        await writer.execute("PRAGMA synchronous = FULL")
        await migrate(writer, path, migrations, clock)
        reader = await _connect(path, readonly=True)
        await reader.execute(READER_CACHE)
    except sqlite3.Error as exc:
        if reader is not None:
            await reader.close()
        await writer.close()
        raise StoreError(path, f"cannot open it ({sqlite_problem(exc)})") from None
    except BaseException:
        if reader is not None:
            await reader.close()
        await writer.close()
        raise
    return Store(path, reader=reader, writer=writer, clock=clock)


@dataclass(frozen=True)
class _Idle:
    """What an idle round of one room left to write: its new delta link, and its success once
    the daemon has recorded it."""

    window_start: datetime
    window_end: datetime
    delta_link: str
    at: datetime
    success_at: datetime | None = None


class Store:
    """The open state database: one serialised writer, one reader. Close it when done."""

    def __init__(
        self,
        path: Path,
        *,
        reader: aiosqlite.Connection,
        writer: aiosqlite.Connection | None,
        clock: Callable[[], datetime],
    ) -> None:
        self.path = path
        self._reader = reader
        self._writer = writer
        self._clock = clock
        self._write_lock = asyncio.Lock()
        self._writer_task: asyncio.Task[object] | None = None
        self._closed = False
        self._idle: dict[str, _Idle] = {}  # room -> what its last idle round left unwritten
        self._staged: list[_Staged] = []  # write_staged results waiting for a group commit
        self._committer: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        mode = "read-only" if self.readonly else "read-write"
        return f"<Store {str(self.path)!r} {mode}{' closed' if self._closed else ''}>"

    @property
    def readonly(self) -> bool:
        return self._writer is None

    async def close(self) -> None:
        """Close both connections; waits for a write in progress. Safe to call twice."""
        if self._closed:
            return
        if self._writer is not None and self._idle:
            with contextlib.suppress(StoreError):
                await self.flush_idle()
        self._closed = True
        committer = self._committer
        if committer is not None and not committer.done():
            try:
                await asyncio.shield(committer)  # the results already queued
            except asyncio.CancelledError:
                if not committer.cancelled():  # close() itself was cancelled
                    raise
            except Exception:  # its waiters were told
                pass
        async with self._write_lock:
            # Reader first: the last connection to close checkpoints the WAL into the main file
            # and removes it, and only the writer can do that.
            await self._reader.close()
            if self._writer is not None:
                await self._writer.close()

    # --- writing -----------------------------------------------------------------------------

    def write(self, room: str) -> AbstractAsyncContextManager[RoomTx]:
        """A write transaction for one room: commit on normal exit, roll back on exception.

        Writers are serialised: a second ``write()`` waits until the first one's block has ended.
        Do no network I/O inside the block (design.md section 3, invariant 2).
        """
        return self._transaction(room_key(room))

    def _writer_outside_write(self, room: str) -> aiosqlite.Connection:
        """The writer connection, for a write that is not nested in another ``write()`` of the
        same task (which would wait for its own lock)."""
        writer = self._require_writer()
        task = asyncio.current_task()
        if task is not None and self._writer_task is task:
            raise StoreError(
                self.path,
                f"write({room}) inside another write() in the same task; nested transactions "
                "are not supported (finish the first block, or do both in one)",
            )
        return writer

    @contextlib.asynccontextmanager
    async def _transaction(self, room: str) -> AsyncIterator[RoomTx]:
        writer = self._writer_outside_write(room)
        async with self._write_lock:
            self._writer_task = asyncio.current_task()
            try:
                await self._begin(writer)
                tx = RoomTx(writer, room, self.path, self._clock)
                try:
                    await writer.execute(
                        "INSERT INTO rooms (room, created_at) VALUES (?, ?) "
                        "ON CONFLICT (room) DO NOTHING",
                        (room, to_db(self._clock(), "clock()")),
                    )
                    idle = self._idle.get(room)
                    if idle is not None:  # first, so this transaction's own writes win
                        await _write_idle(tx, idle)
                    yield tx
                except sqlite3.Error as exc:
                    tx._end()
                    await rollback_quietly(writer)
                    raise StoreError(
                        self.path, f"write for room {room} failed ({sqlite_problem(exc)})"
                    ) from None
                except BaseException:
                    tx._end()
                    await rollback_quietly(writer)
                    raise
                tx._end()
                await self._commit(writer, room)
                if idle is not None and self._idle.get(room) is idle:
                    del self._idle[room]
            finally:
                self._writer_task = None

    @contextlib.asynccontextmanager
    async def write_staged(self, room: str) -> AsyncIterator[StagedTx]:
        """``write(room)`` in one trip to the writer's thread, for the outbox drain's results
        (links, ``done`` marks, audit lines): the block stages them (:class:`StagedTx`), and
        on its normal exit they run with the transaction's ``BEGIN IMMEDIATE`` and ``COMMIT``
        as one function there, committed before this returns, as ``write()`` commits. Nothing
        is written if the block raises. A staged statement that does not change its one row,
        an SQLite error, or idle state of the room to write first sends the same calls
        through ``write()`` instead, which raises what it always raised."""
        self._require_writer()
        key = room_key(room)
        staged = StagedTx(key, to_db(self._clock(), "clock()"))
        yield staged
        if not staged.statements:
            return
        if key not in self._idle and await self._run_staged(key, staged):
            return
        async with self._transaction(key) as tx:
            await staged.replay(tx)

    async def _run_staged(self, room: str, staged: StagedTx) -> bool:
        """Queue the staged statements for the next group commit and wait until it is on disk.

        Results that arrive while the writer is busy are committed together, each in its own
        savepoint, by one ``BEGIN IMMEDIATE`` .. ``COMMIT`` (a group commit): every caller still
        returns only once its own rows are committed, so a crash loses nothing a caller was told
        was written, but 16 rooms draining at once pay one synced commit instead of 16
        (bench/README.md section 2). A waiter cancelled before its group started is taken off
        the queue; once started, its group runs to the end (as ``write()``'s commit does)."""
        writer = self._writer_outside_write(room)
        statements: list[Statement] = [
            (
                "INSERT INTO rooms (room, created_at) VALUES (?, ?) ON CONFLICT (room) DO NOTHING",
                (room, to_db(self._clock(), "clock()")),
                False,
            ),
            *staged.statements,
        ]
        mine = _Staged(room, statements, asyncio.get_running_loop().create_future())
        self._staged.append(mine)
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit_groups(writer))
        try:
            return await asyncio.shield(mine.done)
        except asyncio.CancelledError:
            if mine in self._staged:  # not started: nothing of it will be written
                self._staged.remove(mine)
            else:  # started: its answer has no reader now
                mine.done.add_done_callback(_retrieved)
            raise

    async def _commit_groups(self, writer: aiosqlite.Connection) -> None:
        """Commit what is queued, group after group, until the queue is empty."""
        try:
            await self._commit_queued(writer)
        except BaseException as exc:  # cancelled (the loop's end): the waiters are told so
            problem = StoreError(self.path, f"group commit interrupted ({type(exc).__name__})")
            for each in self._staged:
                each.fail(problem)
            self._staged = []
            raise

    async def _commit_queued(self, writer: aiosqlite.Connection) -> None:
        while self._staged:
            async with self._write_lock:
                group, self._staged = self._staged, []
                runnable: list[_Staged] = []
                for each in group:
                    if each.room in self._idle:  # deferred state to write first: write() does
                        each.resolve(False)
                    else:
                        runnable.append(each)
                if not runnable:
                    continue
                try:
                    results = await _in_thread(
                        writer, run_staged_group, [each.statements for each in runnable]
                    )
                except sqlite3.Error:  # nothing committed: each goes through write() alone
                    results = [False] * len(runnable)
                except Exception as exc:  # the waiters' own tasks did not fail: a StoreError
                    problem = StoreError(self.path, f"group commit failed ({type(exc).__name__})")
                    for each in runnable:
                        each.fail(problem)
                    continue
                except BaseException:
                    self._staged[:0] = runnable  # told by _commit_groups, with the rest
                    raise
                for each, ok in zip(runnable, results, strict=True):
                    each.resolve(ok)

    def defer_delta(
        self, room: str, window_start: datetime, window_end: datetime, delta_link: str
    ) -> None:
        """An idle round's new delta link, kept until ``flush_idle`` (or the room's next write
        transaction) writes it; ``get_delta`` returns it now."""
        self._require_writer()
        self._idle[room_key(room)] = _Idle(window_start, window_end, delta_link, self._clock())

    def defer_success(self, room: str, at: datetime) -> bool:
        """Keep a round's success with the room's deferred delta link, written with it; False
        (nothing kept) when the round left nothing deferred: then write the success now."""
        key = room_key(room)
        idle = self._idle.get(key)
        if idle is None or self._closed:
            return False
        self._idle[key] = replace(idle, success_at=at)
        return True

    async def flush_idle(self) -> int:
        """Write every room's deferred idle state in one transaction; the number of rooms."""
        writer = self._require_writer()
        if not self._idle:
            return 0
        async with self._write_lock:
            pending = dict(self._idle)
            await self._begin(writer)
            try:
                now = to_db(self._clock(), "clock()")
                for room, idle in pending.items():
                    await writer.execute(
                        "INSERT INTO rooms (room, created_at) VALUES (?, ?) "
                        "ON CONFLICT (room) DO NOTHING",
                        (room, now),
                    )
                    tx = RoomTx(writer, room, self.path, self._clock)
                    await _write_idle(tx, idle)
                    tx._end()
            except sqlite3.Error as exc:
                await rollback_quietly(writer)
                raise StoreError(
                    self.path, f"writing idle rounds failed ({sqlite_problem(exc)})"
                ) from None
            except BaseException:
                await rollback_quietly(writer)
                raise
            await self._commit(writer, f"(idle rounds of {len(pending)} rooms)")
        for room, idle in pending.items():
            if self._idle.get(room) is idle:
                del self._idle[room]
        if not self._idle:
            self._idle = {}  # an emptied dict keeps its table (~0.3 MB at 10,000 rooms)
        return len(pending)

    async def _begin(self, writer: aiosqlite.Connection) -> None:
        try:
            await writer.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise StoreError(
                self.path,
                f"cannot start a write transaction ({sqlite_problem(exc)})",
            ) from None
        except BaseException:
            # Cancelled while waiting: the statement was already handed to the connection's
            # thread and may still open a transaction, which would wedge the next writer.
            await rollback_quietly(writer)
            raise

    async def _commit(self, writer: aiosqlite.Connection, room: str) -> None:
        try:
            await writer.execute("COMMIT")
        except sqlite3.Error as exc:
            await rollback_quietly(writer)
            raise StoreError(
                self.path,
                f"commit for room {room} failed, nothing was saved ({sqlite_problem(exc)})",
            ) from None
        except BaseException:
            # Cancelled while waiting: COMMIT still runs in the connection's thread. If it
            # failed there, do not leave its transaction open; if it succeeded, this is a no-op.
            await rollback_quietly(writer)
            raise

    def _require_writer(self) -> aiosqlite.Connection:
        self._require_open()
        if self._writer is None:
            raise StoreError(self.path, "opened read-only; writing is not possible")
        return self._writer

    def _require_open(self) -> None:
        if self._closed:
            raise StoreError(self.path, "the store is closed")

    async def check_writable(self) -> None:
        """Prove the database takes a write now (``/readyz``); raise StoreError if it does not.

        Makes a real, tiny committed write (an unchanged row rewritten), so a full disk, a
        read-only remount or a lock held by another process all show up here.
        """
        writer = self._require_writer()
        try:
            async with asyncio.timeout(WRITABLE_CHECK_TIMEOUT_S):
                await self._write_lock.acquire()
        except TimeoutError:
            raise StoreError(
                self.path,
                f"the writer has been busy for more than {WRITABLE_CHECK_TIMEOUT_S:g} s",
            ) from None
        try:
            await self._begin(writer)
            try:
                await writer.execute(
                    "UPDATE schema_migrations SET applied_at = applied_at "
                    "WHERE version = (SELECT MAX(version) FROM schema_migrations)"
                )
            except sqlite3.Error as exc:
                await rollback_quietly(writer)
                raise StoreError(self.path, f"cannot write ({sqlite_problem(exc)})") from None
            except BaseException:
                await rollback_quietly(writer)
                raise
            await self._commit(writer, "(writability check)")
        finally:
            self._write_lock.release()

    async def forget_room(self, room: str) -> None:
        """Delete everything stored for ``room``, in one transaction.

        Only for an operator who removed a room for good: rooms dropped from the config keep
        their data by default, so re-adding one neither duplicates nor re-creates its bookings.
        """
        key = room_key(room)
        async with self._transaction(key) as tx:
            writer = self._require_writer()
            for table in (
                "links",
                "outbox",
                "audit",
                "delta_state",
                "hybrid_cursor",
                "room_flags",
                "rooms",
            ):
                await writer.execute(f"DELETE FROM {table} WHERE room = ?", (tx.room,))

    # --- reading (last committed state) ------------------------------------------------------

    @contextlib.contextmanager
    def _reading(self, what: str) -> Iterator[aiosqlite.Connection]:
        self._require_open()
        try:
            yield self._reader
        except sqlite3.Error as exc:
            raise StoreError(self.path, f"{what} failed ({sqlite_problem(exc)})") from None

    async def schema_version(self) -> int:
        with self._reading("reading the schema version") as conn:
            return await current_version(conn, self.path)

    async def room_statuses(self) -> list[RoomStatus]:
        with self._reading("reading room status") as conn:
            statuses = await queries.room_statuses(conn)
        return [_with_idle(st, self._idle.get(st.room)) for st in statuses]

    async def get_delta(self, room: str) -> DeltaState | None:
        key = room_key(room)
        idle = self._idle.get(key)
        if idle is not None:
            self._require_open()
            return DeltaState(
                room=key,
                window_start=idle.window_start,
                window_end=idle.window_end,
                delta_link=idle.delta_link,
                updated_at=idle.at,
            )
        with self._reading("reading the delta state") as conn:
            return await queries.get_delta(conn, key)

    async def delta_states(self, rooms: list[str]) -> dict[str, DeltaState]:
        """Each room's delta state (the deferred one of an idle room first), keyed by room key,
        read for a group of rooms in one statement."""
        keys = [room_key(r) for r in rooms]
        with self._reading("reading delta states") as conn:
            found = await queries.delta_states(conn, [k for k in keys if k not in self._idle])
        for key in keys:
            idle = self._idle.get(key)
            if idle is not None:
                found[key] = DeltaState(
                    room=key,
                    window_start=idle.window_start,
                    window_end=idle.window_end,
                    delta_link=idle.delta_link,
                    updated_at=idle.at,
                )
        return found

    async def hybrid_cursors(self, rooms: list[str]) -> dict[str, HybridCursor]:
        """Each room's stored Hybrid cursor, keyed by room key, in one statement."""
        with self._reading("reading Hybrid cursors") as conn:
            return await queries.hybrid_cursors(conn, [room_key(r) for r in rooms])

    async def rooms_with_work(
        self, rooms: list[str], now: datetime, awaiting_answer_since: datetime
    ) -> set[str]:
        """The room keys among ``rooms`` with outbox items due or meetings awaiting the room's
        answer (see ``queries.rooms_with_work``)."""
        with self._reading("reading rooms with work") as conn:
            return await queries.rooms_with_work(
                conn, [room_key(r) for r in rooms], now, awaiting_answer_since
            )

    async def get_hybrid_cursor(self, room: str) -> HybridCursor | None:
        with self._reading("reading the Hybrid cursor") as conn:
            return await queries.get_hybrid_cursor(conn, room_key(room))

    async def get_link(self, room: str, link_id: str) -> Link | None:
        with self._reading("reading a link") as conn:
            return await queries.get_link(conn, room_key(room), link_id)

    async def get_links(self, room: str, link_ids: Iterable[str]) -> dict[str, Link]:
        """Several links of one room by id in one read (the outbox drain's rows' links)."""
        with self._reading("reading links") as conn:
            return await queries.get_links(conn, room_key(room), link_ids)

    async def link_by_hybrid_id(
        self, room: str, hybrid_id: str, original_start: datetime | None = None
    ) -> Link | None:
        with self._reading("reading a link") as conn:
            return await queries.link_by_hybrid_id(conn, room_key(room), hybrid_id, original_start)

    async def link_by_room_event_id(self, room: str, room_event_id: str) -> Link | None:
        with self._reading("reading a link") as conn:
            return await queries.link_by_room_event_id(conn, room_key(room), room_event_id)

    async def link_by_ical_uid(
        self, room: str, ical_uid: str, original_start: datetime | None = None
    ) -> Link | None:
        with self._reading("reading a link") as conn:
            return await queries.link_by_ical_uid(conn, room_key(room), ical_uid, original_start)

    async def links(
        self,
        room: str,
        *,
        state: LinkState | None = None,
        hybrid_parent_id: str | None = None,
        series_master_id: str | None = None,
        awaiting_answer_since: datetime | None = None,
    ) -> list[Link]:
        with self._reading("reading links") as conn:
            return await queries.links(
                conn,
                room_key(room),
                state=state,
                hybrid_parent_id=hybrid_parent_id,
                series_master_id=series_master_id,
                awaiting_answer_since=awaiting_answer_since,
            )

    async def room_of_hybrid_booking(self, hybrid_id: str) -> str | None:
        """The room (its store key) that has a link for this Hybrid booking or series, if any."""
        with self._reading("reading a link") as conn:
            return await queries.room_of_hybrid_booking(conn, hybrid_id)

    async def find_links(self, any_id: str) -> list[tuple[str, Link]]:
        """(room, link) pairs for any id of a booking (see ``queries.find_links``)."""
        with self._reading("reading links") as conn:
            return await queries.find_links(conn, any_id)

    async def outbox_for_link(self, room: str, link_id: str) -> list[OutboxItem]:
        with self._reading("reading the outbox") as conn:
            return await queries.outbox_for_link(conn, room_key(room), link_id)

    async def room_flags(self, room: str | None = None) -> dict[str, dict[str, str]]:
        """The operator-facing flags (``breaker``, ``force``, ``problem``) by room."""
        with self._reading("reading room flags") as conn:
            return await queries.room_flags(conn, None if room is None else room_key(room))

    async def outbox_item(self, room: str, intent_id: str) -> OutboxItem | None:
        with self._reading("reading the outbox") as conn:
            return await queries.outbox_item(conn, room_key(room), intent_id)

    async def due_outbox(self, room: str, now: datetime, limit: int = 100) -> list[OutboxItem]:
        with self._reading("reading the outbox") as conn:
            return await queries.due_outbox(conn, room_key(room), now, limit)

    async def audit_for(
        self, room: str, booking: str | None = None, limit: int = 100
    ) -> list[AuditEntry]:
        with self._reading("reading the audit trail") as conn:
            return await queries.audit_for(conn, room_key(room), booking, limit)


async def _write_idle(tx: RoomTx, idle: _Idle) -> None:
    await tx.save_delta(idle.window_start, idle.window_end, idle.delta_link)
    if idle.success_at is not None:
        await tx.record_round(ok=True, at=idle.success_at)


def _with_idle(status: RoomStatus, idle: _Idle | None) -> RoomStatus:
    if idle is None or idle.success_at is None:
        return status
    return replace(
        status,
        last_round_at=idle.success_at,
        last_success_at=idle.success_at,
        last_error=None,
        consecutive_failures=0,
        rounds_total=status.rounds_total + 1,
    )


async def _in_thread(
    conn: aiosqlite.Connection,
    fn: Callable[[sqlite3.Connection, list[list[Statement]]], list[bool]],
    groups: list[list[Statement]],
) -> list[bool]:
    """``fn(sqlite3 connection, groups)`` run in ``conn``'s own thread, one trip. aiosqlite
    has no public call for a function of the connection: this uses ``Connection._execute``, the
    queue every aiosqlite call goes through (aiosqlite is pinned below 0.23;
    tests/store/test_staged.py fails if that changes)."""
    result = await conn._execute(lambda: fn(conn._conn, groups))  # type: ignore[no-untyped-call]
    return list(result)


def _retrieved(future: asyncio.Future[bool]) -> None:
    if not future.cancelled():
        future.exception()  # read, so asyncio does not log it as never retrieved


@dataclass(slots=True, eq=False)
class _Staged:
    """One ``write_staged`` block's statements waiting for a group commit, and its answer."""

    room: str
    statements: list[Statement]
    done: asyncio.Future[bool]

    def resolve(self, ok: bool) -> None:
        if not self.done.done():
            self.done.set_result(ok)

    def fail(self, exc: StoreError) -> None:
        if not self.done.done():
            self.done.set_exception(exc)


# --- opening -----------------------------------------------------------------------------------


def _check_location(path: Path, readonly: bool) -> None:
    parent = path.absolute().parent
    if not parent.is_dir():
        raise StoreError(path, f"directory {parent} does not exist; create it first")
    if path.is_dir():
        raise StoreError(path, "is a directory, not a database file")
    if readonly:
        if not path.exists():
            raise StoreError(path, "does not exist (the daemon creates it on its first start)")
        return
    if not os.access(parent, os.W_OK | os.X_OK):
        raise StoreError(
            path,
            f"directory {parent} is not writable by this user; SQLite keeps its -wal and -shm "
            "files next to the database",
        )


def _create_file(path: Path) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return
    except OSError as exc:
        raise StoreError(path, f"cannot create it ({exc.strerror})") from None
    os.close(fd)


async def _enable_wal(conn: aiosqlite.Connection, path: Path) -> None:
    """Switch the database to WAL, waiting out other processes that are opening it too.

    The switch needs a moment with no other connection holding a lock, and SQLite reports
    "database is locked" at once instead of calling its busy handler, so wait here.
    """
    deadline = asyncio.get_running_loop().time() + BUSY_TIMEOUT_S
    while True:
        try:
            rows = list(await conn.execute_fetchall("PRAGMA journal_mode = WAL"))
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or asyncio.get_running_loop().time() > deadline:
                raise StoreError(
                    path, f"cannot switch to WAL journal mode ({sqlite_problem(exc)})"
                ) from None
            await asyncio.sleep(0.02)
    mode = str(rows[0][0]).lower() if rows else "unknown"
    if mode != "wal":
        raise StoreError(path, f"cannot switch to WAL journal mode (SQLite answered {mode!r})")


def _uri(path: Path, *, readonly: bool) -> str:
    """A ``file:`` URI; ``as_uri`` percent-encodes ``?``, ``#`` and spaces in the path."""
    return path.absolute().as_uri() + ("?mode=ro" if readonly else "?mode=rw")


async def _connect(path: Path, *, readonly: bool) -> aiosqlite.Connection:
    uri = _uri(path, readonly=readonly)
    try:
        conn = await aiosqlite.connect(
            uri, uri=True, isolation_level=None, timeout=BUSY_TIMEOUT_S, check_same_thread=False
        )
    except sqlite3.Error as exc:
        raise StoreError(path, f"cannot open it ({sqlite_problem(exc)})") from None
    conn.row_factory = sqlite3.Row
    if readonly:
        await conn.execute("PRAGMA query_only = ON")
    return conn
