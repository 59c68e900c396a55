"""The benchmarks' test rig: both simulators in their own processes, seeded, and a roomd config.

    with Rig(rooms=1000, bookings=10) as rig:      # Graph and Hybrid simulators, one process each
        rig.config_path                            # a production-shaped roomd.toml pointing at them
        rig.graph.base_url, rig.hybrid.api_url     # what a bare client (or the SDK) talks to
        rig.sim_cpu_seconds()                      # what the simulators cost, apart from roomd

The simulators are the test rig, not the product, so they get what they need to keep up: each
runs in its own process (roomd's CPU and RSS are measured apart from theirs), and the seed data
is made in-process before they serve (a booking per HTTP request would take longer than the
benchmark). ``bookings`` meetings per room are made in Outlook by one organizer per room (the
room invited as a resource, answered by the simulated Resource Booking Assistant), one-hour
meetings from tomorrow on, eight a day inside the room's booking window; ``hybrid_bookings``
per room are made in Hybrid by the same organizer, in the afternoons. Everything lives under
``workdir`` (a fresh temporary directory unless given): the config, the CA bundle, the secret
files and roomd's state file (``state_path``).

Also here, for every benchmark: :func:`start_roomd` (``roomd run`` in its own process),
:func:`process_cpu_seconds` / :func:`process_rss_bytes`, :func:`machine` (the lines for the
README) and :func:`median`.

``python -m bench.rig serve graph|hybrid ...`` is the simulator process itself (started by
:class:`Rig`; not a benchmark).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

import psutil

from roomd.sim.tenant import Person, Room, Tenant, default_tenant

SLOTS_PER_DAY = 8
"""Meetings a room holds per day, 25 minutes every half hour (Outlook's from 09:00 UTC, Hybrid's
from 13:00): 1,000 fit in 125 days, inside Exchange's default booking window of 180 days."""

READY_TIMEOUT_S = 1800.0
"""Seeding 10,000 rooms x 100 meetings takes minutes; the rig waits this long at most."""


# --- the tenant ----------------------------------------------------------------------------------


def room_email(i: int, domain: str = "contoso.com") -> str:
    return f"bench-room-{i}@{domain}"


def organizer_email(i: int, domain: str = "contoso.com") -> str:
    """Room ``i``'s organizer: one per room, so no mailbox grows with the number of rooms."""
    return f"organizer-{i}@{domain}"


def bench_tenant(rooms: int) -> Tenant:
    """``rooms`` rooms (``bench-room-1@...``), each with its own organizer, who is a Hybrid
    member with an Exchange mailbox; both simulators build the same tenant from the count."""
    base = default_tenant()
    made = tuple(
        Room(
            hybrid_id=f"{i:024x}",
            email=room_email(i, base.domain),
            display_name=f"Bench {i}",
            time_zone="Europe/London",
            capacity=6,
            building="Bench",
        )
        for i in range(1, rooms + 1)
    )
    organizers = tuple(
        Person(f"Organizer {i}", organizer_email(i, base.domain)) for i in range(1, rooms + 1)
    )
    return Tenant(rooms=made, people=(*base.people, *organizers))


def slot(k: int, day0: datetime, *, afternoon: bool = False) -> tuple[datetime, datetime]:
    """The k-th one-hour slot from tomorrow on (mornings for Outlook, afternoons for Hybrid so
    the two never clash: Hybrid refuses a double booking, the room would decline one)."""
    day, index = divmod(k, SLOTS_PER_DAY)
    start = day0 + timedelta(days=1 + day, hours=13 if afternoon else 9, minutes=30 * index)
    return start, start + timedelta(minutes=25)


@dataclass(frozen=True)
class SimInfo:
    """One simulator process, as its ready file describes it."""

    kind: str  # "graph" | "hybrid"
    pid: int
    base_url: str
    client_id: str
    client_secret: str
    ca_pem: str
    extra: dict[str, str]

    @property
    def control_url(self) -> str:
        """``/_sim`` of this simulator (loopback callers only)."""
        return f"{self.extra.get('authority_host', self.base_url)}/_sim"

    @property
    def api_url(self) -> str:
        """Hybrid: the prefix of every API path; Graph: ``base_url``."""
        return self.extra.get("api_url", self.base_url)

    @property
    def token_url(self) -> str:
        return self.extra["token_url"]


class Rig:
    """Both simulators in their own processes with ``rooms`` rooms and seed data, and a roomd
    config (``config_path``) pointing at them. Use as a context manager, or ``start``/``stop``.
    """

    def __init__(
        self,
        rooms: int,
        *,
        bookings: int = 0,
        hybrid_bookings: int = 0,
        recurring: int = 0,
        workdir: Path | None = None,
        poll_interval_seconds: float = 60,
        http_port: int | None = None,
        python: str = sys.executable,
    ) -> None:
        if rooms < 1:
            raise ValueError(f"Rig: rooms must be at least 1, got {rooms}")
        self.rooms = rooms
        self.bookings = bookings
        self.hybrid_bookings = hybrid_bookings
        self.recurring = recurring
        self.tenant = bench_tenant(rooms)
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="roomd-bench-")
            workdir = Path(self._tmp.name)
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path = self.workdir / "roomd.toml"
        self.state_path = self.workdir / "roomd.sqlite3"
        self.poll_interval_seconds = poll_interval_seconds
        self.http_port = http_port if http_port is not None else free_port()
        self._python = python
        self._procs: list[subprocess.Popen[bytes]] = []
        self.graph: SimInfo
        self.hybrid: SimInfo
        self.seed_seconds = 0.0

    def __enter__(self) -> Rig:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def sim_pids(self) -> list[int]:
        return [p.pid for p in self._procs]

    @property
    def mailboxes(self) -> list[str]:
        return [r.email for r in self.tenant.rooms]

    def start(self) -> None:
        """Start and seed both simulators (in parallel), then write the config."""
        t0 = time.perf_counter()
        ready = {kind: self.workdir / f"{kind}.ready.json" for kind in ("graph", "hybrid")}
        for kind, path in ready.items():
            path.unlink(missing_ok=True)
            count = self.bookings if kind == "graph" else self.hybrid_bookings
            self._procs.append(
                subprocess.Popen(
                    [
                        self._python,
                        "-m",
                        "bench.rig",
                        "serve",
                        kind,
                        "--rooms",
                        str(self.rooms),
                        "--bookings",
                        str(count),
                        "--ready",
                        str(path),
                        *(["--recurring", str(self.recurring)] if kind == "graph" else []),
                    ],
                    cwd=Path(__file__).resolve().parent.parent,
                    stdin=subprocess.DEVNULL,
                )
            )
        try:
            infos = {kind: self._wait_ready(path) for kind, path in ready.items()}
        except BaseException:
            self.stop()
            raise
        self.graph, self.hybrid = infos["graph"], infos["hybrid"]
        self.seed_seconds = time.perf_counter() - t0
        self.write_config()

    def _wait_ready(self, path: Path) -> SimInfo:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not path.exists():
            for proc in self._procs:
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"rig: simulator process {proc.pid} exited {proc.returncode}"
                    )
            if time.monotonic() > deadline:
                raise TimeoutError(f"rig: no {path.name} after {READY_TIMEOUT_S:g} s")
            time.sleep(0.05)
        raw = json.loads(path.read_text())
        return SimInfo(**raw)

    def write_config(self, webhook_secret: str | None = None, **sync: Any) -> Path:
        """(Re)write ``config_path``: every room mapped, secrets in files beside it, both CAs
        in ``ca.pem``; ``sync`` adds ``[sync]`` keys (``poll_interval_seconds`` is the rig's);
        ``webhook_secret`` (what Hybrid's ``POST /webhooks`` answered) turns the receiver on."""
        d = self.workdir
        (d / "ca.pem").write_text(self.graph.ca_pem + self.hybrid.ca_pem)
        _secret_file(d / "graph-client-secret", self.graph.client_secret)
        _secret_file(d / "hybrid-client-secret", self.hybrid.client_secret)
        g, h = self.graph, self.hybrid
        sync_keys = {"poll_interval_seconds": self.poll_interval_seconds, **sync}
        lines = [
            "# Written by bench/rig.py: points roomd at the benchmark's simulators.",
            "[graph]",
            f'tenant_id = "{g.extra["tenant_id"]}"',
            f'client_id = "{g.client_id}"',
            'client_secret_file = "graph-client-secret"',
            f'authority_host = "{g.extra["authority_host"]}"',
            f'base_url = "{g.base_url}"',
            'ca_bundle = "ca.pem"',
            "",
            "[hybrid]",
            f'base_url = "{h.base_url}"',
            f'org = "{h.extra["org"]}"',
            f'token_url = "{h.token_url}"',
            f'client_id = "{h.client_id}"',
            'client_secret_file = "hybrid-client-secret"',
            'ca_bundle = "ca.pem"',
        ]
        if webhook_secret is not None:
            _secret_file(d / "hybrid-webhook-secret", webhook_secret)
            lines.append('webhook_secret_file = "hybrid-webhook-secret"')
        lines += [
            "",
            "[sync]",
            *(f"{k} = {json.dumps(v)}" for k, v in sync_keys.items()),
            "",
            "[http]",
            'listen = "127.0.0.1"',
            f"port = {self.http_port}",
            "",
            "[state]",
            f'path = "{self.state_path}"',
        ]
        for room in self.tenant.rooms:
            lines += [
                "",
                "[[rooms]]",
                f'hybrid_id = "{room.hybrid_id}"',
                f'mailbox = "{room.email}"',
                f'name = "{room.display_name}"',
                f'time_zone = "{room.time_zone}"',
            ]
        tmp = self.config_path.with_name(self.config_path.name + ".tmp")
        tmp.write_text("\n".join(lines) + "\n")
        tmp.replace(self.config_path)
        return self.config_path

    def sim_cpu_seconds(self) -> float:
        """User + system CPU seconds both simulator processes have used so far."""
        return sum(process_cpu_seconds(pid) for pid in self.sim_pids)

    def graph_token(self) -> str:
        """A bearer token for Graph, as the app registration in the config gets one."""
        import httpx

        with httpx.Client(verify=str(self.workdir / "ca.pem")) as client:
            resp = client.post(f"{self.graph.control_url}/token", json={})
            resp.raise_for_status()
            return str(resp.json()["access_token"])

    def hybrid_token(self) -> str:
        """A bearer token for the Hybrid API (client credentials; no scope asked: all of them)."""
        import httpx

        with httpx.Client(verify=str(self.workdir / "ca.pem")) as client:
            resp = client.post(
                self.hybrid.token_url,
                data={
                    "grant_type": "client_credentials",
                    "client_id": self.hybrid.client_id,
                    "client_secret": self.hybrid.client_secret,
                },
            )
            resp.raise_for_status()
            return str(resp.json()["access_token"])

    def stop(self) -> None:
        """Stop the simulator processes (SIGTERM, then SIGKILL) and remove a temporary workdir."""
        procs, self._procs = self._procs, []
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


def _secret_file(path: Path, value: str) -> None:
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")


# --- roomd in its own process, and what a process costs -------------------------------------------


def start_roomd(
    config: Path, *, log: Path | None = None, python: str = sys.executable
) -> subprocess.Popen[bytes]:
    """``roomd run -c CONFIG`` in its own process (logs to ``log``, else discarded); stop it
    with ``stop_roomd``."""
    out = open(log, "ab") if log is not None else subprocess.DEVNULL  # noqa: SIM115
    try:
        return subprocess.Popen(
            [python, "-m", "roomd", "run", "-c", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    finally:
        if log is not None:
            out.close()  # type: ignore[union-attr]


def stop_roomd(proc: subprocess.Popen[bytes], grace_s: float = 60) -> None:
    """Stop roomd as systemd would: SIGTERM, then SIGKILL if it has not exited in ``grace_s``."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads) so far."""
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def process_rss_bytes(pid: int) -> int:
    return int(psutil.Process(pid).memory_info().rss)


def peak_rss_bytes() -> int:
    """This process's peak RSS (``ru_maxrss``, KiB on Linux)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def self_cpu_seconds() -> float:
    """This process's user + system CPU seconds (all threads, SQLite's included)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def machine() -> list[str]:
    """The machine a figure was measured on, for the README."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = psutil.virtual_memory().total / 2**30
    return [
        f"CPU: {cpu}, {os.cpu_count()} logical cores ({len(os.sched_getaffinity(0))} usable)",
        f"memory: {mem:.1f} GiB; Python {platform.python_version()}; {platform.platform()}",
        f"load average (1, 5, 15 min): {load_average()}",
    ]


# --- the simulator processes ---------------------------------------------------------------------


def series_slot(j: int, day0: datetime) -> tuple[datetime, datetime]:
    """The j-th weekly series of a room: evenings from 17:00 (after both sides' one-off
    meetings), on the weekdays of the coming week in turn."""
    start = day0 + timedelta(days=1 + j % 7, hours=17, minutes=30 * (j // 7))
    return start, start + timedelta(minutes=25)


SERIES_WEEKS = 10
"""Occurrences of each seeded weekly series (inside the default 180-day booking window)."""


def _seed_graph(sim: Any, tenant: Tenant, bookings: int, recurring: int = 0) -> None:
    day0 = sim.clock.now().astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    sim.switches.rba_delay = None  # answered below, room by room, before serving
    for i, room in enumerate(tenant.rooms, start=1):
        organizer = sim.directory.find(organizer_email(i, tenant.domain))
        for k in range(bookings):
            start, end = slot(k, day0)
            sim.exchange.create(
                organizer,
                {
                    "subject": f"Meeting {k} in {room.display_name}",
                    "start": {"dateTime": start.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
                    "end": {"dateTime": end.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
                    "attendees": [{"emailAddress": {"address": room.email}, "type": "resource"}],
                },
            )
        for j in range(recurring):
            start, end = series_slot(j, day0)
            sim.exchange.create(
                organizer,
                {
                    "subject": f"Weekly {j} in {room.display_name}",
                    "start": {"dateTime": start.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
                    "end": {"dateTime": end.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
                    "attendees": [{"emailAddress": {"address": room.email}, "type": "resource"}],
                    "recurrence": {
                        "pattern": {
                            "type": "weekly",
                            "interval": 1,
                            "daysOfWeek": [start.strftime("%A").lower()],
                        },
                        "range": {
                            "type": "numbered",
                            "startDate": start.date().isoformat(),
                            "numberOfOccurrences": SERIES_WEEKS,
                        },
                    },
                },
            )
        if bookings or recurring:
            sim.control.run_rba()
    sim.switches.rba_delay = 0.0


def _seed_hybrid(sim: Any, tenant: Tenant, bookings: int) -> None:
    day0 = sim.clock.now().astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    for i, room in enumerate(tenant.rooms, start=1):
        for k in range(bookings):
            start, end = slot(k, day0, afternoon=True)
            sim.control.create_booking(
                room.hybrid_id,
                start,
                end,
                member=organizer_email(i, tenant.domain),
                summary=f"Booking {k} in {room.display_name}",
            )


async def _serve(kind: str, rooms: int, bookings: int, ready: Path, recurring: int = 0) -> None:
    from roomd.sim.graph import GraphSimulator
    from roomd.sim.hybrid import HybridSimulator
    from roomd.sim.tls import LocalCA

    tenant = bench_tenant(rooms)
    ca = LocalCA()
    info: dict[str, Any]
    sim: Any
    if kind == "graph":
        sim = GraphSimulator(tenant, ca=ca)
        _seed_graph(sim, tenant, bookings, recurring)
        await sim.start()
        info = {
            "base_url": sim.base_url,
            "client_id": sim.client_id,
            "client_secret": sim.client_secret,
            "extra": {"authority_host": sim.authority_host, "tenant_id": sim.tenant_id},
        }
    else:
        sim = HybridSimulator(tenant, ca=ca)
        _seed_hybrid(sim, tenant, bookings)
        await sim.start()
        info = {
            "base_url": sim.base_url,
            "client_id": sim.client_id,
            "client_secret": sim.client_secret,
            "extra": {"api_url": sim.api_url, "token_url": sim.token_url, "org": sim.org},
        }
    info.update(kind=kind, pid=os.getpid(), ca_pem=ca.cert_pem.decode())
    tmp = ready.with_name(ready.name + ".tmp")
    tmp.write_text(json.dumps(info))
    tmp.replace(ready)  # the parent sees a whole file or none
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await sim.stop()


def cli(argv: list[str]) -> int:
    """Not ``main``: ``python -m bench`` lists modules with a ``main`` as benchmarks."""
    parser = argparse.ArgumentParser(prog="python -m bench.rig")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="one simulator process (started by Rig)")
    serve.add_argument("kind", choices=("graph", "hybrid"))
    serve.add_argument("--rooms", type=int, required=True)
    serve.add_argument("--bookings", type=int, default=0)
    serve.add_argument("--ready", type=Path, required=True)
    serve.add_argument("--recurring", type=int, default=0, help="weekly series per room (graph)")
    args = parser.parse_args(argv)
    from roomd import observe

    observe.configure_logging("warning", stream=sys.stderr)
    asyncio.run(_serve(args.kind, args.rooms, args.bookings, args.ready, args.recurring))
    return 0


if __name__ == "__main__":
    sys.exit(cli(sys.argv[1:]))
