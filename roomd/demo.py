"""``roomd demo``: roomd against its own simulators, start to finish, in one command.

It starts the Microsoft Graph and Hybrid simulators on loopback, books a few meetings in Outlook
the way people do (an organizer invites a room), writes a roomd config exactly as ``roomd sim``
does, runs the real daemon in this process until every room has completed a round, shows what
each room's round saw and what ``/readyz`` says, then stops the daemon as SIGTERM would.
Nothing leaves the machine.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from roomd import observe
from roomd.compose import build_daemon, make_runner
from roomd.config import RoomSettings, Settings, load_config
from roomd.store import Store
from roomd.sync import RoundRunner, RoundStats

SETTLE_S = 10.0
"""After every room is ready, how long to wait for a second round (the first one's echoes)."""
READY_TIMEOUT_S = 60

# (organizer, room mailbox local part, subject, days ahead, start hour UTC, hours)
MEETINGS = (
    ("adelev", "room-4a", "Quarterly planning", 1, 9, 1),
    ("alexw", "room-4a", "Design review", 1, 13, 2),
    ("meganb", "boardroom", "Board meeting", 2, 10, 3),
    ("lynner", "harbour", "Customer call", 1, 15, 1),
)


# (member, room mailbox local part, summary, days ahead, start hour UTC, hours)
HYBRID_BOOKINGS = (
    ("nestorw", "room-4b", "Interview", 1, 11, 1),
    ("pat", "harbour", "Supplier visit", 3, 14, 2),
)


@dataclass
class _Seen:
    rounds: int = 0
    inbound: int = 0
    outbound: int = 0
    pages: int = 0
    last_error: str | None = None


class _Recorder:
    """Wraps the real round runner to tell the demo what each round saw."""

    def __init__(self, inner: RoundRunner, seen: dict[str, _Seen]) -> None:
        self._inner = inner
        self._seen = seen

    async def run_round(self, room: RoomSettings) -> RoundStats:
        entry = self._seen.setdefault(room.mailbox, _Seen())
        try:
            stats = await self._inner.run_round(room)
        except Exception as exc:
            entry.last_error = f"{type(exc).__name__}: {exc}"
            raise
        entry.rounds += 1
        entry.inbound += stats.inbound
        entry.outbound += stats.outbound
        entry.pages += stats.delta_pages
        entry.last_error = None
        return stats

    def reconfigure(self, settings: Settings) -> None:
        self._inner.reconfigure(settings)

    async def aclose(self) -> None:
        await self._inner.aclose()


async def _book_meetings(graph: Any, domain: str) -> list[str]:
    """Organizers invite rooms through the ordinary Graph API, as Outlook would."""
    token = graph.control.token()
    day = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    booked = []
    async with httpx.AsyncClient(
        verify=graph.ca.client_context(), headers={"Authorization": f"Bearer {token}"}
    ) as client:
        for organizer, room, subject, days, hour, hours in MEETINGS:
            start = (day + timedelta(days=days)).replace(hour=hour)
            end = start + timedelta(hours=hours)
            body = {
                "subject": subject,
                "start": {"dateTime": start.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
                "end": {"dateTime": end.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
                "location": {"displayName": room},
                "attendees": [
                    {
                        "emailAddress": {"address": f"{room}@{domain}"},
                        "type": "resource",
                    }
                ],
            }
            resp = await client.post(
                f"{graph.base_url}/users/{organizer}@{domain}/events", json=body
            )
            resp.raise_for_status()
            booked.append(
                f"  {organizer}@{domain} booked {room}@{domain}: {subject!r}, "
                f"{start:%a %d %b %H:%M}-{end:%H:%M} UTC"
            )
    return booked


def _book_in_hybrid(hybrid: Any, tenant: Any) -> list[str]:
    """Members book rooms in the Hybrid app (the simulator's control surface acts as the app)."""
    rooms = {room.email.split("@")[0]: room for room in tenant.rooms}
    people = {person.email.split("@")[0]: person for person in tenant.people}
    day = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    booked = []
    for member, room_name, summary, days, hour, hours in HYBRID_BOOKINGS:
        room, person = rooms[room_name], people[member]
        start = (day + timedelta(days=days)).replace(hour=hour)
        end = start + timedelta(hours=hours)
        hybrid.control.create_booking(
            room.hybrid_id, start, end, member=person.email, summary=summary
        )
        booked.append(
            f"  {person.email} booked {room.display_name}: {summary!r}, "
            f"{start:%a %d %b %H:%M}-{end:%H:%M} UTC"
        )
    return booked


async def _run(directory: Path) -> int:
    from roomd.sim.graph import GraphSimulator
    from roomd.sim.hybrid import HybridSimulator
    from roomd.sim.roomd_config import write_roomd_config
    from roomd.sim.tenant import default_tenant
    from roomd.sim.tls import LocalCA

    tenant = default_tenant()
    ca = LocalCA()
    graph = GraphSimulator(tenant, ca=ca)
    hybrid = HybridSimulator(tenant, ca=ca)
    await graph.start()
    await hybrid.start()
    try:
        print("roomd demo: simulators running on loopback")
        print(f"  Microsoft Graph: {graph.base_url}")
        print(f"  Hybrid:          {hybrid.base_url} (organization {hybrid.org!r})")
        print("Meetings booked in Outlook:")
        for line in await _book_meetings(graph, tenant.domain):
            print(line)
        print("Bookings made in Hybrid:")
        for line in _book_in_hybrid(hybrid, tenant):
            print(line)
        config_path = write_roomd_config(
            directory / "roomd.toml",
            tenant=tenant,
            ca=ca,
            graph=graph,
            hybrid=hybrid,
            http_port=0,
            poll_interval_seconds=2,
        )
        settings = await asyncio.to_thread(load_config, config_path)
        print(f"roomd config: {config_path}")

        def on_each_side(mailbox: str, resource_id: str) -> tuple[int, int]:
            meetings = [e for e in graph.control.events(mailbox) if not e.get("isCancelled")]
            bookings = [b for b in hybrid.control.bookings(resource_id) if not b.get("canceled")]
            return len(meetings), len(bookings)

        return await _run_daemon(settings, config_path, on_each_side)
    finally:
        await hybrid.stop()
        await graph.stop()


async def _run_daemon(
    settings: Settings,
    config_path: Path,
    on_each_side: Callable[[str, str], tuple[int, int]],
) -> int:
    seen: dict[str, _Seen] = {}

    async def factory(s: Settings, store: Store) -> RoundRunner:
        return _Recorder(await make_runner(s, store), seen)

    daemon = build_daemon(settings, config_path=config_path, runner_factory=factory)
    task = asyncio.create_task(daemon.run())
    started = time.monotonic()
    ready, detail = False, dict[str, Any]()
    while time.monotonic() - started < READY_TIMEOUT_S and not task.done():
        await asyncio.sleep(0.2)
        if daemon.store is None or daemon.web is None:
            continue
        ready, detail = await daemon.readiness()
        if ready:
            break
    elapsed = time.monotonic() - started
    port = daemon.web.port if daemon.web is not None else 0
    if ready:
        async with httpx.AsyncClient() as client:
            resp = await client.get(f"http://127.0.0.1:{port}/readyz")
        print(f"Every room completed a round in {elapsed:.1f} s; GET /readyz -> {resp.status_code}")
        # a second round per room: the first one's writes come back as echoes and change nothing
        settle = time.monotonic() + SETTLE_S
        while time.monotonic() < settle:
            if all(seen.get(r.mailbox, _Seen()).rounds >= 2 for r in settings.rooms):
                break
            await asyncio.sleep(0.2)
        ready, detail = await daemon.readiness()
    daemon.request_stop()
    code = await task
    print()
    print(f"{'ROOM':<12} {'MAILBOX':<24} {'OUTLOOK':>7} {'HYBRID':>6} {'ROUNDS':>6}  STATE")
    for room in settings.rooms:
        entry = seen.get(room.mailbox, _Seen())
        room_detail = detail.get("rooms", {}).get(room.mailbox, {})
        in_outlook, in_hybrid = on_each_side(room.mailbox, room.hybrid_id)
        print(
            f"{room.name:<12} {room.mailbox:<24} {in_outlook:>7} {in_hybrid:>6} "
            f"{entry.rounds:>6}  {room_detail.get('state', '?')}"
        )
        if entry.last_error:
            print(f"  last error: {entry.last_error}")
        if room_detail.get("problem"):
            print(f"  not synced: {room_detail['problem']}")
    print()
    if not ready:
        print(f"roomd demo: rooms not ready after {READY_TIMEOUT_S} s", file=sys.stderr)
        return 1
    print("OUTLOOK: meetings in the room's calendar; HYBRID: live bookings of the room, after")
    print("roomd synced both ways: each meeting booked in Outlook is now one Hybrid booking, and")
    print("each Hybrid booking one meeting in its member's and the room's calendars. A member")
    print("with no mailbox needs graph.service_mailbox to organize it (shown above if missing).")
    print("Why a booking looks as it does: roomd explain ID -c <config>.")
    print("Try it by hand: roomd sim --config-out roomd-sim/roomd.toml, then")
    print(
        "                roomd run -c roomd-sim/roomd.toml and roomd status -c roomd-sim/roomd.toml"
    )
    return code


def run_demo(keep: Path | None = None) -> int:
    """Entry point of ``roomd demo``; returns the exit code."""
    # The daemon's own log lines would drown the demo's story: keep warnings only, on stderr.
    observe.configure_logging("warning", stream=sys.stderr)
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        return asyncio.run(_run(keep.resolve()))
    with tempfile.TemporaryDirectory(prefix="roomd-demo-") as tmp:
        return asyncio.run(_run(Path(tmp)))
