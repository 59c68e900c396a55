"""Both simulators and a real ``roomd run`` process, with helpers that speak as users do:
an Outlook user books a room, a Hybrid member books one, an admin approves.

Outlook users act through Graph's HTTP API (the documented recipe for booking a room,
user-post-events.md) with an app token; Hybrid members act through the Hybrid simulator's
control surface, as the Hybrid app would. roomd sees both only over its real clients.
"""

from __future__ import annotations

import contextlib
import ssl
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx

from support.daemon import DaemonProcess
from support.sims import SimWorld, sim_world

T = TypeVar("T")
PREFER = 'outlook.timezone="UTC", IdType="ImmutableId"'
ROOM = "room-4a@contoso.com"
ROOM_ID = "64f0a1b2c3d4e5f6a7b8c901"
APPROVAL_ROOM = "room-4b@contoso.com"
APPROVAL_ROOM_ID = "64f0a1b2c3d4e5f6a7b8c902"
CHECKIN_ROOM = "boardroom@contoso.com"
CHECKIN_ROOM_ID = "64f0a1b2c3d4e5f6a7b8c903"
ADELE = "adelev@contoso.com"
ALEX = "alexw@contoso.com"
MEGAN = "meganb@contoso.com"
PAT = "pat@fabrikam.com"  # a Hybrid member with no mailbox in the tenant


def at(hour: int, minute: int = 0, days: int = 1) -> datetime:
    base = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return base + timedelta(days=days, hours=hour, minutes=minute)


def utc_of(value: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(value["dateTime"][:19]).replace(tzinfo=UTC)


def hybrid_time(value: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(value["dateTime"].replace("Z", "+00:00")).astimezone(UTC)


def wait_for(
    probe: Callable[[], T | None], what: str, timeout: float = 25, every: float = 0.2
) -> T:
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"not seen within {timeout}s: {what} (last: {last!r})")


class SyncWorld:
    """The simulators (``sims``), one daemon, and an Outlook user's HTTP client."""

    def __init__(self, sims: SimWorld, directory: Path) -> None:
        self.sims = sims
        self.directory = directory
        self.daemon: DaemonProcess | None = None
        self._http = httpx.Client(
            base_url=sims.graph.base_url,
            verify=ssl.create_default_context(cafile=str(self._ca_file())),
            headers={"Prefer": PREFER},
            timeout=10,
        )

    def _ca_file(self) -> Path:
        path = self.directory / "test-ca.pem"
        self.sims.ca.write_ca_bundle(path)
        return path

    # --- the daemon ---------------------------------------------------------------------------
    def start(
        self,
        *,
        graph: str = "",
        hybrid: str = "",
        sync: str = "",
        poll_interval: float = 1,
        webhook_secret: str | None = None,
    ) -> DaemonProcess:
        extra = {"webhook_secret": webhook_secret} if webhook_secret else {}
        cfg = self.sims.write_config(self.directory, poll_interval=poll_interval, **extra)
        text = cfg.read_text()
        if graph:
            text = text.replace("[hybrid]", f"{graph}\n\n[hybrid]", 1)
        if hybrid:
            text = text.replace("\n[sync]", f"{hybrid}\n\n[sync]", 1)
        if sync:
            text = text.replace("[sync]\n", f"[sync]\n{sync}\n", 1)
        cfg.write_text(text)
        self.daemon = DaemonProcess(cfg).start()
        self.daemon.wait_log(lambda x: x.get("event") == "started")
        return self.daemon

    def register_webhook(self) -> None:
        """Register the running daemon's receiver with Hybrid, then hand roomd the secret with
        a SIGHUP: the operator's order of events (README "Hybrid webhooks")."""
        import dataclasses
        import signal

        from roomd.compose import hybrid_client_config
        from roomd.config import load_config
        from roomd.hybrid import HybridClient

        daemon = self.daemon
        assert daemon is not None

        async def register() -> str:
            config = hybrid_client_config(load_config(daemon.config))
            admin = dataclasses.replace(
                config, scope=config.scope + " flex.settings.webhooks.create"
            )
            async with HybridClient(admin) as client:
                hook = await client.register_webhook(daemon.url("/hooks/hybrid"))
                return hook.reveal()

        (self.directory / "hybrid-webhook-secret").write_text(self.sims.run(register()) + "\n")
        mark = daemon.mark()
        daemon.signal(signal.SIGHUP)
        daemon.wait_log(lambda x: x.get("event") == "config_reloaded", since=mark)

    def pause(self) -> None:
        """Stop roomd cleanly (SIGTERM): what happens next, happens between two rounds."""
        import signal

        assert self.daemon is not None
        self.daemon.signal(signal.SIGTERM)
        assert self.daemon.wait_exit() == 0

    def resume(self) -> DaemonProcess:
        assert self.daemon is not None
        self.daemon = DaemonProcess(self.daemon.config).start()
        self.daemon.wait_log(lambda x: x.get("event") == "started")
        return self.daemon

    def stop(self) -> None:
        if self.daemon is not None:
            self.daemon.stop()
        self._http.close()

    # --- Outlook, as its users ----------------------------------------------------------------
    def _auth(self) -> dict[str, str]:
        token = self.sims.call(lambda: self.sims.graph.control.token())
        return {"Authorization": f"Bearer {token}"}

    def book(
        self,
        organizer: str = ADELE,
        start: datetime | None = None,
        *,
        minutes: int = 60,
        subject: str = "Quarterly planning",
        room: str = ROOM,
        attendees: tuple[str, ...] = (),
    ) -> dict[str, Any]:
        """The documented recipe: the room as location and as a resource attendee."""
        start = start or at(9)
        body: dict[str, Any] = {
            "subject": subject,
            "body": {"contentType": "text", "content": "Agenda"},
            "start": {"dateTime": start.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
            "end": {
                "dateTime": (start + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S"),
                "timeZone": "UTC",
            },
            "location": {"displayName": room, "locationEmailAddress": room},
            "attendees": [{"emailAddress": {"address": room}, "type": "resource"}]
            + [{"emailAddress": {"address": a}, "type": "required"} for a in attendees],
        }
        r = self._http.post(f"/users/{organizer}/events", json=body, headers=self._auth())
        assert r.status_code == 201, r.text
        return dict(r.json())

    def book_series(
        self,
        organizer: str = ADELE,
        start: datetime | None = None,
        *,
        minutes: int = 60,
        subject: str = "Weekly sync",
        room: str = ROOM,
        zone: str = "UTC",
        pattern: dict[str, Any] | None = None,
        count: int = 20,
        attendees: tuple[str, ...] = (),
    ) -> dict[str, Any]:
        """A recurring meeting (event-recurring-create-request.json's shape): weekly on the
        start's weekday, ``count`` occurrences; ``start`` is wall time in ``zone``."""
        start = start or at(9)
        end = start + timedelta(minutes=minutes)
        day = start.strftime("%A").lower()
        body: dict[str, Any] = {
            "subject": subject,
            "start": {"dateTime": start.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": zone},
            "end": {"dateTime": end.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": zone},
            "location": {"displayName": room, "locationEmailAddress": room},
            "attendees": [{"emailAddress": {"address": room}, "type": "resource"}]
            + [{"emailAddress": {"address": a}, "type": "required"} for a in attendees],
            "recurrence": {
                "pattern": pattern
                or {
                    "type": "weekly",
                    "interval": 1,
                    "daysOfWeek": [day],
                    "firstDayOfWeek": "monday",
                },
                "range": {
                    "type": "numbered",
                    "startDate": start.strftime("%Y-%m-%d"),
                    "numberOfOccurrences": count,
                    "recurrenceTimeZone": zone,
                },
            },
        }
        r = self._http.post(f"/users/{organizer}/events", json=body, headers=self._auth())
        assert r.status_code == 201, r.text
        return dict(r.json())

    def instances(
        self, mailbox: str, master_id: str, start: datetime, end: datetime
    ) -> list[dict[str, Any]]:
        r = self._http.get(
            f"/users/{mailbox}/events/{master_id}/instances",
            params={"startDateTime": start.isoformat(), "endDateTime": end.isoformat()},
            headers=self._auth(),
        )
        assert r.status_code == 200, r.text
        return list(r.json()["value"])

    def patch(self, organizer: str, event_id: str, **changes: Any) -> dict[str, Any]:
        r = self._http.patch(
            f"/users/{organizer}/events/{event_id}", json=changes, headers=self._auth()
        )
        assert r.status_code == 200, r.text
        return dict(r.json())

    def move(self, organizer: str, event_id: str, start: datetime, minutes: int = 60) -> None:
        self.patch(
            organizer,
            event_id,
            start={"dateTime": start.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
            end={
                "dateTime": (start + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S"),
                "timeZone": "UTC",
            },
        )

    def cancel(self, organizer: str, event_id: str) -> None:
        r = self._http.post(
            f"/users/{organizer}/events/{event_id}/cancel",
            json={"comment": "cancelled"},
            headers=self._auth(),
        )
        assert r.status_code == 202, r.text

    def delete(self, mailbox: str, event_id: str) -> None:
        r = self._http.delete(f"/users/{mailbox}/events/{event_id}", headers=self._auth())
        assert r.status_code == 204, r.text

    def events(self, mailbox: str) -> list[dict[str, Any]]:
        return self.sims.call(lambda: self.sims.graph.control.events(mailbox))

    def live_events(self, mailbox: str) -> list[dict[str, Any]]:
        return [e for e in self.events(mailbox) if not e.get("isCancelled")]

    def copy_of(self, mailbox: str, ical_uid: str) -> dict[str, Any] | None:
        return next((e for e in self.events(mailbox) if e.get("iCalUId") == ical_uid), None)

    def corrupt_room_copy(self, ical_uid: str, mutate: Callable[[Any], None]) -> None:
        """Edit the room's stored copy behind Graph's back (bad data a test needs) and record
        it as a change, so the next delta round returns it."""

        def go() -> None:
            sim = self.sims.graph
            calendar = sim.exchange.calendar(sim.directory.find(ROOM))
            event = next(e for e in calendar.events.values() if e.ical_uid == ical_uid)
            mutate(event)
            calendar.touch(event, sim.exchange.clock.now())

        self.sims.call(go)

    # --- Hybrid, as its members and admins ----------------------------------------------------
    @property
    def hybrid(self) -> Any:
        return self.sims.hybrid.control

    def hybrid_call(self, fn: Callable[[], T]) -> T:
        return self.sims.call(fn)

    def bookings(self, resource_id: str = ROOM_ID) -> list[dict[str, Any]]:
        return self.sims.call(lambda: self.hybrid.bookings(resource_id))

    def live_bookings(self, resource_id: str = ROOM_ID) -> list[dict[str, Any]]:
        return [b for b in self.bookings(resource_id) if not b.get("canceled")]

    def booking(self, booking_id: str) -> dict[str, Any]:
        return self.sims.call(lambda: self.hybrid.booking(booking_id))

    def hybrid_book(
        self,
        member: str = ADELE,
        start: datetime | None = None,
        *,
        minutes: int = 60,
        resource_id: str = ROOM_ID,
        summary: str = "Design review",
        **extra: Any,
    ) -> dict[str, Any]:
        start = start or at(14)
        end = start + timedelta(minutes=minutes)
        return self.sims.call(
            lambda: self.hybrid.create_booking(
                resource_id, start, end, member=member, summary=summary, **extra
            )
        )

    def corrupt_booking(self, booking_id: str, mutate: Callable[[Any], None]) -> None:
        """Edit a stored Hybrid booking behind the API's validation, as a buggy server might."""

        def go() -> None:
            store = self.sims.hybrid.store
            booking = store.booking(booking_id)
            mutate(booking)
            store.touch(booking, actor="test")

        self.sims.call(go)

    def member_id(self, email: str) -> str:
        return str(self.sims.call(lambda: self.hybrid.member_id(email)))

    def audit(self, booking: str) -> list[str]:
        import sqlite3

        db = sqlite3.connect(self.directory / "roomd.sqlite3")
        try:
            rows = db.execute(
                "SELECT action, reason FROM audit WHERE booking = ? ORDER BY id", (booking,)
            ).fetchall()
        finally:
            db.close()
        return [f"{a}: {r}" for a, r in rows]


@contextlib.contextmanager
def sync_world(tmp_path: Path) -> Iterator[SyncWorld]:
    """Both simulators and (once ``world.start()`` is called) a real roomd daemon, stopped at
    the end."""
    with sim_world() as sims:
        w = SyncWorld(sims, tmp_path)
        try:
            yield w
        finally:
            w.stop()
