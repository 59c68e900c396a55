"""Room policies the Hybrid app applies itself: approval, and check-in with a no-show sweep."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from roomd.sim.hybrid import ApiError, HybridSimulator, SimClock
from roomd.sim.tls import LocalCA

from .conftest import BOARDROOM, NOW, ROOM_4A, ROOM_4B, Client, iso


async def test_booking_on_approval_room_is_tentative_until_approved(
    sim: HybridSimulator, client: Client
) -> None:
    made = (await client.book(ROOM_4B, NOW + timedelta(days=1))).json()
    assert made["tentative"] is True
    approved = sim.control.approve(made["_id"])
    assert approved["tentative"] is False
    assert approved["modifiedAt"] > made["modifiedAt"]
    assert (await client.call("GET", f"/bookings/{made['_id']}")).json()["tentative"] is False


async def test_tentative_booking_still_holds_the_room(client: Client) -> None:
    first = await client.book(ROOM_4B, NOW + timedelta(days=1))
    assert first.json()["tentative"] is True
    assert (await client.book(ROOM_4B, NOW + timedelta(days=1))).status_code == 409


async def test_moving_a_booking_into_an_approval_room_makes_it_pending(
    sim: HybridSimulator, client: Client
) -> None:
    made = (await client.book(ROOM_4A, NOW + timedelta(days=1))).json()
    moved = await client.call("PATCH", f"/bookings/{made['_id']}", json={"resourceId": ROOM_4B})
    assert moved.status_code == 200
    assert moved.json()["tentative"] is True
    assert moved.json()["timezone"] == "Europe/London"


async def test_rejected_booking_is_canceled_with_reason_rejected(
    sim: HybridSimulator, client: Client
) -> None:
    made = (await client.book(ROOM_4B, NOW + timedelta(days=1))).json()
    rejected = sim.control.reject(made["_id"])
    assert rejected["canceled"] is True
    assert rejected["cancelReason"] == "rejected"
    assert (await client.book(ROOM_4B, NOW + timedelta(days=1))).status_code == 201


async def test_only_pending_bookings_can_be_approved(sim: HybridSimulator, client: Client) -> None:
    made = (await client.book(ROOM_4A, NOW + timedelta(days=1))).json()
    assert made["tentative"] is False
    with pytest.raises(ApiError) as refused:
        sim.control.approve(made["_id"])
    assert refused.value.status == 409


async def test_no_show_cancels_after_the_window_with_a_distinct_reason(
    sim: HybridSimulator, client: Client
) -> None:
    made = (await client.book(BOARDROOM, NOW + timedelta(hours=1))).json()
    sim.control.advance_clock(timedelta(hours=1, minutes=14).total_seconds())
    assert sim.control.run_noshow_sweep() == []
    sim.control.advance_clock(60)
    swept = sim.control.run_noshow_sweep()
    assert [b["_id"] for b in swept] == [made["_id"]]
    await client.login()  # the simulated hour outlived the token
    got = (await client.call("GET", f"/bookings/{made['_id']}")).json()
    assert got["canceled"] is True
    assert got["cancelReason"] == "no_show"
    assert got["canceledBy"] == "system"


async def test_checked_in_booking_is_not_a_no_show(sim: HybridSimulator, client: Client) -> None:
    made = (await client.book(BOARDROOM, NOW + timedelta(hours=1))).json()
    sim.control.advance_clock(3600 + 300)
    checked = sim.control.check_in(made["_id"])
    assert checked["checkedIn"] is True
    sim.control.advance_clock(3600)
    assert sim.control.run_noshow_sweep() == []
    assert sim.control.booking(made["_id"])["canceled"] is False


async def test_rooms_without_check_in_never_no_show(sim: HybridSimulator, client: Client) -> None:
    made = (await client.book(ROOM_4A, NOW + timedelta(hours=1))).json()
    sim.control.advance_clock(86400)
    assert sim.control.run_noshow_sweep() == []
    assert sim.control.booking(made["_id"])["canceled"] is False


async def test_booking_entered_after_its_window_is_not_a_no_show(
    sim: HybridSimulator, client: Client
) -> None:
    """A meeting synced late (created after its check-in window closed) is left alone."""
    made = (await client.book(BOARDROOM, NOW - timedelta(hours=1), minutes=180)).json()
    sim.control.advance_clock(60)
    assert sim.control.run_noshow_sweep() == []
    assert sim.control.booking(made["_id"])["canceled"] is False


async def test_missed_occurrence_of_a_series_becomes_a_canceled_exception(
    sim: HybridSimulator, client: Client
) -> None:
    first = NOW + timedelta(hours=2)
    series = (
        await client.book(
            BOARDROOM, first, recurrence={"rrule": "FREQ=DAILY;COUNT=3", "exdates": []}
        )
    ).json()
    sim.control.advance_clock(timedelta(hours=2, minutes=16).total_seconds())
    swept = sim.control.run_noshow_sweep()
    assert len(swept) == 1
    child = swept[0]
    assert child["parent"] == series["_id"]
    assert child["originalStart"] == iso(first)
    assert child["canceled"] is True and child["cancelReason"] == "no_show"
    assert sim.control.booking(series["_id"])["canceled"] is False
    await client.login()  # the simulated hours outlived the token
    # the next day's occurrence still holds the room; the missed one is free again
    assert (await client.book(BOARDROOM, first + timedelta(days=1))).status_code == 409
    assert (await client.book(BOARDROOM, first)).status_code == 201
    assert sim.control.run_noshow_sweep() == []


async def test_checked_in_occurrence_of_a_series_is_kept(
    sim: HybridSimulator, client: Client
) -> None:
    first = NOW + timedelta(hours=2)
    series = (
        await client.book(
            BOARDROOM, first, recurrence={"rrule": "FREQ=DAILY;COUNT=2", "exdates": []}
        )
    ).json()
    sim.control.advance_clock(timedelta(hours=2, minutes=5).total_seconds())
    sim.control.check_in(series["_id"])
    sim.control.advance_clock(3600)
    assert sim.control.run_noshow_sweep() == []


async def test_background_sweep_cancels_no_shows_without_being_called(ca: LocalCA) -> None:
    """With ``noshow_sweep_seconds`` (the demo's setting) the sweep runs on its own."""
    sim = HybridSimulator(ca=ca, clock=SimClock(frozen_at=NOW), noshow_sweep_seconds=0.02)
    await sim.start()
    try:
        made = sim.control.create_booking(
            BOARDROOM,
            NOW + timedelta(minutes=5),
            NOW + timedelta(hours=1),
            member="adelev@contoso.com",
        )
        removed = asyncio.Event()
        sim.store.listeners.append(
            lambda kind, booking: removed.set() if kind == "booking.removed" else None
        )
        sim.control.advance_clock(25 * 60)
        async with asyncio.timeout(5):
            await removed.wait()
        assert sim.control.booking(made["_id"])["cancelReason"] == "no_show"
    finally:
        await sim.stop()
