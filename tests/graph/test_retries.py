"""Throttling and transient failures: Retry-After honoured, 429/503/504 retried, writes that
cannot be repeated safely are not, and never more than 4 requests at once per mailbox."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from roomd.graph import GraphClient, ServiceUnavailable, Throttled
from roomd.sim.graph import GraphSimulator

from .conftest import ORGANIZER, ROOM, config_for, event_body, metric, tomorrow_at
from .control import fail_next, faults_left, requests_seen, slow_down, throttled_by_sim


@pytest.mark.parametrize("status", [429, 503, 504])
async def test_transient_failures_are_retried_until_they_succeed(
    sim: GraphSimulator, graph: GraphClient, status: int
) -> None:
    fail_next(sim, status=status, times=2)
    before = requests_seen(sim)
    user = await graph.http.get_json(f"/users/{ROOM}", mailbox=ROOM)
    assert user["mail"].lower() == ROOM
    assert requests_seen(sim) - before == 3


async def test_retry_after_is_waited_for(sim: GraphSimulator, graph: GraphClient) -> None:
    await graph.http.get_json(f"/users/{ROOM}", mailbox=ROOM)  # token fetched beforehand
    throttled = metric("roomd_graph_throttled_total")
    fail_next(sim, status=429, times=1, retry_after="0.6")
    started = time.monotonic()
    await graph.http.get_json(f"/users/{ROOM}", mailbox=ROOM)
    waited = time.monotonic() - started
    assert waited >= 0.6
    assert waited < 0.6 + 2.0  # not the long exponential backoff either
    assert metric("roomd_graph_throttled_total") == throttled + 1
    assert metric("roomd_graph_requests_total", status="429") >= 1


async def test_too_long_retry_after_reaches_the_caller(
    sim: GraphSimulator, ca_bundle: Path
) -> None:
    async with GraphClient(config_for(sim, ca_bundle, max_retry_after=1.0)) as graph:
        fail_next(sim, status=429, times=1, retry_after="30")
        with pytest.raises(Throttled) as caught:
            await graph.http.get_json(f"/users/{ROOM}", mailbox=ROOM)
    assert caught.value.retry_after == 30.0


async def test_persistent_failure_gives_up_with_a_typed_error(
    sim: GraphSimulator, ca_bundle: Path
) -> None:
    async with GraphClient(config_for(sim, ca_bundle, retry_attempts=3)) as graph:
        fail_next(sim, status=503, times=10)
        before = requests_seen(sim)
        with pytest.raises(ServiceUnavailable) as caught:
            await graph.http.get_json(f"/users/{ROOM}", mailbox=ROOM)
    assert caught.value.status == 503
    assert requests_seen(sim) - before == 3


async def test_cancel_is_not_repeated_after_an_ambiguous_503(
    sim: GraphSimulator, graph: GraphClient
) -> None:
    created = await graph.events.create(
        ORGANIZER, event_body("Retro", tomorrow_at(9)), idempotency_key="retro-1"
    )
    fail_next(sim, status=503, times=2, method="POST")
    with pytest.raises(ServiceUnavailable):
        await graph.events.cancel(ORGANIZER, created["id"], comment="room no longer needed")
    assert faults_left(sim) == 1  # sent once: a repeat could mail every attendee twice


async def test_cancel_is_retried_after_a_429_because_graph_did_not_run_it(
    sim: GraphSimulator, graph: GraphClient
) -> None:
    created = await graph.events.create(
        ORGANIZER, event_body("Standup", tomorrow_at(10)), idempotency_key="standup-1"
    )
    fail_next(sim, status=429, times=1, retry_after="0.05")
    await graph.events.cancel(ORGANIZER, created["id"], comment="cancelled")


async def test_no_more_than_four_requests_at_once_per_mailbox(
    sim: GraphSimulator, graph: GraphClient
) -> None:
    await graph.http.get_json(f"/users/{ROOM}", mailbox=ROOM)
    throttled = metric("roomd_graph_throttled_total")
    sim_throttled = throttled_by_sim(sim)
    slow_down(sim, seconds=0.2)
    started = time.monotonic()
    await asyncio.gather(
        *(graph.http.get_json(f"/users/{ROOM}/events", mailbox=ROOM) for _ in range(12))
    )
    elapsed = time.monotonic() - started
    assert graph.http.mailbox_slots(ROOM).peak == 4
    assert throttled_by_sim(sim) == sim_throttled  # never over Outlook's 4 per mailbox
    assert elapsed >= 3 * 0.2  # 12 requests, 4 at a time
    assert metric("roomd_graph_throttled_total") == throttled  # the sim never had to say 429
