"""Fixtures for the Hybrid client and receiver tests: real servers on 127.0.0.1, ephemeral ports.

The simulator is the real one (``roomd.sim.hybrid``) over HTTPS; roomd's client trusts its CA
through ``ca_bundle`` exactly as a deployment would trust a private CA. What the fixtures build
lives in ``support.hybrid_world``, shared with the simulator's own tests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from support.hybrid_world import (
    BOARDROOM,
    FAST_RETRY,
    HARBOUR,
    NOW,
    ROOM_4A,
    ROOM_4B,
    DropProxy,
    Receiver,
    drop_proxy_for,
    make_config,
    receivers,
    running_hybrid_sim,
)

from roomd.hybrid import HybridClient
from roomd.sim.hybrid import DeliveryPolicy, HybridSimulator
from roomd.sim.tls import LocalCA

__all__ = [
    "BOARDROOM",
    "FAST_RETRY",
    "HARBOUR",
    "NOW",
    "ROOM_4A",
    "ROOM_4B",
    "DropProxy",
    "Receiver",
    "make_config",
]

# Few, quick redeliveries; a short hold for the reorder fault.
FAST_DELIVERY = DeliveryPolicy(
    max_attempts=2, retry_base_seconds=0.02, timeout_seconds=2, reorder_hold_seconds=0.3
)


@pytest.fixture(scope="session")
def ca() -> Iterator[LocalCA]:
    yield LocalCA()


@pytest.fixture
def ca_bundle(ca: LocalCA, tmp_path: Path) -> Path:
    return ca.write_ca_bundle(tmp_path / "hybrid-ca.pem")


@pytest.fixture
async def sim(ca: LocalCA) -> AsyncIterator[HybridSimulator]:
    async with running_hybrid_sim(ca, FAST_DELIVERY) as simulator:
        yield simulator


@pytest.fixture
async def hybrid(sim: HybridSimulator, ca_bundle: Path) -> AsyncIterator[HybridClient]:
    async with HybridClient(make_config(sim, ca_bundle)) as client:
        yield client


@pytest.fixture
async def drop_proxy(sim: HybridSimulator, ca: LocalCA) -> AsyncIterator[DropProxy]:
    async with drop_proxy_for(sim, ca) as proxy:
        yield proxy


@pytest.fixture
async def receiver_factory() -> AsyncIterator[Callable[..., Awaitable[Receiver]]]:
    async with receivers() as start:
        yield start
