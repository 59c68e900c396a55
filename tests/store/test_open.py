"""Opening the database: new files, upgrades, databases from a newer roomd, and files that are
not roomd's. Each refusal is one clear line naming the file."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from roomd.store import (
    MIGRATIONS,
    Link,
    Migration,
    SchemaTooNew,
    StoreError,
    latest_version,
    open_store,
)

from .conftest import ROOM, Clock

MIGRATION_2 = Migration(
    2,
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

    new = await open_store(db_path, clock=Clock(), migrations=(*MIGRATIONS, MIGRATION_2))
    try:
        assert await new.schema_version() == 2
        link = await new.get_link(ROOM, "l-1")
        assert link is not None and link.hybrid_id == "h-1"
    finally:
        await new.close()
    assert applied_versions(db_path) == [1, 2]
    with closing(sqlite3.connect(db_path)) as conn, conn:
        assert conn.execute("SELECT note FROM links").fetchall() == [("",)]


async def test_a_failing_migration_leaves_the_previous_version_intact(db_path: Path) -> None:
    await (await open_store(db_path)).close()
    broken = Migration(2, "CREATE TABLE half_done (x TEXT); INSERT INTO no_such_table VALUES (1);")

    with pytest.raises(StoreError, match="migration to schema version 2 failed") as info:
        await open_store(db_path, migrations=(*MIGRATIONS, broken))
    assert str(db_path) in str(info.value)

    assert applied_versions(db_path) == [1]
    with closing(sqlite3.connect(db_path)) as conn, conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "half_done" not in tables


@pytest.mark.parametrize("readonly", [False, True])
async def test_database_from_a_newer_roomd_is_refused(db_path: Path, readonly: bool) -> None:
    await (await open_store(db_path, migrations=(*MIGRATIONS, MIGRATION_2))).close()

    with pytest.raises(SchemaTooNew) as info:
        await open_store(db_path, readonly=readonly)

    message = str(info.value)
    assert str(db_path) in message
    assert "schema version 2" in message
    assert "supports (version 1)" in message
    assert "upgrade roomd" in message
    assert applied_versions(db_path) == [1, 2]  # nothing rolled back or rewritten


async def test_readonly_open_of_an_older_database_says_how_to_upgrade(db_path: Path) -> None:
    await (await open_store(db_path)).close()
    with pytest.raises(StoreError, match=r"older than this roomd's \(2\).*upgrade"):
        await open_store(db_path, readonly=True, migrations=(*MIGRATIONS, MIGRATION_2))
    assert applied_versions(db_path) == [1]


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
        conn.execute("INSERT INTO schema_migrations VALUES (3, '2026-11-25T09:00:00.000000Z')")
    with pytest.raises(StoreError, match=r"schema history is damaged: applied versions \[1, 3\]"):
        await open_store(db_path)


def test_an_empty_file_is_initialised_but_not_in_readonly_mode(db_path: Path) -> None:
    db_path.touch()
    with pytest.raises(StoreError, match="has not initialised it yet"):
        asyncio.run(open_store(db_path, readonly=True))
    assert asyncio.run(schema_version_of_new_store(db_path)) == 1


async def test_simultaneous_opens_of_a_new_file_apply_each_migration_once(db_path: Path) -> None:
    stores = await asyncio.gather(*(open_store(db_path) for _ in range(3)))
    for store in stores:
        await store.close()
    assert applied_versions(db_path) == [1]


def test_migration_lists_must_be_numbered_without_gaps(db_path: Path) -> None:
    bad = (*MIGRATIONS, Migration(3, "SELECT 1;"))
    with pytest.raises(ValueError, match=r"numbered 1..n without gaps, got \[1, 3\]"):
        asyncio.run(open_store(db_path, migrations=bad))
