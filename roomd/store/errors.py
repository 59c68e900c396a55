"""Errors the state store raises.

Every message names the database file, so an operator reading one line in the journal knows which
file to look at, and says what to do when there is something to do. No message ever carries row
contents beyond identifiers (no payloads, no delta links), so secrets cannot leak through them.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path


class StoreError(Exception):
    """The state store cannot do what was asked; the message names the database path."""

    def __init__(self, path: Path | str, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"state store {self.path}: {problem}")


class SchemaTooNew(StoreError):
    """The database was written by a newer roomd than this one.

    Refusing is the only safe answer: an older roomd does not know what the newer tables and
    columns mean, and writing to them could corrupt the newer roomd's state.
    """

    def __init__(self, path: Path | str, found: int, supported: int) -> None:
        self.found = found
        self.supported = supported
        super().__init__(
            path,
            f"database schema version {found} is newer than this roomd supports "
            f"(version {supported}); upgrade roomd to a release that knows schema {found}",
        )


class LinkConflict(StoreError):
    """A link would give a booking, meeting or occurrence a second identity in the same room.

    Raised instead of silently overwriting, because two links for one thing is exactly how sync
    tools end up creating duplicates (design.md section 3, invariant 1).
    """


class UnknownIntent(StoreError):
    """``mark_outbox`` named an intent that this room's outbox does not hold."""


_HINTS = {
    sqlite3.SQLITE_CORRUPT: "the file is damaged; restore it from a backup",
    sqlite3.SQLITE_CANTOPEN: (
        "check that this user may read the file and write its directory "
        "(SQLite keeps -wal and -shm files next to it)"
    ),
    sqlite3.SQLITE_READONLY: "the file, its directory or the file system is read-only",
    sqlite3.SQLITE_BUSY: "another process holds the database lock",
    sqlite3.SQLITE_LOCKED: "another connection holds the database lock",
}


def sqlite_problem(exc: sqlite3.Error) -> str:
    """SQLite's own message, plus what to check when that message alone is cryptic.

    Uses the primary result code (https://www.sqlite.org/rescode.html), which Python exposes as
    ``sqlite_errorcode`` since 3.11; SQLite messages never contain row values.
    """
    code = getattr(exc, "sqlite_errorcode", None)
    hint = _HINTS.get(code & 0xFF) if isinstance(code, int) else None
    return f"{exc}; {hint}" if hint else str(exc)
