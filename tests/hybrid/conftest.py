"""Fixtures for the Hybrid client and receiver tests: real servers on 127.0.0.1, ephemeral ports."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest
from aiohttp import web

from roomd.hybrid.webhooks import WebhookEvent, hybrid_webhook_routes
from roomd.observe import WEBHOOKS


@dataclass
class Receiver:
    """roomd's webhook receiver, served by aiohttp on a loopback port."""

    url: str
    queue: asyncio.Queue[WebhookEvent]
    now: list[float]

    @staticmethod
    def count(outcome: str) -> float:
        return WEBHOOKS.labels(source="hybrid", outcome=outcome)._value.get()

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
