"""The composition root: builds roomd's parts, runs them on one event loop, handles signals.

Everything with a lifetime lives here: the state store, the HTTP server, the scheduler that starts
one round per room every poll interval, systemd notifications, and the reload and shutdown paths.
What a round *does* is not decided here: a :class:`RoundRunner` does it, so the daemon can be
tested with the simulators and grows with the sync engine without changing shape.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import signal
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from roomd import observe, utc
from roomd.config import ConfigError, RoomSettings, Settings, load_config
from roomd.hybrid import WebhookEvent, hybrid_webhook_routes
from roomd.sdnotify import Notifier
from roomd.store import Store, StoreError, open_store
from roomd.web import WebServer


@dataclass
class RoundStats:
    """What one room's round did; the fields of the canonical ``room_round`` log line.

    ``inbound`` counts changes that flow from Outlook towards Hybrid (read from the room's
    calendarView delta), ``outbound`` those that flow from Hybrid towards Outlook (read from the
    Hybrid listing).
    """

    inbound: int = 0
    outbound: int = 0
    conflicts: int = 0
    delta_pages: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class RoundRunner(Protocol):
    """Does one room's sync round. The daemon owns scheduling, locking, recording and logging."""

    async def run_round(self, room: RoomSettings) -> RoundStats: ...

    def reconfigure(self, settings: Settings) -> None:
        """Take new settings that keep the same connections (rooms, sync tuning)."""

    async def aclose(self) -> None: ...


RunnerFactory = Callable[[Settings, Store], Awaitable[RoundRunner]]


class Daemon:
    """One roomd process. ``await Daemon(...).run()`` returns the process exit code."""

    def __init__(
        self,
        settings: Settings,
        *,
        config_path: Path,
        runner_factory: RunnerFactory,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self.config_path = config_path
        self._runner_factory = runner_factory
        self._notifier = Notifier(env)
        self._log = observe.get_logger()
        self._stop = asyncio.Event()
        self._reload_requested = asyncio.Event()
        self._room_locks: dict[str, asyncio.Lock] = {}
        self._inflight: set[asyncio.Task[None]] = set()
        self._accepting = True
        self.store: Store | None = None
        self.web: WebServer | None = None
        self._runner: RoundRunner | None = None
        self._scheduler: AsyncIOScheduler | None = None
        self._lock_fd: int | None = None
        # rooms with a successful round in this process: a success recorded by an earlier run
        # says nothing about whether this one can reach Graph and Hybrid
        self._synced: set[str] = set()

    # --- lifecycle -----------------------------------------------------------------------------
    async def run(self) -> int:
        """Start, serve until SIGTERM/SIGINT, stop within the grace period; the exit code."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        loop.add_signal_handler(signal.SIGHUP, self._reload_requested.set)
        try:
            await self._start()
            await self._serve()
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(sig)
            await self._shutdown()
        return 0

    def request_stop(self) -> None:
        self._stop.set()

    async def _start(self) -> None:
        s = self.settings
        self._lock_fd = _lock_state(s.state.path)
        self.store = await open_store(s.state.path)
        self._runner = await self._runner_factory(s, self.store)
        self.web = WebServer(self, self._extra_routes())
        await self.web.start(s.http.listen, s.http.port)
        self._scheduler = AsyncIOScheduler(event_loop=asyncio.get_running_loop())
        self._scheduler.start()
        self._schedule_rooms(s.rooms, s.sync.poll_interval_seconds)
        observe.ROOMS_CONFIGURED.set(len(s.rooms))
        self._log.info(
            "started",
            rooms=len(s.rooms),
            http=f"{s.http.listen}:{self.web.port}",
            state=str(s.state.path),
            config=str(self.config_path),
        )
        self._notifier.ready(f"syncing {len(s.rooms)} rooms")

    def _extra_routes(self) -> list[Any]:
        """Webhook receivers; mounted only when their secret is configured."""
        secret = self.settings.hybrid.webhook_secret
        if secret is None:
            return []
        return hybrid_webhook_routes(secret, self._on_hybrid_webhook)

    def _on_hybrid_webhook(self, event: WebhookEvent) -> None:
        """The fast path: a verified Hybrid change brings its room's next round forward.

        The round reads the Hybrid listing, which stays the truth; a lost webhook only means
        the change waits for the next scheduled round.
        """
        room = self.settings.room_by_hybrid_id(event.booking.resource_id)
        if room is None or self._scheduler is None or not self._accepting:
            return
        job = self._scheduler.get_job(room.mailbox)
        if job is not None:
            job.modify(next_run_time=utc.now())

    async def _serve(self) -> None:
        watchdog = self._notifier.watchdog_interval
        while not self._stop.is_set():
            stop = asyncio.ensure_future(self._stop.wait())
            reload = asyncio.ensure_future(self._reload_requested.wait())
            _, pending = await asyncio.wait(
                {stop, reload}, timeout=watchdog, return_when=asyncio.FIRST_COMPLETED
            )
            for task in pending:
                task.cancel()
            # The ping comes from this loop, so a wedged loop stops the pings and systemd
            # restarts us: that is the point of WatchdogSec.
            if watchdog is not None:
                self._notifier.watchdog()
            if self._reload_requested.is_set() and not self._stop.is_set():
                self._reload_requested.clear()
                await self.reload()

    async def _shutdown(self) -> None:
        """Stop taking work, let in-flight rounds finish within the grace period, close down."""
        self._accepting = False
        self._notifier.stopping("stopping: finishing in-flight rounds")
        self._log.info("stopping", inflight=len(self._inflight))
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        if self._inflight:
            grace = self.settings.sync.shutdown_grace_seconds
            _, pending = await asyncio.wait(set(self._inflight), timeout=grace)
            for task in pending:
                # Safe to abandon: a round commits in single transactions, and what was not
                # committed is re-read next time (design.md invariant 2).
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=2)
                self._log.warning("abandoned_rounds", rooms=len(pending))
        if self.web is not None:
            await self.web.stop()
        if self._runner is not None:
            await self._runner.aclose()
        if self.store is not None:
            await self.store.close()
        self._notifier.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None
        self._log.info("stopped")

    # --- scheduling ----------------------------------------------------------------------------
    def _schedule_rooms(self, rooms: tuple[RoomSettings, ...], interval: float) -> None:
        assert self._scheduler is not None
        for job in self._scheduler.get_jobs():
            job.remove()
        for room in rooms:
            self._scheduler.add_job(
                self._round_job,
                "interval",
                seconds=interval,
                args=[room.mailbox],
                id=room.mailbox,
                next_run_time=utc.now(),
                max_instances=1,
                coalesce=True,
                misfire_grace_time=None,
            )

    async def _round_job(self, mailbox: str) -> None:
        room = self.settings.room_by_mailbox(mailbox)
        if room is None or not self._accepting:
            return
        task = asyncio.create_task(self.run_round(room), name=f"round:{mailbox}")
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)
        # Shielded: the scheduler cancels its job futures at shutdown, but a running round gets
        # the grace period from _shutdown instead.
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(task)

    def room_lock(self, mailbox: str) -> asyncio.Lock:
        """Per room, one thing at a time (design.md invariant 8)."""
        return self._room_locks.setdefault(mailbox.lower(), asyncio.Lock())

    async def run_round(self, room: RoomSettings) -> None:
        """Run one round for a room, record its outcome in the store, metrics and the log."""
        assert self._runner is not None and self.store is not None
        async with self.room_lock(room.mailbox):
            started = time.monotonic()
            error: str | None = None
            stats = RoundStats()
            try:
                stats = await self._runner.run_round(room)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure of one room must not stop the others
                error = describe_error(exc)
            duration = time.monotonic() - started
            outcome = "ok" if error is None else "error"
            async with self.store.write(room.mailbox.lower()) as tx:
                await tx.record_round(ok=error is None, error=error, at=utc.now())
            observe.ROUNDS.labels(room=room.mailbox, outcome=outcome).inc()
            observe.ROUND_DURATION.labels(room=room.mailbox).observe(duration)
            if error is None:
                self._synced.add(room.mailbox)
                observe.LAST_SUCCESS.labels(room=room.mailbox).set(time.time())
                changes = observe.CHANGES
                changes.labels(room=room.mailbox, direction="outlook_to_hybrid").inc(stats.inbound)
                changes.labels(room=room.mailbox, direction="hybrid_to_outlook").inc(stats.outbound)
            await self._export_outbox_gauges()
            log = self._log.bind(room=room.mailbox)
            fields: dict[str, Any] = {
                "inbound": stats.inbound,
                "outbound": stats.outbound,
                "conflicts": stats.conflicts,
                "delta_pages": stats.delta_pages,
                "duration_s": round(duration, 3),
                "outcome": outcome,
                **stats.extra,
            }
            if error is None:
                log.info("room_round", **fields)
            else:
                log.warning("room_round", error=error, **fields)

    async def _export_outbox_gauges(self) -> None:
        assert self.store is not None
        now = utc.now()
        configured = {r.mailbox.lower(): r.mailbox for r in self.settings.rooms}
        for st in await self.store.room_statuses():
            label = configured.get(st.room)
            if label is None:
                continue
            observe.OUTBOX_DEPTH.labels(room=label).set(st.outbox_depth)
            observe.OUTBOX_OLDEST_AGE.labels(room=label).set(
                utc.age_seconds(st.oldest_pending_at, now) or 0.0
            )

    # --- reload --------------------------------------------------------------------------------
    async def reload(self) -> bool:
        """Re-read the config (SIGHUP); keep the running one if the new one is invalid."""
        try:
            new = await asyncio.to_thread(load_config, self.config_path)
        except ConfigError as exc:
            observe.CONFIG_RELOADS.labels(outcome="error").inc()
            for problem in exc.problems:
                self._log.error("config_reload_refused", problem=problem)
            self._notifier.status("config reload refused; running with the previous config")
            return False
        old = self.settings
        for what, before, after in (
            ("http", old.http, new.http),
            ("state", old.state, new.state),
        ):
            if before != after:
                self._log.warning("config_change_needs_restart", section=what)
        # Keep what cannot change live; everything else takes effect now.
        self.settings = _merge_live(new, old)
        await self._apply_room_changes(old, self.settings)
        observe.CONFIG_RELOADS.labels(outcome="ok").inc()
        observe.ROOMS_CONFIGURED.set(len(self.settings.rooms))
        observe.configure_logging(self.settings.log.level)
        self._log.info("config_reloaded", rooms=len(self.settings.rooms))
        self._notifier.status(f"syncing {len(self.settings.rooms)} rooms")
        return True

    async def _apply_room_changes(self, old: Settings, new: Settings) -> None:
        before = {r.mailbox.lower(): r for r in old.rooms}
        after = {r.mailbox.lower(): r for r in new.rooms}
        added = sorted(after.keys() - before.keys())
        removed = sorted(before.keys() - after.keys())
        changed = sorted(k for k in after.keys() & before.keys() if after[k] != before[k])
        if added or removed or changed:
            self._log.info("rooms_changed", added=added, removed=removed, changed=changed)
        self._synced -= set(removed) | set(changed)
        assert self.store is not None
        if self._runner is None or (old.graph, old.hybrid) != (new.graph, new.hybrid):
            # new endpoints or credentials: new clients (and a new token)
            if self._runner is not None:
                await self._runner.aclose()
            self._runner = await self._runner_factory(new, self.store)
        else:
            self._runner.reconfigure(new)
        self._schedule_rooms(new.rooms, new.sync.poll_interval_seconds)

    # --- readiness -----------------------------------------------------------------------------
    async def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Ready when the database takes writes and every room had a recent successful round."""
        assert self.store is not None
        detail: dict[str, Any] = {"rooms": {}}
        ready = True
        try:
            await self.store.check_writable()
            detail["database"] = "ok"
        except Exception as exc:
            detail["database"] = describe_error(exc)
            ready = False
        statuses = {st.room: st for st in await self.store.room_statuses()}
        stale_after = self.settings.sync.stale_after_seconds
        now = utc.now()
        for room in self.settings.rooms:
            st = statuses.get(room.mailbox.lower())
            last_ok = st.last_success_at if st is not None else None
            age = utc.age_seconds(last_ok, now)
            entry: dict[str, Any] = {
                "last_success_at": utc.iso_z(last_ok),
                "last_error": st.last_error if st is not None else None,
            }
            if age is None or room.mailbox not in self._synced:
                entry["state"] = "waiting_for_first_round"
                ready = False
            elif age > stale_after:
                entry["state"] = "stale"
                entry["stale_for_s"] = round(age - stale_after, 1)
                ready = False
            else:
                entry["state"] = "ok"
            detail["rooms"][room.mailbox] = entry
        detail["ready"] = ready
        return ready, detail


def _lock_state(db_path: Path) -> int:
    """One daemon per state database: two would both write the same rooms' delta links and
    outbox. An flock on a sidecar file is released by the kernel however the process ends."""
    lock_path = db_path.with_name(db_path.name + ".lock")
    if not db_path.parent.is_dir():
        raise StoreError(db_path, f"directory {db_path.parent} does not exist")
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise StoreError(db_path, f"cannot create {lock_path} ({exc.strerror})") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise StoreError(db_path, "another roomd is already running with this database") from None
    return fd


def describe_error(exc: BaseException) -> str:
    """A one-line description for logs and the state DB; the clients keep secrets out of it."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _merge_live(new: Settings, old: Settings) -> Settings:
    return new.model_copy(update={"http": old.http, "state": old.state})
