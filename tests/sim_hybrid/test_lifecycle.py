"""Starting and stopping: an ephemeral port, nothing left running afterwards."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from roomd.sim.hybrid import HybridSimulator
from roomd.sim.tls import LocalCA


async def test_stop_closes_the_port_and_every_task(ca: LocalCA) -> None:
    before = asyncio.all_tasks()
    sim = HybridSimulator(ca=ca, noshow_sweep_seconds=60)
    await sim.start()
    assert sim.base_url.startswith("https://127.0.0.1:")
    assert sim.token_url == f"{sim.base_url}/oauth/token"
    url = sim.base_url
    async with httpx.AsyncClient(verify=ca.client_context()) as http:
        assert (await http.get(f"{url}/_sim/clock")).status_code == 200
        await sim.stop()
        await sim.stop()  # a second stop is harmless
        with pytest.raises(httpx.ConnectError):
            await http.get(f"{url}/_sim/clock")
    assert asyncio.all_tasks() == before


async def test_base_url_before_start_says_what_to_do(ca: LocalCA) -> None:
    sim = HybridSimulator(ca=ca)
    with pytest.raises(RuntimeError, match="not started"):
        _ = sim.base_url


async def test_two_simulators_get_different_ports(ca: LocalCA) -> None:
    async with HybridSimulator(ca=ca) as one, HybridSimulator(ca=ca) as two:
        assert one.base_url != two.base_url
        assert one.client_secret != two.client_secret
