"""Idle polling: one round over N mapped rooms with nothing changed, roomd against a bare loop.

    python -m bench idle [--rooms 1000,10000] [--bookings 1] [--runs 3] [--profile FILE]

For each size: the rig (bench/rig.py) starts both simulators in their own processes with N rooms
and ``--bookings`` meetings per room. roomd then runs in a process of its own, the daemon's way:
the ``Daemon`` built by ``roomd.compose.build_daemon`` with its store and runner. The initial
sync runs every room's round through ``Daemon.request_round`` (the daemon's concurrency limit,
room lock, round record, metrics and its ``room_round`` log line, written as JSON to /dev/null)
until nothing is left to do. An idle round is what the daemon's ticker does over one poll
interval, with all rooms in one group (``Daemon.poll_rooms``): the organization's Hybrid listing,
the rooms' delta reads 20 per ``$batch``, the idle rooms' reads recorded as rounds (deferred
success, metrics, ``room_round`` line), and a whole round for any room that shows something.
``--runs`` idle rounds are measured: wall time of the round over all rooms (with the daemon's
once-per-poll-interval job, which exports the outbox gauges and writes what idle rounds left),
roomd's CPU seconds (``getrusage`` of its process: the event loop and SQLite's threads), its
peak RSS, what the round wrote to SQLite (write transactions, rows changed) and the HTTP requests
it sent (to Graph and to Hybrid).

The floor, in the same run: a bare ``httpx`` loop in another process issuing the same requests an
idle round issues per room (the room's stored calendarView delta link, and the Hybrid listing
from the room's stored cursor), with the same concurrency, parsing each answer and nothing else.

Prints one line per size and a summary against the targets of issue 10: CPU per room poll at
most 1.5x the bare loop's; a 10,000-room round under 30 s; RSS under 150 MB at 10,000 rooms; no
SQLite write per room in an idle round.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.rig import (
    Rig,
    load_average,
    machine,
    median,
    peak_rss_bytes,
    process_cpu_seconds,
    self_cpu_seconds,
)

CPU_RATIO_TARGET = 1.5
ROUND_10K_TARGET_S = 30.0
RSS_10K_TARGET_MB = 150.0
MAX_SYNC_ROUNDS = 20
"""Rounds allowed for the initial sync to settle (the first reads and writes; the next read the
echoes of roomd's own writes; a round cut short by ``stale_after_seconds`` goes on next time)."""

STALE_AFTER_S = 3600
"""``sync.stale_after_seconds`` for the benchmark: a room's first round over 1,000 meetings on a
loaded machine takes longer than the default 300 s, and the daemon cuts such a round short
(it goes on in the next). Idle rounds are far below either limit."""

HYBRID_OVERLAP = timedelta(seconds=10)
"""The Hybrid client's re-read behind its cursor (roomd.hybrid.client, ``feed_overlap``)."""


@dataclass
class Measured:
    """One process's idle rounds: per round wall, CPU and SQLite writes, and its RSS."""

    wall_s: list[float] = field(default_factory=list)
    cpu_s: list[float] = field(default_factory=list)
    sim_cpu_s: list[float] = field(default_factory=list)
    transactions: list[int] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)
    requests: list[int] = field(default_factory=list)
    graph_requests: list[int] = field(default_factory=list)
    peak_rss: int = 0
    rss: int = 0
    sync_rounds: int = 0
    sync_s: float = 0.0
    changes_left: int = 0


# --- roomd's process -----------------------------------------------------------------------------


async def _roomd_rounds(
    config: Path, runs: int, sim_pids: list[int], profile: Path | None = None
) -> None:
    from roomd import observe
    from roomd.compose import build_daemon, make_runner
    from roomd.config import load_config
    from roomd.store import open_store

    settings = load_config(config)
    devnull = open(os.devnull, "w")  # noqa: SIM115, ASYNC230 - for the life of the process
    observe.configure_logging(settings.log.level, stream=devnull)
    daemon = build_daemon(settings, config_path=config)
    store = daemon.store = await open_store(settings.state.path)
    runner = daemon._runner = await make_runner(settings, store)
    changes: list[int] = []
    unfinished = 0  # rounds cut short or failed: the sync is not done
    inner_round = runner.run_round

    async def counted(room: Any, **kwargs: Any) -> Any:
        nonlocal unfinished
        unfinished += 1
        stats = await inner_round(room, **kwargs)
        unfinished -= 1
        changes.append(stats.inbound + stats.outbound + int(stats.extra.get("planned", 0)))
        return stats

    runner.run_round = counted  # type: ignore[method-assign]
    transactions = 0
    inner_write = store.write

    def counted_write(room: str) -> Any:
        nonlocal transactions
        transactions += 1
        return inner_write(room)

    store.write = counted_write  # type: ignore[method-assign]
    inner_flush = getattr(store, "flush_idle", None)

    async def counted_flush() -> int:
        nonlocal transactions
        assert inner_flush is not None
        written = int(await inner_flush())
        transactions += 1 if written else 0
        return written

    if inner_flush is not None:  # roomd before the idle rounds' writes were batched had none
        store.flush_idle = counted_flush  # type: ignore[method-assign]

    requests = {"graph": 0, "hybrid": 0}

    def counting(client: Any, side: str) -> None:
        # at the client's transport: roomd hands its requests to it past the client's own
        # send (roomd.aiotransport.Sender), token requests and older roomds through it
        transport = client._transport
        inner_send = transport.handle_async_request

        async def send(*args: Any, **kwargs: Any) -> Any:
            requests[side] += 1
            return await inner_send(*args, **kwargs)

        transport.handle_async_request = send

    counting(runner._graph.client.http._client, "graph")  # type: ignore[attr-defined]
    counting(runner._hybrid.client._http, "hybrid")  # type: ignore[attr-defined]

    async def one_round() -> None:
        """A round of every room started by ``request_round`` (the initial sync)."""
        nonlocal unfinished
        changes.clear()
        unfinished = 0
        for room in settings.rooms:
            daemon.request_round(room.mailbox)
        await asyncio.gather(*daemon._rounds.values())
        # the daemon's once-per-poll-interval job: outbox gauges (and idle rounds' writes)
        await daemon._export_outbox_gauges()

    grouped = hasattr(daemon, "poll_rooms")

    async def idle_round() -> None:
        """Every room read as the ticker reads a slice's rooms (``Daemon.poll_rooms``: the
        organization's Hybrid listing, the idle rooms' delta reads in $batch, a whole round for
        any room that shows something), all rooms in one group, then the daemon's
        once-per-interval job."""
        nonlocal unfinished
        if not grouped:  # roomd before grouped ticks: one round per room
            await one_round()
            return
        changes.clear()
        unfinished = 0
        await daemon.poll_rooms(settings.rooms, list_hybrid=True)
        await asyncio.gather(*daemon._rounds.values())
        await daemon._export_outbox_gauges()

    def sim_cpu() -> float:
        return sum(process_cpu_seconds(pid) for pid in sim_pids)

    t0 = time.perf_counter()
    rounds = 0
    while rounds < MAX_SYNC_ROUNDS:
        rounds += 1
        await one_round()
        if not any(changes) and not unfinished:
            break
    _emit(
        {
            "sync_rounds": rounds,
            "sync_s": time.perf_counter() - t0,
            "changes_left": sum(1 for c in changes if c) + unfinished,
        }
    )
    writer = store._writer
    assert writer is not None
    profiler: Any = None
    if profile is not None and profile.suffix == ".txt":  # CPU samples of every thread
        spy = str(Path(sys.executable).with_name("py-spy"))
        profiler = subprocess.Popen(  # noqa: ASYNC220 - started once, before the measured rounds
            [spy, "record", "--pid", str(os.getpid()), "--format", "raw", "-o", str(profile)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        await asyncio.sleep(1.0)  # attached
    elif profile is not None:  # pyinstrument's tree of the event loop thread
        from pyinstrument import Profiler

        profiler = Profiler(async_mode="disabled")
        profiler.start()
    for _ in range(runs):
        rows0, tx0, cpu0, sim0 = writer.total_changes, transactions, self_cpu_seconds(), sim_cpu()
        sent0 = dict(requests)
        t = time.perf_counter()
        await idle_round()
        wall = time.perf_counter() - t
        _emit(
            {
                "wall_s": wall,
                "graph_requests": requests["graph"] - sent0["graph"],
                "hybrid_requests": requests["hybrid"] - sent0["hybrid"],
                "cpu_s": self_cpu_seconds() - cpu0,
                "sim_cpu_s": sim_cpu() - sim0,
                "transactions": transactions - tx0,
                "rows": writer.total_changes - rows0,
                "changed_rooms": sum(1 for c in changes if c),
            }
        )
    if isinstance(profiler, subprocess.Popen):
        profiler.send_signal(2)  # SIGINT: py-spy writes its file and exits
        await asyncio.to_thread(profiler.wait)
    elif profiler is not None:
        profiler.stop()
        profile.write_text(profiler.output_text(unicode=True, show_all=False))  # noqa: ASYNC240
    await runner.aclose()
    await store.close()
    import psutil

    _emit({"peak_rss": peak_rss_bytes(), "rss": psutil.Process().memory_info().rss})


def _emit(record: dict[str, Any]) -> None:
    print(json.dumps(record), flush=True)


# --- the bare loop's process ---------------------------------------------------------------------


async def _bare_rounds(
    state: Path, ca: Path, graph_token: str, hybrid_token: str, hybrid_api: str, runs: int
) -> None:
    import httpx

    from roomd.daemon import MAX_CONCURRENT_ROUNDS
    from roomd.hybrid.client import PAGE_LIMIT

    db = sqlite3.connect(f"file:{state}?mode=ro", uri=True)
    links = dict(db.execute("SELECT room, delta_link FROM delta_state").fetchall())
    cursors = {
        room: (resource, since)
        for room, resource, since in db.execute(
            "SELECT room, resource_id, modified_since FROM hybrid_cursor"
        ).fetchall()
    }
    db.close()
    from roomd.store.times import from_db

    def hybrid_params(room: str) -> dict[str, str]:
        resource, since = cursors[room]
        start = from_db(since) - HYBRID_OVERLAP
        return {
            "modifiedAt[$gte]": start.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "resourceId": resource,
            "$limit": str(PAGE_LIMIT),
        }

    slots = asyncio.Semaphore(MAX_CONCURRENT_ROUNDS)
    graph_headers = {"Authorization": f"Bearer {graph_token}", "Prefer": "odata.maxpagesize=50"}
    hybrid_headers = {"Authorization": f"Bearer {hybrid_token}"}
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=20)
    async with (
        httpx.AsyncClient(verify=str(ca), limits=limits, timeout=60) as graph,
        httpx.AsyncClient(verify=str(ca), limits=limits, timeout=60) as hybrid,
    ):

        async def poll(room: str) -> None:
            async with slots:
                resp = await graph.get(links[room], headers=graph_headers)
                resp.raise_for_status()
                links[room] = resp.json()["@odata.deltaLink"]
                listing = await hybrid.get(
                    f"{hybrid_api}/bookings", params=hybrid_params(room), headers=hybrid_headers
                )
                listing.raise_for_status()
                listing.json()

        await asyncio.gather(*(poll(room) for room in links))  # warm-up: connections, TLS
        for _ in range(runs):
            cpu0, t = self_cpu_seconds(), time.perf_counter()
            await asyncio.gather(*(poll(room) for room in links))
            _emit({"wall_s": time.perf_counter() - t, "cpu_s": self_cpu_seconds() - cpu0})
    _emit({"peak_rss": peak_rss_bytes()})


# --- the driver ----------------------------------------------------------------------------------


def _run_worker(args: list[str], *, timeout: float) -> tuple[Measured, int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.idle", *args],
        stdout=subprocess.PIPE,
        cwd=Path(__file__).resolve().parent.parent,
    )
    out, _ = proc.communicate(timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"bench idle: worker {args[:2]} exited {proc.returncode}")
    m = Measured()
    for line in out.decode().splitlines():
        rec = json.loads(line)
        if "sync_rounds" in rec:
            m.sync_rounds, m.sync_s, m.changes_left = (
                rec["sync_rounds"],
                rec["sync_s"],
                rec["changes_left"],
            )
        elif "wall_s" in rec:
            m.wall_s.append(rec["wall_s"])
            m.cpu_s.append(rec["cpu_s"])
            m.sim_cpu_s.append(rec.get("sim_cpu_s", 0.0))
            m.transactions.append(rec.get("transactions", 0))
            m.rows.append(rec.get("rows", 0))
            m.requests.append(rec.get("graph_requests", 0) + rec.get("hybrid_requests", 0))
            m.graph_requests.append(rec.get("graph_requests", 0))
        else:
            m.peak_rss, m.rss = rec["peak_rss"], rec.get("rss", 0)
    return m, proc.pid


def measure_roomd(rig: Rig, runs: int, profile: Path | None = None) -> Measured:
    """roomd's initial sync then ``runs`` idle rounds, in its own process, against ``rig``."""
    pids = ",".join(str(p) for p in rig.sim_pids)
    args = ["--worker", "roomd", "--config", str(rig.config_path), "--runs", str(runs)]
    if profile is not None:
        args += ["--profile", str(profile.resolve())]
    return _run_worker([*args, "--sim-pids", pids], timeout=7200)[0]


def measure_bare(rig: Rig, runs: int) -> Measured:
    """The floor: a bare httpx loop over the delta links and cursors roomd stored."""
    args = [
        "--worker",
        "bare",
        "--config",
        str(rig.config_path),
        "--runs",
        str(runs),
        # "=": a token may begin with "-", which argparse would take for an option
        f"--graph-token={rig.graph_token()}",
        f"--hybrid-token={rig.hybrid_token()}",
        f"--hybrid-api={rig.hybrid.api_url}",
    ]
    return _run_worker(args, timeout=3600)[0]


def state_file_bytes(rig: Rig) -> int:
    """The state file with its WAL (what the disk holds)."""
    return sum(
        p.stat().st_size
        for p in (rig.state_path, rig.state_path.with_name(rig.state_path.name + "-wal"))
        if p.exists()
    )


def run_size(rooms: int, bookings: int, runs: int, profile: Path | None = None) -> dict[str, Any]:
    with Rig(rooms=rooms, bookings=bookings) as rig:
        roomd = measure_roomd(rig, runs, profile)
        bare = measure_bare(rig, runs)
        state = state_file_bytes(rig)
    per_k = 1000 / rooms
    return {
        "rooms": rooms,
        "bookings": bookings,
        "seed_s": rig.seed_seconds,
        "sync_rounds": roomd.sync_rounds,
        "sync_s": roomd.sync_s,
        "changes_left": roomd.changes_left,
        "wall_s": median(roomd.wall_s),
        "cpu_per_1000": median(roomd.cpu_s) * per_k,
        "bare_wall_s": median(bare.wall_s),
        "bare_cpu_per_1000": median(bare.cpu_s) * per_k,
        "sim_cpu_s": median(roomd.sim_cpu_s),
        "peak_rss_mb": roomd.peak_rss / 2**20,
        "rss_mb": roomd.rss / 2**20,
        "bare_peak_rss_mb": bare.peak_rss / 2**20,
        "transactions": median(roomd.transactions),
        "rows": median(roomd.rows),
        "requests": median(roomd.requests) if roomd.requests else 0,
        "graph_requests": median(roomd.graph_requests) if roomd.graph_requests else 0,
        "state_bytes": state,
        "runs": runs,
        "walls": roomd.wall_s,
        "cpus": roomd.cpu_s,
        "bare_cpus": bare.cpu_s,
        "load": load_average(),
    }


def report(r: dict[str, Any]) -> list[str]:
    ratio = r["cpu_per_1000"] / r["bare_cpu_per_1000"]
    return [
        f"{r['rooms']} rooms x {r['bookings']} meetings (seeded in {r['seed_s']:.1f} s; "
        f"initial sync {r['sync_rounds']} rounds, {r['sync_s']:.1f} s"
        + (f", {r['changes_left']} rooms still changing" if r["changes_left"] else "")
        + ")",
        f"  roomd idle round: wall {r['wall_s']:.2f} s, CPU {r['cpu_per_1000']:.2f} s per 1,000 "
        f"room polls, peak RSS {r['peak_rss_mb']:.0f} MB (after the rounds {r['rss_mb']:.0f} MB),"
        f" SQLite per round: {r['transactions']:.0f} write transactions, {r['rows']:.0f} rows",
        f"  roomd requests per idle round: {r.get('requests', 0):.0f} "
        f"({r.get('graph_requests', 0):.0f} to Graph), "
        f"{r.get('requests', 0) / r['rooms']:.3f} per room (the bare loop: 2 per room)",
        f"  bare httpx loop:  wall {r['bare_wall_s']:.2f} s, CPU {r['bare_cpu_per_1000']:.2f} s "
        f"per 1,000 room polls, peak RSS {r['bare_peak_rss_mb']:.0f} MB",
        f"  roomd / bare CPU: {ratio:.2f}x (target <= {CPU_RATIO_TARGET}x); simulators' CPU per "
        f"round {r['sim_cpu_s']:.1f} s; state file {r['state_bytes'] / 2**20:.1f} MB; "
        f"medians of {r['runs']} rounds (roomd CPU s: "
        f"{', '.join(f'{c:.2f}' for c in r['cpus'])}); load {r['load']}",
    ]


def targets(results: list[dict[str, Any]]) -> list[str]:
    lines = []
    for r in results:
        ratio = r["cpu_per_1000"] / r["bare_cpu_per_1000"]
        ok = "met" if ratio <= CPU_RATIO_TARGET else "MISSED"
        lines.append(f"target CPU ratio at {r['rooms']} rooms: {ratio:.2f}x, {ok}")
        writes = "met" if r["transactions"] <= 1 else "MISSED"
        lines.append(
            f"target idle SQLite writes at {r['rooms']} rooms (one commit per round, not per "
            f"room): {r['transactions']:.0f} write transactions per round ({r['rows']:.0f} rows "
            f"in them), {writes}"
        )
        if r["rooms"] == 10_000:
            wall = r["wall_s"] / ROUND_10K_TARGET_S
            rss = r["peak_rss_mb"] / RSS_10K_TARGET_MB
            lines.append(
                f"target 10,000-room round < {ROUND_10K_TARGET_S:g} s: {r['wall_s']:.1f} s "
                f"({wall:.2f}x the limit), {'met' if wall < 1 else 'MISSED'}"
            )
            verdict = "met" if rss < 1 else "MISSED"
            lines.append(
                f"target RSS < {RSS_10K_TARGET_MB:g} MB at 10,000 rooms: "
                f"{r['peak_rss_mb']:.0f} MB ({rss:.2f}x the limit), {verdict}"
            )
    return lines


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench idle", description=__doc__)
    parser.add_argument("--rooms", default="1000,10000", help="comma-separated room counts")
    parser.add_argument("--bookings", type=int, default=1, help="meetings per room")
    parser.add_argument("--runs", type=int, default=3, help="idle rounds measured per size")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--profile",
        type=Path,
        help="profile roomd's idle rounds: FILE.txt py-spy's collapsed stacks (on-CPU samples "
        "of every thread), any other name pyinstrument's tree",
    )
    args = parser.parse_args(argv)
    for line in machine():
        print(line)
    results = []
    for rooms in (int(n) for n in args.rooms.split(",")):
        profile = args.profile
        if profile is not None and "," in args.rooms:
            profile = profile.with_name(f"{profile.stem}-{rooms}{profile.suffix}")
        result = run_size(rooms, args.bookings, args.runs, profile)
        results.append(result)
        for line in report(result):
            print(line, flush=True)
    for line in targets(results):
        print(line)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


def _worker(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.idle")
    parser.add_argument("--worker", choices=("roomd", "bare"), required=True)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--runs", type=int, required=True)
    parser.add_argument("--sim-pids", default="")
    parser.add_argument("--profile", type=Path, help="pyinstrument text of the idle rounds")
    parser.add_argument("--graph-token")
    parser.add_argument("--hybrid-token")
    parser.add_argument("--hybrid-api")
    args = parser.parse_args(argv)
    if args.worker == "roomd":
        pids = [int(p) for p in args.sim_pids.split(",") if p]
        asyncio.run(_roomd_rounds(args.config, args.runs, pids, args.profile))
    else:
        d = args.config.parent
        asyncio.run(
            _bare_rounds(
                d / "roomd.sqlite3",
                d / "ca.pem",
                args.graph_token,
                args.hybrid_token,
                args.hybrid_api,
                args.runs,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(_worker(sys.argv[1:]))
