"""A running Graph simulator and a real roomd Graph client pointed at it over HTTPS.

Everything that depends on the simulator's control surface (fault injection, token revocation,
delta token expiry, concurrency readings) goes through the small helpers here, so the tests read
as the product's promises.
"""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog

from roomd.graph import GraphClient, GraphClientConfig
from roomd.observe import REGISTRY, configure_logging
from roomd.sim.graph import GraphSimulator

ROOM = "room-4a@contoso.com"
ROOM_B = "room-4b@contoso.com"
BOARDROOM = "boardroom@contoso.com"
HARBOUR = "harbour@contoso.com"
ORGANIZER = "adelev@contoso.com"


@pytest.fixture
async def sim() -> AsyncIterator[GraphSimulator]:
    simulator = GraphSimulator()
    await simulator.start()
    try:
        yield simulator
    finally:
        await simulator.stop()


@pytest.fixture
def ca_bundle(sim: GraphSimulator, tmp_path: Path) -> Path:
    return Path(sim.ca.write_ca_bundle(tmp_path / "ca.pem"))


def config_for(sim: GraphSimulator, ca_bundle: Path, **overrides: Any) -> GraphClientConfig:
    """Fast retries for tests; everything else as in production."""
    values: dict[str, Any] = {
        "tenant_id": sim.tenant_id,
        "client_id": sim.client_id,
        "client_secret": sim.client_secret,
        "authority_host": sim.authority_host,
        "base_url": sim.base_url,
        "ca_bundle": ca_bundle,
        "retry_wait_initial": 0.01,
        "retry_wait_max": 0.05,
        "retry_wait_jitter": 0.01,
        "retry_timeout": 20.0,
        "max_concurrent": 16,
    }
    values.update(overrides)
    return GraphClientConfig(**values)


@pytest.fixture
async def graph(sim: GraphSimulator, ca_bundle: Path) -> AsyncIterator[GraphClient]:
    async with GraphClient(config_for(sim, ca_bundle)) as client:
        yield client


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    """Everything roomd logs during the test, as JSON lines."""
    stream = io.StringIO()
    configure_logging("debug", stream=stream)
    try:
        yield stream
    finally:
        structlog.reset_defaults()


def metric(name: str, **labels: str) -> float:
    value = REGISTRY.get_sample_value(name, labels)
    return 0.0 if value is None else value


def event_body(
    subject: str,
    start: datetime,
    minutes: int = 30,
    room: str | None = ROOM,
) -> dict[str, Any]:
    """An event as roomd writes one: UTC times, the room as a resource attendee."""
    end = start + timedelta(minutes=minutes)
    body: dict[str, Any] = {
        "subject": subject,
        "start": {"dateTime": start.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
        "end": {"dateTime": end.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
    }
    if room is not None:
        body["location"] = {"displayName": room, "locationEmailAddress": room}
        body["attendees"] = [{"emailAddress": {"address": room}, "type": "resource"}]
    return body


def tomorrow_at(hour: int, minute: int = 0) -> datetime:
    day = datetime.now(UTC).date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def window() -> tuple[datetime, datetime]:
    now = datetime.now(UTC).replace(microsecond=0)
    return now - timedelta(days=1), now + timedelta(days=30)


def dump(value: Any) -> str:
    return json.dumps(value, default=str)


@pytest.fixture(autouse=True)
def no_thread_left_behind() -> Iterator[None]:
    """Closing the client stops msal's worker thread (the brief: leave no thread behind)."""
    import threading

    before = {t.ident for t in threading.enumerate()}
    yield
    leftover = [
        t.name
        for t in threading.enumerate()
        if t.ident not in before and t.name.startswith("roomd-msal") and t.is_alive()
    ]
    assert leftover == []


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any attempt to resolve or reach a non-loopback address: msal must do no instance
    discovery at login.microsoftonline.com and no region probe at 169.254.169.254."""
    import ipaddress
    import socket

    def check_host(host: object) -> None:
        if isinstance(host, bytes):
            host = host.decode()
        if host in ("localhost", None):
            return
        try:
            loopback = ipaddress.ip_address(str(host)).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise AssertionError(f"test tried to reach non-loopback host {host!r}")

    real_getaddrinfo = socket.getaddrinfo
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        check_host(host)
        return real_getaddrinfo(host, *args, **kwargs)

    def connect(self: socket.socket, address: Any) -> Any:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            check_host(address[0])
        return real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> Any:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            check_host(address[0])
        return real_connect_ex(self, address)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
