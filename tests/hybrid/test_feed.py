"""The change feed's cursor never loses a modification, whatever the timestamps do.

A model of the documented listing filter (``modifiedAt[$gte]``, millisecond stamps) against the
pure cursor logic, in two forms: reads that are snapshots in ``modifiedAt`` order, and walks over
pages in no promised order while bookings change between the pages. The same promise is checked
against the simulator in test_client_feed.py.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from roomd.hybrid.feed import ChangeFeed, walk_start
from roomd.hybrid.model import HybridBooking, format_datetime, parse_booking

OVERLAP = timedelta(seconds=2)
T0 = datetime(2026, 11, 25, 9, tzinfo=UTC)


def _booking(ident: str, stamp: datetime, version: int) -> HybridBooking:
    return parse_booking(
        {
            "_id": ident,
            "resourceId": "room",
            "start": {"dateTime": "2026-11-26T09:00:00Z"},
            "end": {"dateTime": "2026-11-26T10:00:00Z"},
            "summary": f"v{version}",
            "modifiedAt": format_datetime(stamp),
        }
    )


# A step: modify booking `ident` after the clock moved `advance_ms` (0: an equal timestamp), the
# server stamping it up to `lag_ms` in the past (stamped before commit), or read the feed.
modify = st.tuples(
    st.just("modify"),
    st.sampled_from(["a", "b", "c"]),
    st.integers(0, 3),
    st.integers(0, int(OVERLAP.total_seconds() * 1000)),
)
read = st.tuples(st.just("read"), st.just(""), st.just(0), st.just(0))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(modify, read), max_size=40))
def test_every_modification_is_seen_exactly_once(steps: list[tuple[str, str, int, int]]) -> None:
    feed = ChangeFeed(OVERLAP)
    server: dict[str, HybridBooking] = {}
    version = 0
    now = T0
    cursor: datetime | None = None
    delivered: dict[str, Any] = {}
    seen_versions: list[str] = []
    for kind, ident, advance_ms, lag_ms in [*steps, ("read", "", 0, 0)]:
        if kind == "modify":
            now += timedelta(milliseconds=advance_ms)
            version += 1
            server[ident] = _booking(ident, max(T0, now - timedelta(milliseconds=lag_ms)), version)
            continue
        since = feed.query_from(cursor)
        listed = [b for b in server.values() if since is None or b.modified_at >= since]  # type: ignore[operator]
        changes, cursor = feed.absorb(cursor, listed)
        feed.confirm()
        for b in changes:
            seen_versions.append(b.summary or "")
            delivered[b.id] = b.summary
        # Every booking's current version has been delivered by now ...
        assert delivered == {i: b.summary for i, b in server.items()}
    # ... and no version was delivered twice.
    assert len(seen_versions) == len(set(seen_versions))


# Steps of a walk that is not a snapshot: `page` reads the next 1-3 places of the walk under way
# (starting a walk when none is), `modify` writes between pages; each walk lists in an order of
# its own that need not follow modifiedAt, and a booking created during it takes a random place.
page = st.tuples(st.just("page"), st.just(""), st.integers(1, 3), st.just(0))


class Walk:
    """One listing walk: the server's time when it began, its order, and what it has read."""

    def __init__(self, started: datetime, order: list[str], since: datetime | None) -> None:
        self.started = started
        self.order = order
        self.since = since
        self.at = 0
        self.listed: list[HybridBooking] = []
        self.versions_at_start: dict[str, str | None] = {}


@settings(max_examples=500, deadline=None)
@given(st.lists(st.one_of(modify, page), max_size=60), st.randoms(use_true_random=False))
def test_a_walk_over_an_unsorted_listing_misses_no_write_made_during_it(
    steps: list[tuple[str, str, int, int]], rng: random.Random
) -> None:
    feed = ChangeFeed(OVERLAP)
    server: dict[str, HybridBooking] = {}
    version = 0
    now = T0
    cursor: datetime | None = None
    delivered: dict[str, str | None] = {}
    seen_versions: list[str] = []
    walk: Walk | None = None

    def start() -> Walk:
        order = list(server)
        rng.shuffle(order)
        # the Date header of the first page: whole seconds, rounded down
        w = Walk(now.replace(microsecond=0), order, feed.query_from(cursor))
        w.versions_at_start = {i: b.summary for i, b in server.items()}
        return w

    def finish(w: Walk) -> None:
        nonlocal cursor
        changes, cursor = feed.absorb(cursor, w.listed, cap=w.started)
        assert cursor is None or cursor <= w.started
        feed.confirm()
        for b in changes:
            seen_versions.append(b.summary or "")
            delivered[b.id] = b.summary
        # Every version current when the walk began has been delivered, or a later one.
        for ident, summary in w.versions_at_start.items():
            assert _number(delivered.get(ident)) >= _number(summary), (ident, delivered)

    def read(w: Walk, places: int) -> None:
        for ident_at in w.order[w.at : w.at + places]:
            current = server[ident_at]
            if w.since is None or current.modified_at >= w.since:  # type: ignore[operator]
                w.listed.append(current)
        w.at += places

    for kind, ident, n, lag_ms in steps:
        if kind == "modify":
            now += timedelta(milliseconds=n * 700)  # a few modifies outlast the overlap
            version += 1
            if ident not in server and walk is not None:
                walk.order.insert(rng.randint(0, len(walk.order)), ident)
            server[ident] = _booking(ident, max(T0, now - timedelta(milliseconds=lag_ms)), version)
            continue
        if walk is None:
            walk = start()
        read(walk, n)
        if walk.at >= len(walk.order):
            finish(walk)
            walk = None
    if walk is not None:
        read(walk, len(walk.order))
        finish(walk)
    # Nothing changes any more: one more walk brings every booking up to date.
    last = start()
    read(last, len(last.order))
    finish(last)
    assert delivered == {i: b.summary for i, b in server.items()}
    assert len(seen_versions) == len(set(seen_versions))


def _number(summary: str | None) -> int:
    return -1 if summary is None else int(summary.removeprefix("v"))


def test_a_change_on_a_page_already_read_is_read_again_next_time() -> None:
    """The walk began at T0; a booking on its first page changed a second later, and another on
    its last page a minute later. Jumping to that minute would leave the first change more than
    the overlap behind the next read."""
    feed = ChangeFeed(OVERLAP)
    a0 = _booking("a", T0 - timedelta(minutes=5), 1)
    z1 = _booking("z", T0 + timedelta(minutes=1), 2)
    changes, cursor = feed.absorb(None, [a0, z1], cap=T0)
    assert changes == [a0, z1] and cursor == T0
    feed.confirm()
    a1 = _booking("a", T0 + timedelta(seconds=1), 3)
    since = feed.query_from(cursor)
    assert since is not None
    listed = [b for b in (a1, z1) if b.modified_at >= since]  # type: ignore[operator]
    changes, _ = feed.absorb(cursor, listed, cap=T0 + timedelta(minutes=2))
    assert changes == [a1]  # and z1, delivered before, is not reported again


def test_the_cap_never_moves_the_cursor_backwards() -> None:
    feed = ChangeFeed(OVERLAP)
    later = T0 + timedelta(minutes=1)
    _, cursor = feed.absorb(later, [_booking("a", later + timedelta(seconds=5), 1)], cap=T0)
    assert cursor == later
    _, cursor = feed.absorb(None, [], cap=T0)
    assert cursor is None  # nothing seen: the next read still lists everything


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Wed, 25 Nov 2026 09:00:07 GMT", T0 + timedelta(seconds=7)),
        ("Wed, 25 Nov 2026 10:00:07 +0100", T0 + timedelta(seconds=7)),
        (None, T0 + timedelta(minutes=1) - OVERLAP),
        ("", T0 + timedelta(minutes=1) - OVERLAP),
        ("yesterday", T0 + timedelta(minutes=1) - OVERLAP),
    ],
)
def test_the_walk_starts_at_the_servers_date_or_roomds_clock_less_the_overlap(
    header: str | None, expected: datetime
) -> None:
    assert walk_start(header, T0 + timedelta(minutes=1), OVERLAP) == expected


def test_memory_stays_bounded_as_time_moves_on() -> None:
    feed = ChangeFeed(OVERLAP)
    cursor = None
    for minute in range(200):
        stamp = T0 + timedelta(minutes=minute)
        _, cursor = feed.absorb(cursor, [_booking(f"id{minute}", stamp, minute)])
        feed.confirm()
    assert len(feed) <= 2


def test_an_unconfirmed_read_is_reported_again() -> None:
    """A round that read the feed but failed before storing the cursor loses nothing."""
    feed = ChangeFeed(OVERLAP)
    a = _booking("a", T0, 1)
    first, cursor = feed.absorb(None, [a])
    assert first == [a]
    again, _ = feed.absorb(None, [a])  # the stored cursor is still None: not confirmed
    assert again == [a]
    feed.confirm()
    later, _ = feed.absorb(cursor, [a])
    assert later == []
