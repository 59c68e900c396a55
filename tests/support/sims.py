"""Simulators running on their own event loop in a thread, for tests that drive a real
``roomd run`` process from synchronous code."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from roomd.sim.graph import GraphSimulator
from roomd.sim.hybrid import HybridSimulator
from roomd.sim.roomd_config import write_roomd_config
from roomd.sim.tenant import Tenant, default_tenant
from roomd.sim.tls import LocalCA

T = TypeVar("T")


class SimWorld:
    """Both simulators on a background loop; ``call`` runs control code on that loop."""

    def __init__(self, tenant: Tenant) -> None:
        self.tenant = tenant
        self.ca = LocalCA()
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.graph: GraphSimulator
        self.hybrid: HybridSimulator

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn: Callable[[], T]) -> T:
        async def wrapper() -> T:
            return fn()

        return self.run(wrapper())

    def start(self) -> None:
        self._thread.start()

        async def boot() -> None:
            self.graph = GraphSimulator(self.tenant, ca=self.ca)
            self.hybrid = HybridSimulator(self.tenant, ca=self.ca)
            await self.graph.start()
            await self.hybrid.start()

        self.run(boot())

    def stop(self) -> None:
        async def shutdown() -> None:
            await self.hybrid.stop()
            await self.graph.stop()

        try:
            self.run(shutdown())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=10)
            self.loop.close()

    def write_config(self, directory: Path, *, poll_interval: float = 1, **extra: Any) -> Path:
        return write_roomd_config(
            directory / "roomd.toml",
            tenant=self.tenant,
            ca=self.ca,
            graph=self.graph,
            hybrid=self.hybrid,
            http_port=0,
            poll_interval_seconds=poll_interval,
            **extra,
        )


@contextmanager
def sim_world(tenant: Tenant | None = None) -> Iterator[SimWorld]:
    world = SimWorld(tenant or default_tenant())
    world.start()
    try:
        yield world
    finally:
        world.stop()
