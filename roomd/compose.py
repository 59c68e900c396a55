"""The composition root: the one place that builds roomd's parts from the settings.

``roomd run``, ``roomd demo``, ``roomd sync`` and the benchmarks all get their clients, store and
sync engine from here, so there is one answer to "what does a round run on". Layers below know
nothing of each other's construction: the daemon is handed a runner factory and routes, the
engine is handed two ports and a clock.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from roomd import utc
from roomd.config import Settings
from roomd.daemon import Daemon, RunnerFactory
from roomd.graph import CertificateCredential, GraphClient, GraphClientConfig
from roomd.hybrid import HybridClient, HybridClientConfig, WebhookEvent, hybrid_webhook_routes
from roomd.store import Store
from roomd.sync import GraphAdapter, HybridAdapter, RoomSync


def graph_client_config(settings: Settings) -> GraphClientConfig:
    """Map roomd's validated settings onto the Graph client's own config."""
    g = settings.graph
    certificate = None
    if g.certificate is not None:
        certificate = CertificateCredential(
            private_key_pem=g.certificate.private_key_pem.reveal(),
            public_certificate_pem=g.certificate.certificate_pem,
            thumbprint=g.certificate.thumbprint,
            passphrase=g.certificate.password.reveal() if g.certificate.password else None,
        )
    return GraphClientConfig(
        tenant_id=g.tenant_id,
        client_id=g.client_id,
        authority_host=g.authority_host,
        base_url=g.base_url,
        ca_bundle=g.ca_bundle,
        client_secret=g.client_secret.reveal() if g.client_secret is not None else None,
        certificate=certificate,
    )


def hybrid_client_config(settings: Settings) -> HybridClientConfig:
    """Map roomd's validated settings onto the Hybrid client's own config."""
    h = settings.hybrid
    return HybridClientConfig(
        base_url=h.base_url,
        org=h.org,
        token_url=h.token_url,
        client_id=h.client_id,
        client_secret=h.client_secret.reveal(),
        scope=h.scope,
        ca_bundle=h.ca_bundle,
    )


def build_sync(
    settings: Settings, store: Store, clock: Callable[[], datetime] = utc.now
) -> RoomSync:
    """The sync engine over real clients: what every round of every command runs."""
    graph = GraphAdapter(GraphClient(graph_client_config(settings)))
    hybrid = HybridAdapter(HybridClient(hybrid_client_config(settings)))
    return RoomSync(settings, store, graph, hybrid, clock)


async def make_runner(settings: Settings, store: Store) -> RoomSync:
    return build_sync(settings, store)


def build_daemon(
    settings: Settings,
    *,
    config_path: Path,
    runner_factory: RunnerFactory = make_runner,
    log_level_override: str | None = None,
    env: Any = None,
) -> Daemon:
    """The daemon with the sync engine and the Hybrid webhook receiver mounted."""
    return Daemon(
        settings,
        config_path=config_path,
        runner_factory=runner_factory,
        log_level_override=log_level_override,
        env=env,
        routes=_webhook_routes,
    )


def _webhook_routes(daemon: Daemon) -> list[Any]:
    def hint(event: WebhookEvent) -> None:
        daemon.on_booking_hint(event.resource_id, event.booking_id)

    return hybrid_webhook_routes(daemon.webhook_secret, hint)
