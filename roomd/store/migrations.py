"""The store's schema as numbered migrations, oldest first.

Each migration is applied in its own ``BEGIN IMMEDIATE`` transaction together with the row in
``schema_migrations`` that records it, so a crash mid-upgrade leaves the previous version intact.
Never edit a released migration: add a new one. Every table is keyed by room and every query the
store makes stays inside one room, so that a later move to PostgreSQL with per-room leases only
swaps the driver (design.md section 8).

Times are UTC ISO-8601 text with a ``Z`` (see :mod:`roomd.store.times`). Columns that hold a
state are checked with CHECK constraints, so a bad value fails at the write that caused it.
STRICT tables are not used: they need SQLite 3.37, newer than some supported distributions ship.
"""

from __future__ import annotations

import sqlite3
from typing import NamedTuple


class Migration(NamedTuple):
    version: int
    sql: str


MIGRATION_1 = """
-- Per-room round status, for `roomd status` and /readyz. `last_error` is a short reason that
-- the caller has already scrubbed of secrets.
CREATE TABLE rooms (
    room                 TEXT PRIMARY KEY,
    created_at           TEXT NOT NULL,
    last_round_at        TEXT,
    last_success_at      TEXT,
    last_error           TEXT,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    rounds_total         INTEGER NOT NULL DEFAULT 0
);

-- One calendarView delta link per room; a new window replaces the old token. complete = 0
-- while a round is still paging (delta_link is the latest nextLink), 1 for the deltaLink.
CREATE TABLE delta_state (
    room         TEXT PRIMARY KEY,
    window_start TEXT NOT NULL,
    window_end   TEXT NOT NULL,
    delta_link   TEXT NOT NULL,
    complete     INTEGER NOT NULL DEFAULT 1 CHECK (complete IN (0, 1)),
    updated_at   TEXT NOT NULL,
    CHECK (window_start < window_end)
);

-- Where the next Hybrid `modifiedAt[$gte]` listing starts.
CREATE TABLE hybrid_cursor (
    room           TEXT PRIMARY KEY,
    modified_since TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);

-- Identity: a booking (or occurrence) and a meeting are the same thing. original_start is ''
-- for anything that is not an occurrence, because NULLs never collide in a unique index.
CREATE TABLE links (
    room                TEXT NOT NULL,
    link_id             TEXT NOT NULL,
    hybrid_id           TEXT,
    hybrid_parent_id    TEXT,
    original_start      TEXT NOT NULL DEFAULT '',
    room_event_id       TEXT,
    organizer_mailbox   TEXT,
    organizer_event_id  TEXT,
    ical_uid            TEXT,
    series_master_id    TEXT,
    hybrid_fingerprint  TEXT,
    outlook_fingerprint TEXT,
    outlook_change_key  TEXT,
    hybrid_modified_at  TEXT,
    state               TEXT NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'canceled')),
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    PRIMARY KEY (room, link_id)
);
CREATE UNIQUE INDEX links_hybrid ON links (room, hybrid_id, original_start)
    WHERE hybrid_id IS NOT NULL;
CREATE UNIQUE INDEX links_room_event ON links (room, room_event_id)
    WHERE room_event_id IS NOT NULL;
CREATE UNIQUE INDEX links_ical_uid ON links (room, ical_uid, original_start)
    WHERE ical_uid IS NOT NULL;
CREATE INDEX links_series_master ON links (room, series_master_id)
    WHERE series_master_id IS NOT NULL;
CREATE INDEX links_hybrid_parent ON links (room, hybrid_parent_id)
    WHERE hybrid_parent_id IS NOT NULL;

-- Planned remote writes. Keyed by (room, intent_id): the caller derives intent_id from the
-- change that caused the write, so enqueueing the same change twice is a no-op.
CREATE TABLE outbox (
    room       TEXT NOT NULL,
    intent_id  TEXT NOT NULL,
    op         TEXT NOT NULL,
    payload    TEXT NOT NULL,
    state      TEXT NOT NULL DEFAULT 'pending'
               CHECK (state IN ('pending', 'done', 'failed', 'dead')),
    attempts   INTEGER NOT NULL DEFAULT 0,
    next_at    TEXT NOT NULL,
    last_error TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (room, intent_id)
);
CREATE INDEX outbox_open ON outbox (room, next_at) WHERE state IN ('pending', 'failed');

-- Every write roomd made and why: "why does this booking look like this" is answered here.
CREATE TABLE audit (
    id      INTEGER PRIMARY KEY,
    at      TEXT NOT NULL,
    room    TEXT NOT NULL,
    booking TEXT NOT NULL,
    side    TEXT NOT NULL,
    action  TEXT NOT NULL,
    reason  TEXT NOT NULL
);
CREATE INDEX audit_room ON audit (room, id);
CREATE INDEX audit_booking ON audit (room, booking, id);
"""

MIGRATION_2 = """
-- A Hybrid cursor belongs to one Hybrid resource: if the config maps the room to another
-- resource, the old resource's position must not be applied to the new one (its earlier
-- bookings would never be listed). '' for cursors written before this column existed.
ALTER TABLE hybrid_cursor ADD COLUMN resource_id TEXT NOT NULL DEFAULT '';
"""

MIGRATION_3 = """
-- Per-room facts an operator must see in `roomd status` and /readyz, set and cleared by the
-- sync engine: `breaker` (the mass-delete breaker held a round back; its reason), `force` (an
-- operator ran `roomd sync --force`: the next round may cancel past the breaker), `problem`
-- (the latest item the room could not sync, e.g. an organizer with no Hybrid member).
CREATE TABLE room_flags (
    room       TEXT NOT NULL,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (room, key)
);
"""

MIGRATION_4 = """
-- The dead items per room (`roomd status`, /readyz, the outbox gauges) without reading every
-- done item: the outbox keeps done items for weeks (prune_outbox), and an initial sync leaves
-- one per booking, so counting dead items scanned 46,000 rows per /readyz at 1,000 rooms (30 ms
-- of CPU; 1.1 ms with this index).
CREATE INDEX outbox_dead ON outbox (room) WHERE state = 'dead';
"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, MIGRATION_1),
    Migration(2, MIGRATION_2),
    Migration(3, MIGRATION_3),
    Migration(4, MIGRATION_4),
)


def latest_version(migrations: tuple[Migration, ...] = MIGRATIONS) -> int:
    """The schema version a database has after every migration in ``migrations`` ran."""
    return migrations[-1].version if migrations else 0


def check_sequence(migrations: tuple[Migration, ...]) -> None:
    """Refuse a migration list that is not numbered 1, 2, 3, ... without gaps."""
    versions = [m.version for m in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise ValueError(f"migrations must be numbered 1..n without gaps, got {versions}")


def statements(sql: str) -> list[str]:
    """Split a migration script into single statements.

    ``executescript`` would commit any open transaction first, which breaks "one migration, one
    transaction"; ``sqlite3.complete_statement`` knows about strings, comments and trigger bodies,
    so a ``;`` inside them does not split a statement.
    """
    out: list[str] = []
    buffer = ""
    for piece in sql.split(";"):
        buffer += piece + ";"
        if sqlite3.complete_statement(buffer):
            stripped = _strip_comments(buffer)
            if stripped:
                out.append(buffer.strip())
            buffer = ""
    if _strip_comments(buffer.rstrip(";")):
        raise ValueError(f"migration ends with an incomplete statement: {buffer.strip()[:80]!r}")
    return out


def _strip_comments(text: str) -> str:
    lines = [line.split("--", 1)[0].strip() for line in text.splitlines()]
    return " ".join(line for line in lines if line).strip(" ;")
