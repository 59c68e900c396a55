"""The control surface over HTTP (issue 3 item 8; docs/graph-simulator.md)."""

from __future__ import annotations

from datetime import timedelta

import httpx

from roomd.sim.graph import GraphSimulator

from .conftest import ADELE, ROOM, World, tomorrow_at


async def sim_call(
    sim: GraphSimulator, method: str, path: str, json: object = None
) -> httpx.Response:
    async with httpx.AsyncClient(verify=sim.ca.client_context()) as c:
        return await c.request(method, f"{sim.authority_host}/_sim{path}", json=json)


async def test_state_lists_the_tenant_without_the_secret(sim: GraphSimulator) -> None:
    r = await sim_call(sim, "GET", "/state")
    body = r.json()
    assert body["client_id"] == sim.client_id
    assert ROOM in {m["email"] for m in body["mailboxes"]}
    assert sim.client_secret not in r.text


async def test_calendar_processing_over_http(world: World) -> None:
    r = await sim_call(
        world.sim,
        "POST",
        f"/rooms/{ROOM}/calendar-processing",
        {"DeleteSubject": False, "AddOrganizerToSubject": False},
    )
    assert r.json()["DeleteSubject"] is False
    bad = await sim_call(
        world.sim, "POST", f"/rooms/{ROOM}/calendar-processing", {"DeleteSubjekt": False}
    )
    assert bad.status_code == 400
    assert "DeleteSubjekt" in bad.json()["error"]
    await world.book()
    assert (await world.only_event(ROOM))["subject"] == "Quarterly planning"


async def test_switches_faults_clock_and_tokens_over_http(world: World) -> None:
    sim = world.sim
    assert (
        await sim_call(sim, "POST", "/switches", {"organizer_cancel": "mark_cancelled"})
    ).status_code == 200
    assert sim.switches.organizer_cancel == "mark_cancelled"
    assert (
        await sim_call(sim, "POST", "/switches", {"organizer_cancel": "explode"})
    ).status_code == 400
    fault = await sim_call(sim, "POST", "/faults", {"kind": "status", "status": 504, "count": 1})
    assert fault.json()["status"] == 504
    assert (await world.graph.get(f"/users/{ROOM}/events")).status_code == 504
    before = (await sim_call(sim, "GET", "/clock")).json()["now"]
    after = (await sim_call(sim, "POST", "/clock/advance", {"seconds": 86400})).json()["now"]
    assert after > before
    token = (await sim_call(sim, "POST", "/token", {})).json()["access_token"]
    r = await world.graph.get(f"/users/{ROOM}", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200


async def test_expire_delta_tokens_and_run_rba_over_http(world: World) -> None:
    sim = world.sim
    url = world.delta_url(ROOM, tomorrow_at(0, days=0), tomorrow_at(0, days=10))
    _, link, _ = await world.delta_round(url)
    r = await sim_call(sim, "POST", "/delta/expire", {"mailbox": ROOM})
    assert r.json()["expired_chains"] == 1
    assert (await world.graph.get(link)).status_code == 410
    await world.graph.post(f"/users/{ADELE}/events", json=world.meeting(tomorrow_at(9)))
    assert (await sim_call(sim, "POST", "/rba/run")).json()["processed"] == 2
    events = (await sim_call(sim, "GET", f"/mailboxes/{ROOM}/events")).json()
    assert [e["subject"] for e in events] == ["Adele Vance"]


async def test_added_room_is_bookable(world: World) -> None:
    r = await sim_call(
        world.sim,
        "POST",
        "/rooms",
        {"email": "pod@contoso.com", "display_name": "Pod", "time_zone": "UTC"},
    )
    assert r.status_code == 200
    await world.book(start=tomorrow_at(9) + timedelta(hours=1), room="pod@contoso.com")
    assert len(await world.events("pod@contoso.com")) == 1


async def test_simulator_starts_and_stops_well_under_a_second(ca: object) -> None:
    """Speed requirement of the brief: a started simulator comes up in well under a second."""
    import time

    from roomd.sim.tls import LocalCA

    assert isinstance(ca, LocalCA)
    t0 = time.perf_counter()
    sim = GraphSimulator(ca=ca)
    await sim.start()
    started = time.perf_counter() - t0
    await sim.stop()
    assert started < 0.5


async def test_frozen_clock_and_short_token_lifetime_over_http(sim: GraphSimulator) -> None:
    frozen = (
        await sim_call(sim, "POST", "/clock/freeze", {"now": "2026-03-01T09:00:00+00:00"})
    ).json()
    assert frozen["now"].startswith("2026-03-01T09:00:00")
    assert (await sim_call(sim, "GET", "/clock")).json()["now"] == frozen["now"]
    await sim_call(sim, "POST", "/tokens/lifetime", {"seconds": 60})
    token = sim.control.token()
    await sim_call(sim, "POST", "/clock/advance", {"seconds": 61})
    async with httpx.AsyncClient(verify=sim.ca.client_context()) as c:
        r = await c.get(
            f"{sim.base_url}/users/{ROOM}", headers={"Authorization": f"Bearer {token}"}
        )
    assert r.status_code == 401
    assert (await sim_call(sim, "POST", "/clock/unfreeze")).status_code == 200
