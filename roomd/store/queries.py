"""Read queries, shared by the read connection (:class:`Store`) and the writer (:class:`RoomTx`).

Each function takes the connection and the room key and never reads another room's rows: every
statement has ``room = ?`` in its WHERE clause (the exceptions are :func:`room_statuses`, the
read-only overview across rooms, and :func:`room_of_hybrid_booking`, which finds a booking's room).
Row mapping lives here too, so both connections return identical dataclasses.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from datetime import datetime
from typing import Any, cast

import aiosqlite

from .rows import (
    AuditEntry,
    DeltaState,
    HybridCursor,
    Link,
    LinkState,
    OutboxItem,
    OutboxState,
    RoomStatus,
)
from .times import from_db, opt_from_db, opt_to_db, to_db

LINK_COLUMNS = (
    "link_id, hybrid_id, hybrid_parent_id, original_start, room_event_id, organizer_mailbox, "
    "organizer_event_id, ical_uid, series_master_id, hybrid_fingerprint, outlook_fingerprint, "
    "outlook_change_key, hybrid_modified_at, state, created_at, updated_at"
)
OUTBOX_COLUMNS = (
    "room, intent_id, op, payload, state, attempts, next_at, last_error, created_at, updated_at"
)


def original_start_key(original_start: datetime | None) -> str:
    """How an occurrence's original start is stored: UTC text, or '' for a non-occurrence."""
    return opt_to_db(original_start, "original_start") or ""


async def fetch_all(
    conn: aiosqlite.Connection, sql: str, params: Iterable[Any] = ()
) -> list[sqlite3.Row]:
    return cast(list[sqlite3.Row], list(await conn.execute_fetchall(sql, tuple(params))))


async def fetch_one(
    conn: aiosqlite.Connection, sql: str, params: Iterable[Any] = ()
) -> sqlite3.Row | None:
    rows = await fetch_all(conn, sql, params)
    return rows[0] if rows else None


# --- links -------------------------------------------------------------------------------------


def link_from_row(row: sqlite3.Row) -> Link:
    return Link(
        link_id=row["link_id"],
        hybrid_id=row["hybrid_id"],
        hybrid_parent_id=row["hybrid_parent_id"],
        original_start=opt_from_db(row["original_start"]),
        room_event_id=row["room_event_id"],
        organizer_mailbox=row["organizer_mailbox"],
        organizer_event_id=row["organizer_event_id"],
        ical_uid=row["ical_uid"],
        series_master_id=row["series_master_id"],
        hybrid_fingerprint=row["hybrid_fingerprint"],
        outlook_fingerprint=row["outlook_fingerprint"],
        outlook_change_key=row["outlook_change_key"],
        hybrid_modified_at=opt_from_db(row["hybrid_modified_at"]),
        state=cast(LinkState, row["state"]),
        created_at=from_db(row["created_at"]),
        updated_at=from_db(row["updated_at"]),
    )


async def _one_link(conn: aiosqlite.Connection, where: str, params: tuple[Any, ...]) -> Link | None:
    row = await fetch_one(conn, f"SELECT {LINK_COLUMNS} FROM links WHERE {where}", params)
    return None if row is None else link_from_row(row)


async def get_link(conn: aiosqlite.Connection, room: str, link_id: str) -> Link | None:
    return await _one_link(conn, "room = ? AND link_id = ?", (room, link_id))


async def get_links(
    conn: aiosqlite.Connection, room: str, link_ids: Iterable[str]
) -> dict[str, Link]:
    """The room's links among ``link_ids``, by id, 500 ids per query."""
    wanted = list(dict.fromkeys(link_ids))
    out: dict[str, Link] = {}
    for at in range(0, len(wanted), 500):
        chunk = wanted[at : at + 500]
        marks = ", ".join("?" * len(chunk))
        for row in await fetch_all(
            conn,
            f"SELECT {LINK_COLUMNS} FROM links WHERE room = ? AND link_id IN ({marks})",
            (room, *chunk),
        ):
            link = link_from_row(row)
            out[link.link_id] = link
    return out


async def link_by_hybrid_id(
    conn: aiosqlite.Connection, room: str, hybrid_id: str, original_start: datetime | None
) -> Link | None:
    return await _one_link(
        conn,
        "room = ? AND hybrid_id = ? AND original_start = ?",
        (room, hybrid_id, original_start_key(original_start)),
    )


async def link_by_room_event_id(
    conn: aiosqlite.Connection, room: str, room_event_id: str
) -> Link | None:
    return await _one_link(conn, "room = ? AND room_event_id = ?", (room, room_event_id))


async def link_by_ical_uid(
    conn: aiosqlite.Connection, room: str, ical_uid: str, original_start: datetime | None
) -> Link | None:
    return await _one_link(
        conn,
        "room = ? AND ical_uid = ? AND original_start = ?",
        (room, ical_uid, original_start_key(original_start)),
    )


async def links(
    conn: aiosqlite.Connection,
    room: str,
    *,
    state: LinkState | None = None,
    hybrid_parent_id: str | None = None,
    series_master_id: str | None = None,
    awaiting_answer_since: datetime | None = None,
) -> list[Link]:
    """A room's links. ``awaiting_answer_since``: only meetings roomd made since then whose
    room copy has not appeared (what an idle round checks), so an idle round reads a handful
    of rows however many bookings the room holds."""
    where = ["room = ?"]
    params: list[Any] = [room]
    for column, value in (
        ("state", state),
        ("hybrid_parent_id", hybrid_parent_id),
        ("series_master_id", series_master_id),
    ):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if awaiting_answer_since is not None:
        where.append(
            "COALESCE(room_event_id, '') = '' AND COALESCE(organizer_event_id, '') <> '' "
            "AND (created_at IS NULL OR created_at >= ?)"
        )
        params.append(to_db(awaiting_answer_since, "awaiting_answer_since"))
    rows = await fetch_all(
        conn,
        f"SELECT {LINK_COLUMNS} FROM links WHERE {' AND '.join(where)} "
        "ORDER BY original_start, link_id",
        params,
    )
    return [link_from_row(row) for row in rows]


async def find_links(conn: aiosqlite.Connection, any_id: str) -> list[tuple[str, Link]]:
    """Every (room, link) that any of a booking's ids names: a link id, a Hybrid booking id, a
    room or organizer event id, or an iCalUId. For ``roomd explain``: an operator pastes
    whatever id they have. Scans the links table: an operator's command, not a hot path."""
    rows = await fetch_all(
        conn,
        f"SELECT room, {LINK_COLUMNS} FROM links WHERE link_id = ? OR hybrid_id = ? "
        "OR hybrid_parent_id = ? OR room_event_id = ? OR organizer_event_id = ? "
        "OR ical_uid = ? ORDER BY room, original_start, link_id",
        (any_id,) * 6,
    )
    return [(row["room"], link_from_row(row)) for row in rows]


async def outbox_for_link(conn: aiosqlite.Connection, room: str, link_id: str) -> list[OutboxItem]:
    """The planned writes of one booking, oldest first (their payload names the link)."""
    rows = await fetch_all(
        conn,
        f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE room = ? "
        "AND json_extract(payload, '$.link_id') = ? ORDER BY rowid",
        (room, link_id),
    )
    return [outbox_from_row(row) for row in rows]


async def room_of_hybrid_booking(conn: aiosqlite.Connection, hybrid_id: str) -> str | None:
    """The room with a link for a Hybrid booking or for an occurrence of it (a series), for a
    webhook that names only the booking. An active link wins over a canceled one, then the most
    recently updated."""
    row = await fetch_one(
        conn,
        "SELECT room FROM links WHERE hybrid_id = ? OR hybrid_parent_id = ? "
        "ORDER BY state = 'active' DESC, updated_at DESC LIMIT 1",
        (hybrid_id, hybrid_id),
    )
    return None if row is None else str(row["room"])


# --- cursors -----------------------------------------------------------------------------------


_DELTA_COLUMNS = "room, window_start, window_end, delta_link, complete, updated_at"
_CURSOR_COLUMNS = "room, resource_id, modified_since, updated_at"


def _delta_state(row: sqlite3.Row) -> DeltaState:
    return DeltaState(
        room=row["room"],
        window_start=from_db(row["window_start"]),
        window_end=from_db(row["window_end"]),
        delta_link=row["delta_link"],
        complete=bool(row["complete"]),
        updated_at=from_db(row["updated_at"]),
    )


def _hybrid_cursor(row: sqlite3.Row) -> HybridCursor:
    return HybridCursor(
        room=row["room"],
        modified_since=from_db(row["modified_since"]),
        updated_at=from_db(row["updated_at"]),
        resource_id=row["resource_id"],
    )


async def get_delta(conn: aiosqlite.Connection, room: str) -> DeltaState | None:
    row = await fetch_one(conn, f"SELECT {_DELTA_COLUMNS} FROM delta_state WHERE room = ?", (room,))
    return None if row is None else _delta_state(row)


async def get_hybrid_cursor(conn: aiosqlite.Connection, room: str) -> HybridCursor | None:
    row = await fetch_one(
        conn, f"SELECT {_CURSOR_COLUMNS} FROM hybrid_cursor WHERE room = ?", (room,)
    )
    return None if row is None else _hybrid_cursor(row)


# --- outbox ------------------------------------------------------------------------------------


def outbox_from_row(row: sqlite3.Row) -> OutboxItem:
    payload = json.loads(row["payload"])
    return OutboxItem(
        room=row["room"],
        intent_id=row["intent_id"],
        op=row["op"],
        payload=payload,
        state=cast(OutboxState, row["state"]),
        attempts=int(row["attempts"]),
        next_at=from_db(row["next_at"]),
        last_error=row["last_error"],
        created_at=from_db(row["created_at"]),
        updated_at=from_db(row["updated_at"]),
    )


async def outbox_item(conn: aiosqlite.Connection, room: str, intent_id: str) -> OutboxItem | None:
    row = await fetch_one(
        conn,
        f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE room = ? AND intent_id = ?",
        (room, intent_id),
    )
    return None if row is None else outbox_from_row(row)


async def due_outbox(
    conn: aiosqlite.Connection, room: str, now: datetime, limit: int
) -> list[OutboxItem]:
    """Open items whose ``next_at`` has come, in the order they were planned.

    Planning order matters: a create must reach the remote side before the update planned after
    it, so items come back in insertion order (rowid), never by a clock that can step back.
    """
    if limit < 1:
        raise ValueError(f"limit: must be at least 1, got {limit}")
    rows = await fetch_all(
        conn,
        f"SELECT {OUTBOX_COLUMNS} FROM outbox "
        "WHERE room = ? AND state IN ('pending', 'failed') AND next_at <= ? "
        "ORDER BY rowid LIMIT ?",
        (room, to_db(now, "now"), limit),
    )
    return [outbox_from_row(row) for row in rows]


# --- audit -------------------------------------------------------------------------------------


async def audit_for(
    conn: aiosqlite.Connection, room: str, booking: str | None, limit: int
) -> list[AuditEntry]:
    """A room's audit trail, newest first, optionally for one booking only."""
    if limit < 1:
        raise ValueError(f"limit: must be at least 1, got {limit}")
    if booking is None:
        sql = "SELECT * FROM audit WHERE room = ? ORDER BY id DESC LIMIT ?"
        params: tuple[Any, ...] = (room, limit)
    else:
        sql = "SELECT * FROM audit WHERE room = ? AND booking = ? ORDER BY id DESC LIMIT ?"
        params = (room, booking, limit)
    return [
        AuditEntry(
            id=int(row["id"]),
            at=from_db(row["at"]),
            room=row["room"],
            booking=row["booking"],
            side=row["side"],
            action=row["action"],
            reason=row["reason"],
        )
        for row in await fetch_all(conn, sql, params)
    ]


# --- room flags --------------------------------------------------------------------------------


async def room_flags(conn: aiosqlite.Connection, room: str | None) -> dict[str, dict[str, str]]:
    """Flags by room (one room, or every room when None): ``{room: {key: value}}``."""
    if room is None:
        rows = await fetch_all(conn, "SELECT room, key, value FROM room_flags ORDER BY room", ())
    else:
        rows = await fetch_all(
            conn, "SELECT room, key, value FROM room_flags WHERE room = ?", (room,)
        )
    out: dict[str, dict[str, str]] = {}
    for row in rows:
        out.setdefault(row["room"], {})[row["key"]] = row["value"]
    return out


# --- status ------------------------------------------------------------------------------------


async def room_statuses(conn: aiosqlite.Connection) -> list[RoomStatus]:
    """Every room the store knows, with its round status and outbox depth.

    One statement, so the numbers are from one snapshot. The outbox aggregation is grouped by
    room, which the ``outbox_open`` partial index serves.
    """
    rows = await fetch_all(
        conn,
        """
        SELECT r.room, r.last_round_at, r.last_success_at, r.last_error,
               r.consecutive_failures, r.rounds_total,
               COALESCE(o.depth, 0) AS depth, o.oldest, COALESCE(d.dead, 0) AS dead
        FROM rooms AS r
        LEFT JOIN (
            SELECT room, COUNT(*) AS depth, MIN(created_at) AS oldest FROM outbox
            WHERE state IN ('pending', 'failed') GROUP BY room
        ) AS o ON o.room = r.room
        LEFT JOIN (
            SELECT room, COUNT(*) AS dead FROM outbox WHERE state = 'dead' GROUP BY room
        ) AS d ON d.room = r.room
        ORDER BY r.room
        """,
    )
    return [
        RoomStatus(
            room=row["room"],
            last_round_at=opt_from_db(row["last_round_at"]),
            last_success_at=opt_from_db(row["last_success_at"]),
            last_error=row["last_error"],
            consecutive_failures=int(row["consecutive_failures"]),
            rounds_total=int(row["rounds_total"]),
            outbox_depth=int(row["depth"]),
            oldest_pending_at=opt_from_db(row["oldest"]),
            outbox_dead=int(row["dead"]),
        )
        for row in rows
    ]


# --- many rooms at once (the daemon's grouped poll) ----------------------------------------------


ROOMS_IN = "SELECT value FROM json_each(?)"
"""``room IN (ROOMS_IN)`` with the rooms as one JSON array parameter (``_rooms``): the statement's
text is the same for any number of rooms. With one ``?`` per room each group size was a
statement of its own, and sqlite3 keeps up to 128 prepared statements per connection: the
daemon's groups of a few hundred rooms, each size once, held several MB (bench/README.md, RSS)."""


def _rooms(rooms: list[str]) -> str:
    return json.dumps(rooms)


async def delta_states(conn: aiosqlite.Connection, rooms: list[str]) -> dict[str, DeltaState]:
    """The stored delta state of each of ``rooms`` that has one: one statement for a group of
    rooms read together, instead of one per room."""
    if not rooms:
        return {}
    rows = await fetch_all(
        conn,
        f"SELECT {_DELTA_COLUMNS} FROM delta_state WHERE room IN ({ROOMS_IN})",
        (_rooms(rooms),),
    )
    return {row["room"]: _delta_state(row) for row in rows}


async def hybrid_cursors(conn: aiosqlite.Connection, rooms: list[str]) -> dict[str, HybridCursor]:
    """The stored Hybrid cursor of each of ``rooms`` that has one."""
    if not rooms:
        return {}
    rows = await fetch_all(
        conn,
        f"SELECT {_CURSOR_COLUMNS} FROM hybrid_cursor WHERE room IN ({ROOMS_IN})",
        (_rooms(rooms),),
    )
    return {row["room"]: _hybrid_cursor(row) for row in rows}


async def rooms_with_work(
    conn: aiosqlite.Connection, rooms: list[str], now: datetime, awaiting_answer_since: datetime
) -> set[str]:
    """Which of ``rooms`` have work beyond reading their feeds: outbox items due by ``now``, or
    meetings roomd made since ``awaiting_answer_since`` whose room copy has not appeared (the
    conditions of ``due_outbox`` and of ``links(awaiting_answer_since=...)``)."""
    if not rooms:
        return set()
    listed = _rooms(rooms)
    due = await fetch_all(
        conn,
        f"SELECT DISTINCT room FROM outbox WHERE room IN ({ROOMS_IN}) "
        "AND state IN ('pending', 'failed') AND next_at <= ?",
        (listed, to_db(now, "now")),
    )
    awaiting = await fetch_all(
        conn,
        f"SELECT DISTINCT room FROM links WHERE room IN ({ROOMS_IN}) "
        "AND COALESCE(room_event_id, '') = '' AND COALESCE(organizer_event_id, '') <> '' "
        "AND (created_at IS NULL OR created_at >= ?)",
        (listed, to_db(awaiting_answer_since, "awaiting_answer_since")),
    )
    return {row["room"] for row in (*due, *awaiting)}
