"""Fixtures for the Graph simulator's tests: a started simulator, an httpx client that trusts its
CA and carries an app token, and a ``World`` of helpers that speak in users' terms. What they
build, and ``same_shape`` that compares answers with Microsoft's samples, live in
``support.graph_world``, shared with roomd's Graph client tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from support.graph_world import (
    ADELE,
    ALEX,
    ROOM,
    World,
    app_client,
    dtz,
    fixture,
    graph_time,
    running_graph_sim,
    same_shape,
    tomorrow_at,
)

from roomd.sim.graph import GraphSimulator
from roomd.sim.tls import LocalCA

__all__ = [
    "ADELE",
    "ALEX",
    "ROOM",
    "World",
    "dtz",
    "fixture",
    "graph_time",
    "same_shape",
    "tomorrow_at",
]


@pytest.fixture(scope="session")
def ca() -> LocalCA:
    return LocalCA()


@pytest.fixture
async def sim(ca: LocalCA) -> AsyncIterator[GraphSimulator]:
    # rba_delay=None: tests step the room's booking attendant themselves
    async with running_graph_sim(ca, rba_delay=None) as simulator:
        yield simulator


@pytest.fixture
async def world(sim: GraphSimulator, ca: LocalCA) -> AsyncIterator[World]:
    async with app_client(sim, ca) as client:
        yield World(sim, client)
