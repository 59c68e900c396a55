"""roomd's one HTTP port: health, readiness, Prometheus metrics, and the webhook receivers.

It runs on the daemon's own event loop (aiohttp), so ``/healthz`` answering proves the loop that
does the syncing is alive, not merely that some thread is.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from roomd import observe


class ReadinessSource(Protocol):
    async def readiness(self) -> tuple[bool, dict[str, Any]]: ...


class WebServer:
    """The embedded HTTP server; extra routes (webhook receivers) are mounted by the daemon."""

    def __init__(
        self, readiness: ReadinessSource, extra_routes: Iterable[web.RouteDef] = ()
    ) -> None:
        self._readiness = readiness
        self.app = web.Application(client_max_size=1024 * 1024)
        self.app.add_routes(
            [
                web.get("/healthz", self._healthz),
                web.get("/readyz", self._readyz),
                web.get("/metrics", self._metrics),
                *extra_routes,
            ]
        )
        self._runner: web.AppRunner | None = None
        self.port: int = 0

    async def start(self, host: str, port: int) -> None:
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, reuse_address=True)
        await site.start()
        addresses = self._runner.addresses
        self.port = int(addresses[0][1]) if addresses else port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _readyz(self, request: web.Request) -> web.Response:
        ready, detail = await self._readiness.readiness()
        return web.json_response(detail, status=200 if ready else 503)

    async def _metrics(self, request: web.Request) -> web.StreamResponse:
        # a family at a time: the whole text at 10,000 rooms would be a 16 MB peak per scrape
        resp = web.StreamResponse(headers={"Content-Type": CONTENT_TYPE_LATEST})
        await resp.prepare(request)
        for chunk in observe.exposition():
            await resp.write(chunk)
        await resp.write_eof()
        return resp
