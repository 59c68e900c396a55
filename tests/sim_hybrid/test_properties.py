"""Invariants that hold for every input: no double booking survives, paging never loses a
booking, and a series keeps its local wall-clock time. Pure state, no sockets needed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from roomd.sim.hybrid import ApiError, SimClock
from roomd.sim.hybrid.filters import booking_filter
from roomd.sim.hybrid.model import CancelReason
from roomd.sim.hybrid.paging import paginate
from roomd.sim.hybrid.payloads import parse_booking_body
from roomd.sim.hybrid.store import Store
from roomd.sim.hybrid.times import format_instant
from roomd.sim.tenant import default_tenant

ROOMS = ["64f0a1b2c3d4e5f6a7b8c901", "64f0a1b2c3d4e5f6a7b8c904"]
BASE = datetime(2027, 1, 4, tzinfo=UTC)
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def new_store() -> Store:
    return Store(default_tenant(), SimClock(frozen_at=datetime(2026, 11, 25, tzinfo=UTC)))


def body(room: str, start: datetime, minutes: int, **extra: Any) -> dict[str, Any]:
    return {
        "resourceId": room,
        "start": {"dateTime": format_instant(start)},
        "end": {"dateTime": format_instant(start + timedelta(minutes=minutes))},
        **extra,
    }


requests = st.lists(
    st.tuples(
        st.sampled_from(ROOMS),
        st.integers(min_value=0, max_value=96),  # quarter hours from BASE
        st.integers(min_value=1, max_value=12),  # length in quarter hours
        st.booleans(),  # cancel it right after, if it was accepted
    ),
    max_size=25,
)


@FAST
@given(requests)
def test_no_two_live_bookings_of_a_room_overlap(plan: list[tuple[str, int, int, bool]]) -> None:
    store = new_store()
    for room, slot, length, cancel in plan:
        start = BASE + timedelta(minutes=15 * slot)
        end = start + timedelta(minutes=15 * length)
        live = [b for b in store.bookings.values() if not b.canceled and b.resource_id == room]
        overlapping = any(b.start < end and start < b.end for b in live)
        try:
            made = store.create(
                parse_booking_body(body(room, start, 15 * length), patch=False),
                actor="t",
                source="api",
            )
        except ApiError as refused:
            assert refused.status == 409 and overlapping
            continue
        assert not overlapping
        if cancel:
            store.cancel(made.id, reason=CancelReason.MEMBER, actor="t")


def walk(store: Store, query: dict[str, str], between: Any) -> list[str]:
    seen: list[str] = []
    keep = booking_filter(query)
    cursor = None
    for page_no in range(1000):
        q = dict(query)
        if cursor:
            q["$cursorNext"] = cursor
        page = paginate(
            [b for b in store.bookings.values() if keep(b)],
            lambda b: (format_instant(b.modified_at), b.id),
            lambda b: b.to_json(),
            q,
        )
        assert len(page.results) <= min(int(query["$limit"]), 50)
        seen.extend(r["_id"] for r in page.results)
        cursor = page.cursor_next
        if cursor is None:
            return seen
        between(page_no)
    raise AssertionError("walk did not end")


@FAST
@given(
    count=st.integers(min_value=0, max_value=30),
    limit=st.integers(min_value=1, max_value=60),
    edits=st.lists(st.integers(min_value=0, max_value=29), max_size=10),
)
def test_paging_by_modified_at_never_loses_a_booking(
    count: int, limit: int, edits: list[int]
) -> None:
    store = new_store()
    made = [
        store.create(
            parse_booking_body(body(ROOMS[0], BASE + timedelta(hours=h), 30), patch=False),
            actor="t",
            source="api",
        )
        for h in range(count)
    ]
    query = {"$limit": str(limit), "modifiedAt[$gte]": "2000-01-01T00:00:00Z"}
    assert sorted(walk(store, query, lambda _: None)) == sorted(b.id for b in made)

    pending = [i for i in edits if i < count]

    def edit(_: int) -> None:
        if pending:
            target = made[pending.pop(0)]
            store.update(
                target.id, parse_booking_body({"summary": "edited"}, patch=True), actor="t"
            )

    seen = walk(store, query, edit)
    assert set(seen) == {b.id for b in made}


@FAST
@given(
    hour=st.integers(min_value=6, max_value=20),
    weeks=st.integers(min_value=2, max_value=40),
    start_week=st.integers(min_value=0, max_value=52),
    zone=st.sampled_from(["Europe/London", "America/New_York"]),
)
def test_weekly_series_keeps_its_local_time(
    hour: int, weeks: int, start_week: int, zone: str
) -> None:
    store = new_store()
    tz = ZoneInfo(zone)
    room = ROOMS[0] if zone == "Europe/London" else ROOMS[1]
    first = (datetime(2027, 1, 4, hour, tzinfo=tz) + timedelta(weeks=start_week)).astimezone(UTC)
    series = store.create(
        parse_booking_body(
            body(room, first, 60, recurrence={"rrule": f"FREQ=WEEKLY;COUNT={weeks}"}),
            patch=False,
        ),
        actor="t",
        source="api",
    )
    starts = [i.start for i in store.intervals(series)]
    assert len(starts) == weeks
    for start in starts:
        local = start.astimezone(tz)
        assert (local.hour, local.minute, local.weekday()) == (
            hour,
            0,
            first.astimezone(tz).weekday(),
        )


@FAST
@given(
    hour=st.integers(min_value=7, max_value=18),
    count=st.integers(min_value=1, max_value=12),
    removed=st.sets(st.integers(min_value=0, max_value=11), max_size=4),
    week=st.integers(min_value=0, max_value=12),
    shift=st.sampled_from([0, 0, 0, 1]),  # mostly on an occurrence's day
    at=st.integers(min_value=24, max_value=80),  # quarter hours: 06:00 to 20:00 UTC
    length=st.integers(min_value=1, max_value=8),
)
def test_one_off_is_refused_exactly_when_it_meets_a_remaining_occurrence(
    hour: int, count: int, removed: set[int], week: int, shift: int, at: int, length: int
) -> None:
    """Independent check: occurrences computed by wall-clock arithmetic in the room's zone,
    minus exdates; a one-off conflicts iff it overlaps one of them."""
    store = new_store()
    tz = ZoneInfo("Europe/London")
    first_local = datetime(2027, 2, 1, hour, tzinfo=tz)
    starts = [
        (first_local.replace(tzinfo=None) + timedelta(weeks=w)).replace(tzinfo=tz).astimezone(UTC)
        for w in range(count)
    ]
    exdates = [starts[i] for i in sorted(removed) if i < count]
    store.create(
        parse_booking_body(
            body(
                ROOMS[0],
                starts[0],
                60,
                recurrence={
                    "rrule": f"FREQ=WEEKLY;COUNT={count}",
                    "exdates": [format_instant(d) for d in exdates],
                },
            ),
            patch=False,
        ),
        actor="t",
        source="api",
    )
    start = datetime(2027, 2, 1, tzinfo=UTC) + timedelta(days=7 * week + shift, minutes=15 * at)
    end = start + timedelta(minutes=15 * length)
    expected = any(s < end and start < s + timedelta(hours=1) for s in starts if s not in exdates)
    try:
        store.create(
            parse_booking_body(body(ROOMS[0], start, 15 * length), patch=False),
            actor="t",
            source="api",
        )
        refused = False
    except ApiError as error:
        assert error.status == 409
        refused = True
    assert refused == expected
