"""A running Graph simulator and a real roomd Graph client pointed at it over HTTPS.

Everything that depends on the simulator's control surface (fault injection, token revocation,
delta token expiry, concurrency readings) goes through the small helpers in ``control.py``, so the
tests read as the product's promises. The simulator, the client configuration and the demo
tenant's names come from ``support.graph_world``, shared with the simulator's own tests.
"""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog
from support.graph_world import ADELE as ORGANIZER
from support.graph_world import (
    BOARDROOM,
    HARBOUR,
    ROOM,
    ROOM_B,
    config_for,
    running_graph_sim,
    tomorrow_at,
    window,
)
from support.loopback import forbid_non_loopback

from roomd.graph import GraphClient
from roomd.observe import REGISTRY, configure_logging
from roomd.sim.graph import GraphSimulator

__all__ = [
    "BOARDROOM",
    "HARBOUR",
    "ORGANIZER",
    "ROOM",
    "ROOM_B",
    "config_for",
    "dump",
    "event_body",
    "metric",
    "tomorrow_at",
    "window",
]


@pytest.fixture
async def sim() -> AsyncIterator[GraphSimulator]:
    async with running_graph_sim() as simulator:
        yield simulator


@pytest.fixture
def ca_bundle(sim: GraphSimulator, tmp_path: Path) -> Path:
    return Path(sim.ca.write_ca_bundle(tmp_path / "ca.pem"))


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
    """msal must do no instance discovery at login.microsoftonline.com and no region probe at
    169.254.169.254: every test here fails if it resolves or reaches a non-loopback address."""
    forbid_non_loopback(monkeypatch)
