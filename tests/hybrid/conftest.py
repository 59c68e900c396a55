"""Fixtures for the Hybrid client and receiver tests: real servers on 127.0.0.1, ephemeral ports.

The simulator is the real one (``roomd.sim.hybrid``) over HTTPS; roomd's client trusts its CA
through ``ca_bundle`` exactly as a deployment would trust a private CA.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

from roomd.hybrid import HybridClient, HybridClientConfig, RetryPolicy, Timeouts
from roomd.hybrid.webhooks import WebhookEvent, hybrid_webhook_routes
from roomd.observe import WEBHOOKS
from roomd.sim.hybrid import DeliveryPolicy, HybridSimulator, SimClock
from roomd.sim.tls import LocalCA

ROOM_4A = "64f0a1b2c3d4e5f6a7b8c901"  # no policy, Europe/London
ROOM_4B = "64f0a1b2c3d4e5f6a7b8c902"  # requires approval
BOARDROOM = "64f0a1b2c3d4e5f6a7b8c903"  # requires check-in
HARBOUR = "64f0a1b2c3d4e5f6a7b8c904"  # America/New_York
NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)  # the simulator's frozen "now"
FAST_RETRY = RetryPolicy(
    attempts=4, timeout=20, wait_initial=0.01, wait_max=0.05, wait_jitter=0.01, retry_after_max=3
)
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
    simulator = HybridSimulator(ca=ca, clock=SimClock(frozen_at=NOW), delivery=FAST_DELIVERY)
    await simulator.start()
    try:
        yield simulator
    finally:
        await simulator.stop()


def make_config(
    sim: HybridSimulator, ca_bundle: Path, *, base_url: str | None = None, **kw: object
) -> HybridClientConfig:
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


@pytest.fixture
async def hybrid(sim: HybridSimulator, ca_bundle: Path) -> AsyncIterator[HybridClient]:
    async with HybridClient(make_config(sim, ca_bundle)) as client:
        yield client


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
    # Rewrite JSON answers to GET requests (to serve a record the simulator would never serve).
    rewrite: Callable[[Any], Any] | None = None


@pytest.fixture
async def drop_proxy(sim: HybridSimulator, ca: LocalCA) -> AsyncIterator[DropProxy]:
    upstream = httpx.AsyncClient(verify=ca.client_context(), trust_env=False)
    state = DropProxy(url="")

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
        if state.rewrite is not None and request.method == "GET" and answer.is_success:
            return web.json_response(state.rewrite(answer.json()), status=answer.status_code)
        return web.Response(
            status=answer.status_code,
            body=answer.content,
            headers={"Content-Type": answer.headers.get("content-type", "application/json")},
        )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", forward)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ca.server_context())
    await site.start()
    state.url = f"https://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield state
    finally:
        await runner.cleanup()
        await upstream.aclose()


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


ReceiverFactory = Callable[..., "asyncio.Future[Receiver]"]


@pytest.fixture
async def receiver_factory() -> AsyncIterator[Callable[..., object]]:
    runners: list[web.AppRunner] = []

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
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = runner.addresses[0][1]
        return Receiver(url=f"http://127.0.0.1:{port}/hooks/hybrid", queue=queue, now=now)

    yield start
    for runner in runners:
        await runner.cleanup()
