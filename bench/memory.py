"""Memory: roomd's RSS at N mapped rooms, stage by stage, and across idle rounds.

    python -m bench memory [--rooms 10000] [--bookings 0] [--idle-rounds 3] [--tracemalloc FILE]

The rig (bench/rig.py) starts both simulators in their own processes with N rooms and
``--bookings`` meetings per room. roomd runs in a process of its own and builds what the daemon
builds, reading its RSS (``psutil``, after ``gc.collect()``) after each stage:

1. the interpreter with psutil;
2. roomd and its libraries imported (everything a running daemon has imported);
3. the config of N rooms parsed (``load_config``);
4. the daemon built the daemon's way: ``build_daemon``, its store opened, its runner made;
5. the per-room metrics filled as N rooms' rounds and the gauges job fill them (every room's
   round counted and timed, its last success, breaker, outbox depth and age), before any round;
6. the initial sync, every room's round started with ``Daemon.request_round`` as its timer does,
   until a round changes nothing (rounds go through the daemon's concurrency limit, room lock,
   round record, metrics and ``room_round`` log line, to /dev/null), then after each of
   ``--idle-rounds`` idle rounds (each followed by the daemon's once-per-poll-interval job: the
   outbox gauges and the idle rounds' delta links, written in one transaction). An idle round
   reads the rooms as the daemon's ticker does, the organization listing and then each slice of
   the poll interval's rooms together, slice after slice (``--one-group``: all rooms in one
   group, as the figures before slices were measured).

Each stage also gives the peak RSS so far (``ru_maxrss``), Python's object arenas and glibc's
heap (used, and freed but kept), and the RSS the kernel counts as anonymous, file-backed and
shared; the last stage is one ``/metrics`` scrape as the daemon serves it (``observe.exposition``:
its size; its transient shows in the peak).

``--tracemalloc FILE``: trace Python allocations from the first round on and write to FILE,
after each round, the 25 allocation sites (with roomd's frames that led there) whose memory grew
most since the previous round (tracing costs memory and CPU itself: the RSS figures of such a
run are not the daemon's).
MB here are MiB (2^20 bytes).
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import gc
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.rig import Rig, load_average, machine, peak_rss_bytes

RSS_10K_TARGET_MB = 150.0
MAX_SYNC_ROUNDS = 20
FRAMES = 12
"""Frames kept per traced allocation: enough to reach roomd's own code from a library's."""


def _rss_mb() -> float:
    import psutil

    gc.collect()
    return float(psutil.Process().memory_info().rss) / 2**20


def _rss_parts() -> dict[str, float]:
    """RSS split as the kernel counts it: anonymous (the heaps: Python's, SQLite's page caches,
    OpenSSL's), file-backed (the mapped interpreter and libraries) and shared memory (SQLite's
    WAL index), and the blocks Python's allocator holds."""
    parts: dict[str, float] = {"py_blocks": float(sys.getallocatedblocks())}
    parts.update(_heaps())
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("RssAnon", "RssFile", "RssShmem"):
            parts[key] = round(int(value.split()[0]) / 1024, 1)
    return parts


class _Mallinfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
            "fsmblks", "uordblks", "fordblks", "keepcost",
        )
    ]  # fmt: skip


def _heaps() -> dict[str, float]:
    """MB of Python's object arenas (pymalloc: objects up to 512 bytes), and of glibc's heap in
    use and free-but-kept (larger Python objects, SQLite's caches, OpenSSL; all threads)."""
    found: dict[str, float] = {}
    # sys._debugmallocstats() writes to the C stderr, not sys.stderr: read it through a pipe
    read, write = os.pipe()
    saved = os.dup(2)
    os.dup2(write, 2)
    try:
        sys._debugmallocstats()
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(write)
    with os.fdopen(read) as pipe:
        for line in pipe:
            if "bytes/arena" in line:  # "N arenas * 1048576 bytes/arena = N,NNN,NNN"
                found["py_arenas_MB"] = round(int(line.split("=")[1].replace(",", "")) / 2**20, 1)
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _Mallinfo2
        info = libc.mallinfo2()
        found["malloc_used_MB"] = round((info.uordblks + info.hblkhd) / 2**20, 1)
        found["malloc_free_MB"] = round(info.fordblks / 2**20, 1)
    except (OSError, AttributeError):
        pass  # not glibc
    try:  # SQLite's own allocations (page caches, statements), part of glibc's heap in use
        lib = ctypes.CDLL(_sqlite_library())
        lib.sqlite3_memory_used.restype = ctypes.c_int64
        found["sqlite_MB"] = round(lib.sqlite3_memory_used() / 2**20, 1)
    except (OSError, AttributeError):
        pass
    return found


def _sqlite_library() -> str:
    """The SQLite library the interpreter's ``_sqlite3`` module is linked to (the same loaded
    copy: its memory counter is the daemon's)."""
    import _sqlite3

    for line in Path("/proc/self/maps").read_text().splitlines():
        path = line.split()[-1]
        if "libsqlite3" in path:
            return path
    return str(_sqlite3.__file__)


def _emit(stage: str, **fields: Any) -> None:
    rss = _rss_mb()
    peak = round(peak_rss_bytes() / 2**20, 1)
    print(json.dumps({"stage": stage, "rss_mb": rss, "peak_mb": peak, **fields, **_rss_parts()}))


def _frames(traceback: Any) -> list[str]:
    """The innermost frame, and roomd's own frames (where a library was called from)."""
    frames = list(traceback)  # oldest first
    callers = [f for f in reversed(frames[:-1]) if "/roomd/" in f.filename][:3]
    picked = [frames[-1], *callers]
    return [f"{f.filename}:{f.lineno}" for f in picked]


def _fill_metrics(mailboxes: list[str]) -> None:
    """What N rooms' rounds and the gauges job leave in the per-room metrics."""
    from roomd import observe

    now = time.time()
    for room in mailboxes:
        observe.round_done(room, "ok", 0.1)
        observe.LAST_SUCCESS.labels(room=room).set(now)
        observe.BREAKER_TRIPPED.labels(room=room).set(0)
        observe.OUTBOX_DEPTH.labels(room=room).set(0)
        observe.OUTBOX_OLDEST_AGE.labels(room=room).set(0.0)


async def _roomd(config: Path, idle_rounds: int, trace: Path | None, one_group: bool) -> None:
    _emit("interpreter")
    import aiohttp  # noqa: F401 - the daemon's web server
    import aiosqlite  # noqa: F401
    import httpx  # noqa: F401
    import msal  # noqa: F401

    from roomd import observe
    from roomd.compose import build_daemon, make_runner
    from roomd.config import load_config
    from roomd.store import open_store

    _emit("imports")
    settings = load_config(config)
    _emit("config", rooms=len(settings.rooms))
    devnull = open(os.devnull, "w")  # noqa: SIM115, ASYNC230 - for the life of the process
    observe.configure_logging(settings.log.level, stream=devnull)
    daemon = build_daemon(settings, config_path=config)
    store = daemon.store = await open_store(settings.state.path)
    runner = daemon._runner = await make_runner(settings, store)
    _emit("daemon")
    _fill_metrics([r.mailbox for r in settings.rooms])
    _emit("metrics")

    changed = 0
    inner_round = runner.run_round

    async def counted(room: Any, **kwargs: Any) -> Any:
        nonlocal changed
        stats = await inner_round(room, **kwargs)
        if stats.inbound + stats.outbound + int(stats.extra.get("planned", 0)):
            changed += 1
        return stats

    runner.run_round = counted  # type: ignore[method-assign]

    async def one_round() -> float:
        nonlocal changed
        changed = 0
        t = time.perf_counter()
        for room in settings.rooms:
            daemon.request_round(room.mailbox)
        await asyncio.gather(*daemon._rounds.values())
        await daemon._export_outbox_gauges()
        return time.perf_counter() - t

    snapshot: Any = None
    if trace is not None:
        import tracemalloc

        tracemalloc.start(FRAMES)
        snapshot = tracemalloc.take_snapshot()
        trace.write_text("")  # noqa: ASYNC240

    def traced(name: str) -> None:
        nonlocal snapshot
        if snapshot is None or trace is None:
            return
        import tracemalloc

        now = tracemalloc.take_snapshot()
        with trace.open("a") as out:
            out.write(f"--- {name}: where Python's allocations grew since the previous round\n")
            for stat in now.compare_to(snapshot, "traceback")[:25]:
                out.write(f"{stat.size_diff / 1024:+.1f} KiB, {stat.count_diff:+d} blocks\n")
                out.writelines(f"    {line}\n" for line in _frames(stat.traceback))
        snapshot = now

    for n in range(1, MAX_SYNC_ROUNDS + 1):
        wall = await one_round()
        _emit(f"sync round {n}", wall_s=wall, changed_rooms=changed, load=load_average())
        traced(f"sync round {n}")
        if not changed:
            break

    slices: list[list[Any]] = [list(settings.rooms)]
    if not one_group:  # the daemon's slices of the poll interval (roomd/ticks.py)
        from roomd import ticks

        count = ticks.slices_for(settings.sync.poll_interval_seconds)
        slices = [[] for _ in range(count)]
        for room in settings.rooms:
            slices[ticks.slice_of(room.mailbox, count)].append(room)

    async def idle_round() -> float:
        """What the daemon's ticker does over one poll interval (``Daemon.poll_rooms``: the
        organization's Hybrid listing, then each slice's rooms read together, one slice after
        the other as the ticker's slices follow each other: the idle rooms' delta reads in
        ``$batch``, a whole round for a room that shows something), then the once-per-interval
        job; with ``--one-group`` all rooms in one group (the figures before slices were
        measured so); roomd before grouped ticks had one round per room."""
        nonlocal changed
        if not hasattr(daemon, "poll_rooms"):
            return await one_round()
        changed = 0
        t = time.perf_counter()
        await daemon.poll_rooms(slices[0] if len(slices) == 1 else [], list_hybrid=True)
        if len(slices) > 1:
            for group in slices:
                if group:
                    await daemon.poll_rooms(group, list_hybrid=False)
        await asyncio.gather(*daemon._rounds.values())
        await daemon._export_outbox_gauges()
        return time.perf_counter() - t

    for n in range(1, idle_rounds + 1):
        wall = await idle_round()
        _emit(f"idle round {n}", wall_s=wall, changed_rooms=changed, load=load_average())
        traced(f"idle round {n}")
    _emit("after rounds")
    _emit("a scrape", scrape_bytes=sum(len(part) for part in observe.exposition()))
    await runner.aclose()
    await store.close()
    print(json.dumps({"stage": "peak", "rss_mb": peak_rss_bytes() / 2**20}))


def run(
    rooms: int, bookings: int, idle_rounds: int, trace: Path | None, one_group: bool = False
) -> list[dict[str, Any]]:
    """The worker's stages, in order, against a rig of ``rooms`` rooms."""
    with Rig(rooms=rooms, bookings=bookings) as rig:
        print(f"rig: {rooms} rooms x {bookings} meetings, seeded in {rig.seed_seconds:.1f} s")
        args = ["--worker", "--config", str(rig.config_path), "--idle-rounds", str(idle_rounds)]
        if trace is not None:
            args += ["--tracemalloc", str(trace.resolve())]
        if one_group:
            args.append("--one-group")
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.memory", *args],
            stdout=subprocess.PIPE,
            cwd=Path(__file__).resolve().parent.parent,
            text=True,
        )
        assert proc.stdout is not None
        stages = []
        for line in proc.stdout:
            stage = json.loads(line)
            stages.append(stage)
            print(report(stage, stages), flush=True)
        if proc.wait() != 0:
            raise RuntimeError(f"bench memory: worker exited {proc.returncode}")
    return stages


def report(stage: dict[str, Any], stages: list[dict[str, Any]]) -> str:
    before = stages[-2]["rss_mb"] if len(stages) > 1 and stage["stage"] != "peak" else None
    line = f"  {stage['stage']:<16} RSS {stage['rss_mb']:7.1f} MB"
    if before is not None:
        line += f"  ({stage['rss_mb'] - before:+.1f} MB)"
    extra = {k: v for k, v in stage.items() if k not in ("stage", "rss_mb")}
    if "wall_s" in extra:
        extra["wall_s"] = round(extra["wall_s"], 1)
    return line + ("  " + ", ".join(f"{k} {v}" for k, v in extra.items()) if extra else "")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench memory", description=__doc__)
    parser.add_argument("--rooms", type=int, default=10_000)
    parser.add_argument("--bookings", type=int, default=0, help="meetings per room")
    parser.add_argument("--idle-rounds", type=int, default=3)
    parser.add_argument("--tracemalloc", type=Path, help="per idle round: where memory grew")
    parser.add_argument("--json", type=Path, help="also write the stages here")
    parser.add_argument(
        "--one-group",
        action="store_true",
        help="an idle round reads all rooms in one group, not slice by slice as the daemon",
    )
    args = parser.parse_args(argv)
    for line in machine():
        print(line)
    stages = run(args.rooms, args.bookings, args.idle_rounds, args.tracemalloc, args.one_group)
    peak = stages[-1]["rss_mb"]
    verdict = "met" if peak < RSS_10K_TARGET_MB else "MISSED"
    print(
        f"peak RSS {peak:.0f} MB at {args.rooms} rooms (target < {RSS_10K_TARGET_MB:g} MB at "
        f"10,000 rooms: {verdict if args.rooms == 10_000 else 'n/a at this size'}); "
        f"load {load_average()}"
    )
    if args.json is not None:
        args.json.write_text(json.dumps(stages, indent=2))
    return 0


def _worker(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.memory")
    parser.add_argument("--worker", action="store_true", required=True)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--idle-rounds", type=int, required=True)
    parser.add_argument("--tracemalloc", type=Path)
    parser.add_argument("--one-group", action="store_true")
    args = parser.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    asyncio.run(_roomd(args.config, args.idle_rounds, args.tracemalloc, args.one_group))
    return 0


if __name__ == "__main__":
    sys.exit(_worker(sys.argv[1:]))
