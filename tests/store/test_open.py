"""Opening the database: new files, upgrades, databases from a newer roomd, and files that are
not roomd's. Each refusal is one clear line naming the file."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from roomd.store import Link, SchemaTooNew, StoreError, open_store
from roomd.store.migrations import MIGRATIONS, Migration, latest_version

from .conftest import ROOM, Clock

LATEST = latest_version()
NEXT = LATEST + 1
ALL_VERSIONS = list(range(1, LATEST + 1))

FUTURE = Migration(
    NEXT,
    """
    -- a column and an index a later roomd might add
    ALTER TABLE links ADD COLUMN note TEXT NOT NULL DEFAULT '';
    CREATE INDEX links_note ON links (room, note);
    """,
)


def applied_versions(path: Path) -> list[int]:
    with closing(sqlite3.connect(path)) as conn, conn:
        return [row[0] for row in conn.execute("SELECT version FROM schema_migrations")]


async def schema_version_of_new_store(path: Path) -> int:
    store = await open_store(path)
    try:
        return await store.schema_version()
    finally:
        await store.close()


def test_new_database_is_created_at_the_latest_schema(db_path: Path) -> None:
    assert asyncio.run(schema_version_of_new_store(db_path)) == latest_version() == len(MIGRATIONS)
    with closing(sqlite3.connect(db_path)) as conn, conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db_path.stat().st_mode & 0o007 == 0  # not readable by every local user


async def test_older_database_is_upgraded_and_keeps_its_rows(db_path: Path) -> None:
    old = await open_store(db_path, clock=Clock())
    async with old.write(ROOM) as tx:
        await tx.upsert_link(Link("l-1", hybrid_id="h-1"))
    await old.close()

    new = await open_store(db_path, clock=Clock(), migrations=(*MIGRATIONS, FUTURE))
    try:
        assert await new.schema_version() == NEXT
        link = await new.get_link(ROOM, "l-1")
        assert link is not None and link.hybrid_id == "h-1"
    finally:
        await new.close()
    assert applied_versions(db_path) == [*ALL_VERSIONS, NEXT]
    with closing(sqlite3.connect(db_path)) as conn, conn:
        assert conn.execute("SELECT note FROM links").fetchall() == [("",)]


async def test_a_failing_migration_leaves_the_previous_version_intact(db_path: Path) -> None:
    await (await open_store(db_path)).close()
    broken = Migration(
        NEXT, "CREATE TABLE half_done (x TEXT); INSERT INTO no_such_table VALUES (1);"
    )

    with pytest.raises(StoreError, match=f"migration to schema version {NEXT} failed") as info:
        await open_store(db_path, migrations=(*MIGRATIONS, broken))
    assert str(db_path) in str(info.value)

    assert applied_versions(db_path) == ALL_VERSIONS
    with closing(sqlite3.connect(db_path)) as conn, conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "half_done" not in tables


@pytest.mark.parametrize("readonly", [False, True])
async def test_database_from_a_newer_roomd_is_refused(db_path: Path, readonly: bool) -> None:
    await (await open_store(db_path, migrations=(*MIGRATIONS, FUTURE))).close()

    with pytest.raises(SchemaTooNew) as info:
        await open_store(db_path, readonly=readonly)

    message = str(info.value)
    assert str(db_path) in message
    assert f"schema version {NEXT}" in message
    assert f"supports (version {LATEST})" in message
    assert "upgrade roomd" in message
    assert applied_versions(db_path) == [*ALL_VERSIONS, NEXT]  # nothing rolled back or rewritten


async def test_readonly_open_of_an_older_database_says_how_to_upgrade(db_path: Path) -> None:
    await (await open_store(db_path)).close()
    with pytest.raises(StoreError, match=rf"older than this roomd's \({NEXT}\).*upgrade"):
        await open_store(db_path, readonly=True, migrations=(*MIGRATIONS, FUTURE))
    assert applied_versions(db_path) == ALL_VERSIONS


def test_readonly_open_does_not_create_a_missing_file(db_path: Path) -> None:
    with pytest.raises(StoreError, match="does not exist") as info:
        asyncio.run(open_store(db_path, readonly=True))
    assert str(db_path) in str(info.value)
    assert not db_path.exists()


def test_missing_directory_is_named(tmp_path: Path) -> None:
    path = tmp_path / "missing" / "state.db"
    expected = re.escape(f"directory {tmp_path / 'missing'} does not exist")
    with pytest.raises(StoreError, match=expected):
        asyncio.run(open_store(path))
    assert not path.parent.exists()


def test_another_applications_database_is_refused_untouched(db_path: Path) -> None:
    with closing(sqlite3.connect(db_path)) as conn, conn:
        conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
    before = db_path.read_bytes()

    with pytest.raises(StoreError, match=r"is not a roomd state database.*invoices"):
        asyncio.run(open_store(db_path))

    assert db_path.read_bytes() == before
    assert not Path(f"{db_path}-wal").exists()


def test_a_file_that_is_not_sqlite_is_refused(db_path: Path) -> None:
    db_path.write_bytes(b"this is a config file, not a database\n" * 200)
    with pytest.raises(StoreError, match=r"cannot read it \(file is not a database"):
        asyncio.run(open_store(db_path))
    with pytest.raises(StoreError, match=r"cannot read it \(file is not a database"):
        asyncio.run(open_store(db_path, readonly=True))


async def fill_a_store(path: Path) -> None:
    store = await open_store(path)
    try:
        for n in range(200):
            async with store.write(f"room-{n}@contoso.com") as tx:
                await tx.upsert_link(Link(f"l-{n}", hybrid_id=f"h-{n}", ical_uid=f"uid-{n}"))
    finally:
        await store.close()


def test_a_damaged_database_is_refused_with_what_to_do(db_path: Path) -> None:
    asyncio.run(fill_a_store(db_path))
    data = bytearray(db_path.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    data[page:] = b"\xa5" * (len(data) - page)  # every page but the schema page
    db_path.write_bytes(bytes(data))

    with pytest.raises(
        StoreError, match="malformed; the file is damaged; restore it from a backup"
    ):
        asyncio.run(open_store(db_path))


async def test_a_damaged_migration_history_is_refused(db_path: Path) -> None:
    await (await open_store(db_path)).close()
    with closing(sqlite3.connect(db_path)) as conn, conn:
        conn.execute("DELETE FROM schema_migrations WHERE version = 1")
    gap = ", ".join(str(v) for v in ALL_VERSIONS[1:])
    with pytest.raises(StoreError, match=rf"schema history is damaged: applied versions \[{gap}\]"):
        await open_store(db_path)


def test_an_empty_file_is_initialised_but_not_in_readonly_mode(db_path: Path) -> None:
    db_path.touch()
    with pytest.raises(StoreError, match="has not initialised it yet"):
        asyncio.run(open_store(db_path, readonly=True))
    assert asyncio.run(schema_version_of_new_store(db_path)) == LATEST


async def test_simultaneous_opens_of_a_new_file_apply_each_migration_once(db_path: Path) -> None:
    stores = await asyncio.gather(*(open_store(db_path) for _ in range(3)))
    for store in stores:
        await store.close()
    assert applied_versions(db_path) == ALL_VERSIONS


def test_migration_lists_must_be_numbered_without_gaps(db_path: Path) -> None:
    bad = (MIGRATIONS[0], Migration(3, "SELECT 1;"))
    with pytest.raises(ValueError, match=r"numbered 1..n without gaps, got \[1, 3\]"):
        asyncio.run(open_store(db_path, migrations=bad))


async def test_schema_1_hybrid_cursor_is_kept_and_marked_as_of_no_known_resource(
    db_path: Path,
) -> None:
    """Migration 2: cursors learn which Hybrid resource they belong to; old ones say ''."""
    from datetime import UTC, datetime

    when = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
    old = await open_store(db_path, migrations=MIGRATIONS[:1])
    async with old.write(ROOM) as tx:
        await tx._run(
            "INSERT INTO hybrid_cursor (room, modified_since, updated_at) VALUES (?, ?, ?)",
            (tx.room, "2026-11-01T09:00:00.000000Z", "2026-11-01T09:00:00.000000Z"),
        )
    await old.close()
    new = await open_store(db_path)
    try:
        cursor = await new.get_hybrid_cursor(ROOM)
        assert cursor is not None
        assert (cursor.modified_since, cursor.resource_id) == (when, "")
        async with new.write(ROOM) as tx:
            await tx.save_hybrid_cursor(when, "resource-1")
        cursor = await new.get_hybrid_cursor(ROOM)
        assert cursor is not None and cursor.resource_id == "resource-1"
    finally:
        await new.close()
