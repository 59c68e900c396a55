"""Room policy invariant, for all booking sequences: with AllowConflicts $false (the default) a
room's calendar never holds two overlapping meetings, and every meeting the organizer sees as
accepted by the room is in the room's calendar (Set-CalendarProcessing: "free = accept; busy =
decline"; graph-behaviour.md 2.1, 2.7, 6.1)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from itertools import pairwise
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from roomd.sim.graph import GraphSimulator
from roomd.sim.tls import LocalCA

from .conftest import ROOM, World, dtz, graph_time, tomorrow_at

CA = LocalCA()
PEOPLE = ("adelev@contoso.com", "alexw@contoso.com", "meganb@contoso.com")
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("book"), st.integers(0, 2), st.integers(0, 40), st.integers(1, 4)),
        st.tuples(st.just("series"), st.integers(0, 2), st.integers(0, 40), st.integers(2, 4)),
        st.tuples(st.just("move"), st.integers(0, 9), st.integers(0, 40), st.integers(1, 4)),
    ),
    min_size=1,
    max_size=10,
)


async def scenario(ops: list[tuple[str, int, int, int]]) -> None:
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
            made: list[tuple[str, str]] = []
            for op, who, slot, length in ops:
                start = tomorrow_at(8) + timedelta(minutes=30 * slot)
                end = start + timedelta(minutes=30 * length)
                if op in ("book", "series"):
                    extra: dict[str, Any] = {}
                    if op == "series":
                        extra["recurrence"] = {
                            "pattern": {"type": "daily", "interval": 1},
                            "range": {
                                "type": "numbered",
                                "startDate": start.date().isoformat(),
                                "numberOfOccurrences": length,
                            },
                        }
                    r = await client.post(
                        f"/users/{PEOPLE[who]}/events", json=world.meeting(start, end, **extra)
                    )
                    made.append((PEOPLE[who], r.json()["id"]))
                elif made:
                    organizer, event_id = made[who % len(made)]
                    await client.patch(
                        f"/users/{organizer}/events/{event_id}",
                        json={"start": dtz(start), "end": dtz(end)},
                    )
                if slot % 2:
                    sim.control.run_rba()
            sim.control.run_rba()
            view = await world.view(ROOM, tomorrow_at(0), tomorrow_at(0, days=10))
            spans = sorted((graph_time(v["start"]), graph_time(v["end"])) for v in view)
            for (_, end_a), (start_b, _) in pairwise(spans):
                assert end_a <= start_b, spans
            room_uids = {v["iCalUId"][:32] + v["iCalUId"][40:] for v in view}
            for organizer, event_id in made:
                org = (await client.get(f"/users/{organizer}/events/{event_id}")).json()
                if (
                    org["attendees"][0]["status"]["response"] == "accepted"
                    and org["type"] == "singleInstance"
                ):
                    assert org["iCalUId"][:32] + org["iCalUId"][40:] in room_uids
    finally:
        await sim.stop()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=OPS)
def test_room_never_double_booked(ops: list[tuple[str, int, int, int]]) -> None:
    """graph-behaviour.md 2.1 and 6.1 and checklist 7.5, citing Set-CalendarProcessing.md
    (AutoAccept: "free = accept; busy = decline"; AllowConflicts $false) and user-post-events.md
    ("the server accepts or rejects the meeting request based on the free/busy schedule of the
    resource"): whatever is booked, the room never holds two overlapping meetings."""
    asyncio.run(scenario(ops))
