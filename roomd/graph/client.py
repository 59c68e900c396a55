"""The Graph client as the rest of roomd sees it: one object, built from one config."""

from __future__ import annotations

from types import TracebackType

from roomd.graph.config import GraphClientConfig
from roomd.graph.delta import DeltaReader
from roomd.graph.events import EventOps
from roomd.graph.http import GraphHttp


class GraphClient:
    """``http`` (raw requests), ``events`` (event operations) and ``delta`` (delta rounds), all
    sharing one connection pool, one token provider and one set of per-mailbox limits."""

    def __init__(self, config: GraphClientConfig) -> None:
        self.config = config
        self.http = GraphHttp(config)
        self.events = EventOps(self.http)
        self.delta = DeltaReader(self.http)

    def __repr__(self) -> str:
        return (
            f"GraphClient(base_url={self.config.base_url!r}, tenant_id={self.config.tenant_id!r})"
        )

    async def __aenter__(self) -> GraphClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every connection (Graph and the identity platform) and msal's worker thread."""
        await self.http.aclose()
