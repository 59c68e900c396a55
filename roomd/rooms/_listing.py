"""Read both sides' rooms: Graph's room mailboxes (with their room lists) and Hybrid's resources.

Every failure becomes one :class:`RoomsError` line that names what is wrong and the fix an
operator can make (a missing Graph permission, a missing Hybrid scope, a host that cannot be
reached), never a traceback and never a secret: the clients' errors carry no credentials, and
only their codes and messages are quoted here.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace

from roomd.compose import graph_client_config, hybrid_client_config
from roomd.config import Settings
from roomd.graph import (
    AccessDenied,
    AuthError,
    GraphClient,
    GraphConnectionError,
    GraphError,
    NotFound,
)
from roomd.graph import GraphRoom as _GraphRoom
from roomd.hybrid import AuthError as HybridAuthError
from roomd.hybrid import HybridClient, HybridError, RetryPolicy
from roomd.hybrid import HybridResource as _HybridResource
from roomd.rooms._match import HybridRoom, Mapping, OutlookRoom

PLACE_PERMISSION = "Place.Read.All"
RESOURCES_SCOPE = "flex.space.resources.read"
MEETING_ROOM_KINDS = {None, "meeting_room"}  # OfficeRnD's resource types that are rooms


class RoomsError(Exception):
    """What stops ``roomd rooms``: one line per side that failed."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("; ".join(lines))
        self.lines = lines


@dataclass(frozen=True)
class Inventory:
    outlook: list[OutlookRoom]
    hybrid: list[HybridRoom]
    mapped: list[Mapping]
    other_resources: int  # Hybrid resources that are not meeting rooms (desks, offices), left out


async def read_inventory(settings: Settings) -> Inventory:
    """Both sides at once; raises :class:`RoomsError` naming every side that failed."""
    # an operator waits at the terminal: a few quick retries, not the daemon's patient ones
    graph_config = replace(graph_client_config(settings), retry_attempts=3, retry_timeout=15.0)
    hybrid_config = replace(
        hybrid_client_config(settings), retry=RetryPolicy(attempts=3, timeout=15.0)
    )
    async with GraphClient(graph_config) as graph, HybridClient(hybrid_config) as hybrid:
        outlook, resources = await asyncio.gather(
            _outlook_rooms(graph), hybrid.list_resources(), return_exceptions=True
        )
    lines = []
    if isinstance(outlook, BaseException):
        lines.append(graph_problem(outlook, settings))
    if isinstance(resources, BaseException):
        lines.append(hybrid_problem(resources, settings))
    if lines:
        raise RoomsError(lines)
    assert not isinstance(outlook, BaseException) and not isinstance(resources, BaseException)
    rooms = [r for r in resources if r.kind in MEETING_ROOM_KINDS]
    return Inventory(
        outlook=outlook,
        hybrid=[_hybrid_room(r) for r in rooms],
        mapped=[Mapping(r.mailbox, r.hybrid_id, r.name) for r in settings.rooms],
        other_resources=len(resources) - len(rooms),
    )


async def _outlook_rooms(graph: GraphClient) -> list[OutlookRoom]:
    """Room mailboxes, a room's building taken from its room list when Set-Place left it
    empty (a room list usually is a building, and Outlook's room finder shows it as one)."""
    rooms = await graph.list_rooms()
    list_of: dict[str, str] = {}
    for room_list in await graph.list_room_lists():
        try:
            members = await graph.rooms_in_list(room_list.email)
        except NotFound:  # removed since it was listed: its rooms just have no building hint
            continue
        for member in members:
            list_of.setdefault(member.email.lower(), room_list.display_name)
    return [_outlook_room(r, list_of.get(r.email.lower())) for r in rooms]


def _outlook_room(room: _GraphRoom, room_list: str | None) -> OutlookRoom:
    return OutlookRoom(room.email, room.display_name, room.capacity, room.building or room_list)


def _hybrid_room(resource: _HybridResource) -> HybridRoom:
    return HybridRoom(
        resource.id,
        resource.name or resource.id,
        resource.capacity,
        resource.office,
        resource.timezone,
    )


def _one_line(text: str) -> str:
    return " ".join(text.split())


def graph_problem(exc: BaseException, settings: Settings) -> str:
    """The line for a failed Graph read, with its fix."""
    client = settings.graph.client_id
    if isinstance(exc, AccessDenied):
        return (
            f"Microsoft Graph refused to list the tenant's rooms ({exc.status} {exc.code}): "
            f"the app registration {client} lacks the application permission "
            f"{PLACE_PERMISSION}; fix: in Microsoft Entra ID, App registrations > API "
            f"permissions > Microsoft Graph > Application permissions, add {PLACE_PERMISSION} "
            "and grant admin consent"
        )
    if isinstance(exc, GraphConnectionError):
        return (
            f"cannot reach Microsoft Graph at {settings.graph.base_url} "
            f"({_one_line(exc.message)}); fix: check graph.base_url, DNS, proxy and firewall"
        )
    if isinstance(exc, AuthError) and exc.code == "token_request_failed":  # no answer to show
        return (
            f"cannot get a token from the Microsoft identity platform at "
            f"{settings.graph.authority_host} ({_one_line(exc.message)[:300]}); fix: check "
            "graph.authority_host, graph.tenant_id, DNS, proxy and firewall"
        )
    if isinstance(exc, AuthError):
        return (
            f"Microsoft Graph: cannot sign in as app {client} ({exc.code}: "
            f"{_one_line(exc.message)[:300]}); fix: check graph.tenant_id, graph.client_id and "
            "the client secret or certificate"
        )
    if isinstance(exc, GraphError):
        return f"Microsoft Graph: {_one_line(str(exc))}"
    return f"Microsoft Graph: {type(exc).__name__}: {_one_line(str(exc))}"


def hybrid_problem(exc: BaseException, settings: Settings) -> str:
    """The line for a failed Hybrid read, with its fix."""
    h = settings.hybrid
    if isinstance(exc, HybridAuthError) and (exc.status == 403 or "scope" in exc.message):
        if RESOURCES_SCOPE not in h.scope.split():
            fix = f"add {RESOURCES_SCOPE} to hybrid.scope in the config"
        else:
            fix = f"grant the API application {h.client_id} the scope {RESOURCES_SCOPE} in Hybrid"
        return (
            f"Hybrid refused to list its resources ({exc.status}: {_one_line(exc.message)}): "
            f"roomd needs the scope {RESOURCES_SCOPE}; fix: {fix}"
        )
    if isinstance(exc, HybridAuthError):
        return (
            f"Hybrid refused roomd's credentials ({exc.status}: {_one_line(exc.message)}); "
            "fix: check hybrid.client_id, hybrid.token_url and the client secret"
        )
    if isinstance(exc, HybridError) and exc.status == 0:
        return (
            f"cannot reach Hybrid at {h.base_url} ({_one_line(exc.message)}); "
            "fix: check hybrid.base_url, DNS, proxy and firewall"
        )
    if isinstance(exc, HybridError | ValueError):
        return f"Hybrid: {_one_line(str(exc))}"
    return f"Hybrid: {type(exc).__name__}: {_one_line(str(exc))}"
