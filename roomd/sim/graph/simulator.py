"""``GraphSimulator``: a local Microsoft Graph (and identity platform) for room calendars.

One object per simulated tenant; ``start()`` serves HTTPS on loopback with a certificate from a
local CA (roomd.sim.tls) on the current event loop, so real msal and real httpx talk to it as to
Microsoft. See docs/graph-simulator.md.
"""

from __future__ import annotations

from aiohttp import web

from roomd.sim.graph.api import GraphApi
from roomd.sim.graph.auth import IdentityPlatform
from roomd.sim.graph.clock import SimClock
from roomd.sim.graph.control import SimControl
from roomd.sim.graph.delta import DeltaEngine
from roomd.sim.graph.directory import Directory, Mailbox
from roomd.sim.graph.exchange import Exchange
from roomd.sim.graph.faults import Faults
from roomd.sim.graph.routes_applications import ApplicationRoutes
from roomd.sim.graph.server import Front
from roomd.sim.graph.settings import Switches
from roomd.sim.graph.subscriptions import Subscriptions
from roomd.sim.tenant import Tenant, default_tenant
from roomd.sim.tls import LocalCA


class GraphSimulator:
    def __init__(self, tenant: Tenant | None = None, *, ca: LocalCA | None = None) -> None:
        self.tenant = tenant if tenant is not None else default_tenant()
        self.ca = ca if ca is not None else LocalCA()
        self.clock = SimClock()
        self.switches = Switches()
        self.directory = Directory(self.tenant)
        self.identity = IdentityPlatform(self.tenant.tenant_id, self.tenant.domain, self.clock)
        self.client_id, self.client_secret = self.identity.register_secret_app("roomd")
        self.exchange = Exchange(self.directory, self.clock, self.switches)
        self.delta = DeltaEngine(self.clock, self.switches)
        self.faults = Faults(self.clock)
        self.api = GraphApi(
            self.directory, self.exchange, self.delta, self.switches, self._access_allowed
        )
        self.subscriptions = Subscriptions(
            self.directory,
            self.clock,
            self.switches,
            self.tenant.tenant_id,
            self.ca.client_context(),
        )
        self.exchange.change_listeners.append(self.subscriptions.on_change)
        ApplicationRoutes(self.api, self.identity).register()
        self.api.subscriptions = self.subscriptions
        self.control = SimControl(self)
        self._front = Front(self)
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._host = "127.0.0.1"

    def __repr__(self) -> str:  # the secret stays out of reprs and logs
        return f"GraphSimulator(tenant_id={self.tenant_id!r}, port={self._port!r})"

    @property
    def tenant_id(self) -> str:
        return self.tenant.tenant_id

    @property
    def authority_host(self) -> str:
        if self._port is None:
            raise RuntimeError("GraphSimulator is not started")
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"https://{host}:{self._port}"

    @property
    def authority(self) -> str:
        """The msal ``authority`` for this tenant."""
        return f"{self.authority_host}/{self.tenant_id}"

    @property
    def base_url(self) -> str:
        return f"{self.authority_host}/v1.0"

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("GraphSimulator is not started")
        return self._port

    def register_certificate_app(self) -> tuple[str, str, str, str]:
        """(client_id, private_key_pem, cert_pem, sha1_thumbprint_hex) of a new app registration
        with certificate credentials and the same application permissions as the default app."""
        return self.identity.register_certificate_app()

    def _access_allowed(self, app_id: str, mailbox: Mailbox) -> bool:
        app = self.identity.apps.get(app_id)
        return (
            app is None
            or app.allowed_mailboxes is None
            or (mailbox.email.lower() in app.allowed_mailboxes)
        )

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        if self._runner is not None:
            raise RuntimeError("GraphSimulator is already started")
        self._host = host
        runner = web.AppRunner(self._front.app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, host, port, ssl_context=self.ca.server_context())
        await site.start()
        self._runner = runner
        server = site._server
        assert server is not None
        sockets = getattr(server, "sockets", None) or []
        self._port = int(sockets[0].getsockname()[1])
        self.api.base_url = self.base_url

    async def stop(self) -> None:
        self.exchange.rba.cancel_rba_timer()
        await self.subscriptions.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
