"""``HybridSimulator``: one OfficeRnD-compatible organization served over HTTPS on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import ssl

from aiohttp import web

from roomd.sim.hybrid import policies
from roomd.sim.hybrid.auth import TokenIssuer
from roomd.sim.hybrid.clock import SimClock
from roomd.sim.hybrid.control import Control
from roomd.sim.hybrid.faults import Faults
from roomd.sim.hybrid.server import HybridApp
from roomd.sim.hybrid.store import Store
from roomd.sim.hybrid.webhooks import DeliveryPolicy, WebhookDispatcher
from roomd.sim.tenant import Tenant, default_tenant
from roomd.sim.tls import LocalCA

DEFAULT_CLIENT_ID = "roomd-sim-client"


class HybridSimulator:
    """The Hybrid booking system, seeded from a tenant (``default_tenant()`` unless given).

    ``await sim.start()`` serves HTTPS with a certificate from ``ca`` (a fresh LocalCA unless
    given; share one with the Graph simulator so roomd trusts a single bundle). Webhook deliveries
    trust the system store plus that CA. ``delivery`` tunes webhook retries (tests shorten them).
    ``noshow_sweep_seconds`` runs the no-show sweep that often in the background (for the demo);
    unset, it runs only when ``control.run_noshow_sweep()`` is called (for tests).
    """

    def __init__(
        self,
        tenant: Tenant | None = None,
        *,
        ca: LocalCA | None = None,
        client_id: str = DEFAULT_CLIENT_ID,
        client_secret: str | None = None,
        clock: SimClock | None = None,
        delivery: DeliveryPolicy | None = None,
        noshow_sweep_seconds: float | None = None,
    ) -> None:
        if noshow_sweep_seconds is not None and noshow_sweep_seconds <= 0:
            raise ValueError(
                f"HybridSimulator: noshow_sweep_seconds must be > 0, got {noshow_sweep_seconds}"
            )
        self.tenant = tenant or default_tenant()
        self.ca = ca or LocalCA()
        self.clock = clock or SimClock()
        self.faults = Faults()
        self.store = Store(self.tenant, self.clock, self.faults)
        self.org = self.store.org
        self.client_id = client_id
        self._issuer = TokenIssuer(
            self.clock, client_id, client_secret or secrets.token_urlsafe(24)
        )
        trust = ssl.create_default_context()
        trust.load_verify_locations(cadata=self.ca.cert_pem.decode())
        self.webhooks = WebhookDispatcher(
            self.faults, self.store.ids, policy=delivery, ssl_context=trust
        )
        self.store.listeners.append(self.webhooks.on_event)
        self.control = Control(self.store, self._issuer, self.faults, self.webhooks, self.clock)
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._sweep_every = noshow_sweep_seconds
        self._sweeper: asyncio.Task[None] | None = None

    @property
    def client_secret(self) -> str:
        return self._issuer.client_secret

    @property
    def base_url(self) -> str:
        if self._port is None:
            raise RuntimeError("HybridSimulator: not started (await sim.start() first)")
        return f"https://127.0.0.1:{self._port}"

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/oauth/token"

    @property
    def api_url(self) -> str:
        """``{base_url}/api/v2/organizations/{org}``: prefix of every API path."""
        return f"{self.base_url}/api/v2/organizations/{self.org}"

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Serve on the current event loop; ``port=0`` picks a free ephemeral port."""
        if self._runner is not None:
            raise RuntimeError("HybridSimulator: already started")
        app = HybridApp(self.store, self._issuer, self.faults, self.webhooks, self.control).build()
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port, ssl_context=self.ca.server_context())
        await site.start()
        self._port = _bound_port(runner)
        self._runner = runner
        await self.webhooks.start()
        if self._sweep_every is not None:
            self._sweeper = asyncio.create_task(self._sweep(self._sweep_every))

    async def _sweep(self, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            policies.run_noshow_sweep(self.store)

    async def stop(self) -> None:
        """Stop serving and sending; safe to call twice."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        await self.webhooks.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> HybridSimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def __repr__(self) -> str:
        where = f"https://127.0.0.1:{self._port}" if self._port else "not started"
        return f"HybridSimulator(org={self.org!r}, client_id={self.client_id!r}, {where})"


def _bound_port(runner: web.AppRunner) -> int:
    """The port the OS picked for ``port=0``."""
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    raise RuntimeError("HybridSimulator: the server did not bind a TCP port")
