"""Webhooks: registration, and signed deliveries of booking changes.

OfficeRnD webhooks: ``POST webhooks {url, eventTypes, description}`` answers with the signing
``secret``; each event is ``POST url`` with ``{"eventType", "data": {"object": booking}}`` and
``officernd-signature: t=<unix>,v1=<hex HMAC-SHA256(secret, raw_body + "." + t)>`` (the form
OfficeRnD's own webhooks demo verifies). Deliveries may repeat, arrive out of order or be lost;
roomd's periodic listing is the truth, so the contract only asks that what arrives is genuine.
"""

from __future__ import annotations

import hashlib
import hmac
import time

import pytest

from .conftest import Api, Receiver

EVENTS = ["booking.created", "booking.updated", "booking.removed"]


def verify(secret: str, header: str, body: bytes) -> int:
    """Check an ``officernd-signature`` header; returns its timestamp."""
    parts = dict(item.split("=", 1) for item in header.split(","))
    expected = hmac.new(secret.encode(), body + b"." + parts["t"].encode(), hashlib.sha256)
    assert hmac.compare_digest(parts["v1"], expected.hexdigest())
    return int(parts["t"])


async def test_registering_a_webhook_returns_its_signing_secret(api: Api) -> None:
    """``POST webhooks`` answers 2xx with the registration and a non-empty ``secret``."""
    answer = await api.post(
        "/webhooks",
        json={
            "url": "https://roomd.example.com/hooks/hybrid",
            "eventTypes": EVENTS,
            "description": "roomd contract test",
        },
    )
    assert answer.status_code in (200, 201)
    body = answer.json()
    assert body["secret"]
    assert set(body["eventTypes"]) == set(EVENTS)


async def test_registering_an_unknown_event_type_is_refused(api: Api) -> None:
    """An event type the system does not send is a 422 naming it, not a silent no-op."""
    answer = await api.post(
        "/webhooks",
        json={"url": "https://roomd.example.com/hooks/hybrid", "eventTypes": ["booking.exploded"]},
    )
    assert answer.status_code == 422
    assert "booking.exploded" in answer.json()["message"]


@pytest.mark.simulator_only
async def test_each_change_is_delivered_signed_with_the_booking(
    api: Api, receiver: Receiver
) -> None:
    """Creating, changing and canceling a booking each send a signed delivery whose
    ``data.object`` is the booking as the API serves it; ``t`` is current Unix time."""
    registered = await api.post("/webhooks", json={"url": receiver.url, "eventTypes": EVENTS})
    secret = registered.json()["secret"]
    day = api.day()
    made = await api.book(day.replace(hour=9), day.replace(hour=10))
    await api.patch(f"/bookings/{made['_id']}", json={"summary": "renamed"})
    await api.post(f"/bookings/{made['_id']}/cancel")
    got = await receiver.wait_for(3)
    kinds = sorted(r.json()["eventType"] for r in got)
    assert kinds == sorted(EVENTS)
    for delivery in got:
        stamp = verify(secret, delivery.headers["officernd-signature"], delivery.body)
        assert abs(time.time() - stamp) < 300
        assert delivery.json()["data"]["object"]["_id"] == made["_id"]
    removed = next(r.json() for r in got if r.json()["eventType"] == "booking.removed")
    assert removed["data"]["object"]["canceled"] is True


@pytest.mark.simulator_only
async def test_only_subscribed_event_types_are_sent(api: Api, receiver: Receiver) -> None:
    """A webhook registered for ``booking.removed`` alone is sent cancellations only."""
    await api.post("/webhooks", json={"url": receiver.url, "eventTypes": ["booking.removed"]})
    day = api.day()
    made = await api.book(day.replace(hour=9), day.replace(hour=10))
    await api.post(f"/bookings/{made['_id']}/cancel")
    got = await receiver.wait_for(1)
    assert api.sim is not None
    await api.sim.control.webhooks_idle()
    assert [r.json()["eventType"] for r in got] == ["booking.removed"]
