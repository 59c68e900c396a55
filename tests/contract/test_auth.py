"""Authentication: OAuth2 client credentials, bearer tokens valid for one hour.

OfficeRnD (developer.officernd.com, "Authentication"): ``POST`` the token URL with a form body;
RFC 6749 sections 4.4 and 5.2 give the answer and error shapes a client relies on.
"""

from __future__ import annotations

import pytest

from .conftest import Api


async def test_token_endpoint_issues_an_hour_long_bearer_token(api: Api) -> None:
    """A booking system must answer a client-credentials request with ``access_token``,
    ``token_type: Bearer`` and ``expires_in`` (seconds; 3600 for OfficeRnD)."""
    answer = await api.token()
    assert answer.status_code == 200
    body = answer.json()
    assert body["token_type"].lower() == "bearer"
    assert isinstance(body["access_token"], str) and body["access_token"]
    assert body["expires_in"] == 3600


async def test_wrong_client_secret_is_refused_with_an_oauth_error(api: Api) -> None:
    """Wrong credentials must give 401 with ``{"error": "invalid_client"}``, and the answer must
    not echo the secret that was sent."""
    answer = await api.token(client_secret="not-the-secret-1234")
    assert answer.status_code == 401
    assert answer.json()["error"] == "invalid_client"
    assert "not-the-secret-1234" not in answer.text


async def test_unsupported_grant_type_is_refused(api: Api) -> None:
    """Only ``grant_type=client_credentials`` is offered; anything else is a 400 OAuth error."""
    answer = await api.token(grant_type="password")
    assert answer.status_code == 400
    assert answer.json()["error"] == "unsupported_grant_type"


@pytest.mark.parametrize("header", [None, "Bearer not-a-token", "Basic Zm9vOmJhcg=="])
async def test_api_refuses_requests_without_a_valid_token(api: Api, header: str | None) -> None:
    """Every API path must answer 401 to a request with no token, an unknown token or another
    scheme, before revealing anything about the data."""
    headers = {} if header is None else {"Authorization": header}
    answer = await api.request("GET", "/bookings", auth=False, headers=headers)
    assert answer.status_code == 401
    assert "message" in answer.json()


@pytest.mark.simulator_only
async def test_expired_token_is_refused_and_a_new_one_works(api: Api) -> None:
    """After ``expires_in`` seconds the token must stop working (401); a client that fetches a
    new token carries on. (Uses the simulator's clock to jump an hour.)"""
    assert api.sim is not None
    assert (await api.get("/resources")).status_code == 200
    api.sim.control.advance_clock(3600)
    assert (await api.get("/resources")).status_code == 401
    api._token = None
    assert (await api.get("/resources")).status_code == 200


async def test_token_lacking_a_scope_cannot_write(api: Api) -> None:
    """A token granted only ``flex.space.bookings.read`` must be refused (403) when it creates a
    booking: OfficeRnD scopes are fine-grained, so roomd must ask for the write scopes it uses."""
    answer = await api.token(scope="flex.space.bookings.read")
    assert answer.status_code == 200
    token = answer.json()["access_token"]
    day = api.day()
    body = api.booking_body(day.replace(hour=9), day.replace(hour=10))
    refused = await api.post("/bookings", json=body, headers={"Authorization": f"Bearer {token}"})
    assert refused.status_code == 403
    listing = await api.get("/bookings", headers={"Authorization": f"Bearer {token}"})
    assert listing.status_code == 200
