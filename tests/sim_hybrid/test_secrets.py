"""No secret (client secret, token, webhook secret) shows in a repr, an error or a listing."""

from __future__ import annotations

from datetime import timedelta

from roomd.sim.hybrid import HybridSimulator

from .conftest import NOW, ROOM_4A, Client


async def test_reprs_and_errors_hide_the_client_secret(
    sim: HybridSimulator, client: Client
) -> None:
    secret = sim.client_secret
    assert secret not in repr(sim)
    assert secret not in repr(sim._issuer)
    wrong = await client.http.post(
        sim.token_url,
        data={
            "client_id": sim.client_id,
            "client_secret": secret + "x",
            "grant_type": "client_credentials",
        },
    )
    assert wrong.status_code == 401 and secret not in wrong.text


async def test_deliveries_and_listings_hide_the_webhook_secret(
    sim: HybridSimulator, client: Client
) -> None:
    answer = await client.call(
        "POST", "/webhooks", json={"url": "http://127.0.0.1:9/x", "eventTypes": ["booking.created"]}
    )
    secret = answer.json()["secret"]
    await client.book(ROOM_4A, NOW + timedelta(days=1))
    assert secret not in str(sim.control.deliveries())
    assert secret not in (await client.call("GET", "/webhooks")).text
    assert secret not in repr(sim.webhooks.webhooks)
