"""Throttling and faults (issue 3 item 7; graph-behaviour.md 4.1-4.2, checklist 7.7)."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from .conftest import ADELE, ROOM, World, fixture, same_shape


async def test_injected_429_with_fractional_retry_after(world: World) -> None:
    """concepts/throttling.md: 429 with Retry-After in seconds; an older sample shows 2.128."""
    world.sim.control.inject_fault(kind="status", status=429, retry_after="2.128", count=2)
    for _ in range(2):
        r = await world.graph.get(f"/users/{ROOM}/events")
        assert r.status_code == 429
        assert r.headers["Retry-After"] == "2.128"
        assert not same_shape(
            r.json(), fixture("synthesized/error-429-mailbox-concurrency.json"), subset=True
        )
    assert (await world.graph.get(f"/users/{ROOM}/events")).status_code == 200


@pytest.mark.parametrize("status", [503, 504])
async def test_injected_5xx(world: World, status: int) -> None:
    """concepts/errors.md: 503 (may carry Retry-After), 504 with 503."""
    world.sim.control.inject_fault(kind="status", status=status, retry_after="1")
    r = await world.graph.get(f"/users/{ROOM}/events")
    assert r.status_code == status
    assert r.json()["error"]["code"]
    assert (await world.graph.get(f"/users/{ROOM}/events")).status_code == 200


async def test_faults_can_target_one_mailbox(world: World) -> None:
    """graph-behaviour.md 4.2 and checklist 7.7 ("Injectable 503/504"), citing
    concepts/errors.md (503 "You may repeat the request after a delay"): a fault aimed at one
    mailbox leaves the others alone, and lasts until cleared."""
    world.sim.control.inject_fault(kind="status", status=503, mailbox=ROOM, count=None)
    assert (await world.graph.get(f"/users/{ADELE}/events")).status_code == 200
    assert (await world.graph.get(f"/users/{ROOM}/events")).status_code == 503
    assert (await world.graph.get(f"/users/{ROOM}/events")).status_code == 503
    world.sim.control.clear_faults()
    assert (await world.graph.get(f"/users/{ROOM}/events")).status_code == 200


async def test_dropped_connection(world: World) -> None:
    """best-practices-concept.md: retry over a new connection after a network failure."""
    world.sim.control.inject_fault(kind="drop")
    with pytest.raises(httpx.TransportError):
        await world.graph.get(f"/users/{ROOM}/events")
    assert (await world.graph.get(f"/users/{ROOM}/events")).status_code == 200


async def test_a_lost_answer_comes_after_the_work_is_done(world: World) -> None:
    """A request carried out whose answer never arrives (``kind="lose_answer"``): to the client
    it looks like a dropped connection, but the server did the work, so a retried DELETE
    meets 404. ``drop`` closes the connection before anything is done."""
    first, second = await world.book(subject="lost"), await world.book(subject="dropped")
    world.sim.control.inject_fault(kind="lose_answer", method="DELETE")
    with pytest.raises(httpx.TransportError):
        await world.graph.delete(f"/users/{ADELE}/events/{first['id']}")
    assert (await world.get(ADELE, first["id"])).status_code == 404
    world.sim.control.inject_fault(kind="drop", method="DELETE")
    with pytest.raises(httpx.TransportError):
        await world.graph.delete(f"/users/{ADELE}/events/{second['id']}")
    assert (await world.get(ADELE, second["id"])).status_code == 200


async def test_slow_response(world: World) -> None:
    """Issue 3 item 7 ("slow responses") and graph-behaviour.md 4.2: a slow answer
    is still an answer; clients must give their timeouts room (injected with ``kind="slow"``)."""
    world.sim.control.inject_fault(kind="slow", delay_s=0.3)
    t0 = time.perf_counter()
    r = await world.graph.get(f"/users/{ROOM}/events")
    assert r.status_code == 200
    assert time.perf_counter() - t0 >= 0.3


async def test_fifth_concurrent_request_on_a_mailbox_is_throttled(world: World) -> None:
    """throttling-limits.md: 4 concurrent requests per app and mailbox; the 429 body is
    ApplicationThrottled "…MailboxConcurrency…" (terraform-provider-outlook #21)."""
    world.sim.control.inject_fault(kind="slow", delay_s=0.4, mailbox=ROOM, count=4)
    slow = [asyncio.create_task(world.graph.get(f"/users/{ROOM}/events")) for _ in range(4)]
    await asyncio.sleep(0.15)
    fifth = await world.graph.get(f"/users/{ROOM}/events")
    other = await world.graph.get(f"/users/{ADELE}/events")
    assert [r.status_code for r in await asyncio.gather(*slow)] == [200] * 4
    assert fifth.status_code == 429
    assert fifth.json()["error"]["code"] == "ApplicationThrottled"
    assert "MailboxConcurrency" in fifth.json()["error"]["message"]
    assert float(fifth.headers["Retry-After"]) > 0
    assert other.status_code == 200


async def test_ten_minute_budget_then_recovery_on_the_clock(world: World) -> None:
    """throttling-limits.md: 10,000 requests per 10 minutes per app and mailbox (scaled down)."""
    world.sim.control.set_throttling(budget=3)
    codes = [(await world.graph.get(f"/users/{ROOM}/events")).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    throttled = await world.graph.get(f"/users/{ROOM}/events")
    assert 0 < float(throttled.headers["Retry-After"]) <= 600
    world.sim.control.advance_clock(601)
    world.graph.headers["Authorization"] = f"Bearer {world.sim.control.token()}"
    assert (await world.graph.get(f"/users/{ROOM}/events")).status_code == 200


async def test_token_endpoint_faults(world: World) -> None:
    world.sim.control.inject_fault(kind="status", status=503, target="token", retry_after="1")
    async with httpx.AsyncClient(verify=world.sim.ca.client_context()) as c:
        r = await c.post(
            f"{world.sim.authority}/oauth2/v2.0/token",
            data={
                "grant_type": "client_credentials",
                "client_id": world.sim.client_id,
                "client_secret": world.sim.client_secret,
                "scope": "https://graph.microsoft.com/.default",
            },
        )
    assert r.status_code == 503
    assert world.sim.client_secret not in r.text


def test_bad_fault_rules_are_refused_with_the_field_named(world: World) -> None:
    from roomd.sim.graph.control import ControlError

    with pytest.raises(ControlError, match="retry_after"):
        world.sim.control.inject_fault(kind="status", status=429, retry_after="soon")
    with pytest.raises(ControlError, match="kind"):
        world.sim.control.inject_fault(kind="explode")
