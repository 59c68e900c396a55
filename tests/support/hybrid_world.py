"""The Hybrid side of a test: the simulator on a frozen clock, clients that reach it over HTTPS,
and webhook endpoints and proxies on 127.0.0.1.

Shared by roomd's Hybrid client and receiver tests (tests/hybrid), which drive a real
``HybridClient``, and the simulator's own tests (tests/sim_hybrid), which speak raw HTTP through
``ApiClient``. Their conftests only turn these into fixtures.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from aiohttp import web

from roomd.hybrid import HybridClientConfig, RetryPolicy, Timeouts
from roomd.hybrid.webhooks import WebhookEvent, hybrid_webhook_routes
from roomd.observe import WEBHOOKS
from roomd.sim.hybrid import DeliveryPolicy, HybridSimulator, SimClock
from roomd.sim.tls import LocalCA
from support.loopback import serve

# The demo tenant's rooms (roomd.sim.tenant.default_tenant())
ROOM_4A = "64f0a1b2c3d4e5f6a7b8c901"  # no policy, Europe/London
ROOM_4B = "64f0a1b2c3d4e5f6a7b8c902"  # requires approval
BOARDROOM = "64f0a1b2c3d4e5f6a7b8c903"  # requires check-in, 15-minute window
HARBOUR = "64f0a1b2c3d4e5f6a7b8c904"  # America/New_York
ADELE = "adelev@contoso.com"
NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)  # the simulator's frozen "now"


def iso(at: datetime) -> str:
    """The API's form of an instant: UTC, milliseconds, ``Z``."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


@asynccontextmanager
async def running_hybrid_sim(
    ca: LocalCA, delivery: DeliveryPolicy
) -> AsyncIterator[HybridSimulator]:
    """A started simulator whose clock stands still at ``NOW``, stopped on exit."""
    simulator = HybridSimulator(ca=ca, clock=SimClock(frozen_at=NOW), delivery=delivery)
    await simulator.start()
    try:
        yield simulator
    finally:
        await simulator.stop()


# The simulator's API over raw HTTP


@dataclass
class ApiClient:
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
            "member": self.sim.control.member_id(ADELE),
            **extra,
        }
        return await self.call("POST", "/bookings", json=body)


@asynccontextmanager
async def api_client(sim: HybridSimulator, ca: LocalCA) -> AsyncIterator[ApiClient]:
    """An ``ApiClient`` that trusts ``ca`` and has logged in."""
    async with httpx.AsyncClient(verify=ca.client_context(), timeout=10) as http:
        client = ApiClient(sim, http)
        await client.login()
        yield client


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


@asynccontextmanager
async def recording_hook() -> AsyncIterator[Hook]:
    """A ``Hook`` served at ``http://127.0.0.1:N/hooks/hybrid``."""
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
    async with serve(app) as url:
        state["hook"] = Hook(f"{url}/hooks/hybrid", [])
        yield state["hook"]


# roomd's client and receiver

FAST_RETRY = RetryPolicy(
    attempts=4, timeout=20, wait_initial=0.01, wait_max=0.05, wait_jitter=0.01, retry_after_max=3
)


def make_config(
    sim: HybridSimulator, ca_bundle: Path, *, base_url: str | None = None, **kw: object
) -> HybridClientConfig:
    """roomd's client configuration for ``sim``: fast retries, a short read timeout."""
    options: dict[str, object] = {
        "base_url": base_url or sim.base_url,
        "org": sim.org,
        "token_url": sim.token_url,
        "client_id": sim.client_id,
        "client_secret": sim.client_secret,
        "ca_bundle": ca_bundle,
        "retry": FAST_RETRY,
        "timeouts": Timeouts(read=5.0),
    }
    options.update(kw)
    return HybridClientConfig(**options)  # type: ignore[arg-type]


@dataclass
class DropProxy:
    """An HTTPS hop in front of the simulator that loses answers: the request reaches the
    simulator and is carried out, then the connection is cut before the answer gets back (the
    classic "did my create happen?" failure). Only requests matching ``method`` and ``path_end``
    are affected, ``drops`` times."""

    url: str
    method: str = "POST"
    path_end: str = "/bookings"
    drops: int = 0
    forwarded: int = 0
    dropped: int = 0
    # Answer the next ``refusals`` matching requests with ``refuse_status`` (and a Retry-After
    # of ``retry_after`` seconds) without passing them on, as a gateway in front would.
    refusals: int = 0
    refuse_status: int = 429
    retry_after: int = 1
    # Rewrite JSON answers to GET requests (to serve a record the simulator would never serve), or
    # act between the simulator's answer and the client's next request.
    rewrite: Callable[[Any], Any] | None = None


@asynccontextmanager
async def drop_proxy_for(sim: HybridSimulator, ca: LocalCA) -> AsyncIterator[DropProxy]:
    """A ``DropProxy`` in front of ``sim``, serving TLS with ``ca``'s certificate."""
    state = DropProxy(url="")
    async with httpx.AsyncClient(verify=ca.client_context(), trust_env=False) as upstream:

        async def forward(request: web.Request) -> web.StreamResponse:
            body = await request.read()
            matches = request.method == state.method and request.path.endswith(state.path_end)
            if matches and state.refusals > 0:
                state.refusals -= 1
                return web.json_response(
                    {"message": "Too many requests"},
                    status=state.refuse_status,
                    headers={"Retry-After": str(state.retry_after)},
                )
            headers = {
                k: v
                for k, v in request.headers.items()
                if k.lower() in ("authorization", "content-type", "accept")
            }
            answer = await upstream.request(
                request.method, sim.base_url + request.path_qs, content=body, headers=headers
            )
            state.forwarded += 1
            if state.drops > 0 and matches:
                state.drops -= 1
                state.dropped += 1
                assert request.transport is not None
                request.transport.abort()  # the work is done; the answer is lost
                return web.Response(status=204)
            # the origin's Date passes through, as a gateway's does (the client reads the
            # server's clock from it)
            date = {"Date": answer.headers["date"]} if "date" in answer.headers else {}
            if state.rewrite is not None and request.method == "GET" and answer.is_success:
                rewritten = state.rewrite(answer.json())
                return web.json_response(rewritten, status=answer.status_code, headers=date)
            content_type = answer.headers.get("content-type", "application/json")
            return web.Response(
                status=answer.status_code,
                body=answer.content,
                headers={"Content-Type": content_type, **date},
            )

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", forward)
        async with serve(app, ca.server_context()) as url:
            state.url = url
            yield state


@dataclass
class Receiver:
    """roomd's webhook receiver, served by aiohttp on a loopback port."""

    url: str
    queue: asyncio.Queue[WebhookEvent]
    now: list[float]

    @staticmethod
    def count(outcome: str) -> float:
        return float(WEBHOOKS.labels(source="hybrid", outcome=outcome)._value.get())

    async def next_event(self, within: float = 5.0) -> WebhookEvent:
        async with asyncio.timeout(within):
            return await self.queue.get()


@asynccontextmanager
async def receivers() -> AsyncIterator[Callable[..., Awaitable[Receiver]]]:
    """``start(secret, *, clock=None, maxsize=0, **options)`` serves one more roomd receiver;
    all of them stop on exit."""
    async with AsyncExitStack() as stack:

        async def start(
            secret: str, *, clock: Callable[[], float] | None = None, **kw: object
        ) -> Receiver:
            queue: asyncio.Queue[WebhookEvent] = asyncio.Queue(maxsize=int(kw.pop("maxsize", 0)))  # type: ignore[call-overload]
            now: list[float] = []
            app = web.Application()
            if clock is None:
                app.add_routes(hybrid_webhook_routes(secret, queue, **kw))  # type: ignore[arg-type]
            else:
                app.add_routes(hybrid_webhook_routes(secret, queue, clock=clock, **kw))  # type: ignore[arg-type]
            url = await stack.enter_async_context(serve(app))
            return Receiver(url=f"{url}/hooks/hybrid", queue=queue, now=now)

        yield start
