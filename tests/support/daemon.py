"""Run ``roomd run`` as a real process, the way systemd does, and watch what it says."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Room:
    hybrid_id: str
    mailbox: str


def write_config(
    directory: Path,
    *,
    rooms: list[Room],
    graph_base_url: str = "https://127.0.0.1:9/v1.0",
    authority_host: str = "https://127.0.0.1:9",
    tenant_id: str = "contoso.onmicrosoft.com",
    client_id: str = "11111111-2222-3333-4444-555555555555",
    client_secret: str = "graph-s3cret-value",
    ca_bundle: Path | None = None,
    poll_interval: float = 1,
    stale_after: float | None = None,
    extra_sync: str = "",
    name: str = "roomd.toml",
) -> Path:
    """A complete config; secrets go in files beside it, as systemd's LoadCredential would."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "graph-secret").write_text(client_secret + "\n")
    (directory / "hybrid-secret").write_text("hybrid-s3cret-value\n")
    lines = [
        "[graph]",
        f'tenant_id = "{tenant_id}"',
        f'client_id = "{client_id}"',
        'client_secret_file = "graph-secret"',
        f'authority_host = "{authority_host}"',
        f'base_url = "{graph_base_url}"',
    ]
    if ca_bundle is not None:
        lines.append(f'ca_bundle = "{ca_bundle}"')
    lines += [
        "",
        "[hybrid]",
        'base_url = "https://127.0.0.1:9"',
        'org = "contoso"',
        'token_url = "https://127.0.0.1:9/oauth/token"',
        'client_id = "roomd"',
        'client_secret_file = "hybrid-secret"',
        "",
        "[sync]",
        f"poll_interval_seconds = {poll_interval}",
    ]
    if stale_after is not None:
        lines.append(f"stale_after_seconds = {stale_after}")
    lines += [extra_sync, "shutdown_grace_seconds = 5", "", "[http]", 'listen = "127.0.0.1"']
    lines += ["port = 0", "", "[state]", 'path = "state.sqlite3"', "", "[log]", 'level = "info"']
    for room in rooms:
        lines += ["", "[[rooms]]", f'hybrid_id = "{room.hybrid_id}"', f'mailbox = "{room.mailbox}"']
    path = directory / name
    path.write_text("\n".join(lines) + "\n")
    return path


class NotifySocket:
    """A unix datagram socket standing in for systemd's $NOTIFY_SOCKET."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / "notify.sock"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.path))
        self.sock.settimeout(0.2)
        self.messages: list[dict[str, str]] = []

    def _drain(self) -> None:
        while True:
            try:
                data = self.sock.recv(65536)
            except (TimeoutError, BlockingIOError):
                return
            fields = dict(line.split("=", 1) for line in data.decode().splitlines() if line)
            self.messages.append(fields)

    def wait_for(self, key: str, value: str | None = None, timeout: float = 20) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._drain()
            for msg in self.messages:
                if key in msg and (value is None or msg[key] == value):
                    return msg
        raise AssertionError(f"no sd_notify {key}={value} within {timeout}s: {self.messages}")

    def close(self) -> None:
        self.sock.close()


@dataclass
class DaemonProcess:
    """``python -m roomd run -c CONFIG`` with its stdout parsed as JSON log lines."""

    config: Path
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[str] | None = None
    lines: list[dict[str, Any]] = field(default_factory=list)
    raw: list[str] = field(default_factory=list)
    _queue: queue.Queue[str] = field(default_factory=queue.Queue)

    def start(self) -> DaemonProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("NOTIFY_", "WATCHDOG_"))}
        env.update(self.env)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "roomd", "run", "-c", str(self.config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        threading.Thread(target=self._pump, daemon=True).start()
        return self

    def _pump(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line)

    def _collect(self) -> None:
        while True:
            try:
                line = self._queue.get_nowait()
            except queue.Empty:
                return
            self.raw.append(line)
            with contextlib.suppress(json.JSONDecodeError):
                self.lines.append(json.loads(line))

    def mark(self) -> int:
        """A position in the log; ``wait_log(..., since=mark)`` looks only at later lines."""
        self._collect()
        return len(self.lines)

    def wait_log(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 20, since: int = 0
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        seen = since
        while time.monotonic() < deadline:
            self._collect()
            for line in self.lines[seen:]:
                if predicate(line):
                    return line
            seen = len(self.lines)
            assert self.proc is not None
            if self.proc.poll() is not None:
                self._collect()
                if any(predicate(line) for line in self.lines[seen:]):
                    return next(x for x in self.lines[seen:] if predicate(x))
                raise AssertionError(f"roomd exited {self.proc.returncode}: {''.join(self.raw)}")
            time.sleep(0.05)
        raise AssertionError(f"log line not seen within {timeout}s: {''.join(self.raw)[-4000:]}")

    def events(self, name: str) -> list[dict[str, Any]]:
        self._collect()
        return [line for line in self.lines if line.get("event") == name]

    @property
    def port(self) -> int:
        started = self.wait_log(lambda x: x.get("event") == "started")
        return int(str(started["http"]).rsplit(":", 1)[1])

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait_exit(self, timeout: float = 30) -> int:
        assert self.proc is not None
        code = self.proc.wait(timeout=timeout)
        time.sleep(0.1)
        self._collect()
        return code

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
