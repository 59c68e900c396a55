"""Write a complete roomd configuration that points at running simulators.

The file uses exactly the keys a production config uses (see config/roomd.example.toml): the
secrets go in files beside it (as systemd's LoadCredential would place them) and the simulators'
CA certificate becomes ``ca_bundle``, so ``roomd run -c PATH`` talks to the simulators exactly as
it would to Microsoft and to a real booking system.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from roomd.sim.tenant import Tenant
from roomd.sim.tls import LocalCA

if TYPE_CHECKING:
    from roomd.sim.graph import GraphSimulator
    from roomd.sim.hybrid import HybridSimulator


def _secret_file(path: Path, value: str) -> None:
    """Created 0600 from the start: never readable by others, not even for a moment."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")


def write_roomd_config(
    path: Path,
    *,
    tenant: Tenant,
    ca: LocalCA,
    graph: GraphSimulator,
    hybrid: HybridSimulator,
    webhook_secret: str | None = None,
    http_port: int = 9478,
    poll_interval_seconds: float = 5,
    state_path: str = "roomd.sqlite3",
) -> Path:
    """Write ``path`` plus ``ca.pem`` and the secret files in its directory; returns ``path``."""
    directory = path.parent
    directory.mkdir(parents=True, exist_ok=True)
    ca.write_ca_bundle(directory / "ca.pem")
    _secret_file(directory / "graph-client-secret", graph.client_secret)
    _secret_file(directory / "hybrid-client-secret", hybrid.client_secret)
    lines = [
        "# Written by `roomd sim`: points roomd at the local simulators.",
        "[graph]",
        f'tenant_id = "{graph.tenant_id}"',
        f'client_id = "{graph.client_id}"',
        'client_secret_file = "graph-client-secret"',
        f'authority_host = "{graph.authority_host}"',
        f'base_url = "{graph.base_url}"',
        'ca_bundle = "ca.pem"',
        "",
        "[hybrid]",
        f'base_url = "{hybrid.base_url}"',
        f'org = "{hybrid.org}"',
        f'token_url = "{hybrid.token_url}"',
        f'client_id = "{hybrid.client_id}"',
        'client_secret_file = "hybrid-client-secret"',
        'ca_bundle = "ca.pem"',
    ]
    if webhook_secret is not None:
        _secret_file(directory / "hybrid-webhook-secret", webhook_secret)
        lines.append('webhook_secret_file = "hybrid-webhook-secret"')
    lines += [
        "",
        "[sync]",
        f"poll_interval_seconds = {poll_interval_seconds:g}",
        "",
        "[http]",
        'listen = "127.0.0.1"',
        f"port = {http_port}",
        "",
        "[state]",
        f'path = "{state_path}"',
    ]
    for room in tenant.rooms:
        lines += [
            "",
            "[[rooms]]",
            f'hybrid_id = "{room.hybrid_id}"',
            f'mailbox = "{room.email}"',
            f'name = "{room.display_name}"',
            f'time_zone = "{room.time_zone}"',
        ]
    # atomically: a reader (or `roomd run`) never sees half a file
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(path)
    return path
