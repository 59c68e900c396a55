"""``roomd sim``: both simulators, standalone, with a roomd config that points at them."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import httpx

from roomd.sim.graph import GraphSimulator
from roomd.sim.hybrid import HybridSimulator
from roomd.sim.roomd_config import write_roomd_config
from roomd.sim.tenant import default_tenant
from roomd.sim.tls import LocalCA

ROOMD_HOOK_URL = "http://127.0.0.1:9478/hooks/hybrid"  # roomd's default port, as configured


async def register_roomd_webhook(hybrid: HybridSimulator, ca: LocalCA, url: str) -> str:
    """Register roomd's receiver the way an operator would (``POST /webhooks``); the answer
    carries the signing secret, which goes into the config as ``webhook_secret_file``."""
    async with httpx.AsyncClient(verify=ca.client_context()) as client:
        token = await client.post(
            hybrid.token_url,
            data={
                "grant_type": "client_credentials",
                "client_id": hybrid.client_id,
                "client_secret": hybrid.client_secret,
                "scope": "flex.settings.webhooks.create",
            },
        )
        token.raise_for_status()
        resp = await client.post(
            f"{hybrid.api_url}/webhooks",
            headers={"Authorization": f"Bearer {token.json()['access_token']}"},
            json={
                "url": url,
                "eventTypes": ["booking.created", "booking.updated", "booking.removed"],
                "description": "roomd (written by roomd sim)",
            },
        )
        resp.raise_for_status()
        return str(resp.json()["secret"])


async def serve_simulators(
    config_out: Path, *, host: str, graph_port: int, hybrid_port: int
) -> None:
    tenant = default_tenant()
    ca = LocalCA()
    graph = GraphSimulator(tenant, ca=ca)
    # no-shows are released on the simulated clock, as the Hybrid app's own sweep would
    hybrid = HybridSimulator(tenant, ca=ca, noshow_sweep_seconds=30)
    await graph.start(host=host, port=graph_port)
    await hybrid.start(host=host, port=hybrid_port)
    try:
        hook_secret = await register_roomd_webhook(hybrid, ca, ROOMD_HOOK_URL)
        path = write_roomd_config(
            config_out,
            tenant=tenant,
            ca=ca,
            graph=graph,
            hybrid=hybrid,
            webhook_secret=hook_secret,
        )
        print(f"Microsoft Graph simulator: {graph.base_url} (authority {graph.authority_host})")
        print(f"Hybrid simulator:          {hybrid.base_url} (org {hybrid.org})")
        print(f"Hybrid webhooks go to:     {ROOMD_HOOK_URL}")
        print(f"roomd config written to:   {path}")
        print(f"Run roomd against them:    roomd run -c {path}")
        print("Press Ctrl-C to stop.", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        await hybrid.stop()
        await graph.stop()


def run_sim(config_out: Path, *, host: str, graph_port: int, hybrid_port: int) -> int:
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(f"roomd: sim: --host {host}: the simulators serve loopback only", file=sys.stderr)
        return 2
    try:
        config_out.parent.mkdir(parents=True, exist_ok=True)
        if config_out.is_dir():
            raise IsADirectoryError(21, "is a directory", str(config_out))
    except FileExistsError as exc:
        print(
            f"roomd: sim: --config-out {config_out}: {exc.filename} is not a directory",
            file=sys.stderr,
        )
        return 2
    except OSError as exc:
        print(f"roomd: sim: --config-out {config_out}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    asyncio.run(
        serve_simulators(
            config_out.resolve(), host=host, graph_port=graph_port, hybrid_port=hybrid_port
        )
    )
    return 0
