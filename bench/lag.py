"""Propagation lag under a steady load of changes on both sides: p50 and p99, each direction.

    python -m bench lag [--rooms 1000] [--minutes 10] [--rate 1] [--compress 4]
                        [--poll-interval 30]

The rig (bench/rig.py) runs both simulators in their own processes with ``--rooms`` rooms, two
meetings booked in Outlook and two bookings made in Hybrid per room. roomd runs as an operator
runs it (``roomd run``, its own process) with its webhook receiver registered in Hybrid the
documented way (``POST /webhooks``, the answer's secret in ``webhook_secret_file``), and first
syncs the lot (until ``/readyz`` answers 200).

Then, for ``--minutes``, this process makes changes as users would, at random moments (a
Poisson process) in random rooms: an organizer changes the end of one of her Outlook meetings
(``PATCH /users/{organizer}/events/{id}``), or a member changes the end of one of her Hybrid
bookings (the Hybrid simulator's member door, ``PATCH /_sim/bookings/{id}``). A meeting is
changed again only after its previous change has arrived. The load is ``--rate`` changes per
room per hour, the sides alike; ``--compress K`` runs that hour K times faster, so K times as
many changes arrive per real second (roomd's poll interval stays real: the lag is measured at a
K-fold load, an upper bound for the steady load itself).

The lag of a change is read from the simulators' own timestamps, both on the machine's wall
clock (neither clock is advanced): from the change's ``lastModifiedDateTime`` (Outlook) or
``modifiedAt`` (Hybrid), to the ``modifiedAt`` of the Hybrid booking or the
``lastModifiedDateTime`` of the organizer's meeting once it shows the new end. This process only
polls (every 0.5 s per change in flight) to find out that it has arrived. A change not shown
within three poll intervals + 30 s counts as lost.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench.initial_sync import wait_ready
from bench.rig import (
    Rig,
    load_average,
    machine,
    organizer_email,
    process_cpu_seconds,
    start_roomd,
    stop_roomd,
)

OUTLOOK_TO_HYBRID = "Outlook -> Hybrid"
HYBRID_TO_OUTLOOK = "Hybrid -> Outlook"
CHECK_EVERY_S = 0.5


def instant(text: str) -> datetime:
    """A Graph (7 fractional digits, maybe no zone) or Hybrid (ms, ``Z``) timestamp, as UTC."""
    text = text.rstrip("Z")
    if "." in text:
        head, frac = text.split(".", 1)
        text = f"{head}.{frac[:6]:0<6}"
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


@dataclass
class Tally:
    lags: dict[str, list[float]] = field(
        default_factory=lambda: {OUTLOOK_TO_HYBRID: [], HYBRID_TO_OUTLOOK: []}
    )
    lost: dict[str, int] = field(
        default_factory=lambda: {OUTLOOK_TO_HYBRID: 0, HYBRID_TO_OUTLOOK: 0}
    )
    failed: int = 0
    skipped: int = 0  # every meeting of the room had a change in flight


class Users:
    """The people who change things: organizers in Outlook, members in Hybrid."""

    def __init__(self, rig: Rig, client: httpx.AsyncClient, graph_token: str) -> None:
        self.rig = rig
        self.client = client
        self.graph_headers = {
            "Authorization": f"Bearer {graph_token}",
            "Prefer": 'outlook.timezone="UTC"',
        }
        self.busy: set[str] = set()
        self.give_up_s = 3 * rig.poll_interval_seconds + 30

    async def hybrid_bookings(self, resource_id: str) -> list[dict[str, Any]]:
        resp = await self.client.get(
            f"{self.rig.hybrid.control_url}/bookings", params={"resourceId": resource_id}
        )
        resp.raise_for_status()
        return [b for b in resp.json()["results"] if not b.get("canceled")]

    async def outlook_meetings(self, organizer: str) -> list[dict[str, Any]]:
        resp = await self.client.get(
            f"{self.rig.graph.base_url}/users/{organizer}/events",
            params={"$top": "100"},
            headers=self.graph_headers,
        )
        resp.raise_for_status()
        return [e for e in resp.json()["value"] if e.get("isOrganizer")]

    async def change(self, room_index: int, side: str, tally: Tally) -> None:
        """One change on ``side`` in room ``room_index`` (1-based), then wait until the other
        side shows it and record the lag."""
        room = self.rig.tenant.rooms[room_index - 1]
        organizer = organizer_email(room_index, self.rig.tenant.domain)
        bookings = await self.hybrid_bookings(room.hybrid_id)
        meetings = await self.outlook_meetings(organizer)
        by_start = {instant(m["start"]["dateTime"]): m for m in meetings}
        pairs = [
            (b, by_start[instant(b["start"]["dateTime"])])
            for b in bookings
            if instant(b["start"]["dateTime"]) in by_start
        ]
        # the rig books Outlook meetings in the mornings, Hybrid bookings in the afternoons
        origin_outlook = side == OUTLOOK_TO_HYBRID
        pairs = [
            (b, m)
            for b, m in pairs
            if (instant(b["start"]["dateTime"]).hour < 13) == origin_outlook
            and b["_id"] not in self.busy
        ]
        if not pairs:
            tally.skipped += 1
            return
        booking, meeting = random.choice(pairs)
        start = instant(booking["start"]["dateTime"])
        old = round((instant(booking["end"]["dateTime"]) - start).total_seconds() / 60)
        new_end = start + timedelta(minutes=random.choice([m for m in range(5, 26) if m != old]))
        self.busy.add(booking["_id"])
        try:
            if origin_outlook:
                resp = await self.client.patch(
                    f"{self.rig.graph.base_url}/users/{organizer}/events/{meeting['id']}",
                    json={"end": {"dateTime": new_end.strftime("%Y-%m-%dT%H:%M:%S"),
                                  "timeZone": "UTC"}},
                    headers=self.graph_headers,
                )  # fmt: skip
                resp.raise_for_status()
                made = instant(resp.json()["lastModifiedDateTime"])
                seen = await self._until_hybrid_shows(room.hybrid_id, booking["_id"], new_end)
            else:
                resp = await self.client.patch(
                    f"{self.rig.hybrid.control_url}/bookings/{booking['_id']}",
                    json={"end": new_end.isoformat()},
                )
                resp.raise_for_status()
                made = instant(resp.json()["modifiedAt"])
                seen = await self._until_outlook_shows(organizer, meeting["id"], new_end)
        finally:
            self.busy.discard(booking["_id"])
        if seen is None:
            tally.lost[side] += 1
        else:
            tally.lags[side].append((seen - made).total_seconds())

    async def _until_hybrid_shows(
        self, resource_id: str, booking_id: str, end: datetime
    ) -> datetime | None:
        deadline = time.monotonic() + self.give_up_s
        while time.monotonic() < deadline:
            await asyncio.sleep(CHECK_EVERY_S)
            for b in await self.hybrid_bookings(resource_id):
                if b["_id"] == booking_id and instant(b["end"]["dateTime"]) == end:
                    return instant(b["modifiedAt"])
        return None

    async def _until_outlook_shows(
        self, organizer: str, event_id: str, end: datetime
    ) -> datetime | None:
        deadline = time.monotonic() + self.give_up_s
        url = f"{self.rig.graph.base_url}/users/{organizer}/events/{event_id}"
        while time.monotonic() < deadline:
            await asyncio.sleep(CHECK_EVERY_S)
            resp = await self.client.get(url, headers=self.graph_headers)
            if resp.status_code == 200 and instant(resp.json()["end"]["dateTime"]) == end:
                return instant(resp.json()["lastModifiedDateTime"])
        return None


def register_webhook(rig: Rig) -> str:
    """roomd's receiver in Hybrid, as an operator registers it; returns the signing secret."""
    with httpx.Client(verify=str(rig.workdir / "ca.pem")) as client:
        resp = client.post(
            f"{rig.hybrid.api_url}/webhooks",
            headers={"Authorization": f"Bearer {rig.hybrid_token()}"},
            json={
                "url": f"http://127.0.0.1:{rig.http_port}/hooks/hybrid",
                "eventTypes": ["booking.created", "booking.updated", "booking.removed"],
                "description": "roomd (bench/lag.py)",
            },
        )
        resp.raise_for_status()
        return str(resp.json()["secret"])


async def steady_load(rig: Rig, args: argparse.Namespace, tally: Tally) -> int:
    """Changes at random moments for ``args.minutes``; returns how many were started."""
    per_second = args.rooms * args.rate * args.compress / 3600
    async with httpx.AsyncClient(
        verify=str(rig.workdir / "ca.pem"),
        timeout=60,
        limits=httpx.Limits(max_connections=20),
    ) as client:
        users = Users(rig, client, rig.graph_token())
        tasks: set[asyncio.Task[None]] = set()
        end = time.monotonic() + args.minutes * 60
        started = 0

        async def one(room: int, side: str) -> None:
            try:
                await users.change(room, side, tally)
            except httpx.HTTPError as exc:
                tally.failed += 1
                print(f"change failed: {exc!r}", file=sys.stderr)

        while True:
            await asyncio.sleep(random.expovariate(per_second))
            if time.monotonic() >= end:
                break
            side = random.choice((OUTLOOK_TO_HYBRID, HYBRID_TO_OUTLOOK))
            task = asyncio.create_task(one(random.randint(1, args.rooms), side))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            started += 1
        if tasks:
            await asyncio.gather(*tasks)
        return started


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench lag", description=__doc__.split("\n")[0])
    parser.add_argument("--rooms", type=int, default=1000)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--rate", type=float, default=1, help="changes per room per hour")
    parser.add_argument("--compress", type=float, default=4, help="run the hour K times faster")
    parser.add_argument("--poll-interval", type=float, default=30, help="roomd's, seconds")
    parser.add_argument("--seed", type=int, default=None, help="random seed")
    parser.add_argument("--keep-log", type=Path, help="copy roomd's log (JSON lines) here")
    args = parser.parse_args(argv)
    random.seed(args.seed)
    for line in machine():
        print(f"machine: {line}")
    with Rig(
        args.rooms, bookings=2, hybrid_bookings=2, poll_interval_seconds=args.poll_interval
    ) as rig:
        rig.write_config(webhook_secret=register_webhook(rig))
        log = rig.workdir / "roomd.log"
        proc = start_roomd(rig.config_path, log=log)
        try:
            t0 = time.perf_counter()
            wait_ready(rig, proc, 3600)
            print(
                f"{args.rooms} rooms, 2 Outlook meetings + 2 Hybrid bookings each, synced in "
                f"{time.perf_counter() - t0:.1f} s; poll interval {args.poll_interval:g} s, "
                f"Hybrid webhooks on"
            )
            per_hour = args.rooms * args.rate
            print(
                f"load: {args.rate:g} change per room per hour = {per_hour:.0f}/h, compressed "
                f"{args.compress:g}x = {per_hour * args.compress / 3600:.2f} changes/s, "
                f"for {args.minutes:g} min"
            )
            cpu0, wall0 = process_cpu_seconds(proc.pid), time.perf_counter()
            tally = Tally()
            started = asyncio.run(steady_load(rig, args, tally))
            cpu = process_cpu_seconds(proc.pid) - cpu0
            wall = time.perf_counter() - wall0
        except BaseException:
            print(log.read_text()[-4000:], file=sys.stderr)
            raise
        finally:
            stop_roomd(proc)
            if args.keep_log is not None:
                shutil.copyfile(log, args.keep_log)
    report(args, tally, started, cpu, wall)
    return 0


def report(args: argparse.Namespace, tally: Tally, started: int, cpu: float, wall: float) -> None:
    print(
        f"{started} changes made; roomd used {cpu:.1f} CPU s in {wall:.0f} s "
        f"({cpu / wall:.0%} of a core); load average {load_average()}"
    )
    targets = {
        OUTLOOK_TO_HYBRID: (
            args.poll_interval + 1,
            f"poll interval + 1 s = {args.poll_interval + 1:g} s",
        ),
        HYBRID_TO_OUTLOOK: (1.0, "1 s (webhooks)"),
    }
    for side, lags in tally.lags.items():
        p50, p99 = percentile(lags, 50), percentile(lags, 99)
        limit, text = targets[side]
        verdict = "met" if p99 <= limit else f"MISSED by {p99 - limit:.2f} s"
        print(
            f"{side}: n={len(lags)} p50 {p50:.2f} s, p99 {p99:.2f} s, max "
            f"{max(lags, default=float('nan')):.2f} s, lost {tally.lost[side]}; "
            f"target p99 <= {text}: {verdict}"
        )
    if tally.skipped:
        print(f"{tally.skipped} changes skipped: every meeting of the room was still changing")
    if tally.failed:
        print(f"warning: {tally.failed} changes could not be made (see stderr)")
    print(json.dumps({"lags": tally.lags, "lost": tally.lost}))
