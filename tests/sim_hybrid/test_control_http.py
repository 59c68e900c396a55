"""The ``/_sim/`` control surface the demo drives: Hybrid-app actions, clock, sweep, deliveries."""

from __future__ import annotations

from datetime import timedelta

from roomd.sim.hybrid import HybridSimulator

from .conftest import BOARDROOM, NOW, ROOM_4B, Client, iso


async def test_member_books_approval_room_in_the_app_and_admin_approves(
    sim: HybridSimulator, client: Client
) -> None:
    base = sim.base_url
    answer = await client.http.post(
        f"{base}/_sim/bookings",
        json={
            "resourceId": ROOM_4B,
            "start": iso(NOW + timedelta(days=1)),
            "end": iso(NOW + timedelta(days=1, hours=1)),
            "member": "meganb@contoso.com",
            "summary": "Team sync",
        },
    )
    assert answer.status_code == 201
    made = answer.json()
    assert made["source"] == "hybrid_app" and made["tentative"] is True
    assert made["member"] == sim.control.member_id("meganb@contoso.com")
    approved = await client.http.post(f"{base}/_sim/bookings/{made['_id']}/approve")
    assert approved.json()["tentative"] is False
    via_api = (await client.call("GET", f"/bookings/{made['_id']}")).json()
    assert via_api == approved.json()


async def test_member_cancels_in_the_app(sim: HybridSimulator, client: Client) -> None:
    made = sim.control.create_booking(
        ROOM_4B,
        NOW + timedelta(days=1),
        NOW + timedelta(days=1, hours=1),
        member="alexw@contoso.com",
    )
    answer = await client.http.post(
        f"{sim.base_url}/_sim/bookings/{made['_id']}/cancel", json={"by": "admin"}
    )
    assert answer.json()["cancelReason"] == "admin"


async def test_clock_and_no_show_sweep_over_http(sim: HybridSimulator, client: Client) -> None:
    base = sim.base_url
    made = (await client.book(BOARDROOM, NOW + timedelta(minutes=30))).json()
    clock = await client.http.post(f"{base}/_sim/clock/advance", json={"seconds": 3600})
    assert clock.json()["now"] == iso(NOW + timedelta(hours=1))
    swept = (await client.http.post(f"{base}/_sim/no-show-sweep")).json()
    assert [b["_id"] for b in swept["canceled"]] == [made["_id"]]
    bad = await client.http.post(f"{base}/_sim/clock/advance", json={"seconds": -5})
    assert bad.status_code == 400


async def test_unknown_booking_in_control_is_404(sim: HybridSimulator, client: Client) -> None:
    answer = await client.http.post(
        f"{sim.base_url}/_sim/bookings/000000000000000000000000/approve"
    )
    assert answer.status_code == 404


async def test_revoked_tokens_must_be_renewed(sim: HybridSimulator, client: Client) -> None:
    assert (await client.call("GET", "/resources")).status_code == 200
    assert (await client.http.post(f"{sim.base_url}/_sim/tokens/revoke")).status_code == 204
    assert (await client.call("GET", "/resources")).status_code == 401


async def test_control_actions_refuse_malformed_json(sim: HybridSimulator, client: Client) -> None:
    made = sim.control.create_booking(
        ROOM_4B,
        NOW + timedelta(days=1),
        NOW + timedelta(days=1, hours=1),
        member="alexw@contoso.com",
    )
    answer = await client.http.post(
        f"{sim.base_url}/_sim/bookings/{made['_id']}/cancel", content=b"{by: admin"
    )
    assert answer.status_code == 400
    assert sim.control.booking(made["_id"])["canceled"] is False
