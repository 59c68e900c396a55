"""``GET /applications(appId='…')``: an app reads its own registration, and with it its client
secrets' ``endDateTime`` (application-get.md; passwordcredential.md; serviceprincipal-get.md:
"a service principal can retrieve its own application ... without being granted any application
permissions"), and every answer's ``Date`` follows the simulated clock."""

from __future__ import annotations

from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

from support.graph_world import World

from roomd.sim.graph import GraphSimulator


async def test_an_app_reads_its_own_secrets_expiry(sim: GraphSimulator, world: World) -> None:
    client = world.graph
    resp = await client.get(f"/applications(appId='{sim.client_id}')")
    assert resp.status_code == 200
    body = resp.json()
    assert body["appId"] == sim.client_id and body["id"] != sim.client_id
    (secret,) = body["passwordCredentials"]
    assert secret["hint"] == sim.client_secret[:3] and secret["secretText"] is None
    start = datetime.fromisoformat(secret["startDateTime"])
    end = datetime.fromisoformat(secret["endDateTime"])
    assert timedelta(days=729) < end - start <= timedelta(days=730)  # addPassword's default

    when = sim.control.now() + timedelta(days=10)
    sim.control.set_client_secret_expiry(when)
    again = await client.get(
        f"/applications/{body['id']}", params={"$select": "passwordCredentials"}
    )
    ends = datetime.fromisoformat(again.json()["passwordCredentials"][0]["endDateTime"])
    assert abs(ends - when) < timedelta(seconds=1)
    assert set(again.json()) == {"@odata.context", "id", "passwordCredentials"}


async def test_another_app_needs_application_read_all(sim: GraphSimulator, world: World) -> None:
    client = world.graph
    other, *_ = sim.register_certificate_app()
    resp = await client.get(f"/applications(appId='{other}')")
    assert resp.status_code == 403
    assert resp.json()["error"]["code"] == "Authorization_RequestDenied"


async def test_the_date_header_reads_the_simulated_clock(sim: GraphSimulator, world: World) -> None:
    client = world.graph
    sim.control.advance_clock(3600)
    resp = await client.get("/users/room-4a@contoso.com")
    served = parsedate_to_datetime(resp.headers["Date"])
    assert abs(served - sim.control.now()) < timedelta(seconds=2)
