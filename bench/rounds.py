"""How long a sync round takes for many rooms, end to end through both simulators.

    python bench/rounds.py [--rooms 100] [--events 5] [--repeat 5]

Builds a tenant of N rooms, books E meetings per room in the simulated Outlook (organizers
inviting the room) and E bookings per room in the simulated Hybrid, then runs roomd's real round
runner (Graph calendarView delta + Hybrid listing, state in SQLite) over every room, as the
daemon does. Prints the median wall time of the first (baseline) round and of later incremental
rounds over all rooms, rooms per second, and the process's peak RSS. Everything runs on
loopback in this process; the figures include the simulators' own work, so read them as an
upper bound of roomd's cost and compare runs on the same machine only.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from roomd import observe
from roomd.compose import make_runner
from roomd.config import load_config
from roomd.sim.graph import GraphSimulator
from roomd.sim.hybrid import HybridSimulator
from roomd.sim.roomd_config import write_roomd_config
from roomd.sim.tenant import Person, Room, Tenant, default_tenant
from roomd.sim.tls import LocalCA
from roomd.store import open_store


def tenant_with(rooms: int) -> Tenant:
    base = default_tenant()
    made = tuple(
        Room(
            hybrid_id=f"{i:024x}",
            email=f"bench-room-{i}@{base.domain}",
            display_name=f"Bench {i}",
            time_zone="Europe/London",
            capacity=6,
            building="Bench",
        )
        for i in range(1, rooms + 1)
    )
    people = (*base.people, Person("Bench Organizer", f"organizer@{base.domain}"))
    return Tenant(rooms=made, people=people)


async def book(graph: GraphSimulator, hybrid: HybridSimulator, tenant: Tenant, n: int) -> None:
    token = graph.control.token()
    day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    async with httpx.AsyncClient(
        verify=graph.ca.client_context(), headers={"Authorization": f"Bearer {token}"}
    ) as client:
        for room in tenant.rooms:
            for k in range(n):
                start = day + timedelta(days=1 + k, hours=9)
                body = {
                    "subject": f"Meeting {k}",
                    "start": {"dateTime": start.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
                    "end": {
                        "dateTime": (start + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S"),
                        "timeZone": "UTC",
                    },
                    "attendees": [{"emailAddress": {"address": room.email}, "type": "resource"}],
                }
                resp = await client.post(
                    f"{graph.base_url}/users/organizer@{tenant.domain}/events", json=body
                )
                resp.raise_for_status()
                hstart = day + timedelta(days=1 + k, hours=14)
                hybrid.control.create_booking(
                    room.hybrid_id,
                    hstart,
                    hstart + timedelta(hours=1),
                    member=tenant.people[0].email,
                    summary=f"Booking {k}",
                )
    graph.control.run_rba()


async def main(rooms: int, events: int, repeat: int) -> None:
    tenant = tenant_with(rooms)
    ca = LocalCA()
    graph, hybrid = GraphSimulator(tenant, ca=ca), HybridSimulator(tenant, ca=ca)
    await graph.start()
    await hybrid.start()
    try:
        t0 = time.perf_counter()
        await book(graph, hybrid, tenant, events)
        print(
            f"set-up: {rooms} rooms x {events} meetings + {events} bookings "
            f"in {time.perf_counter() - t0:.1f} s"
        )
        with tempfile.TemporaryDirectory() as tmp:
            cfg = write_roomd_config(
                Path(tmp) / "roomd.toml", tenant=tenant, ca=ca, graph=graph, hybrid=hybrid
            )
            settings = load_config(cfg)
            baseline: list[float] = []
            incremental: list[float] = []
            for _ in range(repeat):
                (Path(tmp) / "roomd.sqlite3").unlink(missing_ok=True)
                store = await open_store(Path(tmp) / "roomd.sqlite3")
                runner = await make_runner(settings, store)
                try:
                    for bucket in (baseline, incremental, incremental):
                        t = time.perf_counter()
                        results = await asyncio.gather(
                            *(runner.run_round(room) for room in settings.rooms)
                        )
                        bucket.append(time.perf_counter() - t)
                        assert len(results) == rooms
                finally:
                    await runner.aclose()
                    await store.close()
        for name, values in (("baseline", baseline), ("incremental", incremental)):
            med = statistics.median(values)
            print(
                f"{name:<12} round over {rooms} rooms: median {med * 1000:.0f} ms "
                f"({rooms / med:.0f} rooms/s; min {min(values) * 1000:.0f} ms, "
                f"max {max(values) * 1000:.0f} ms, n={len(values)})"
            )
        ratio = statistics.median(baseline) / statistics.median(incremental)
        print(f"ratio baseline/incremental: {ratio:.1f}x")
        peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(f"peak RSS (simulators included): {peak_kib / 1024:.0f} MiB")
    finally:
        await hybrid.stop()
        await graph.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rooms", type=int, default=100)
    parser.add_argument("--events", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    observe.configure_logging("warning", stream=sys.stderr)
    asyncio.run(main(args.rooms, args.events, args.repeat))
    sys.exit(0)
