"""``HybridClient.granted_scopes``: the scopes the token endpoint granted, so ``roomd doctor``
can name one the API client lacks before a write needs it (RFC 6749 5.1: the answer's
``scope``, or those requested when it has none)."""

from __future__ import annotations

from pathlib import Path

from support.hybrid_world import make_config

from roomd.hybrid import HybridClient
from roomd.sim.hybrid import HybridSimulator


async def test_granted_scopes_are_those_the_token_carries(
    sim: HybridSimulator, ca_bundle: Path
) -> None:
    config = make_config(sim, ca_bundle, scope="flex.space.bookings.read flex.space.resources.read")
    async with HybridClient(config) as client:
        assert await client.granted_scopes() == {
            "flex.space.bookings.read",
            "flex.space.resources.read",
        }


async def test_the_default_scopes_are_granted(hybrid: HybridClient) -> None:
    granted = await hybrid.granted_scopes()
    assert {"flex.space.bookings.create", "flex.community.members.read"} <= granted
