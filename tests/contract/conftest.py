"""The contract suite's target: a booking system serving roomd's Hybrid API, reached over HTTPS.

By default each test gets a fresh in-process HybridSimulator. Point the suite at another
implementation with environment variables (all of the first five are needed):

    ROOMD_CONTRACT_BASE_URL       e.g. https://booking.example.com (API under /api/v2/...)
    ROOMD_CONTRACT_ORG            the organization slug
    ROOMD_CONTRACT_TOKEN_URL      the OAuth2 token endpoint
    ROOMD_CONTRACT_CLIENT_ID      an API client allowed the scopes roomd uses
    ROOMD_CONTRACT_CLIENT_SECRET
    ROOMD_CONTRACT_CA_BUNDLE      optional: a PEM file to trust instead of the system store
    ROOMD_CONTRACT_ROOM_ID        optional: a bookable room without approval/check-in policy
    ROOMD_CONTRACT_OTHER_ROOM_ID  optional: a second such room
    ROOMD_CONTRACT_MEMBER_EMAIL   optional: a member to book as

Tests marked ``simulator_only`` use the simulator's control (its clock, its Hybrid-app actions)
and are skipped against another target. Bookings made against a real system are placed on
random days years ahead and canceled when each test ends, so runs do not collide.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import ssl
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from aiohttp import web

from roomd.config import DEFAULT_HYBRID_SCOPE
from roomd.sim.hybrid import HybridSimulator
from roomd.sim.tls import LocalCA

SCOPES = DEFAULT_HYBRID_SCOPE  # what roomd asks a booking system for
ENV = "ROOMD_CONTRACT_"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "simulator_only: needs the in-process simulator's control; skipped otherwise"
    )


def _external() -> bool:
    return bool(os.environ.get(f"{ENV}BASE_URL"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if not _external():
        return
    skip = pytest.mark.skip(reason="needs the in-process simulator (ROOMD_CONTRACT_BASE_URL set)")
    for item in items:
        if "simulator_only" in item.keywords and "contract" in str(item.path):
            item.add_marker(skip)


@dataclass
class Api:
    """A plain httpx client of the target, in the words of the contract: status codes and JSON."""

    base_url: str
    org: str
    token_url: str
    client_id: str
    client_secret: str = field(repr=False)
    verify: ssl.SSLContext | str | bool
    room_id: str
    other_room_id: str
    member_id: str
    sim: HybridSimulator | None
    http: httpx.AsyncClient
    _token: str | None = field(default=None, repr=False)
    _made: list[str] = field(default_factory=list)
    _next_day: int = 0

    @property
    def prefix(self) -> str:
        return f"{self.base_url}/api/v2/organizations/{self.org}"

    async def token(self, **form: str) -> httpx.Response:
        data = {
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "grant_type": "client_credentials",
            "scope": SCOPES,
            **form,
        }
        return await self.http.post(self.token_url, data=data)

    async def request(
        self, method: str, path: str, *, auth: bool = True, **kw: Any
    ) -> httpx.Response:
        headers = dict(kw.pop("headers", {}))
        if auth:
            if self._token is None:
                answer = await self.token()
                assert answer.status_code == 200, answer.text
                self._token = answer.json()["access_token"]
            headers.setdefault("Authorization", f"Bearer {self._token}")
        return await self.http.request(method, f"{self.prefix}{path}", headers=headers, **kw)

    async def get(self, path: str, **kw: Any) -> httpx.Response:
        return await self.request("GET", path, **kw)

    async def post(self, path: str, **kw: Any) -> httpx.Response:
        return await self.request("POST", path, **kw)

    async def patch(self, path: str, **kw: Any) -> httpx.Response:
        return await self.request("PATCH", path, **kw)

    def day(self) -> datetime:
        """Midnight UTC (a Monday) of a day, with 60 free days after it, no other test books on."""
        self._next_day += 1
        return _BASE_DAY + timedelta(days=self._next_day * 60)

    def booking_body(self, start: datetime, end: datetime, **extra: Any) -> dict[str, Any]:
        return {
            "resourceId": self.room_id,
            "start": {"dateTime": iso(start)},
            "end": {"dateTime": iso(end)},
            "member": self.member_id,
            "summary": "roomd contract test",
            **extra,
        }

    async def book(self, start: datetime, end: datetime, **extra: Any) -> dict[str, Any]:
        """Create a booking that must succeed; returns its JSON."""
        answer = await self.post("/bookings", json=self.booking_body(start, end, **extra))
        assert answer.status_code in (200, 201), answer.text
        booking: dict[str, Any] = answer.json()
        self._made.append(booking["_id"])
        return booking

    def remember(self, booking_id: str) -> None:
        self._made.append(booking_id)

    async def cleanup(self) -> None:
        for booking_id in self._made:
            await self.post(f"/bookings/{booking_id}/cancel")


_BASE_DAY = datetime(2031, 1, 6, tzinfo=UTC)  # a Monday, far from any real booking


def iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.fixture(scope="session")
def contract_ca() -> Iterator[LocalCA]:
    yield LocalCA()


@pytest.fixture
async def api(contract_ca: LocalCA) -> AsyncIterator[Api]:
    if _external():
        async for target in _external_api():
            yield target
        return
    sim = HybridSimulator(ca=contract_ca)
    await sim.start()
    policy_free = [r for r in sim.tenant.rooms if not (r.requires_approval or r.requires_checkin)]
    member_email = sim.tenant.people[0].email
    async with httpx.AsyncClient(verify=contract_ca.client_context(), timeout=10) as http:
        target = Api(
            base_url=sim.base_url,
            org=sim.org,
            token_url=sim.token_url,
            client_id=sim.client_id,
            client_secret=sim.client_secret,
            verify=True,
            room_id=policy_free[0].hybrid_id,
            other_room_id=policy_free[1].hybrid_id,
            member_id=sim.control.member_id(member_email),
            sim=sim,
            http=http,
        )
        try:
            yield target
        finally:
            await sim.stop()


async def _external_api() -> AsyncIterator[Api]:
    env = os.environ
    missing = [
        name
        for name in ("BASE_URL", "ORG", "TOKEN_URL", "CLIENT_ID", "CLIENT_SECRET")
        if not env.get(ENV + name)
    ]
    if missing:
        pytest.fail(f"contract target: set {', '.join(ENV + m for m in missing)}")
    bundle = env.get(f"{ENV}CA_BUNDLE")
    verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=bundle) if bundle else True
    async with httpx.AsyncClient(verify=verify, timeout=30) as http:
        target = Api(
            base_url=env[f"{ENV}BASE_URL"].rstrip("/"),
            org=env[f"{ENV}ORG"],
            token_url=env[f"{ENV}TOKEN_URL"],
            client_id=env[f"{ENV}CLIENT_ID"],
            client_secret=env[f"{ENV}CLIENT_SECRET"],
            verify=verify,
            room_id="",
            other_room_id="",
            member_id="",
            sim=None,
            http=http,
        )
        rooms = [r["_id"] for r in (await target.get("/resources")).json()["results"]]
        target.room_id = env.get(f"{ENV}ROOM_ID") or rooms[0]
        target.other_room_id = env.get(f"{ENV}OTHER_ROOM_ID") or rooms[1]
        email = env.get(f"{ENV}MEMBER_EMAIL")
        members = (await target.get("/members", params={"email": email} if email else {})).json()
        target.member_id = members["results"][0]["_id"]
        target._next_day = secrets.randbelow(300)
        try:
            yield target
        finally:
            await target.cleanup()


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A webhook endpoint on 127.0.0.1 that records what it is sent and answers 200."""

    url: str
    received: list[Received]
    arrived: asyncio.Condition

    async def wait_for(self, count: int, within: float = 5.0) -> list[Received]:
        async with asyncio.timeout(within), self.arrived:
            await self.arrived.wait_for(lambda: len(self.received) >= count)
        return self.received


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    received: list[Received] = []
    arrived = asyncio.Condition()

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        async with arrived:
            received.append(Received(dict(request.headers), body))
            arrived.notify_all()
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/hooks/hybrid", hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield Receiver(f"http://127.0.0.1:{port}/hooks/hybrid", received, arrived)
    finally:
        await runner.cleanup()
