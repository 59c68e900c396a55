"""Growth: an idle round's cost and the state file's size against rooms and bookings per room.

    python -m bench growth [--rooms 100,1000,10000] [--bookings-at 1]
                           [--bookings 10,100,1000] [--rooms-at 10] [--runs 3] [--plot FILE]

Two sweeps, each point measured as ``python -m bench idle`` measures a size (the rig's
simulators in their own processes, roomd the daemon's way in its own, initial sync done, then
``--runs`` idle rounds; medians): rooms at ``--bookings-at`` meetings per room, and meetings per
room at ``--rooms-at`` rooms. For each point: roomd's CPU seconds and wall seconds of one round
over all rooms, CPU per room poll, and the state file's size (with its WAL). The slopes are
least-squares fits on log-log axes: 1.0 is linear; for the bookings sweep the cost per room poll
should not grow at all (slope 0), since an idle room's round reads no booking. ``--plot`` writes
a PNG (matplotlib, the ``[bench]`` extra).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from bench.idle import report, run_size
from bench.rig import machine


def loglog_slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of log(y) on log(x): the exponent k of y ~ x^k."""
    pts = [(math.log(x), math.log(y)) for x, y in zip(xs, ys, strict=True) if x > 0 and y > 0]
    if len(pts) < 2:
        return float("nan")
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    sxx = sum((p[0] - mx) ** 2 for p in pts)
    sxy = sum((p[0] - mx) * (p[1] - my) for p in pts)
    return sxy / sxx if sxx else float("nan")


def point(rooms: int, bookings: int, runs: int) -> dict[str, Any]:
    r = run_size(rooms, bookings, runs)
    for line in report(r):  # the point's idle figures, beside the bare loop
        print(line, flush=True)
    cpu_round = r["cpu_per_1000"] * rooms / 1000
    return {
        "rooms": rooms,
        "bookings": bookings,
        "cpu_round_s": cpu_round,
        "wall_round_s": r["wall_s"],
        "cpu_per_poll_ms": cpu_round / rooms * 1000,
        "state_mb": r["state_bytes"] / 2**20,
        "sync_s": r["sync_s"],
        "transactions": r["transactions"],
        "load": r["load"],
    }


def table(points: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| rooms | meetings/room | round CPU s | round wall s | CPU per room poll ms "
        "| state file MB | initial sync s |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for p in points:
        lines.append(
            f"| {p['rooms']:,} | {p['bookings']:,} | {p['cpu_round_s']:.2f} | "
            f"{p['wall_round_s']:.2f} | {p['cpu_per_poll_ms']:.2f} | {p['state_mb']:.2f} | "
            f"{p['sync_s']:.0f} |"
        )
    return lines


def slopes(points: list[dict[str, Any]], axis: str) -> dict[str, float]:
    xs = [float(p[axis]) for p in points]
    return {
        "cpu_round_s": loglog_slope(xs, [p["cpu_round_s"] for p in points]),
        "wall_round_s": loglog_slope(xs, [p["wall_round_s"] for p in points]),
        "cpu_per_poll_ms": loglog_slope(xs, [p["cpu_per_poll_ms"] for p in points]),
        "state_mb": loglog_slope(xs, [p["state_mb"] for p in points]),
    }


def plot(by_rooms: list[dict[str, Any]], by_bookings: list[dict[str, Any]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, points, axis, title in (
        (left, by_rooms, "rooms", "rooms (at {} meeting(s) per room)"),
        (right, by_bookings, "bookings", "meetings per room (at {} rooms)"),
    ):
        if not points:
            ax.set_visible(False)
            continue
        xs = [p[axis] for p in points]
        fixed = points[0]["bookings" if axis == "rooms" else "rooms"]
        ax.loglog(xs, [p["cpu_round_s"] for p in points], "o-", label="idle round, CPU s")
        ax.loglog(xs, [p["wall_round_s"] for p in points], "s--", label="idle round, wall s")
        ax.loglog(xs, [p["state_mb"] for p in points], "^-", label="state file, MB")
        ax.loglog(xs, [p["cpu_per_poll_ms"] for p in points], "d:", label="CPU per room poll, ms")
        ax.set_xlabel(title.format(f"{fixed:,}"))
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("roomd idle polling: growth (log-log)")
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench growth", description=__doc__)
    parser.add_argument("--rooms", default="100,1000,10000", help="the rooms sweep ('' skips)")
    parser.add_argument("--bookings-at", type=int, default=1, help="meetings per room in it")
    parser.add_argument("--bookings", default="10,100,1000", help="the meetings-per-room sweep")
    parser.add_argument("--rooms-at", type=int, default=10, help="rooms in it")
    parser.add_argument("--runs", type=int, default=3, help="idle rounds measured per point")
    parser.add_argument("--plot", type=Path, help="write the PNG here")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--add",
        type=Path,
        action="append",
        default=[],
        help="points from an earlier run's --json, put before this run's (sweeps run apart)",
    )
    args = parser.parse_args(argv)
    for line in machine():
        print(line)
    by_rooms: list[dict[str, Any]] = []
    by_bookings: list[dict[str, Any]] = []
    for earlier in args.add:
        loaded = json.loads(earlier.read_text())
        by_rooms += loaded["rooms"]
        by_bookings += loaded["bookings"]
    for n in (int(v) for v in args.rooms.split(",") if v):
        by_rooms.append(point(n, args.bookings_at, args.runs))
    for b in (int(v) for v in args.bookings.split(",") if v):
        by_bookings.append(point(args.rooms_at, b, args.runs))
    for name, points, axis in (("rooms", by_rooms, "rooms"), ("meetings", by_bookings, "bookings")):
        if not points:
            continue
        print()
        print("\n".join(table(points)))
        s = slopes(points, axis)
        print(
            f"log-log slope against {name}: round CPU {s['cpu_round_s']:.2f}, round wall "
            f"{s['wall_round_s']:.2f}, CPU per room poll {s['cpu_per_poll_ms']:.2f}, "
            f"state file {s['state_mb']:.2f}"
        )
    if args.plot is not None:
        plot(by_rooms, by_bookings, args.plot)
        print(f"plot: {args.plot}")
    if args.json is not None:
        args.json.write_text(json.dumps({"rooms": by_rooms, "bookings": by_bookings}, indent=2))
    return 0
