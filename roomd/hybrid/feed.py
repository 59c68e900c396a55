"""Cursor arithmetic for the ``modifiedAt`` change feed, kept free of I/O so it can be proved.

Why an overlap and a memory: OfficeRnD's listing filter ``modifiedAt[$gte]`` has millisecond
timestamps, and several bookings (or several versions of one) can share one. A cursor that moved
strictly past the last timestamp seen would miss a booking written with that same timestamp after
the read; a server that stamps ``modifiedAt`` before its write commits can even make a change
appear a little *behind* the newest timestamp already read. So every read re-asks for the last
``overlap`` before the cursor, and versions already returned are remembered and not returned again.

A version is identified by ``(_id, modifiedAt, digest of the whole object)`` rather than by
``(_id, modifiedAt)`` alone: two writes to one booking inside one millisecond have equal
timestamps but different content, and the second must not be mistaken for the first.

Versions count as delivered only once the caller says it has stored the cursor (``confirm``):
a round that read the feed and then failed before saving (timeout, shutdown, a store error)
gets the same versions again next time, instead of losing them to the memory.

Why a cap at the walk's start: OfficeRnD does not promise that a listing is sorted by
``modifiedAt``, and a walk over several pages is not a snapshot. A booking changed during the walk
on a page already read is missed by that walk, while a later page may show a newer ``modifiedAt``
than that change. A cursor that jumped to the newest timestamp seen could then pass the missed
change by more than the overlap. So the cursor never moves past the server's time when the walk
began (``walk_start``): everything changed during the walk is read again next time.

The periodic listing is roomd's source of truth for Hybrid changes; webhooks are only a fast path.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from types import MappingProxyType

import orjson

from roomd.hybrid.model import HybridBooking

__all__ = ["ChangeFeed", "FeedWalk", "version_key", "walk_start"]

VersionKey = tuple[str, datetime | None, str]
_NONE_PENDING: Mapping[VersionKey, None] = MappingProxyType({})


def version_key(booking: HybridBooking) -> VersionKey:
    """What makes one observed version of a booking distinct from another."""
    # orjson: every booking a listing walks passes here (50,000 in a 1,000-room initial sync's
    # first walk), and the digest lives only in memory, so its bytes need match nothing stored
    blob = orjson.dumps(booking.raw, option=orjson.OPT_SORT_KEYS, default=str)
    digest = hashlib.blake2b(blob, digest_size=12).hexdigest()
    return (booking.id, booking.modified_at, digest)


def walk_start(date_header: str | None, local_now: datetime, overlap: timedelta) -> datetime:
    """The server's time when a walk began: the HTTP ``Date`` of its first page's answer (whole
    seconds, rounded down, so never later than the server's clock), or, when the answer has none
    or an unreadable one, roomd's clock at the start minus ``overlap``."""
    if date_header:
        try:
            served = parsedate_to_datetime(date_header)
        except (TypeError, ValueError, IndexError):
            served = None
        if served is not None:
            return served.replace(tzinfo=UTC) if served.tzinfo is None else served.astimezone(UTC)
    return local_now.astimezone(UTC) - overlap


class ChangeFeed:
    """Turns successive listings into "new versions since last time" and the next cursor.

    Use: ``since = feed.query_from(cursor)``; list with ``modifiedAt[$gte]=since`` (everything when
    None); ``changes, cursor = feed.absorb(cursor, listed, cap=walk_start(...))``; store the
    cursor, then ``feed.confirm()``. The memory only keeps versions that a later query can still
    return (newer than ``cursor - overlap``), so it stays small.
    """

    # slotted, and no dict of pending versions while none are: the Hybrid client keeps a feed
    # per room for the life of the process (bench/README.md, RSS)
    __slots__ = ("_pending", "_pending_cursor", "_seen", "overlap")

    def __init__(self, overlap: timedelta = timedelta(seconds=10)) -> None:
        if overlap < timedelta(0):
            raise ValueError(f"ChangeFeed: overlap must not be negative, found {overlap}")
        self.overlap = overlap
        self._seen: dict[VersionKey, None] = {}
        # reported by the last absorb, unconfirmed
        self._pending: Mapping[VersionKey, None] = _NONE_PENDING
        self._pending_cursor: datetime | None = None

    def query_from(self, cursor: datetime | None) -> datetime | None:
        """The ``modifiedAt[$gte]`` bound for a read after ``cursor`` (None: read everything)."""
        return None if cursor is None else cursor - self.overlap

    def absorb(
        self,
        cursor: datetime | None,
        listed: Iterable[HybridBooking],
        *,
        cap: datetime | None = None,
    ) -> tuple[list[HybridBooking], datetime | None]:
        """New versions among ``listed`` (in listing order) and the cursor for the next read.

        The cursor never moves backwards, never beyond the newest ``modifiedAt`` actually seen,
        and never past ``cap`` (the server's time when the walk began, see ``walk_start``), so
        neither a clock difference between roomd and the server nor a change made during a long
        walk over an unsorted listing can be skipped.
        """
        walk = self.walk(cursor)
        fresh = [booking for booking in listed if walk.take(booking)]
        return fresh, walk.end(cap=cap)

    def walk(self, cursor: datetime | None) -> FeedWalk:
        """``absorb`` a booking at a time, as a listing's pages arrive, so that its caller need
        not hold the whole listing (``FeedWalk``)."""
        return FeedWalk(self, cursor)

    def confirm(self) -> None:
        """The caller stored the cursor the last ``absorb`` returned: its versions are
        delivered and are not reported again."""
        self._seen.update(self._pending)
        self._pending = _NONE_PENDING
        self._forget_before(self.query_from(self._pending_cursor))

    def _forget_before(self, bound: datetime | None) -> None:
        if bound is None:
            return
        stale = [k for k in self._seen if k[1] is not None and k[1] < bound]  # always set
        if stale and len(stale) * 2 > len(self._seen):
            # most of it: a new dict, since an emptied one keeps its table (the organization
            # feed's first walk after a start remembers every booking the initial sync wrote)
            gone = set(stale)
            self._seen = {k: None for k in self._seen if k not in gone}
            return
        for key in stale:
            del self._seen[key]

    def _ended(self, pending: dict[VersionKey, None], cursor: datetime | None) -> None:
        # an unconfirmed earlier read: its versions are reported again
        self._pending = pending if pending else _NONE_PENDING
        self._pending_cursor = cursor

    def delivered(self, booking: HybridBooking) -> bool:
        """Whether this version of ``booking`` was reported and confirmed (a listing of the
        same feed would not report it again)."""
        return version_key(booking) in self._seen

    def __len__(self) -> int:
        return len(self._seen)


class FeedWalk:
    """One read of a ``ChangeFeed`` taken a booking at a time: ``take`` says whether a listed
    booking is a new version; ``end`` gives the next cursor and leaves the read to be confirmed,
    exactly as ``absorb`` of the same bookings would (``absorb`` is made of these)."""

    __slots__ = ("_cursor", "_feed", "_newest", "_pending")

    def __init__(self, feed: ChangeFeed, cursor: datetime | None) -> None:
        self._feed = feed
        self._cursor = cursor
        self._newest = cursor
        self._pending: dict[VersionKey, None] = {}

    def take(self, booking: HybridBooking) -> bool:
        """Whether ``booking`` is a version not reported before (nor earlier in this read)."""
        key = version_key(booking)
        if key in self._feed._seen or key in self._pending:
            return False
        stamp = booking.modified_at
        if stamp is None:
            return True  # without a timestamp it cannot be placed on the feed: always reported
        self._pending[key] = None
        if self._newest is None or stamp > self._newest:
            self._newest = stamp
        return True

    def end(self, *, cap: datetime | None = None) -> datetime | None:
        """The cursor for the next read (see ``ChangeFeed.absorb``); the feed's last read is now
        this one, to be confirmed."""
        newest, cursor = self._newest, self._cursor
        if cap is not None and newest is not None and newest > cap:
            newest = cap if cursor is None or cap > cursor else cursor
        self._feed._ended(self._pending, newest)
        return newest
