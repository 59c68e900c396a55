"""A delta round pages through nextLinks to a deltaLink; an expired token is reported distinctly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from roomd.graph import GraphClient, GraphError, SyncStateExpired
from roomd.graph.delta import DeltaReader
from roomd.sim.graph import GraphSimulator

from .conftest import BOARDROOM, HARBOUR, ROOM, ROOM_B, event_body, tomorrow_at, window
from .control import expire_delta_tokens, fail_next_batch_item, faults_left, requests_seen


async def _book_directly(graph: GraphClient, room: str, n: int, hour: int = 8) -> list[str]:
    """Events written straight into a room calendar (no RBA), enough to page through."""
    ids = []
    for i in range(n):
        created = await graph.events.create(
            room,
            event_body(f"block {i}", tomorrow_at(hour + i), room=None),
            idempotency_key=f"{room}-block-{i}",
        )
        ids.append(created["id"])
    return ids


async def test_initial_round_pages_to_a_delta_link(graph: GraphClient) -> None:
    ids = await _book_directly(graph, ROOM, 5)
    start, end = window()
    result = await graph.delta_round(
        ROOM, window_start=start, window_end=end, delta_link=None, page_size=2
    )
    assert result.pages >= 3
    assert {c["id"] for c in result.changes} >= set(ids)
    assert "$deltatoken=" in result.delta_link or "deltatoken" in result.delta_link.lower()


async def test_next_round_reports_only_what_changed(graph: GraphClient) -> None:
    ids = await _book_directly(graph, ROOM, 2)
    start, end = window()
    first = await graph.delta_round(ROOM, window_start=start, window_end=end, delta_link=None)
    quiet = await graph.delta_round(
        ROOM, window_start=start, window_end=end, delta_link=first.delta_link
    )
    assert quiet.changes == []
    await graph.events.delete(ROOM, ids[0])
    after = await graph.delta_round(
        ROOM, window_start=start, window_end=end, delta_link=quiet.delta_link
    )
    removed = [c for c in after.changes if "@removed" in c]
    assert [c["id"] for c in removed] == [ids[0]]


async def test_expired_delta_link_raises_sync_state_expired(
    sim: GraphSimulator, graph: GraphClient
) -> None:
    start, end = window()
    first = await graph.delta_round(ROOM, window_start=start, window_end=end, delta_link=None)
    expire_delta_tokens(sim, ROOM)
    with pytest.raises(SyncStateExpired) as caught:
        await graph.delta_round(
            ROOM, window_start=start, window_end=end, delta_link=first.delta_link
        )
    assert caught.value.status == 410
    assert caught.value.has_code("syncStateNotFound")


async def test_window_must_be_aware_and_ordered(graph: GraphClient) -> None:
    naive = datetime(2026, 1, 1)
    with pytest.raises(ValueError, match="window_start"):
        await graph.delta_round(ROOM, window_start=naive, window_end=naive, delta_link=None)
    later = datetime(2026, 1, 2, tzinfo=UTC)
    with pytest.raises(ValueError, match="window_end"):
        await graph.delta_round(
            ROOM, window_start=later, window_end=later - timedelta(days=1), delta_link=None
        )


async def test_idle_rooms_are_polled_in_one_batch_with_per_item_results(
    sim: GraphSimulator, graph: GraphClient
) -> None:
    rooms = [ROOM, ROOM_B, BOARDROOM, HARBOUR]
    start, end = window()
    links = {}
    for room in rooms:
        links[room] = (
            await graph.delta_round(room, window_start=start, window_end=end, delta_link=None)
        ).delta_link
    new_id = (await _book_directly(graph, ROOM_B, 1, hour=15))[0]
    expire_delta_tokens(sim, BOARDROOM)
    fail_next_batch_item(sim, mailbox=HARBOUR, status=429, retry_after="0.05")
    sent = requests_seen(sim)
    results = await graph.delta_rounds(links)
    assert requests_seen(sim) - sent == 2  # one $batch, and one more for the throttled item
    assert faults_left(sim) == 0
    assert set(results) == set(rooms)
    assert isinstance(results[BOARDROOM], SyncStateExpired)
    room_b = results[ROOM_B]
    assert not isinstance(room_b, Exception)
    assert [c["id"] for c in room_b.changes] == [new_id]
    for room in (ROOM, HARBOUR):
        quiet = results[room]
        assert not isinstance(quiet, Exception) and quiet.changes == []


async def test_empty_pages_and_duplicates_do_not_end_a_round_early(
    sim: GraphSimulator, graph: GraphClient
) -> None:
    sim.control.set_switches(delta_empty_pages=3, delta_duplicates=True)
    ids = await _book_directly(graph, ROOM, 3)
    start, end = window()
    result = await graph.delta_round(
        ROOM, window_start=start, window_end=end, delta_link=None, page_size=2
    )
    assert result.pages >= 4
    assert {c["id"] for c in result.changes} >= set(ids)


async def test_resync_required_is_also_sync_state_expired(
    sim: GraphSimulator, graph: GraphClient
) -> None:
    sim.control.set_switches(delta_resync_required=True)
    start, end = window()
    first = await graph.delta_round(ROOM, window_start=start, window_end=end, delta_link=None)
    expire_delta_tokens(sim, ROOM)
    with pytest.raises(SyncStateExpired) as caught:
        await graph.delta_round(
            ROOM, window_start=start, window_end=end, delta_link=first.delta_link
        )
    assert caught.value.has_code("resyncRequired")


async def test_stale_next_link_mid_round_is_sync_state_expired(
    sim: GraphSimulator, graph: GraphClient
) -> None:
    await _book_directly(graph, ROOM, 4)
    start, end = window()
    pages = DeltaReader(graph.http).pages(
        ROOM, window_start=start, window_end=end, delta_link=None, page_size=1
    )
    first = await anext(pages)
    assert first.next_link is not None
    expire_delta_tokens(sim, ROOM)
    with pytest.raises(SyncStateExpired):
        await anext(pages)
    await pages.aclose()


async def test_times_come_back_in_utc(graph: GraphClient) -> None:
    await _book_directly(graph, ROOM, 1)
    start, end = window()
    result = await graph.delta_round(ROOM, window_start=start, window_end=end, delta_link=None)
    item = result.changes[0]
    assert item["start"]["timeZone"] == "UTC" and item["end"]["timeZone"] == "UTC"


async def test_one_unusable_stored_link_fails_only_its_own_room(graph: GraphClient) -> None:
    """A link from another host or API version (e.g. base_url changed) must not take the
    other rooms of its batch down with it."""
    start, end = window()
    good = (
        await graph.delta_round(ROOM, window_start=start, window_end=end, delta_link=None)
    ).delta_link
    results = await graph.delta_rounds(
        {ROOM: good, ROOM_B: "https://graph.example.org/beta/users/x/calendarView/delta?t=1"}
    )
    assert isinstance(results[ROOM_B], GraphError)
    room = results[ROOM]
    assert not isinstance(room, Exception) and room.changes == []
