"""roomd's receiver fed by the Hybrid simulator's own deliveries, and the listing as safety net.

The receiver runs in a real aiohttp server on 127.0.0.1; the simulator learns its URL through
roomd's client (``POST /webhooks``), as the daemon registers itself. The secret arrives with the
registration answer, after the receiver is already listening, so the receiver is given a holder
that reveals the secret once known (the daemon can do the same).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from roomd.hybrid import HybridClient
from roomd.sim.hybrid import HybridSimulator

from .conftest import NOW, ROOM_4A, Receiver

START = NOW.replace(hour=9) + timedelta(days=1)


@dataclass
class SecretHolder:
    value: str = ""

    def reveal(self) -> str:
        return self.value


@pytest.fixture
async def subscribed(hybrid: HybridClient, receiver_factory: Any) -> Receiver:
    holder = SecretHolder()
    rx: Receiver = await receiver_factory(holder)
    hook = await hybrid.register_webhook(rx.url)
    assert hook.secret not in repr(hook)
    holder.value = hook.secret
    return rx


def book(sim: HybridSimulator, hours: int = 0) -> dict[str, Any]:
    start = START + timedelta(hours=hours)
    return sim.control.create_booking(
        ROOM_4A, start, start + timedelta(minutes=30), member="adelev@contoso.com", summary="Sync"
    )


async def test_changes_made_in_hybrid_arrive_as_events(
    sim: HybridSimulator, subscribed: Receiver
) -> None:
    made = book(sim)
    created = await subscribed.next_event()
    assert (created.event_type, created.booking_id) == ("booking.created", made["_id"])
    sim.control.update_booking(made["_id"], summary="Moved")
    updated = await subscribed.next_event()
    assert updated.event_type == "booking.updated"
    assert updated.booking is not None and updated.booking.summary == "Moved"
    sim.control.cancel_booking(made["_id"])
    removed = await subscribed.next_event()
    assert removed.event_type == "booking.removed"
    assert removed.booking is not None and removed.booking.canceled


async def test_a_duplicated_delivery_is_queued_once(
    sim: HybridSimulator, subscribed: Receiver
) -> None:
    sim.control.set_faults(webhook_duplicate=1)
    before = subscribed.count("duplicate")
    book(sim)
    await sim.control.webhooks_idle()
    assert subscribed.queue.qsize() == 1
    assert subscribed.count("duplicate") == before + 1
    assert [d["state"] for d in sim.control.deliveries()] == ["delivered", "delivered"]


async def test_a_wrongly_signed_delivery_is_refused_and_counted(
    sim: HybridSimulator, subscribed: Receiver
) -> None:
    sim.control.set_faults(webhook_bad_signature=1)
    before = subscribed.count("bad_signature")
    book(sim)
    await sim.control.webhooks_idle()
    assert subscribed.queue.empty()
    assert subscribed.count("bad_signature") >= before + 1
    assert sim.control.deliveries()[0]["state"] == "failed"


async def test_a_stale_delivery_is_refused_and_counted(
    sim: HybridSimulator, subscribed: Receiver
) -> None:
    sim.control.set_faults(webhook_stale_timestamp=1)
    before = subscribed.count("stale")
    book(sim)
    await sim.control.webhooks_idle()
    assert subscribed.queue.empty()
    assert subscribed.count("stale") >= before + 1


async def test_reordered_deliveries_all_arrive(sim: HybridSimulator, subscribed: Receiver) -> None:
    sim.control.set_faults(webhook_reorder=1)
    first, second = book(sim, 0), book(sim, 2)
    await sim.control.webhooks_idle()
    got = {subscribed.queue.get_nowait().booking_id for _ in range(2)}
    assert got == {first["_id"], second["_id"]}


async def test_a_lost_delivery_is_still_picked_up_by_the_listing(
    sim: HybridSimulator, hybrid: HybridClient, subscribed: Receiver
) -> None:
    book(sim, 4)
    await subscribed.next_event()
    seen, cursor = await hybrid.changes_since(None)
    hybrid.confirm_changes()
    assert len(seen) == 1 and cursor is not None
    sim.control.set_faults(webhook_drop=1)
    lost = book(sim)
    await sim.control.webhooks_idle()
    await asyncio.sleep(0)
    assert subscribed.queue.empty()  # the fast path lost it ...
    changes, _ = await hybrid.changes_since(cursor)
    assert [b.id for b in changes] == [lost["_id"]]  # ... the listing did not


async def test_an_old_registration_can_be_found_and_replaced(
    sim: HybridSimulator, ca_bundle: Any, receiver_factory: Any
) -> None:
    from roomd.hybrid.config import DEFAULT_SCOPE

    from .conftest import make_config

    scope = DEFAULT_SCOPE + " flex.settings.webhooks.read flex.settings.webhooks.delete"
    async with HybridClient(make_config(sim, ca_bundle, scope=scope)) as client:
        old = await client.register_webhook("https://roomd.example.com/hooks/hybrid")
        listed = await client.list_webhooks()
        assert [w["_id"] for w in listed] == [old.id]
        assert all("secret" not in w for w in listed)
        await client.delete_webhook(old.id)
        assert await client.list_webhooks() == []
