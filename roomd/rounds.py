"""What a room's round does today: read the room mailbox's calendarView delta and keep the link.

This is the inbound half of design.md's shape without the sync engine: each round walks the room's
delta from its stored link to a new one and stores that link in one transaction (where the sync
engine will also plan its outbox rows). It proves the credentials, the permissions and the
mailbox mapping on every round, so ``/readyz`` means "this room can be synced right now".
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from roomd.config import RoomSettings, Settings
from roomd.daemon import RoundRunner, RoundStats
from roomd.graph import CertificateCredential, GraphClient, GraphClientConfig, SyncStateExpired
from roomd.store import Store


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


def sync_window(settings: Settings, now: datetime) -> tuple[datetime, datetime]:
    """The calendarView window, on whole UTC days so that it (and so the token) keeps for a day.

    Graph freezes the window inside the delta token (graph-behaviour.md 1.3): a new window means
    a new baseline, so moving it on every round would re-read every event every round.
    """
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return (
        today - timedelta(days=settings.sync.window_back_days),
        today + timedelta(days=settings.sync.window_ahead_days + 1),
    )


class DeltaPoller:
    """Walks each room's calendarView delta; re-baselines when the window moves or the token
    expires (410 SyncStateNotFound and friends, graph-behaviour.md 1.7)."""

    def __init__(self, settings: Settings, store: Store, graph: GraphClient) -> None:
        self._settings = settings
        self._store = store
        self._graph = graph

    async def run_round(self, room: RoomSettings) -> RoundStats:
        start, end = sync_window(self._settings, datetime.now(UTC))
        stored = await self._store.get_delta(room.mailbox)
        link = None
        if stored is not None and (stored.window_start, stored.window_end) == (start, end):
            link = stored.delta_link
        rebaselined = link is None
        try:
            result = await self._graph.delta.round(
                room.mailbox, window_start=start, window_end=end, delta_link=link
            )
        except SyncStateExpired:
            rebaselined = True
            result = await self._graph.delta.round(
                room.mailbox, window_start=start, window_end=end, delta_link=None
            )
        async with self._store.write(room.mailbox) as tx:
            await tx.save_delta(start, end, result.delta_link)
        return RoundStats(
            inbound=len(result.changes),
            delta_pages=result.pages,
            extra={"baseline": rebaselined},
        )

    async def aclose(self) -> None:
        await self._graph.aclose()


async def make_runner(settings: Settings, store: Store) -> RoundRunner:
    return DeltaPoller(settings, store, GraphClient(graph_client_config(settings)))
