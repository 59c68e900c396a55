"""API faults a client must survive: 429 with Retry-After, 5xx, slow answers."""

from __future__ import annotations

import time

import httpx

from roomd.sim.hybrid import HybridSimulator

from .conftest import Client


async def test_429_carries_retry_after_then_service_resumes(
    sim: HybridSimulator, client: Client
) -> None:
    sim.control.set_faults(api_429=2, retry_after_seconds=7)
    for _ in range(2):
        answer = await client.call("GET", "/resources")
        assert answer.status_code == 429
        assert answer.headers["Retry-After"] == "7"
        assert answer.json()["code"] == "rate_limited"
    assert (await client.call("GET", "/resources")).status_code == 200


async def test_5xx_fault_answers_the_chosen_status_once(
    sim: HybridSimulator, client: Client
) -> None:
    sim.control.set_faults(api_5xx=1, api_5xx_status=502)
    assert (await client.call("GET", "/bookings")).status_code == 502
    assert (await client.call("GET", "/bookings")).status_code == 200


async def test_faults_can_target_one_path(sim: HybridSimulator, client: Client) -> None:
    sim.control.set_faults(api_5xx=1, api_path_contains="/members")
    assert (await client.call("GET", "/resources")).status_code == 200
    assert (await client.call("GET", "/members")).status_code == 503


async def test_slow_fault_delays_the_answer(sim: HybridSimulator, client: Client) -> None:
    sim.control.set_faults(api_slow=1, api_slow_seconds=0.3)
    began = time.monotonic()
    assert (await client.call("GET", "/resources")).status_code == 200
    assert time.monotonic() - began >= 0.3


async def test_token_endpoint_fault(sim: HybridSimulator, client: Client) -> None:
    sim.control.set_faults(token_5xx=1)
    answer = await client.http.post(sim.token_url, data={"grant_type": "client_credentials"})
    assert answer.status_code == 503
    await client.login()  # the next attempt works


async def test_faults_are_switched_over_http(sim: HybridSimulator, client: Client) -> None:
    http: httpx.AsyncClient = client.http
    answer = await http.put(f"{sim.base_url}/_sim/faults", json={"api_429": 1})
    assert answer.status_code == 200 and answer.json()["api_429"] == 1
    assert (await client.call("GET", "/resources")).status_code == 429
    refused = await http.put(f"{sim.base_url}/_sim/faults", json={"api_teapot": 1})
    assert refused.status_code == 400
    assert "api_teapot" in refused.json()["message"]
    await http.put(f"{sim.base_url}/_sim/faults", json={"api_5xx": 3})
    assert (await http.delete(f"{sim.base_url}/_sim/faults")).status_code == 204
    assert (await client.call("GET", "/resources")).status_code == 200
