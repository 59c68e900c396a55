"""What a room's round does today: read both sides' change feeds and keep their positions.

This is design.md's shape without the sync engine: each round walks the room mailbox's
calendarView delta from its stored link to a new one, and the Hybrid ``modifiedAt`` listing for
the room's resource from its stored cursor, and stores each position in one transaction (where
the sync engine will also plan its outbox rows). It proves credentials, permissions and the room
mapping on both sides every round, so ``/readyz`` means "this room can be synced right now".
Hybrid webhooks only make a round come sooner; the listing is the truth.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from roomd.config import RoomSettings, Settings
from roomd.daemon import RoundRunner, RoundStats
from roomd.graph import CertificateCredential, GraphClient, GraphClientConfig, SyncStateExpired
from roomd.hybrid import HybridClient, HybridClientConfig
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

    def __init__(
        self, settings: Settings, store: Store, graph: GraphClient, hybrid: HybridClient
    ) -> None:
        self._settings = settings
        self._store = store
        self._graph = graph
        self._hybrid = hybrid

    async def run_round(self, room: RoomSettings) -> RoundStats:
        stats = await self._outlook_changes(room)
        stats.outbound = await self._hybrid_changes(room)
        return stats

    async def _hybrid_changes(self, room: RoomSettings) -> int:
        stored = await self._store.get_hybrid_cursor(room.mailbox)
        cursor = None
        if stored is not None and stored.resource_id in ("", room.hybrid_id):
            cursor = stored.modified_since  # else: remapped to another resource, list it all
        bookings, new_cursor = await self._hybrid.changes_since(cursor, resource_id=room.hybrid_id)
        if new_cursor is not None and (
            new_cursor != cursor or stored is None or stored.resource_id != room.hybrid_id
        ):
            async with self._store.write(room.mailbox) as tx:
                await tx.save_hybrid_cursor(new_cursor, room.hybrid_id)
        self._hybrid.confirm_changes(room.hybrid_id)  # only now: stored, so not lost
        return len(bookings)

    async def _outlook_changes(self, room: RoomSettings) -> RoundStats:
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

    def reconfigure(self, settings: Settings) -> None:
        self._settings = settings

    async def aclose(self) -> None:
        try:
            await self._graph.aclose()
        finally:
            await self._hybrid.aclose()


async def make_runner(settings: Settings, store: Store) -> RoundRunner:
    graph = GraphClient(graph_client_config(settings))
    hybrid = HybridClient(hybrid_client_config(settings))
    return DeltaPoller(settings, store, graph, hybrid)
