"""Initial sync into an empty Hybrid: bookings per second end to end, and roomd's share of the time.

    python -m bench initial_sync [--rooms 1000] [--meetings 50] [--recurring-share 0.2]
                                 [--runs 3] [--profile FILE]

The rig (bench/rig.py) seeds the Graph simulator with ``--rooms`` rooms of ``--meetings``
meetings each, booked by each room's organizer and accepted by the room; a fifth of them
(``--recurring-share``) are weekly series of ten occurrences, the rest one-off meetings. The
Hybrid simulator starts empty. Then ``roomd run`` starts in its own process, as an operator
would start it on a new install, and the clock runs until its ``/readyz`` answers 200 (every
room has finished its first round). The poll interval is an hour, so no room starts a second
round meanwhile.

Figures per run: wall seconds from starting roomd to ready; Hybrid bookings made (a series is
one booking with its rule); bookings per second end to end (bookings / wall); roomd's CPU seconds
(its process, every thread) and the simulators' over the same span; roomd's share of the wall
time (its CPU / wall; the rest is waiting on the simulators, which share the same cores) and
roomd's own throughput (bookings / roomd's CPU seconds), which is what the target is about:
at least 500 bookings/s. Medians over ``--runs`` runs, each with freshly seeded simulators
and an empty state file. ``--profile FILE`` runs roomd under pyinstrument (text to FILE; the
figures of a profiled run are not comparable).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from bench.rig import (
    Rig,
    load_average,
    machine,
    median,
    process_cpu_seconds,
    start_roomd,
    stop_roomd,
)

READY_TIMEOUT_S = 3600.0
"""The longest a run waits for roomd's /readyz before giving up."""


def hybrid_bookings(rig: Rig) -> list[dict[str, Any]]:
    """Every booking the Hybrid simulator holds (its control surface, loopback only)."""
    with httpx.Client(verify=str(rig.workdir / "ca.pem"), timeout=120) as client:
        resp = client.get(f"{rig.hybrid.control_url}/bookings")
        resp.raise_for_status()
        return list(resp.json()["results"])


def wait_ready(rig: Rig, proc: subprocess.Popen[bytes], timeout: float) -> None:
    """Until roomd's ``/readyz`` answers 200; raises if roomd exits first or time runs out."""
    url = f"http://127.0.0.1:{rig.http_port}/readyz"
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=10) as client:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"roomd exited with {proc.returncode} before it was ready")
            try:
                if client.get(url).status_code == 200:
                    return
            except httpx.HTTPError:
                pass  # not listening yet, or busy: ask again
            if time.monotonic() > deadline:
                raise TimeoutError(f"roomd was not ready within {timeout:g} s")
            time.sleep(ready_poll_s(rig.rooms))


def ready_poll_s(rooms: int) -> float:
    """How often to ask ``/readyz``: its answer names every room (150 kB at 1,000 rooms, about
    10 ms of roomd's CPU), so asking five times a second would be counted as roomd's own cost,
    as much as a tenth of its CPU at 1,000 rooms; once a second there costs ~1%, and the
    ready moment is known to within a second of a sync that takes minutes."""
    return min(1.0, max(0.2, rooms / 1000))


PROFILED_ROOMD = """
import sys
from pyinstrument import Profiler
from roomd.cli import main
profiler = Profiler(async_mode="disabled")  # samples where the loop is, idle or not
profiler.start()
try:
    code = main(["run", "-c", sys.argv[2]])
finally:
    profiler.stop()
    with open(sys.argv[1], "w") as out:
        out.write(profiler.output_text(unicode=True, show_all=False))
sys.exit(code)
"""


def requests_made(rig: Rig) -> dict[str, float]:
    """roomd's own count of its requests to each service, from its ``/metrics``."""
    text = httpx.get(f"http://127.0.0.1:{rig.http_port}/metrics", timeout=30).text
    counts = {"graph": 0.0, "hybrid": 0.0}
    for line in text.splitlines():
        for service in counts:
            if line.startswith(f"roomd_{service}_requests_total{{"):
                counts[service] += float(line.rsplit(" ", 1)[1])
    return counts


def start_profiled_roomd(config: Path, log: Path, profile: Path) -> subprocess.Popen[bytes]:
    """``roomd run`` under pyinstrument, without its async mode: the samples where the event
    loop waits (``select``) are the idle time, the rest is roomd's CPU. The text report is
    written when roomd exits."""
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-c", PROFILED_ROOMD, str(profile), str(config)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def one_run(args: argparse.Namespace) -> dict[str, float]:
    recurring = round(args.meetings * args.recurring_share)
    singles = args.meetings - recurring
    with Rig(args.rooms, bookings=singles, recurring=recurring, poll_interval_seconds=3600) as rig:
        log = rig.workdir / "roomd.log"
        sims0 = rig.sim_cpu_seconds()
        t0 = time.perf_counter()
        if args.profile is not None:
            proc = start_profiled_roomd(rig.config_path, log, args.profile)
        else:
            proc = start_roomd(rig.config_path, log=log)
        try:
            wait_ready(rig, proc, READY_TIMEOUT_S)
            wall = time.perf_counter() - t0
            roomd_cpu = process_cpu_seconds(proc.pid)
            sims_cpu = rig.sim_cpu_seconds() - sims0
            requests = requests_made(rig)
        except BaseException:
            print(log.read_text()[-4000:], file=sys.stderr)
            raise
        finally:
            stop_roomd(proc)
        booked = hybrid_bookings(rig)
        series = sum(1 for b in booked if b.get("recurrence"))
        return {
            "seed_s": rig.seed_seconds,
            "wall_s": wall,
            "bookings": len(booked),
            "series": series,
            "expected": args.rooms * args.meetings,
            "roomd_cpu_s": roomd_cpu,
            "sims_cpu_s": sims_cpu,
            "graph_requests": requests["graph"],
            "hybrid_requests": requests["hybrid"],
        }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench initial_sync", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--rooms", type=int, default=1000)
    parser.add_argument("--meetings", type=int, default=50, help="meetings per room")
    parser.add_argument("--recurring-share", type=float, default=0.2)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile", type=Path, help="run roomd under pyinstrument, text to FILE")
    args = parser.parse_args(argv)
    for line in machine():
        print(f"machine: {line}")
    recurring = round(args.meetings * args.recurring_share)
    print(
        f"initial sync: {args.rooms} rooms x {args.meetings} meetings "
        f"({args.meetings - recurring} one-off, {recurring} weekly series of 10) "
        f"into an empty Hybrid; {args.runs} runs"
    )
    runs: list[dict[str, float]] = []
    for i in range(args.runs):
        r = one_run(args)
        runs.append(r)
        print(
            f"run {i + 1}: seeded in {r['seed_s']:.1f} s; ready after {r['wall_s']:.1f} s; "
            f"{r['bookings']:.0f} Hybrid bookings ({r['series']:.0f} series) of "
            f"{r['expected']:.0f}; roomd CPU {r['roomd_cpu_s']:.1f} s, simulators CPU "
            f"{r['sims_cpu_s']:.1f} s; requests: {r['graph_requests']:.0f} to Graph, "
            f"{r['hybrid_requests']:.0f} to Hybrid; load average {load_average()}",
            flush=True,
        )
    bookings = median([r["bookings"] for r in runs])
    wall = median([r["wall_s"] for r in runs])
    roomd_cpu = median([r["roomd_cpu_s"] for r in runs])
    sims_cpu = median([r["sims_cpu_s"] for r in runs])
    own = median([r["bookings"] / r["roomd_cpu_s"] for r in runs])
    waiting = max(wall - roomd_cpu, 0.0)
    end_to_end = median([r["bookings"] / r["wall_s"] for r in runs])
    print(f"medians of {len(runs)} runs:")
    for label, value in (
        ("wall, roomd start to ready", f"{wall:.1f} s"),
        ("end to end", f"{end_to_end:.0f} bookings/s"),
        ("roomd CPU", f"{roomd_cpu:.1f} s ({roomd_cpu / wall:.0%} of the wall time)"),
        ("simulators CPU", f"{sims_cpu:.1f} s ({sims_cpu / wall:.0%} of the wall time)"),
        ("waiting on the simulators", f"{waiting:.1f} s ({waiting / wall:.0%})"),
        ("roomd's own throughput", f"{own:.0f} bookings/s of roomd CPU"),
    ):
        print(f"  {label + ':':<32}{value}")
    verdict = "met" if own >= 500 else f"MISSED by {500 / own:.1f}x"
    print(f"target: at least 500 bookings/s of roomd's own throughput: {own:.0f}/s ({verdict})")
    if any(r["bookings"] != r["expected"] for r in runs):
        print(f"warning: Hybrid holds {bookings:.0f} bookings, expected {runs[0]['expected']:.0f}")
    print(json.dumps({"runs": runs}))
    return 0
