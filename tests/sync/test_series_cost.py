"""What a 52-week weekly series costs to sync each way, in requests (issue 8, "Measure": "how
many Graph requests a 52-week series costs to sync each way"), counted by roomd's own
``roomd_graph_requests_total`` and ``roomd_hybrid_requests_total`` (a ``$batch`` is one
request). The engine's rounds run in this process against both simulators (as the property
tests run them, tests/sync/test_properties.py), for the room alone, the room's booking
assistant answering between rounds as it does between polls; rounds run until one plans and
writes nothing, that last quiet round included. The first round of all (the empty room's
baseline) is run before the series is booked and not counted.

    .venv/bin/python -m pytest -p no:xdist -s tests/sync/test_series_cost.py

prints the figures; the bounds asserted are those measured (commit message), so a change that
makes a series cost more requests fails here and says by how much."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sync.test_properties import ROOM, World

from roomd import observe

ORGANIZER = "adelev@contoso.com"
LONDON = ZoneInfo("Europe/London")  # Room 4A's zone
WEEKS = 52
BOUNDS = {  # measured at this commit: (Graph, Hybrid) requests, the quiet round's included
    "outlook_to_hybrid": (5, 5),  # was 10 Graph with the page size in Prefer (10 a page)
    "hybrid_to_outlook": (9, 4),  # was 14 Graph
}


def requests() -> tuple[float, float]:
    def total(counter: Any) -> float:
        return sum(
            s.value
            for metric in counter.collect()
            for s in metric.samples
            if s.name.endswith("_total")
        )

    return total(observe.GRAPH_REQUESTS), total(observe.HYBRID_REQUESTS)


async def until_quiet(world: World) -> tuple[int, int, int]:
    """Rounds of the room (its booking assistant answering first) until one plans and writes
    nothing: (Graph requests, Hybrid requests, rounds)."""
    g0, h0 = requests()
    for rounds in range(1, 11):
        world.graph.control.run_rba()
        extra = await world.settle_round(ROOM)
        if not (extra["planned"] or extra["written"] or extra["write_failures"]):
            g1, h1 = requests()
            return round(g1 - g0), round(h1 - h0), rounds
    raise AssertionError("the room did not settle in 10 rounds")


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path, "outlook_wins")
    runner = asyncio.Runner()
    runner.run(w.start())
    w.graph.control.set_calendar_processing(ROOM, BookingWindowInDays=400)
    try:
        runner.run(until_quiet(w))  # the empty room's first round: its baseline
        w.runner = runner  # type: ignore[attr-defined]
        yield w
    finally:
        runner.run(w.stop())
        runner.close()


def first_start() -> datetime:
    now = datetime.now(UTC)
    return now.replace(hour=9, minute=0, second=0, microsecond=0) + timedelta(days=2)


def test_a_52_week_outlook_series_costs_few_requests_to_reach_hybrid(world: World) -> None:
    start = first_start()
    wall = start.astimezone(LONDON).strftime("%Y-%m-%dT%H:%M:%S")
    end = (start + timedelta(hours=1)).astimezone(LONDON).strftime("%Y-%m-%dT%H:%M:%S")
    body = {  # in the room's zone (a series in another gets a child for each week they differ)
        "subject": "Weekly, a year",
        "start": {"dateTime": wall, "timeZone": "GMT Standard Time"},
        "end": {"dateTime": end, "timeZone": "GMT Standard Time"},
        "location": {"displayName": ROOM, "locationEmailAddress": ROOM},
        "attendees": [{"emailAddress": {"address": ROOM}, "type": "resource"}],
        "recurrence": {
            "pattern": {
                "type": "weekly",
                "interval": 1,
                "daysOfWeek": [start.strftime("%A").lower()],
                "firstDayOfWeek": "monday",
            },
            "range": {
                "type": "numbered",
                "startDate": wall[:10],
                "numberOfOccurrences": WEEKS,
                "recurrenceTimeZone": "GMT Standard Time",
            },
        },
    }
    runner: asyncio.Runner = world.runner  # type: ignore[attr-defined]
    r = runner.run(world.graph_call("POST", f"/users/{ORGANIZER}/events", body))
    assert r.status_code == 201, r.text
    graph, hybrid, rounds = runner.run(until_quiet(world))
    series = [b for b in world.live_bookings(ROOM) if b.get("recurrence")]
    assert len(series) == 1 and "COUNT=52" in series[0]["recurrence"]["rrule"]
    print(
        f"\nOutlook -> Hybrid, {WEEKS}-week series: {graph} Graph + {hybrid} Hybrid requests, "
        f"{rounds} rounds (the last one quiet)"
    )
    bound = BOUNDS["outlook_to_hybrid"]
    assert graph <= bound[0] and hybrid <= bound[1], (graph, hybrid)


def test_a_52_week_hybrid_series_costs_few_requests_to_reach_outlook(world: World) -> None:
    start = first_start()
    world.hybrid.control.create_booking(
        world.hybrid_id(ROOM),
        start,
        start + timedelta(hours=1),
        member=ORGANIZER,
        summary="Weekly, a year",
        rrule=f"FREQ=WEEKLY;COUNT={WEEKS}",
    )
    runner: asyncio.Runner = world.runner  # type: ignore[attr-defined]
    graph, hybrid, rounds = runner.run(until_quiet(world))
    masters = [
        e
        for e in world.organizer_meetings()
        if e.get("type") == "seriesMaster" and e.get("subject") == "Weekly, a year"
    ]
    assert len(masters) == 1
    print(
        f"\nHybrid -> Outlook, {WEEKS}-week series: {graph} Graph + {hybrid} Hybrid requests, "
        f"{rounds} rounds (the last one quiet)"
    )
    bound = BOUNDS["hybrid_to_outlook"]
    assert graph <= bound[0] and hybrid <= bound[1], (graph, hybrid)
