"""An expired or wrong Graph secret costs one token request per hold, not one per room and
round: msal is not called again until the hold ends or the config is reloaded."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from roomd.graph import CredentialsRefused, GraphClient
from roomd.refusals import forgive_all
from roomd.sim.graph import GraphSimulator

from .conftest import ROOM, config_for, metric

REFRESHES = "roomd_graph_token_refreshes_total"


async def test_an_expired_secret_is_asked_about_once_per_hold(
    sim: GraphSimulator, ca_bundle: Path
) -> None:
    sim.control.expire_client_secret()
    async with GraphClient(config_for(sim, ca_bundle)) as graph:
        sent, held = sim.control.token_requests(), metric(REFRESHES, outcome="held")
        errors: list[CredentialsRefused] = []
        for _ in range(5):  # five rooms' rounds
            with pytest.raises(CredentialsRefused) as info:
                await graph.http.get_json(f"/users/{ROOM}", mailbox=ROOM)
            errors.append(info.value)
        assert sim.control.token_requests() == sent + 1
        assert metric(REFRESHES, outcome="held") == held + 4
    line = str(errors[-1])
    assert line.startswith(
        "Microsoft Graph refused roomd's credentials (invalid_client: AADSTS7000222"
    )
    assert "not asked again for 5 s — fix: az ad app credential reset" in line
    assert f"az ad app credential reset --id {sim.client_id} --append" in line
    assert sim.client_secret not in line and "Trace ID" not in line
    assert errors[0].code == "invalid_client" and "AADSTS7000222" in errors[0].message


async def test_a_reload_after_the_fix_signs_in_at_once(
    sim: GraphSimulator, ca_bundle: Path
) -> None:
    sim.control.expire_client_secret()
    async with GraphClient(config_for(sim, ca_bundle)) as graph:
        with pytest.raises(CredentialsRefused):
            await graph.http.get_json(f"/users/{ROOM}", mailbox=ROOM)
        # the operator extends the secret in Entra ID, then: systemctl reload roomd
        sim.control.set_client_secret_expiry(sim.control.now() + timedelta(days=365))
        forgive_all()
        user = await graph.http.get_json(f"/users/{ROOM}", mailbox=ROOM)
    assert user["mail"].lower() == ROOM
