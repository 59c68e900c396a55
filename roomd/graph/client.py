"""The Graph client as the rest of roomd sees it: one object, built from one config."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from types import TracebackType

from roomd.graph.config import GraphClientConfig
from roomd.graph.delta import DeltaReader, DeltaResult
from roomd.graph.errors import GraphError
from roomd.graph.events import EventOps
from roomd.graph.http import GraphHttp
from roomd.graph.places import GraphRoom, GraphRoomList, Places


class GraphClient:
    """``http`` (raw requests), ``events`` (event operations) and the delta rounds
    (``delta_round``, ``delta_rounds``: the one way in), all sharing one connection pool, one
    token provider and one set of per-mailbox limits."""

    def __init__(self, config: GraphClientConfig) -> None:
        self.config = config
        self.http = GraphHttp(config)
        self.events = EventOps(self.http)
        self._delta = DeltaReader(self.http)
        self._places = Places(self.http)

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

    async def delta_round(
        self,
        mailbox: str,
        *,
        window_start: datetime,
        window_end: datetime,
        delta_link: str | None,
        page_size: int | None = 50,
    ) -> DeltaResult:
        """One calendarView delta round of a mailbox (see :meth:`DeltaReader.round`)."""
        return await self._delta.round(
            mailbox,
            window_start=window_start,
            window_end=window_end,
            delta_link=delta_link,
            page_size=page_size,
        )

    async def delta_rounds(
        self, delta_links: Mapping[str, str], *, page_size: int | None = 50
    ) -> dict[str, DeltaResult | GraphError]:
        """The next round of many mailboxes through ``$batch`` (see :meth:`DeltaReader.rounds`)."""
        return await self._delta.rounds(delta_links, page_size=page_size)

    async def list_rooms(self) -> list[GraphRoom]:
        """Every room mailbox of the tenant (``/places/microsoft.graph.room``; Place.Read.All)."""
        return await self._places.rooms()

    async def list_room_lists(self) -> list[GraphRoomList]:
        """The tenant's room lists, and the rooms of each: a list usually is a building."""
        return await self._places.room_lists()

    async def rooms_in_list(self, room_list_email: str) -> list[GraphRoom]:
        """The rooms of one room list, addressed by the list's email address."""
        return await self._places.rooms_in_list(room_list_email)

    async def aclose(self) -> None:
        """Close every connection (Graph and the identity platform) and msal's worker thread."""
        await self.http.aclose()
