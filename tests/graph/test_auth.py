"""Tokens come from the simulator's identity platform through real msal, over HTTPS."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from roomd.graph import AccessDenied, AuthError, CertificateCredential, GraphClient
from roomd.graph.auth import TOKEN_REUSE_MARGIN_S
from roomd.sim.graph import GraphSimulator

from .conftest import ROOM, config_for, metric
from .control import register_certificate_app, revoke_tokens, tokens_issued

REFRESHES = "roomd_graph_token_refreshes_total"


async def test_secret_token_is_fetched_once_and_reused(
    sim: GraphSimulator, graph: GraphClient
) -> None:
    before = metric(REFRESHES, outcome="ok")
    issued = tokens_issued(sim)
    for _ in range(3):
        await graph.http.get_json(f"/users/{ROOM}", mailbox=ROOM)
    assert metric(REFRESHES, outcome="ok") == before + 1
    assert tokens_issued(sim) == issued + 1  # msal's cache answered the other two


async def test_the_token_in_hand_answers_without_msal_until_five_minutes_before_expiry(
    graph: GraphClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    tokens = graph.http.tokens
    first = await tokens.token()
    asked: list[str | None] = []
    acquire = tokens._acquire

    def counting(rejected: str | None) -> dict[str, Any]:
        asked.append(rejected)
        return acquire(rejected)

    monkeypatch.setattr(tokens, "_acquire", counting)
    assert await tokens.token() == first
    assert asked == []  # no trip to msal's thread
    held = tokens._held
    assert held is not None
    tokens._held = (held[0], time.monotonic() + TOKEN_REUSE_MARGIN_S - 1)  # about to expire
    await tokens.token()
    assert asked == [None]


async def test_certificate_credential_gets_a_token(sim: GraphSimulator, ca_bundle: Path) -> None:
    client_id, key_pem, cert_pem = register_certificate_app(sim)
    config = config_for(
        sim,
        ca_bundle,
        client_id=client_id,
        client_secret=None,
        certificate=CertificateCredential(key_pem, cert_pem),
    )
    async with GraphClient(config) as graph:
        user = await graph.http.get_json(f"/users/{ROOM}", mailbox=ROOM)
    assert user["mail"].lower() == ROOM


async def test_rejected_token_is_refreshed_once_and_the_request_succeeds(
    sim: GraphSimulator, graph: GraphClient
) -> None:
    await graph.http.get_json(f"/users/{ROOM}", mailbox=ROOM)
    issued = tokens_issued(sim)
    retries = metric("roomd_graph_retries_total", reason="token_rejected")
    revoke_tokens(sim)
    user = await graph.http.get_json(f"/users/{ROOM}", mailbox=ROOM)
    assert user["mail"].lower() == ROOM
    assert tokens_issued(sim) == issued + 1
    assert metric("roomd_graph_retries_total", reason="token_rejected") == retries + 1


async def test_wrong_secret_is_an_auth_error_that_does_not_show_the_secret(
    sim: GraphSimulator, ca_bundle: Path
) -> None:
    secret = "not-the-secret-Zq8~" + "x" * 20
    async with GraphClient(config_for(sim, ca_bundle, client_secret=secret)) as graph:
        with pytest.raises(AuthError) as caught:
            await graph.http.get_json(f"/users/{ROOM}", mailbox=ROOM)
    err = caught.value
    assert err.code == "invalid_client"
    assert secret not in str(err) and secret not in repr(err)


async def test_untrusted_server_certificate_is_refused(sim: GraphSimulator, tmp_path: Path) -> None:
    import trustme

    other_ca = tmp_path / "other.pem"
    other_ca.write_bytes(trustme.CA().cert_pem.bytes())
    async with GraphClient(config_for(sim, other_ca)) as graph:
        with pytest.raises(AuthError, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify"):
            await graph.http.get_json(f"/users/{ROOM}", mailbox=ROOM)


async def test_certificate_with_legacy_sha1_thumbprint(
    sim: GraphSimulator, ca_bundle: Path
) -> None:
    client_id, key_pem, cert_pem, sha1 = sim.register_certificate_app()
    config = config_for(
        sim,
        ca_bundle,
        client_id=client_id,
        client_secret=None,
        certificate=CertificateCredential(key_pem, cert_pem, thumbprint=sha1),
    )
    async with GraphClient(config) as graph:
        user = await graph.http.get_json(f"/users/{ROOM}", mailbox=ROOM)
    assert user["mail"].lower() == ROOM


async def test_unknown_tenant_is_an_auth_error(sim: GraphSimulator, ca_bundle: Path) -> None:
    config = config_for(sim, ca_bundle, tenant_id="00000000-0000-0000-0000-000000000000")
    async with GraphClient(config) as graph:
        with pytest.raises(AuthError, match="token"):
            await graph.http.get_json(f"/users/{ROOM}", mailbox=ROOM)


async def test_mailbox_outside_the_access_policy_is_access_denied(
    sim: GraphSimulator, graph: GraphClient
) -> None:
    sim.control.set_access_policy([ROOM])
    await graph.http.get_json(f"/users/{ROOM}/events", mailbox=ROOM)
    with pytest.raises(AccessDenied) as caught:
        await graph.http.get_json("/users/adelev@contoso.com/events", mailbox="adelev@contoso.com")
    assert caught.value.status == 403 and caught.value.code == "ErrorAccessDenied"
