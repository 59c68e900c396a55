"""Recognising a roomd database, and bringing its schema up to date.

A roomd database carries SQLite's ``application_id`` header field set to :data:`APPLICATION_ID`
and a ``schema_migrations`` table listing every migration applied. Anything else with tables in
it is someone else's file, and the store refuses it before changing a single byte (it does not
even switch it to WAL).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import aiosqlite

from .errors import SchemaTooNew, StoreError, sqlite_problem
from .migrations import Migration, latest_version, statements
from .times import to_db

APPLICATION_ID = (
    0x726F6F6D  # "room" in ASCII; see https://www.sqlite.org/pragma.html#pragma_application_id
)


async def current_version(conn: aiosqlite.Connection, path: Path) -> int:
    """The schema version of the open database: 0 for an empty file, else the highest applied.

    Raises StoreError when the file is not a SQLite database, is not a roomd database, or its
    migration history has gaps.
    """
    try:
        app_id = await _scalar(conn, "PRAGMA application_id")
        rows = await conn.execute_fetchall("SELECT name FROM sqlite_master WHERE type = 'table'")
    except sqlite3.DatabaseError as exc:
        raise StoreError(path, f"cannot read it ({sqlite_problem(exc)})") from None
    tables = sorted(str(row[0]) for row in rows)
    if not tables and app_id == 0:
        return 0
    if app_id != APPLICATION_ID or "schema_migrations" not in tables:
        shown = ", ".join(tables[:5]) or "none"
        raise StoreError(
            path,
            f"is not a roomd state database (application_id {app_id}, tables: {shown}); "
            "point roomd at a new file instead",
        )
    try:
        versions = [
            int(row[0])
            for row in await conn.execute_fetchall(
                "SELECT version FROM schema_migrations ORDER BY version"
            )
        ]
    except sqlite3.DatabaseError as exc:
        raise StoreError(path, f"cannot read schema_migrations ({sqlite_problem(exc)})") from None
    if versions != list(range(1, len(versions) + 1)):
        raise StoreError(path, f"schema history is damaged: applied versions {versions}")
    return len(versions)


async def migrate(
    conn: aiosqlite.Connection,
    path: Path,
    migrations: tuple[Migration, ...],
    clock: Callable[[], datetime],
) -> int:
    """Apply every pending migration, each in its own ``BEGIN IMMEDIATE`` transaction.

    The version is re-read under the write lock, so two processes opening the same new file at
    once apply each migration exactly once. Returns the final version.
    """
    latest = latest_version(migrations)
    while True:
        await _exec(conn, path, "BEGIN IMMEDIATE", "cannot lock the database for migration")
        try:
            version = await current_version(conn, path)
            if version > latest:
                raise SchemaTooNew(path, version, latest)
            if version == latest:
                await conn.execute("COMMIT")
                return version
            migration = migrations[version]
            try:
                if version == 0:
                    await conn.execute(
                        "CREATE TABLE schema_migrations ("
                        "version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
                    )
                    await conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                for statement in statements(migration.sql):
                    await conn.execute(statement)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                    (migration.version, to_db(clock(), "applied_at")),
                )
                await conn.execute("COMMIT")
            except sqlite3.Error as exc:
                problem = sqlite_problem(exc)
                raise StoreError(
                    path, f"migration to schema version {migration.version} failed ({problem})"
                ) from None
        except BaseException:
            await rollback_quietly(conn)
            raise


async def rollback_quietly(conn: aiosqlite.Connection) -> None:
    """Roll back if a transaction is open; SQLite may already have rolled back on its own."""
    with contextlib.suppress(sqlite3.OperationalError):  # "no transaction is active"
        await conn.execute("ROLLBACK")


async def _scalar(conn: aiosqlite.Connection, sql: str) -> int:
    rows = list(await conn.execute_fetchall(sql))
    return int(rows[0][0]) if rows else 0


async def _exec(conn: aiosqlite.Connection, path: Path, sql: str, what: str) -> None:
    try:
        await conn.execute(sql)
    except sqlite3.OperationalError as exc:
        raise StoreError(path, f"{what} ({sqlite_problem(exc)})") from None
