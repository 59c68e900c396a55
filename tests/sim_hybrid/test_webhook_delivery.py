"""Webhook deliveries: signed the vendor's way, retried on failure, and every switchable fault."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from datetime import timedelta

from roomd.sim.hybrid import HybridSimulator, sign

from .conftest import NOW, ROOM_4A, Client, Hook

EVENTS = ["booking.created", "booking.updated", "booking.removed"]


async def register(client: Client, hook: Hook, events: list[str] | None = None) -> str:
    answer = await client.call(
        "POST", "/webhooks", json={"url": hook.url, "eventTypes": events or EVENTS}
    )
    assert answer.status_code == 201
    secret: str = answer.json()["secret"]
    return secret


def signature_ok(secret: str, header: str, body: bytes) -> tuple[bool, int]:
    parts = dict(p.split("=", 1) for p in header.split(","))
    mac = hmac.new(secret.encode(), body + b"." + parts["t"].encode(), hashlib.sha256)
    return hmac.compare_digest(mac.hexdigest(), parts["v1"]), int(parts["t"])


def test_signature_is_hmac_of_body_dot_timestamp() -> None:
    """The form OfficeRnD's webhooks demo verifies: HMAC-SHA256(secret, body + "." + t)."""
    body = b'{"eventType":"booking.created"}'
    expected = hmac.new(b"s3cret", body + b".1700000000", hashlib.sha256).hexdigest()
    assert sign("s3cret", body, 1700000000) == f"t=1700000000,v1={expected}"


async def test_delivery_is_signed_and_carries_the_booking(
    sim: HybridSimulator, client: Client, hook: Hook
) -> None:
    secret = await register(client, hook)
    made = (await client.book(ROOM_4A, NOW + timedelta(days=1))).json()
    await hook.wait_for(1)
    headers, body = hook.received[0]
    ok, stamp = signature_ok(secret, headers["officernd-signature"], body)
    assert ok and abs(stamp - time.time()) < 5
    assert hook.bodies()[0] == {"eventType": "booking.created", "data": {"object": made}}


async def test_failed_delivery_is_retried_until_accepted(
    sim: HybridSimulator, client: Client, hook: Hook
) -> None:
    hook.statuses = [500, 503]
    await register(client, hook)
    await client.book(ROOM_4A, NOW + timedelta(days=1))
    await sim.control.webhooks_idle()
    (delivery,) = sim.control.deliveries()
    assert delivery["state"] == "delivered"
    assert [a["status"] for a in delivery["attempts"]] == [500, 503, 200]
    assert len({body for _, body in hook.received}) == 1  # the same body each time


async def test_retries_are_bounded(sim: HybridSimulator, client: Client, hook: Hook) -> None:
    hook.statuses = [500] * 10
    await register(client, hook)
    await client.book(ROOM_4A, NOW + timedelta(days=1))
    await sim.control.webhooks_idle()
    (delivery,) = sim.control.deliveries()
    assert delivery["state"] == "failed"
    assert len(delivery["attempts"]) == 3  # the FAST policy's max_attempts
    assert len(hook.received) == 3


async def test_unreachable_receiver_is_retried_then_given_up(
    sim: HybridSimulator, client: Client
) -> None:
    answer = await client.call(
        "POST", "/webhooks", json={"url": "http://127.0.0.1:9/nothing", "eventTypes": EVENTS}
    )
    assert answer.status_code == 201
    await client.book(ROOM_4A, NOW + timedelta(days=1))
    await sim.control.webhooks_idle()
    (delivery,) = sim.control.deliveries()
    assert delivery["state"] == "failed"
    assert all(a["status"] is None and a["error"] for a in delivery["attempts"])


async def test_drop_fault_loses_a_delivery(
    sim: HybridSimulator, client: Client, hook: Hook
) -> None:
    await register(client, hook)
    sim.control.set_faults(webhook_drop=1)
    await client.book(ROOM_4A, NOW + timedelta(days=1))
    await client.book(ROOM_4A, NOW + timedelta(days=2))
    await sim.control.webhooks_idle()
    assert [d["state"] for d in sim.control.deliveries()] == ["dropped", "delivered"]
    assert len(hook.received) == 1


async def test_duplicate_fault_sends_the_same_body_twice(
    sim: HybridSimulator, client: Client, hook: Hook
) -> None:
    await register(client, hook)
    sim.control.set_faults(webhook_duplicate=1)
    await client.book(ROOM_4A, NOW + timedelta(days=1))
    await hook.wait_for(2)
    assert hook.received[0][1] == hook.received[1][1]


async def test_reorder_fault_swaps_two_deliveries(
    sim: HybridSimulator, client: Client, hook: Hook
) -> None:
    await register(client, hook)
    sim.control.set_faults(webhook_reorder=1)
    made = (await client.book(ROOM_4A, NOW + timedelta(days=1))).json()
    await client.call("PATCH", f"/bookings/{made['_id']}", json={"summary": "second"})
    await hook.wait_for(2)
    assert [b["eventType"] for b in hook.bodies()] == ["booking.updated", "booking.created"]


async def test_bad_signature_fault_fails_verification(
    sim: HybridSimulator, client: Client, hook: Hook
) -> None:
    secret = await register(client, hook)
    sim.control.set_faults(webhook_bad_signature=1)
    await client.book(ROOM_4A, NOW + timedelta(days=1))
    await client.book(ROOM_4A, NOW + timedelta(days=2))
    await hook.wait_for(2)
    checks = [signature_ok(secret, h["officernd-signature"], b)[0] for h, b in hook.received]
    assert checks == [False, True]


async def test_stale_timestamp_fault_signs_ten_minutes_ago(
    sim: HybridSimulator, client: Client, hook: Hook
) -> None:
    secret = await register(client, hook)
    sim.control.set_faults(webhook_stale_timestamp=1)
    await client.book(ROOM_4A, NOW + timedelta(days=1))
    await hook.wait_for(1)
    headers, body = hook.received[0]
    ok, stamp = signature_ok(secret, headers["officernd-signature"], body)
    assert ok and time.time() - stamp >= 599


async def test_delay_fault_holds_a_delivery_back(
    sim: HybridSimulator, client: Client, hook: Hook
) -> None:
    await register(client, hook)
    sim.control.set_faults(webhook_delay=1, webhook_delay_seconds=0.3)
    made = (await client.book(ROOM_4A, NOW + timedelta(days=1))).json()
    await client.call("POST", f"/bookings/{made['_id']}/cancel")
    await hook.wait_for(1)
    assert hook.bodies()[0]["eventType"] == "booking.removed"
    await hook.wait_for(2)
    assert hook.bodies()[1]["eventType"] == "booking.created"


async def test_unsubscribed_webhook_gets_nothing(
    sim: HybridSimulator, client: Client, hook: Hook
) -> None:
    answer = await client.call("POST", "/webhooks", json={"url": hook.url, "eventTypes": EVENTS})
    hook_id = answer.json()["_id"]
    listed = (await client.call("GET", "/webhooks")).json()["results"]
    assert [h["_id"] for h in listed] == [hook_id]
    assert "secret" not in listed[0]
    assert (await client.call("DELETE", f"/webhooks/{hook_id}")).status_code == 204
    await client.book(ROOM_4A, NOW + timedelta(days=1))
    await asyncio.sleep(0.05)
    assert sim.control.deliveries() == [] and hook.received == []


async def test_approval_and_no_show_are_announced(
    sim: HybridSimulator, client: Client, hook: Hook
) -> None:
    await register(client, hook)
    pending = (await client.book("64f0a1b2c3d4e5f6a7b8c902", NOW + timedelta(days=1))).json()
    sim.control.approve(pending["_id"])
    await hook.wait_for(2)
    approved = hook.bodies()[1]
    assert approved["eventType"] == "booking.updated"
    assert approved["data"]["object"]["tentative"] is False
