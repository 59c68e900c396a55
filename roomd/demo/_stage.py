"""The demo's world: both simulators, a real roomd daemon between them, and people's hands.

Everything runs on one event loop in this process, on loopback. roomd gets a config written
exactly as ``roomd sim`` writes one (secrets in files beside it, the simulators' CA as
``ca_bundle``) and a Hybrid webhook registered the way an operator registers it (``POST
/webhooks``, the secret into ``webhook_secret_file``), so Hybrid changes reach it by webhook and
Outlook changes by its delta poll. People act as they would: an Outlook user through Graph's HTTP
API (the app token may write any mailbox, as an application permission can), a Hybrid member or
administrator through the Hybrid simulator's control surface (what the Hybrid app does). roomd
sees both sides only through its real clients.
"""

from __future__ import annotations

import asyncio
import socket
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from roomd.compose import build_daemon
from roomd.config import Settings, load_config
from roomd.daemon import Daemon
from roomd.sim.cli import register_roomd_webhook
from roomd.sim.graph import GraphSimulator
from roomd.sim.hybrid import HybridSimulator
from roomd.sim.roomd_config import write_roomd_config
from roomd.sim.tenant import Tenant, default_tenant
from roomd.sim.tls import LocalCA

POLL_INTERVAL_S = 1
"""roomd's delta poll in the demo: the fastest the config allows, so an Outlook change reaches
Hybrid within about a second (a production config polls every 30 s)."""
READY_TIMEOUT_S = 30.0
DEMO_SYNC_KEYS = (
    "# roomd demo: /readyz stays 200 on a busy laptop (the default is five poll intervals),\n"
    "# and the demo ends quickly even when a step failed with a round still retrying\n"
    "stale_after_seconds = 30\n"
    "shutdown_grace_seconds = 2"
)
NOSHOW_SWEEP_S = 30.0
"""The Hybrid app's own no-show sweep, for whoever pokes at ``--keep-running``; the story runs
the sweep itself."""
PREFER = 'outlook.timezone="UTC", IdType="ImmutableId"'


class DaemonStopped(Exception):
    """roomd stopped while the demo waited for it (Ctrl-C, SIGTERM, or a failure)."""


@dataclass
class Urls:
    roomd: str
    graph: str
    graph_control: str
    hybrid: str
    hybrid_control: str


class Stage:
    """Start with ``await Stage.open(directory)``; ``await stage.close()`` stops everything."""

    def __init__(self, directory: Path, tenant: Tenant) -> None:
        self.directory = directory
        self.tenant = tenant
        self.ca = LocalCA()
        self.graph = GraphSimulator(tenant, ca=self.ca)
        self.hybrid = HybridSimulator(tenant, ca=self.ca, noshow_sweep_seconds=NOSHOW_SWEEP_S)
        self.config_path = directory / "roomd.toml"
        self.settings: Settings | None = None
        self.daemon: Daemon | None = None
        self._daemon_task: asyncio.Task[int] | None = None
        self._http: httpx.AsyncClient | None = None
        self.outlook = Outlook(self)

    @classmethod
    async def open(cls, directory: Path) -> Stage:
        stage = cls(directory, default_tenant())
        try:
            await stage._start()
        except BaseException:
            await stage.close()
            raise
        return stage

    async def _start(self) -> None:
        await self.graph.start()
        await self.hybrid.start()
        port = _free_port()
        secret = await register_roomd_webhook(
            self.hybrid, self.ca, f"http://127.0.0.1:{port}/hooks/hybrid"
        )
        write_roomd_config(
            self.config_path,
            tenant=self.tenant,
            ca=self.ca,
            graph=self.graph,
            hybrid=self.hybrid,
            webhook_secret=secret,
            http_port=port,
            poll_interval_seconds=POLL_INTERVAL_S,
        )
        text = self.config_path.read_text()
        self.config_path.write_text(text.replace("[sync]\n", f"[sync]\n{DEMO_SYNC_KEYS}\n", 1))
        self.settings = await asyncio.to_thread(load_config, self.config_path)
        self._http = httpx.AsyncClient(
            base_url=self.graph.base_url,
            verify=self.ca.client_context(),
            headers={"Prefer": PREFER},
            timeout=10,
        )
        self.daemon = build_daemon(self.settings, config_path=self.config_path)
        self._daemon_task = asyncio.create_task(self.daemon.run())

    async def wait_ready(self) -> float:
        """Seconds until every room completed its first round (``/readyz`` would say 200)."""
        started = time.monotonic()
        assert self.daemon is not None
        while True:
            self.check_running()
            if self.daemon.store is not None and self.daemon.web is not None:
                ready, _ = await self.daemon.readiness()
                if ready:
                    return time.monotonic() - started
            if time.monotonic() - started > READY_TIMEOUT_S:
                raise TimeoutError(f"roomd's rooms were not ready within {READY_TIMEOUT_S:g} s")
            await asyncio.sleep(0.05)

    @property
    def running(self) -> bool:
        return self._daemon_task is not None and not self._daemon_task.done()

    def check_running(self) -> None:
        task = self._daemon_task
        if task is not None and task.done():
            error = task.exception() if not task.cancelled() else None
            if error is not None:
                raise DaemonStopped(f"roomd failed: {type(error).__name__}: {error}") from error
            raise DaemonStopped("roomd stopped (SIGINT or SIGTERM) before the story ended")

    async def until_stopped(self) -> None:
        """Wait for roomd to stop: its own SIGINT/SIGTERM handlers end it."""
        if self._daemon_task is not None:
            await asyncio.shield(self._daemon_task)

    async def close(self) -> int:
        """Stop roomd (as SIGTERM would), then the simulators; roomd's exit code."""
        code = 0
        if self._daemon_task is not None and self.daemon is not None:
            if not self._daemon_task.done():  # a second request would abandon its rounds
                self.daemon.request_stop()
            try:
                code = await self._daemon_task
            except Exception:
                code = 1
        if self._http is not None:
            await self._http.aclose()
        await self.hybrid.stop()
        await self.graph.stop()
        return code

    # --- what a person would look at -----------------------------------------------------------
    @property
    def urls(self) -> Urls:
        assert self.settings is not None
        root = f"http://127.0.0.1:{self.settings.http.port}"
        return Urls(
            roomd=root,
            graph=self.graph.base_url,
            graph_control=f"{self.graph.authority_host}/_sim/state",
            hybrid=self.hybrid.api_url,
            hybrid_control=f"{self.hybrid.base_url}/_sim/bookings",
        )

    async def readyz(self) -> dict[str, Any]:
        assert self._http is not None
        resp = await self._http.get(f"{self.urls.roomd}/readyz")
        return dict(resp.json())

    async def audit(self, room: str, booking: str) -> list[str]:
        """roomd's audit trail for one booking: the reasons it gives for what it did."""
        assert self.daemon is not None and self.daemon.store is not None
        entries = await self.daemon.store.audit_for(room, booking)
        return [f"{e.action}: {e.reason}" for e in entries]

    def name(self, email: str) -> str:
        for person in self.tenant.people:
            if person.email == email:
                return person.display_name
        for room in self.tenant.rooms:
            if room.email == email:
                return room.display_name
        return email

    # --- Hybrid, as its members and administrators ---------------------------------------------
    @property
    def hybrid_app(self) -> Any:
        return self.hybrid.control

    def room_id(self, mailbox: str) -> str:
        return next(r.hybrid_id for r in self.tenant.rooms if r.email == mailbox)

    def member_id(self, email: str) -> str:
        return str(self.hybrid.control.member_id(email))

    def bookings(self, room: str) -> list[dict[str, Any]]:
        return list(self.hybrid.control.bookings(self.room_id(room)))


class Outlook:
    """Outlook users, through Graph's HTTP API, and a look into any mailbox."""

    def __init__(self, stage: Stage) -> None:
        self._stage = stage

    async def _request(
        self, method: str, path: str, expect: int, body: dict[str, Any] | None = None, **kw: Any
    ) -> dict[str, Any]:
        http = self._stage._http
        assert http is not None
        token = self._stage.graph.control.token()
        resp = await http.request(
            method, path, json=body, headers={"Authorization": f"Bearer {token}"}, **kw
        )
        if resp.status_code != expect:
            raise RuntimeError(f"Graph {method} {path}: {resp.status_code} {resp.text[:300]}")
        return dict(resp.json()) if resp.content else {}

    async def book(
        self,
        organizer: str,
        room: str,
        subject: str,
        start: datetime,
        *,
        minutes: int = 60,
        attendees: tuple[str, ...] = (),
        weekly_count: int | None = None,
    ) -> dict[str, Any]:
        """The documented recipe: the room as location and as a resource attendee; weekly on
        the start's weekday when ``weekly_count`` is given."""
        end = start + timedelta(minutes=minutes)
        body: dict[str, Any] = {
            "subject": subject,
            "body": {"contentType": "text", "content": "Agenda to follow."},
            "start": {"dateTime": _wall(start), "timeZone": "UTC"},
            "end": {"dateTime": _wall(end), "timeZone": "UTC"},
            "location": {"displayName": self._stage.name(room), "locationEmailAddress": room},
            "attendees": [{"emailAddress": {"address": room}, "type": "resource"}]
            + [{"emailAddress": {"address": a}, "type": "required"} for a in attendees],
        }
        if weekly_count is not None:
            body["recurrence"] = {
                "pattern": {
                    "type": "weekly",
                    "interval": 1,
                    "daysOfWeek": [start.strftime("%A").lower()],
                    "firstDayOfWeek": "monday",
                },
                "range": {
                    "type": "numbered",
                    "startDate": start.strftime("%Y-%m-%d"),
                    "numberOfOccurrences": weekly_count,
                    "recurrenceTimeZone": "UTC",
                },
            }
        return await self._request("POST", f"/users/{organizer}/events", 201, body)

    async def instances(
        self, mailbox: str, master_id: str, start: datetime, end: datetime
    ) -> list[dict[str, Any]]:
        params = {"startDateTime": start.isoformat(), "endDateTime": end.isoformat()}
        found = await self._request(
            "GET", f"/users/{mailbox}/events/{master_id}/instances", 200, params=params
        )
        return list(found["value"])

    async def move(self, mailbox: str, event_id: str, start: datetime, minutes: int = 60) -> None:
        body = {
            "start": {"dateTime": _wall(start), "timeZone": "UTC"},
            "end": {"dateTime": _wall(start + timedelta(minutes=minutes)), "timeZone": "UTC"},
        }
        await self._request("PATCH", f"/users/{mailbox}/events/{event_id}", 200, body)

    async def cancel(self, mailbox: str, event_id: str) -> None:
        body = {"comment": "Cancelled"}
        await self._request("POST", f"/users/{mailbox}/events/{event_id}/cancel", 202, body)

    async def delete(self, mailbox: str, event_id: str) -> None:
        await self._request("DELETE", f"/users/{mailbox}/events/{event_id}", 204)

    # --- looking into mailboxes (the simulator's inspection surface) ---------------------------
    def events(self, mailbox: str) -> list[dict[str, Any]]:
        return list(self._stage.graph.control.events(mailbox))

    def copy_of(self, mailbox: str, ical_uid: str) -> dict[str, Any] | None:
        return next((e for e in self.events(mailbox) if e.get("iCalUId") == ical_uid), None)

    def room_answer(self, organizer: str, ical_uid: str, room: str) -> str | None:
        """The room's response as the organizer's copy shows it (accepted, declined, ...)."""
        copy = self.copy_of(organizer, ical_uid)
        for attendee in (copy or {}).get("attendees") or []:
            if attendee["emailAddress"]["address"].lower() == room:
                return str(attendee["status"]["response"])
        return None


def _wall(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S")


def _free_port() -> int:
    """A free loopback port for roomd's HTTP server, known before roomd starts: the Hybrid
    webhook must be registered (and its secret written into the config) first."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
