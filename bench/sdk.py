"""roomd's Graph client against Microsoft's msgraph-sdk: CPU per delta page, import time, peak RSS.

    python -m bench sdk [--rooms 4] [--meetings 250] [--page-size 50] [--rounds 3] [--runs 3]

The rig (bench/rig.py) runs the Graph simulator in its own process with ``--rooms`` rooms of
``--meetings`` accepted meetings each. Each client then runs in a fresh process of its own: it
imports its library, takes a token from the simulator's identity platform (roomd: msal; the
SDK: azure-identity's ``ClientSecretCredential`` with the simulator as authority host, the
SDK's own httpx client and middleware trusting the simulator's CA), pages one warm-up round
(connections, lazy imports), then pages ``--rounds`` full calendarView delta rounds of every
room with ``Prefer: odata.maxpagesize=--page-size`` and the other preferences roomd sends (UTC
times, immutable ids), so both read the very same pages. Measured in that process: CPU seconds
(user + system) per page over the measured rounds, wall seconds per page, CPU from the
interpreter's start to the end of the first round, and peak RSS (``VmHWM``). Import time and
the RSS after it are measured apart, in fresh processes that only import (``roomd.graph`` vs
``msgraph.GraphServiceClient``, ``azure.identity.aio`` and kiota's Azure auth provider).
Every figure is the median over ``--runs`` processes per client, run interleaved; the
simulator's own CPU is in none of them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.rig import SLOTS_PER_DAY, Rig, load_average, machine

IMPORTS = {
    "roomd": "import roomd.graph",
    "sdk": (
        "import msgraph; from msgraph import GraphServiceClient; "
        "import azure.identity.aio; "
        "import kiota_authentication_azure.azure_identity_authentication_provider"
    ),
}


# -- the clients' processes --------------------------------------------------------------------


async def _rounds_roomd(info: dict[str, Any], rounds: int, page_size: int) -> dict[str, float]:
    from roomd.graph import GraphClient, GraphClientConfig

    config = GraphClientConfig(
        tenant_id=info["tenant_id"],
        client_id=info["client_id"],
        client_secret=info["client_secret"],
        authority_host=info["authority_host"],
        base_url=info["base_url"],
        ca_bundle=Path(info["ca"]),
    )
    start = datetime.fromisoformat(info["window_start"])
    end = datetime.fromisoformat(info["window_end"])
    async with GraphClient(config) as client:

        async def one_round(room: str) -> tuple[int, int]:
            result = await client.delta_round(
                room, window_start=start, window_end=end, delta_link=None, page_size=page_size
            )
            return result.pages, len(result.changes)

        return await _measure(info["rooms"], one_round, rounds)


async def _rounds_sdk(info: dict[str, Any], rounds: int, page_size: int) -> dict[str, float]:
    import ssl

    import httpx
    from azure.identity.aio import ClientSecretCredential
    from kiota_abstractions.base_request_configuration import RequestConfiguration
    from kiota_authentication_azure.azure_identity_authentication_provider import (
        AzureIdentityAuthenticationProvider,
    )
    from kiota_http.kiota_client_factory import DEFAULT_CONNECTION_TIMEOUT, DEFAULT_REQUEST_TIMEOUT
    from msgraph import GraphRequestAdapter, GraphServiceClient
    from msgraph.graph_request_adapter import options
    from msgraph_core import GraphClientFactory

    host = httpx.URL(info["base_url"]).host
    credential = ClientSecretCredential(
        info["tenant_id"],
        info["client_id"],
        info["client_secret"],
        authority=info["authority_host"],
        connection_verify=info["ca"],
    )
    auth = AzureIdentityAuthenticationProvider(
        credential, scopes=["https://graph.microsoft.com/.default"], allowed_hosts=[host]
    )
    # the SDK's own client (KiotaClientFactory.get_default_client) and middleware, but trusting
    # the simulator's CA: an httpx client's verify is fixed when it is made
    http = GraphClientFactory.create_with_default_middleware(
        client=httpx.AsyncClient(
            verify=ssl.create_default_context(cafile=info["ca"]),
            timeout=httpx.Timeout(DEFAULT_REQUEST_TIMEOUT, connect=DEFAULT_CONNECTION_TIMEOUT),
            http2=True,
        ),
        options=options,
    )
    adapter = GraphRequestAdapter(auth, client=http)
    adapter.base_url = info["base_url"]
    graph = GraphServiceClient(request_adapter=adapter)
    start, end = info["window_start"], info["window_end"]
    prefer = f'odata.maxpagesize={page_size}, outlook.timezone="UTC", IdType="ImmutableId"'

    async def one_round(room: str) -> tuple[int, int]:
        builder = graph.users.by_user_id(room).calendar_view.delta
        query = builder.DeltaRequestBuilderGetQueryParameters(
            start_date_time=start, end_date_time=end
        )
        config: RequestConfiguration[Any] = RequestConfiguration(query_parameters=query)
        config.headers.add("Prefer", prefer)
        page = await builder.get(request_configuration=config)
        pages, items = 0, 0
        while page is not None:
            pages += 1
            items += len(page.value or [])
            if not page.odata_next_link:
                break
            next_config: RequestConfiguration[Any] = RequestConfiguration()
            next_config.headers.add("Prefer", prefer)
            page = await builder.with_url(page.odata_next_link).get(
                request_configuration=next_config
            )
        return pages, items

    try:
        return await _measure(info["rooms"], one_round, rounds)
    finally:
        await credential.close()
        await http.aclose()


async def _measure(rooms: list[str], one_round: Any, rounds: int) -> dict[str, float]:
    await one_round(rooms[0])  # warm-up: token, connection, lazy imports
    first_cpu = time.process_time()  # since the process started: interpreter, imports, round 1
    cpu0, wall0 = time.process_time(), time.perf_counter()
    pages = items = 0
    for _ in range(rounds):
        for room in rooms:
            p, n = await one_round(room)
            pages, items = pages + p, items + n
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return {
        "pages": pages,
        "items": items,
        "cpu_s": cpu,
        "first_round_cpu_s": first_cpu,
        "wall_s": wall,
        "cpu_ms_per_page": cpu / pages * 1000,
        "wall_ms_per_page": wall / pages * 1000,
        "peak_rss_mib": peak_rss_mib(),
    }


def peak_rss_mib() -> float:
    """This process's peak RSS (``VmHWM``). Not ``ru_maxrss``: Linux carries that over from the
    parent across fork and exec, so a child started by a big parent reports the parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def client_info(rig: Rig, meetings: int) -> dict[str, Any]:
    """What a client process needs: the app registration, the CA, the rooms and the window
    (from yesterday to two days past the rig's last meeting)."""
    day0 = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return {
        "base_url": rig.graph.base_url,
        "authority_host": rig.graph.extra["authority_host"],
        "tenant_id": rig.graph.extra["tenant_id"],
        "client_id": rig.graph.client_id,
        "client_secret": rig.graph.client_secret,
        "ca": str(rig.workdir / "ca.pem"),
        "rooms": rig.mailboxes,
        "window_start": (day0 - timedelta(days=1)).isoformat(),
        "window_end": (day0 + timedelta(days=meetings // SLOTS_PER_DAY + 3)).isoformat(),
    }


def _worker(which: str, info_path: Path, rounds: int, page_size: int) -> int:
    info = json.loads(info_path.read_text())
    runner = _rounds_roomd if which == "roomd" else _rounds_sdk
    print(json.dumps(asyncio.run(runner(info, rounds, page_size))))
    return 0


# -- the driver --------------------------------------------------------------------------------


def _run_json(args: list[str]) -> dict[str, Any]:
    out = subprocess.run(args, capture_output=True, text=True, env=_env())
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(args[2:])} exited {out.returncode}:\n{out.stderr}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(Path(__file__).resolve().parent.parent), env.get("PYTHONPATH")) if p
    )
    return env


def import_time(which: str) -> dict[str, float]:
    """Wall and CPU seconds of the import alone, in a fresh interpreter (bytecode cached)."""
    code = (
        "import time, json; c=time.process_time(); t=time.perf_counter(); "
        f"{IMPORTS[which]}; "
        "w=time.perf_counter()-t; u=time.process_time()-c; from bench.sdk import peak_rss_mib; "
        "print(json.dumps({'import_s': w, 'import_cpu_s': u, 'rss_mib': peak_rss_mib()}))"
    )
    return _run_json([sys.executable, "-c", code])


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench sdk", description=__doc__.split("\n")[0])
    parser.add_argument("--rooms", type=int, default=4)
    parser.add_argument("--meetings", type=int, default=250, help="meetings per room")
    parser.add_argument("--page-size", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds per process")
    parser.add_argument("--runs", type=int, default=3, help="processes per client (medians)")
    parser.add_argument("--worker", choices=("roomd", "sdk"), help=argparse.SUPPRESS)
    parser.add_argument("--info", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return _worker(args.worker, args.info, args.rounds, args.page_size)

    for line in machine():
        print(f"machine: {line}")
    with Rig(args.rooms, bookings=args.meetings) as rig:
        print(
            f"simulators (own processes): {args.rooms} rooms x {args.meetings} meetings, "
            f"seeded in {rig.seed_seconds:.1f} s"
        )
        info = rig.workdir / "sdk-bench.json"
        info.write_text(json.dumps(client_info(rig, args.meetings)))
        results: dict[str, list[dict[str, Any]]] = {"roomd": [], "sdk": []}
        for _ in range(args.runs):
            for which in ("roomd", "sdk"):  # interleaved: load drifts hit both alike
                cmd = [sys.executable, "-m", "bench", "sdk", "--worker", which,
                       "--info", str(info), "--rounds", str(args.rounds),
                       "--page-size", str(args.page_size)]  # fmt: skip
                result = _run_json(cmd)
                result.update(import_time(which))
                results[which].append(result)
    report(results, args)
    return 0


def report(results: dict[str, list[dict[str, Any]]], args: argparse.Namespace) -> None:
    def med(which: str, key: str) -> float:
        return statistics.median(r[key] for r in results[which])

    pages = int(results["roomd"][0]["pages"])
    items = int(results["roomd"][0]["items"])
    print(
        f"each process: {args.rounds} rounds x {args.rooms} rooms = {pages} pages, {items} events "
        f"(page size {args.page_size}); medians of {args.runs} processes per client"
    )
    rows = (
        ("CPU per page (ms)", "cpu_ms_per_page", "{:.2f}"),
        ("wall per page (ms)", "wall_ms_per_page", "{:.2f}"),
        ("import, wall (ms)", "import_s", "{:.0f}"),
        ("import, CPU (ms)", "import_cpu_s", "{:.0f}"),
        ("CPU to 1st round (ms)", "first_round_cpu_s", "{:.0f}"),
        ("RSS after import (MiB)", "rss_mib", "{:.1f}"),
        ("peak RSS (MiB)", "peak_rss_mib", "{:.1f}"),
    )
    print(f"{'':<24}{'roomd':>10}{'msgraph-sdk':>14}{'sdk/roomd':>11}")
    for label, key, fmt in rows:
        scale = 1000 if key.endswith("_s") else 1
        a, b = med("roomd", key) * scale, med("sdk", key) * scale
        print(f"{label:<24}{fmt.format(a):>10}{fmt.format(b):>14}{b / a:>10.1f}x")
    if results["sdk"][0]["pages"] != pages:
        print(f"warning: the SDK read {results['sdk'][0]['pages']} pages, roomd {pages}")
    ratio = med("sdk", "cpu_ms_per_page") / med("roomd", "cpu_ms_per_page")
    verdict = "met" if ratio >= 3 else "MISSED"
    print(f"target: roomd's client at least 3x cheaper per page: {ratio:.1f}x ({verdict})")
    print(f"load average after the runs: {load_average()}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
