"""The systemd notification protocol (sd_notify(3)), spoken without libsystemd.

The protocol is one datagram per message to the AF_UNIX socket named by ``$NOTIFY_SOCKET``
(a leading ``@`` means the abstract namespace). Under ``Type=notify`` systemd waits for
``READY=1`` before it calls the unit started, shows ``STATUS=`` in ``systemctl status``, and kills
the service if ``WATCHDOG=1`` stops arriving within ``WatchdogSec`` (``$WATCHDOG_USEC``).
Outside systemd every call is a no-op, so the daemon can call it unconditionally.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Mapping


class Notifier:
    """Sends sd_notify messages; silent when not started by systemd."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        self._address = _socket_address(env.get("NOTIFY_SOCKET", ""))
        self._sock: socket.socket | None = None
        self.watchdog_interval = _watchdog_interval(env)

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def send(self, **fields: str | int) -> None:
        """Send one message made of ``KEY=value`` lines, e.g. ``send(READY=1, STATUS="...")``."""
        if self._address is None:
            return
        if self._sock is None:
            # non-blocking: a full systemd queue must never stall the event loop
            self._sock = socket.socket(
                socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK
            )
        payload = "\n".join(f"{key}={value}" for key, value in fields.items())
        # systemd gone or socket full: a missed status line must never stop the daemon.
        with contextlib.suppress(OSError):
            self._sock.sendto(payload.encode(), self._address)

    def ready(self, status: str) -> None:
        self.send(READY=1, STATUS=status)

    def status(self, status: str) -> None:
        self.send(STATUS=status)

    def watchdog(self) -> None:
        self.send(WATCHDOG=1)

    def stopping(self, status: str = "stopping") -> None:
        self.send(STOPPING=1, STATUS=status)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _socket_address(raw: str) -> str | bytes | None:
    if not raw:
        return None
    if raw.startswith("@"):
        return b"\0" + raw[1:].encode()
    if raw.startswith("/"):
        return raw
    return None  # sd_notify(3) ignores anything else (vsock addresses are not for us)


def _watchdog_interval(env: Mapping[str, str]) -> float | None:
    """Seconds between pings: half of WatchdogSec, as sd_watchdog_enabled(3) recommends."""
    usec = env.get("WATCHDOG_USEC")
    pid = env.get("WATCHDOG_PID")
    if not usec:
        return None
    if pid and pid != str(os.getpid()):
        return None  # the watchdog is meant for another process
    try:
        value = int(usec)
    except ValueError:
        return None
    return value / 2_000_000 if value > 0 else None
