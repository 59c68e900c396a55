"""Throttling and transient failures: Retry-After honoured, 429/503/504 retried, writes that
cannot be repeated safely are not, and never more than 4 requests at once per mailbox."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from roomd.graph import AuthError, GraphClient, ServiceUnavailable, Throttled
from roomd.sim.graph import GraphSimulator

from .conftest import (
    BOARDROOM,
    HARBOUR,
    ORGANIZER,
    ROOM,
    ROOM_B,
    config_for,
    event_body,
    metric,
    tomorrow_at,
)
from .control import (
    drop_next,
    fail_next,
    faults_left,
    requests_seen,
    slow_down,
    throttled_by_sim,
    tokens_issued,
)


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
    assert graph.http.mailbox_peak == 4
    # the limit lives only while requests hold or wait for it: none is kept per mailbox read
    assert graph.http.mailbox_limits() == 0
    assert throttled_by_sim(sim) == sim_throttled  # never over Outlook's 4 per mailbox
    assert elapsed >= 3 * 0.2  # 12 requests, 4 at a time
    assert metric("roomd_graph_throttled_total") == throttled  # the sim never had to say 429


async def test_dropped_connection_on_a_read_is_retried(
    sim: GraphSimulator, graph: GraphClient
) -> None:
    await graph.http.get_json(f"/users/{ROOM}", mailbox=ROOM)
    drop_next(sim, times=1)
    user = await graph.http.get_json(f"/users/{ROOM}", mailbox=ROOM)
    assert user["mail"].lower() == ROOM
    assert faults_left(sim) == 0


async def test_create_whose_answer_never_came_is_retried_into_one_meeting(
    sim: GraphSimulator, ca_bundle: Path
) -> None:
    async with GraphClient(config_for(sim, ca_bundle, read_timeout=0.3)) as graph:
        await graph.http.get_json(f"/users/{ORGANIZER}", mailbox=ORGANIZER)
        # The first POST is answered after the client gave up (the server still creates the
        # event); then a 504 and a dropped connection before the create gets through.
        sim.control.inject_fault(kind="slow", delay_s=0.6, count=1, method="POST")
        fail_next(sim, status=504, times=1, method="POST")
        drop_next(sim, times=1, method="POST")
        created = await graph.events.create(
            ORGANIZER, event_body("Kick-off", tomorrow_at(14), room=None), idempotency_key="ko-1"
        )
        await asyncio.sleep(0.6)  # let the abandoned first POST finish on the server
    # after each ambiguous failure the client looked for its tag before posting again, so it
    # may stop as soon as the first POST's event shows up (graph-behaviour.md 2.3)
    kick_offs = [e for e in sim.control.events(ORGANIZER) if e["subject"] == "Kick-off"]
    assert [e["id"] for e in kick_offs] == [created["id"]]


async def test_second_401_is_an_auth_error_not_a_loop(
    sim: GraphSimulator, graph: GraphClient
) -> None:
    await graph.http.get_json(f"/users/{ROOM}", mailbox=ROOM)
    issued = tokens_issued(sim)
    # Graph keeps refusing, whatever the token (e.g. the app's consent was withdrawn)
    sim.control.inject_fault(
        kind="status",
        status=401,
        code="InvalidAuthenticationToken",
        message="Access token validation failure.",
        count=None,
    )
    with pytest.raises(AuthError) as caught:
        await graph.http.get_json(f"/users/{ROOM}", mailbox=ROOM)
    assert caught.value.status == 401
    assert caught.value.code == "InvalidAuthenticationToken"
    assert tokens_issued(sim) == issued + 1  # one refresh, then give up
    # and Graph keeps refusing: more requests do not hammer the token endpoint
    for _ in range(5):
        with pytest.raises(AuthError):
            await graph.http.get_json(f"/users/{ROOM}", mailbox=ROOM)
    assert tokens_issued(sim) == issued + 1


async def test_overall_limit_spans_mailboxes(sim: GraphSimulator, ca_bundle: Path) -> None:
    async with GraphClient(config_for(sim, ca_bundle, max_concurrent=2)) as graph:
        await graph.http.get_json(f"/users/{ROOM}", mailbox=ROOM)
        slow_down(sim, seconds=0.1)
        rooms = [ROOM, ROOM_B, BOARDROOM, HARBOUR] * 2
        await asyncio.gather(*(graph.http.get_json(f"/users/{r}/events", mailbox=r) for r in rooms))
        assert graph.http.total.peak == 2


async def test_a_throttled_mailbox_is_left_alone_for_its_retry_after(
    sim: GraphSimulator, graph: GraphClient
) -> None:
    await graph.http.get_json(f"/users/{ROOM}", mailbox=ROOM)
    fail_next(sim, status=429, times=1, retry_after="0.8")
    first = asyncio.create_task(graph.http.get_json(f"/users/{ROOM}/events", mailbox=ROOM))
    await asyncio.sleep(0.15)  # the first request has been throttled by now

    async def timed(mailbox: str) -> float:
        started = time.monotonic()
        await graph.http.get_json(f"/users/{mailbox}", mailbox=mailbox)
        return time.monotonic() - started

    same, other = await asyncio.gather(timed(ROOM), timed(ROOM_B))
    await first
    assert same >= 0.5  # waited out the rest of the mailbox's Retry-After
    assert other < same  # another mailbox was not held


async def test_a_lost_create_is_found_by_its_tag_even_where_graph_would_not_dedupe(
    sim: GraphSimulator, ca_bundle: Path
) -> None:
    """What Graph answers to a repeated transactionId is undocumented (graph-behaviour.md
    2.3): with the simulator's dedupe switched off, only the search by roomd's tag prevents a
    second meeting after an answer that never came."""
    sim.control.set_switches(transaction_id_dedupe=False)
    async with GraphClient(config_for(sim, ca_bundle, read_timeout=0.3)) as graph:
        await graph.http.get_json(f"/users/{ORGANIZER}", mailbox=ORGANIZER)
        sim.control.inject_fault(kind="slow", delay_s=0.4, count=1, method="POST")
        created = await graph.events.create(
            ORGANIZER, event_body("Retro", tomorrow_at(16), room=None), idempotency_key="retro-1"
        )
        await asyncio.sleep(0.5)
    retros = [e for e in sim.control.events(ORGANIZER) if e["subject"] == "Retro"]
    assert [e["id"] for e in retros] == [created["id"]]
