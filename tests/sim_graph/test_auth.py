"""Identity platform and bearer checks (issue 3 item 1; graph-behaviour.md 3.3, 7.10)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import msal
import requests

from roomd.sim.graph import GraphSimulator

from .conftest import ROOM, fixture, same_shape

SCOPES = ["https://graph.microsoft.com/.default"]


class VerifyingHttpClient:
    """msal's http_client with ``verify`` per request: REQUESTS_CA_BUNDLE overrides a session's
    verify (psf/requests#3829, graph-behaviour.md 3.3), a per-request one wins."""

    def __init__(self, ca_bundle: Path) -> None:
        self._session = requests.Session()
        self._ca = str(ca_bundle)

    def post(self, url: str, **kw: Any) -> requests.Response:
        return self._session.post(url, verify=self._ca, **kw)

    def get(self, url: str, **kw: Any) -> requests.Response:
        return self._session.get(url, verify=self._ca, **kw)

    def close(self) -> None:
        self._session.close()


def msal_app(sim: GraphSimulator, tmp_path: Path, client_id: str, credential: Any) -> Any:
    """Arguments for msal; the app itself is built off the loop: its constructor already does
    OpenID discovery over the network (msal/authority.py), which would block the simulator."""
    bundle = sim.ca.write_ca_bundle(tmp_path / "ca.pem")
    return lambda: msal.ConfidentialClientApplication(
        client_id,
        client_credential=credential,
        authority=f"{sim.authority_host}/{sim.tenant_id}",
        http_client=VerifyingHttpClient(bundle),
        instance_discovery=False,
    )


async def acquire(make_app: Any) -> dict[str, Any]:
    def run() -> dict[str, Any]:
        app = make_app()
        try:
            return dict(app.acquire_token_for_client(scopes=SCOPES))
        finally:
            app.http_client.close()  # no keep-alive connection outlives the test

    return await asyncio.to_thread(run)


async def call_graph(
    sim: GraphSimulator, token: str, path: str = f"/users/{ROOM}"
) -> httpx.Response:
    async with httpx.AsyncClient(verify=sim.ca.client_context()) as c:
        return await c.get(sim.base_url + path, headers={"Authorization": f"Bearer {token}"})


async def test_msal_secret_flow_gets_a_token_graph_accepts(
    sim: GraphSimulator, tmp_path: Path
) -> None:
    """auth-v2-service.md: client credentials with a secret -> Bearer token usable on Graph."""
    result = await acquire(msal_app(sim, tmp_path, sim.client_id, sim.client_secret))
    assert result["token_type"] == "Bearer", result
    assert not same_shape(
        {k: result[k] for k in ("token_type", "expires_in", "access_token")},
        fixture("token-response-client-credentials.json"),
    )
    assert (await call_graph(sim, result["access_token"])).status_code == 200


async def test_msal_certificate_flows_sha256_and_legacy_sha1(
    sim: GraphSimulator, tmp_path: Path
) -> None:
    """msal 1.39: public_certificate -> x5t#S256/PS256; thumbprint -> x5t/RS256. Both verified
    against the registered certificate (Microsoft identity platform certificate credentials)."""
    client_id, key, cert, thumb = sim.register_certificate_app()
    modern = await acquire(
        msal_app(sim, tmp_path, client_id, {"private_key": key, "public_certificate": cert})
    )
    legacy = await acquire(
        msal_app(sim, tmp_path, client_id, {"private_key": key, "thumbprint": thumb})
    )
    assert modern.get("token_type") == "Bearer", modern
    assert legacy.get("token_type") == "Bearer", legacy
    assert (await call_graph(sim, modern["access_token"])).status_code == 200


async def test_certificate_of_another_app_is_refused(sim: GraphSimulator, tmp_path: Path) -> None:
    client_id, _, _, _ = sim.register_certificate_app()
    _, other_key, other_cert, _ = sim.register_certificate_app()
    result = await acquire(
        msal_app(
            sim, tmp_path, client_id, {"private_key": other_key, "public_certificate": other_cert}
        )
    )
    assert result["error"] == "invalid_client"
    assert "AADSTS700027" in result["error_description"]


async def test_wrong_secret_is_invalid_client_and_secret_never_echoed(
    sim: GraphSimulator, tmp_path: Path
) -> None:
    result = await acquire(msal_app(sim, tmp_path, sim.client_id, "not-the-secret"))
    assert result["error"] == "invalid_client"
    assert "AADSTS7000215" in result["error_description"]
    assert "not-the-secret" not in str(result)
    assert sim.client_secret not in repr(sim)


async def test_expired_secret_is_reported_as_expired(sim: GraphSimulator, tmp_path: Path) -> None:
    sim.control.expire_client_secret()
    result = await acquire(msal_app(sim, tmp_path, sim.client_id, sim.client_secret))
    assert "AADSTS7000222" in result["error_description"]


async def test_scope_without_default_suffix_is_invalid_scope(sim: GraphSimulator) -> None:
    async with httpx.AsyncClient(verify=sim.ca.client_context()) as c:
        r = await c.post(
            f"{sim.authority}/oauth2/v2.0/token",
            data={
                "grant_type": "client_credentials",
                "client_id": sim.client_id,
                "client_secret": sim.client_secret,
                "scope": "https://graph.microsoft.com/Calendars.Read",
            },
        )
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_scope"


async def test_openid_discovery_points_at_local_token_endpoint(sim: GraphSimulator) -> None:
    async with httpx.AsyncClient(verify=sim.ca.client_context()) as c:
        doc = (await c.get(f"{sim.authority}/v2.0/.well-known/openid-configuration")).json()
        unknown = await c.get(f"{sim.authority_host}/nope/v2.0/.well-known/openid-configuration")
    assert doc["token_endpoint"] == f"{sim.authority}/oauth2/v2.0/token"
    assert doc["issuer"].startswith(sim.authority_host)
    assert unknown.status_code == 400


async def test_missing_or_garbage_bearer_gets_401_with_graph_error_body(
    sim: GraphSimulator,
) -> None:
    """concepts/errors.md shape; 401 InvalidAuthenticationToken (graph-behaviour.md 7.10)."""
    async with httpx.AsyncClient(verify=sim.ca.client_context()) as c:
        none = await c.get(f"{sim.base_url}/users/{ROOM}/events")
        garbage = await c.get(
            f"{sim.base_url}/users/{ROOM}/events", headers={"Authorization": "Bearer abc"}
        )
    for r in (none, garbage):
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "InvalidAuthenticationToken"
        assert not same_shape(r.json(), fixture("error-generic-example.json"), subset=True)
        assert "www-authenticate" in r.headers


async def test_token_expires_on_the_simulated_clock(sim: GraphSimulator) -> None:
    token = sim.control.token()
    assert (await call_graph(sim, token)).status_code == 200
    sim.control.advance_clock(3600)
    r = await call_graph(sim, token)
    assert r.status_code == 401
    assert "expired" in r.json()["error"]["message"]


async def test_revoked_tokens_get_401(sim: GraphSimulator) -> None:
    """Checklist 7.10 ("bearer token required (401 without one)"), citing
    concepts/errors.md (401 Unauthorized: a missing or invalid token): a revoked token is
    refused; a fresh one works."""
    token = sim.control.token()
    sim.control.revoke_tokens()
    assert (await call_graph(sim, token)).status_code == 401
    assert (await call_graph(sim, sim.control.token())).status_code == 200


async def test_application_access_policy_blocks_other_mailboxes(sim: GraphSimulator) -> None:
    """auth-limit-mailbox-access.md: ErrorAccessDenied "Access to OData is disabled."."""
    sim.control.set_access_policy([ROOM])
    token = sim.control.token()
    allowed = await call_graph(sim, token, f"/users/{ROOM}/events")
    blocked = await call_graph(sim, token, "/users/adelev@contoso.com/events")
    assert allowed.status_code == 200
    assert blocked.status_code == 403
    assert blocked.json()["error"]["message"] == "Access to OData is disabled."
    assert not same_shape(blocked.json(), fixture("error-403-application-access-policy.json"))


async def test_secrets_stay_out_of_reprs_and_state(sim: GraphSimulator) -> None:
    """common brief: no secret in a log line, exception message or repr."""
    import json

    app = sim.identity.apps[sim.client_id]
    assert sim.client_secret not in repr(app)
    assert sim.client_secret not in json.dumps(sim.control.state(), default=str)
    assert sim.client_secret not in repr(sim)


class LoopbackOnlyHttpClient(VerifyingHttpClient):
    """Records every URL msal asks for and refuses anything that is not loopback."""

    def __init__(self, ca_bundle: Path) -> None:
        super().__init__(ca_bundle)
        self.urls: list[str] = []

    def _check(self, url: str) -> None:
        self.urls.append(url)
        if not url.startswith("https://127.0.0.1:"):
            raise ConnectionRefusedError(f"test refuses non-loopback traffic: {url}")

    def post(self, url: str, **kw: Any) -> requests.Response:
        self._check(url)
        return super().post(url, **kw)

    def get(self, url: str, **kw: Any) -> requests.Response:
        self._check(url)
        return super().get(url, **kw)


async def test_msal_needs_instance_discovery_false_to_stay_local(
    sim: GraphSimulator, tmp_path: Path
) -> None:
    """msal 1.39 authority.py: an unknown authority host is validated through instance
    discovery at login.microsoftonline.com unless instance_discovery=False (brief 3.3)."""
    bundle = sim.ca.write_ca_bundle(tmp_path / "ca.pem")

    def build(**kw: Any) -> LoopbackOnlyHttpClient:
        client = LoopbackOnlyHttpClient(bundle)
        try:
            app = msal.ConfidentialClientApplication(
                sim.client_id,
                client_credential=sim.client_secret,
                authority=sim.authority,
                http_client=client,
                **kw,
            )
            app.acquire_token_for_client(scopes=SCOPES)
        except Exception:  # msal wraps the refusal in its own errors
            pass
        client.close()
        return client

    default = await asyncio.to_thread(build)
    local = await asyncio.to_thread(build, instance_discovery=False)
    assert any("login.microsoftonline.com" in u for u in default.urls)
    assert local.urls and all(u.startswith(sim.authority_host) for u in local.urls)
