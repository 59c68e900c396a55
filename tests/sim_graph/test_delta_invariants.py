"""Delta convergence, for all operation sequences: a client that applies every delta round to a
local mirror (upsert by id, drop on @removed) ends up with exactly what calendarView shows for the
same window (delta-query-overview.md: deltas are the changes since the last round; graph-behaviour
.md 1.2-1.5). Runs against a real simulator over HTTPS."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from roomd.sim.graph import GraphSimulator
from roomd.sim.tls import LocalCA

from .conftest import ADELE, ROOM, World, dtz, tomorrow_at

CA = LocalCA()
WS = tomorrow_at(0, days=0)
WE = tomorrow_at(0, days=14)

OPS = st.lists(
    st.one_of(
        st.tuples(st.just("create"), st.integers(0, 20), st.booleans()),
        st.tuples(st.just("move"), st.integers(0, 9), st.integers(-3, 20)),
        st.tuples(st.just("delete"), st.integers(0, 9), st.just(False)),
        st.tuples(st.just("cancel_occurrence"), st.integers(0, 9), st.integers(0, 3)),
        st.tuples(st.just("round"), st.just(0), st.integers(1, 4)),
    ),
    min_size=1,
    max_size=12,
)


async def scenario(ops: list[tuple[str, int, Any]]) -> None:
    sim = GraphSimulator(ca=CA)
    sim.control.set_switches(rba_delay=None)
    await sim.start()
    try:
        async with httpx.AsyncClient(
            base_url=sim.base_url,
            verify=CA.client_context(),
            headers={"Authorization": f"Bearer {sim.control.token()}"},
        ) as client:
            world = World(sim, client)
            mirror: dict[str, dict[str, Any]] = {}
            link = world.delta_url(ROOM, WS, WE)
            created: list[str] = []

            async def round_(page_size: int) -> None:
                nonlocal link
                items, link, _ = await world.delta_round(link, page_size=page_size)
                for item in items:
                    if "@removed" in item:
                        mirror.pop(item["id"], None)
                    else:
                        mirror[item["id"]] = item

            for op, n, arg in ops:
                if op == "create":
                    start = tomorrow_at(8, days=n % 16) + timedelta(hours=n % 3)
                    extra: dict[str, Any] = {}
                    if arg:
                        extra["recurrence"] = {
                            "pattern": {"type": "daily", "interval": 2},
                            "range": {
                                "type": "numbered",
                                "startDate": start.date().isoformat(),
                                "numberOfOccurrences": 4,
                            },
                        }
                    body = world.meeting(start, subject=f"m{n}", **extra)
                    world.sim.control.set_calendar_processing(ROOM, AllowConflicts=True)
                    r = await client.post(f"/users/{ADELE}/events", json=body)
                    created.append(r.json()["id"])
                elif op == "move" and created:
                    target = created[n % len(created)]
                    start = tomorrow_at(10, days=arg)
                    await client.patch(
                        f"/users/{ADELE}/events/{target}",
                        json={"start": dtz(start), "end": dtz(start + timedelta(minutes=30))},
                    )
                elif op == "delete" and created:
                    await client.delete(f"/users/{ADELE}/events/{created[n % len(created)]}")
                elif op == "cancel_occurrence" and created:
                    target = created[n % len(created)]
                    r = await client.get(
                        f"/users/{ADELE}/events/{target}/instances",
                        params={"startDateTime": WS.isoformat(), "endDateTime": WE.isoformat()},
                    )
                    if r.status_code == 200 and len(r.json()["value"]) > arg:
                        occ = r.json()["value"][arg]["id"]
                        await client.post(f"/users/{ADELE}/events/{occ}/cancel", json={})
                elif op == "round":
                    sim.control.run_rba()
                    await round_(arg)
            sim.control.run_rba()
            await round_(3)
            view = await world.view(ROOM, WS, WE)
            assert set(mirror) == {v["id"] for v in view}
            for v in view:
                assert mirror[v["id"]]["@odata.etag"] == v["@odata.etag"]
    finally:
        await sim.stop()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=OPS)
def test_delta_rounds_converge_on_calendar_view(ops: list[tuple[str, int, Any]]) -> None:
    """graph-behaviour.md 1.2-1.5 and checklist 7.1-7.2, citing
    concepts/delta-query-overview.md (a round returns the changes since the last one;
    ``@removed`` for what left) and v1.0 event-delta.md (calendarView delta returns what
    ``GET /calendarView`` returns): a client applying every round's items and ``@removed`` to a
    mirror ends with exactly the calendarView of the same window, for any sequence of creates,
    moves, deletes, cancelled occurrences and rounds."""
    asyncio.run(scenario(ops))
