"""The change feed's cursor never loses a modification, whatever the timestamps do.

A model of the documented listing filter (``modifiedAt[$gte]``, millisecond stamps) against the
pure cursor logic; the same promise is checked against the simulator in test_client_feed.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from roomd.hybrid.feed import ChangeFeed
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
