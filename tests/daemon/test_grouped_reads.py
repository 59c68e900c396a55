"""Grouped ticks: idle rooms are read together (their delta GETs in ``$batch``, one Hybrid listing
for the organization), and a room that shows anything still gets a whole round of its own, with
its record and ``room_round`` line, within the poll interval."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from support.sync_world import ADELE, ROOM, SyncWorld, at, sync_world, wait_for

from roomd import ticks
from roomd.store import DeltaState
from roomd.sync.polling import plan_poll


@pytest.fixture
def world(tmp_path: Path) -> Iterator[SyncWorld]:
    with sync_world(tmp_path) as w:
        yield w


def test_idle_reads_are_grouped_and_changes_on_either_side_get_a_whole_round(
    world: SyncWorld,
) -> None:
    daemon = world.start(poll_interval=1)
    # after the first rounds, an idle room's read is logged as its round, marked grouped
    grouped = daemon.wait_log(
        lambda x: x.get("event") == "room_round" and x.get("room") == ROOM and x.get("grouped"),
        timeout=20,
    )
    assert grouped["outcome"] == "ok" and grouped["inbound"] == 0

    mark = daemon.mark()
    meeting = world.book(ADELE, at(9), subject="Outlook side")
    line = daemon.wait_log(
        lambda x: x.get("event") == "room_round" and x.get("room") == ROOM and x.get("inbound"),
        since=mark,
        timeout=20,
    )
    assert not line.get("grouped") and line["outcome"] == "ok"
    wait_for(
        lambda: any(b.get("reference") == meeting["iCalUId"] for b in world.live_bookings()),
        "the Outlook meeting in Hybrid",
    )

    mark = daemon.mark()
    world.hybrid_book(ADELE, at(13), summary="Hybrid side")  # no webhook: the listing finds it
    line = daemon.wait_log(
        lambda x: x.get("event") == "room_round" and x.get("room") == ROOM and x.get("outbound"),
        since=mark,
        timeout=20,
    )
    assert not line.get("grouped") and line["outcome"] == "ok"
    wait_for(
        lambda: any(e.get("subject") == "Hybrid side" for e in world.live_events(ADELE)),
        "the Hybrid booking in Outlook",
    )


def test_every_room_has_one_slice_and_slices_are_about_a_second() -> None:
    assert ticks.slices_for(1) == 1
    assert ticks.slices_for(30) == 30
    assert ticks.slices_for(3600) == ticks.MAX_SLICES
    rooms = [f"room{i}@contoso.com" for i in range(3000)]
    counts = [0] * 30
    for room in rooms:
        index = ticks.slice_of(room, 30)
        assert index == ticks.slice_of(room.upper(), 30)  # a mailbox's case does not move it
        counts[index] += 1
    assert min(counts) > 3000 / 30 / 2  # spread over the interval, not bunched


def test_only_rooms_whose_round_would_begin_with_a_plain_delta_read_are_batched() -> None:
    day = datetime(2026, 12, 7, tzinfo=UTC)
    window = (day, day.replace(day=20))

    def state(room: str, *, start: datetime = day, complete: bool = True) -> DeltaState:
        return DeltaState(
            room, start, window[1], f"https://graph/{room}", updated_at=day, complete=complete
        )

    deltas = {
        "idle": state("idle"),
        "old-window": state("old-window", start=day.replace(day=6)),
        "paging": state("paging", complete=False),
        "flagged": state("flagged"),
        "owed": state("owed"),
        "breaker": state("breaker"),
    }
    flags = {"flagged": {"full": "1"}, "breaker": {"breaker": "held"}}
    plan = plan_poll([*deltas, "new"], window, deltas, flags, {"owed"})
    assert plan.batch == {"idle": "https://graph/idle", "breaker": "https://graph/breaker"}
    assert plan.whole == {"old-window", "paging", "flagged", "owed", "new"}
