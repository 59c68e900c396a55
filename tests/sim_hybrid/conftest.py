"""Fixtures for the Hybrid simulator's own tests: a started simulator, an httpx client with a
token, and a webhook receiver on 127.0.0.1 whose answers a test scripts. What they build lives in
``support.hybrid_world``, shared with roomd's Hybrid client tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from support.hybrid_world import (
    BOARDROOM,
    NOW,
    ROOM_4A,
    ROOM_4B,
    Hook,
    api_client,
    iso,
    recording_hook,
    running_hybrid_sim,
)
from support.hybrid_world import ApiClient as Client

from roomd.sim.hybrid import DeliveryPolicy, HybridSimulator
from roomd.sim.tls import LocalCA

__all__ = ["BOARDROOM", "NOW", "ROOM_4A", "ROOM_4B", "Client", "Hook", "iso"]

# Three attempts per delivery (the retry tests count them); a long enough hold to reorder two.
FAST = DeliveryPolicy(
    max_attempts=3, retry_base_seconds=0.02, timeout_seconds=2, reorder_hold_seconds=1
)


@pytest.fixture(scope="session")
def ca() -> Iterator[LocalCA]:
    yield LocalCA()


@pytest.fixture
async def sim(ca: LocalCA) -> AsyncIterator[HybridSimulator]:
    async with running_hybrid_sim(ca, FAST) as simulator:
        yield simulator


@pytest.fixture
async def client(sim: HybridSimulator, ca: LocalCA) -> AsyncIterator[Client]:
    async with api_client(sim, ca) as c:
        yield c


@pytest.fixture
async def hook() -> AsyncIterator[Hook]:
    async with recording_hook() as h:
        yield h
