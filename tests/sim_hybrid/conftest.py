"""Fixtures for the Hybrid simulator's own tests: a started simulator, an httpx client with a
token, and a webhook receiver on 127.0.0.1 whose answers a test scripts."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from aiohttp import web

from roomd.sim.hybrid import DeliveryPolicy, HybridSimulator, SimClock
from roomd.sim.tls import LocalCA

ROOM_4A = "64f0a1b2c3d4e5f6a7b8c901"  # no policy
ROOM_4B = "64f0a1b2c3d4e5f6a7b8c902"  # requires approval
BOARDROOM = "64f0a1b2c3d4e5f6a7b8c903"  # requires check-in, 15-minute window
NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)  # the frozen simulated "now"
FAST = DeliveryPolicy(
    max_attempts=3, retry_base_seconds=0.02, timeout_seconds=2, reorder_hold_seconds=1
)


@pytest.fixture(scope="session")
def ca() -> Iterator[LocalCA]:
    yield LocalCA()


@pytest.fixture
async def sim(ca: LocalCA) -> AsyncIterator[HybridSimulator]:
    simulator = HybridSimulator(ca=ca, clock=SimClock(frozen_at=NOW), delivery=FAST)
    await simulator.start()
    try:
        yield simulator
    finally:
        await simulator.stop()


@dataclass
class Client:
    """httpx against the simulator's API, holding one token."""

    sim: HybridSimulator
    http: httpx.AsyncClient
    token: str = ""

    async def login(self) -> None:
        answer = await self.http.post(
            self.sim.token_url,
            data={
                "client_id": self.sim.client_id,
                "client_secret": self.sim.client_secret,
                "grant_type": "client_credentials",
            },
        )
        answer.raise_for_status()
        self.token = answer.json()["access_token"]

    async def call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}", **kw.pop("headers", {})}
        return await self.http.request(method, self.sim.api_url + path, headers=headers, **kw)

    async def book(
        self, room: str, start: datetime, minutes: int = 60, **extra: Any
    ) -> httpx.Response:
        body = {
            "resourceId": room,
            "start": {"dateTime": iso(start)},
            "end": {"dateTime": iso(start + timedelta(minutes=minutes))},
            "member": self.sim.control.member_id("adelev@contoso.com"),
            **extra,
        }
        return await self.call("POST", "/bookings", json=body)


def iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


@pytest.fixture
async def client(sim: HybridSimulator, ca: LocalCA) -> AsyncIterator[Client]:
    async with httpx.AsyncClient(verify=ca.client_context(), timeout=10) as http:
        c = Client(sim, http)
        await c.login()
        yield c


@dataclass
class Hook:
    """A webhook endpoint answering each request with the next scripted status (then 200)."""

    url: str
    statuses: list[int]
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.received]

    async def wait_for(self, count: int, within: float = 5.0) -> None:
        async with asyncio.timeout(within), self.arrived:
            await self.arrived.wait_for(lambda: len(self.received) >= count)


@pytest.fixture
async def hook() -> AsyncIterator[Hook]:
    state: dict[str, Hook] = {}

    async def handle(request: web.Request) -> web.Response:
        target = state["hook"]
        body = await request.read()
        async with target.arrived:
            target.received.append((dict(request.headers), body))
            target.arrived.notify_all()
        status = target.statuses.pop(0) if target.statuses else 200
        return web.Response(status=status)

    app = web.Application()
    app.router.add_post("/hooks/hybrid", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    state["hook"] = Hook(f"http://127.0.0.1:{port}/hooks/hybrid", [])
    try:
        yield state["hook"]
    finally:
        await runner.cleanup()
