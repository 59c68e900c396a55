"""The composition root: builds roomd's parts, runs them on one event loop, handles signals.

Everything with a lifetime lives here: the state store, the HTTP server, the ticker that reads
every room once per poll interval (rooms due together are read together, and only a room that
shows something gets a round of its own), systemd notifications, and the reload and shutdown
paths.
What a round *does* is not decided here: a :class:`RoundRunner` does it, so the daemon can be
tested with the simulators and grows with the sync engine without changing shape.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import os
import signal
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from roomd import heap, observe, refusals, ticks, utc
from roomd.config import ConfigError, RoomSettings, Settings, load_config
from roomd.sdnotify import Notifier
from roomd.store import Store, StoreError, open_store
from roomd.sync import RoundFailed, RoundRunner, RoundStats
from roomd.sync.polling import PollResult
from roomd.sync.runner import GroupPoller
from roomd.web import WebServer

RunnerFactory = Callable[[Settings, Store], Awaitable[RoundRunner]]


MAX_CONCURRENT_ROUNDS = 16
"""Rounds running at once across all rooms: thousands of rooms must not start together."""

CLOSE_STEP_TIMEOUT_S = 5.0
"""Each step of closing down (HTTP server, clients, database) gets at most this long."""

PRUNE_EVERY_S = 3600.0
DONE_OUTBOX_KEPT = timedelta(days=7)
"""Applied writes stay this long: a delta page or webhook replayed within days still finds its
intent and is not applied twice."""


class RoundSlots:
    """At most ``capacity`` rounds at once, in order of arrival, except that a room with a change
    waiting (a Hybrid webhook) goes ahead of rooms that are only due their poll. With a thousand
    rooms the polls queue for seconds; a webhook's round waiting behind them was no faster than
    the poll it is there to beat (bench/lag.py: p50 35 s, Hybrid to Outlook, 1,000 rooms)."""

    def __init__(self, capacity: int) -> None:
        self._free = capacity
        self._polls: deque[tuple[str, asyncio.Future[None]]] = deque()
        self._changes: deque[tuple[str, asyncio.Future[None]]] = deque()

    @contextlib.asynccontextmanager
    async def slot(self, room: str, *, urgent: bool = False) -> AsyncIterator[None]:
        if self._free > 0 and not self._polls and not self._changes:
            self._free -= 1
        else:
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            entry = (room, fut)
            (self._changes if urgent else self._polls).append(entry)
            try:
                await fut
            except asyncio.CancelledError:
                if fut.done() and not fut.cancelled():
                    self._release()  # granted just as we were cancelled: give it back
                else:
                    for queue in (self._polls, self._changes):
                        with contextlib.suppress(ValueError):
                            queue.remove(entry)
                raise
        try:
            yield
        finally:
            self._release()

    def hurry(self, room: str) -> None:
        """A change is waiting for ``room``: its round, if queued for a poll, goes ahead."""
        for entry in [e for e in self._polls if e[0] == room]:
            self._polls.remove(entry)
            self._changes.append(entry)

    def _release(self) -> None:
        self._free += 1
        while self._free > 0 and (self._changes or self._polls):
            _, fut = (self._changes or self._polls).popleft()
            if not fut.done():
                self._free -= 1
                fut.set_result(None)


class RoomLock(asyncio.Lock):
    """A room's lock that leaves its table when released with nobody waiting for it: the
    daemon keeps a lock only for a room that is busy, not one per room for ever (~200 B each:
    2 MB at 10,000 rooms, bench/README.md, RSS). Safe because every caller of
    ``Daemon.room_lock`` acquires the lock it gets before anything else runs on the loop, so
    nobody holds a dropped lock it has not taken, and a later caller makes a new one."""

    def __init__(self, table: dict[str, asyncio.Lock], key: str) -> None:
        super().__init__()
        self._table = table
        self._key = key

    def release(self) -> None:
        super().release()
        if not self.locked() and not self._waiters and self._table.get(self._key) is self:
            del self._table[self._key]


class _CurrentWebhookSecret:
    """The webhook secret of the running config, read at every delivery: a SIGHUP that
    rotates ``hybrid.webhook_secret`` takes effect at once. Empty when none is configured
    (the receiver then answers 503 and verifies nothing)."""

    def __init__(self, daemon: Daemon) -> None:
        self._daemon = daemon

    def reveal(self) -> str:
        secret = self._daemon.settings.hybrid.webhook_secret
        return secret.reveal() if secret is not None else ""


class Daemon:
    """One roomd process. ``await Daemon(...).run()`` returns the process exit code."""

    def __init__(
        self,
        settings: Settings,
        *,
        config_path: Path,
        runner_factory: RunnerFactory,
        env: Mapping[str, str] | None = None,
        log_level_override: str | None = None,
        routes: Callable[[Daemon], list[Any]] | None = None,
    ) -> None:
        self.settings = settings
        self._routes = routes
        self.webhook_secret = _CurrentWebhookSecret(self)
        self.config_path = config_path
        self._runner_factory = runner_factory
        self._log_level_override = log_level_override
        self._notifier = Notifier(env)
        self._log = observe.get_logger()
        self._stop = asyncio.Event()
        self._hurry = asyncio.Event()  # a second SIGTERM/SIGINT: abandon rounds now
        self._reload_requested = asyncio.Event()
        self._room_locks: dict[str, asyncio.Lock] = {}
        # the running (or queued) round loop per room; a loop's task is dropped when it ends
        self._rounds: dict[str, asyncio.Task[None]] = {}
        self._again: set[str] = set()  # rooms asked for another round while one runs
        self._round_slots = RoundSlots(MAX_CONCURRENT_ROUNDS)
        self._hurried: set[str] = set()  # rooms with a change waiting (a webhook)
        self._background: set[asyncio.Task[None]] = set()
        self._accepting = True
        self.store: Store | None = None
        self.web: WebServer | None = None
        self._runner: RoundRunner | None = None
        self._scheduler: AsyncIOScheduler | None = None
        self._lock_fd: int | None = None
        # rooms with a successful round in this process: a success recorded by an earlier run
        # says nothing about whether this one can reach Graph and Hybrid
        self._synced: set[str] = set()
        # bumped when a room's mapping changes: a round of the old mapping that ends after
        # the reload must not mark the room as synced
        self._generation: dict[str, int] = {}
        self._writable_checked_at = -1e9
        self._writable_error: str | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._tick_s = 1.0
        self._slice_count = 0
        # the rooms of each slice, built from ``_by_slice_of`` (the settings' room list): a tick
        # takes its slice's rooms without scanning every room; a reload's new list rebuilds it
        self._by_slice: list[list[RoomSettings]] = []
        self._by_slice_of: object = None
        # rooms whose last round failed: they get whole rounds, never the grouped read, until
        # one succeeds (the grouped read would record a success it did not check)
        self._needs_whole: set[str] = set()
        self._settled: set[str] = set()  # rooms with a finished round in this process
        self._polling: set[str] = set()  # rooms in a group read right now
        # the organization-wide Hybrid listing: when the last one began (loop time), and when
        # the last that succeeded answered; rooms are read together only while that is recent
        self._org_attempt_at: float | None = None
        self._org_ok_at: float | None = None
        self._org_busy = False

    # --- lifecycle -----------------------------------------------------------------------------
    async def run(self) -> int:
        """Start, serve until SIGTERM/SIGINT, stop within the grace period; the exit code."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        loop.add_signal_handler(signal.SIGHUP, self._on_sighup)
        try:
            try:
                await self._start()
                await self._serve()
            finally:
                # the handlers stay while closing down: a second signal must not kill us
                # half-way (SIGHUP) or hang the interpreter on open database threads (SIGINT)
                await self._shutdown()
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(sig)
        return 0

    def request_stop(self) -> None:
        if self._stop.is_set():
            self._log.warning("stop_requested_again", action="abandoning in-flight rounds now")
            self._hurry.set()
        self._stop.set()

    def _on_sighup(self) -> None:
        if self._stop.is_set():
            self._log.info("reload_ignored", reason="stopping")
            return
        self._reload_requested.set()

    async def _start(self) -> None:
        s = self.settings
        self._lock_fd = lock_state(s.state.path)
        self.store = await open_store(s.state.path)
        self._runner = await self._runner_factory(s, self.store)
        self.web = WebServer(self, self._extra_routes())
        await self.web.start(s.http.listen, s.http.port)
        self._scheduler = AsyncIOScheduler(event_loop=asyncio.get_running_loop())
        self._scheduler.start()
        for room in s.rooms:  # every room's first round now: it also settles where its feeds are
            self.request_round(room.mailbox)
        self._start_ticker(s.sync.poll_interval_seconds)
        self._schedule_gauges(s.sync.poll_interval_seconds)
        self._schedule_pruning()
        observe.ROOMS_CONFIGURED.set(len(s.rooms))
        observe.STALE_AFTER.set(s.sync.stale_after_seconds)
        self._log.info(
            "started",
            rooms=len(s.rooms),
            http=f"{s.http.listen}:{self.web.port}",
            state=str(s.state.path),
            config=str(self.config_path),
        )
        self._notifier.ready(f"syncing {len(s.rooms)} rooms")

    def _extra_routes(self) -> list[Any]:
        """Routes the composition root mounts (the Hybrid webhook receiver, which verifies
        against ``webhook_secret``: the running config's, so a SIGHUP rotates it)."""
        return self._routes(self) if self._routes is not None else []

    def on_booking_hint(self, resource_id: str | None, booking_id: str | None) -> None:
        """The fast path: a verified Hybrid change starts its room's round now (or right after
        the running one). The round reads the Hybrid listing, which stays the truth; a lost
        webhook only means the change waits for the next scheduled round. A delivery that names
        only the booking (a removal may carry no more) finds its room through the booking's link;
        a booking roomd has no link for waits for the listing too."""
        room = self.settings.room_by_hybrid_id(resource_id) if resource_id else None
        if room is not None:
            self.request_round(room.mailbox, hurry=True)
        elif resource_id is None and booking_id is not None and self.store is not None:
            store = self.store

            async def round_of_linked_room() -> None:
                try:
                    key = await store.room_of_hybrid_booking(booking_id)
                except StoreError as exc:
                    self._log.warning("webhook_room_lookup_failed", error=describe_error(exc))
                    return
                linked = self.settings.room_by_mailbox(key) if key is not None else None
                if linked is not None:
                    self.request_round(linked.mailbox, hurry=True)

            self._spawn(round_of_linked_room())

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
        """Stop taking work, let in-flight rounds finish within the grace period, close down.

        Bounded: the grace period, then each close step at most CLOSE_STEP_TIMEOUT_S, and a
        failing step never stops the next ones (the database is always closed).
        """
        self._accepting = False
        inflight = [t for t in self._rounds.values() if not t.done()]
        self._notifier.stopping("stopping: finishing in-flight rounds")
        self._log.info("stopping", inflight=len(inflight))
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        if self._ticker is not None:
            self._ticker.cancel()
        if inflight:
            hurry = asyncio.ensure_future(self._hurry.wait())
            finished = asyncio.ensure_future(asyncio.wait(inflight))
            grace = self.settings.sync.shutdown_grace_seconds
            await asyncio.wait(
                {finished, hurry}, timeout=grace, return_when=asyncio.FIRST_COMPLETED
            )
            hurry.cancel()
            finished.cancel()
            pending = [t for t in inflight if not t.done()]
            for task in pending:
                # Safe to abandon: a round commits in single transactions, and what was not
                # committed is re-read next time (design.md invariant 2).
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=CLOSE_STEP_TIMEOUT_S)
                self._log.warning("abandoned_rounds", rooms=len(pending))
        for task in list(self._background):
            task.cancel()
        await self._close_step("http", self.web.stop() if self.web is not None else None)
        await self._close_step("clients", self._runner.aclose() if self._runner else None)
        await self._close_step("database", self.store.close() if self.store else None)
        self._notifier.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None
        self._log.info("stopped")

    async def _close_step(self, what: str, step: Awaitable[None] | None) -> None:
        if step is None:
            return
        try:
            async with asyncio.timeout(CLOSE_STEP_TIMEOUT_S):
                await step
        except TimeoutError:
            self._log.warning("close_timed_out", step=what, after_s=CLOSE_STEP_TIMEOUT_S)
        except Exception as exc:
            self._log.error("close_failed", step=what, error=describe_error(exc))

    # --- scheduling ----------------------------------------------------------------------------
    def _start_ticker(self, interval: float) -> None:
        """(Re)start the ticker for a poll interval of ``interval`` seconds."""
        if self._ticker is not None:
            self._ticker.cancel()
        count = ticks.slices_for(interval)
        self._tick_s = interval / count
        if count != self._slice_count:
            self._slice_count = count
        self._ticker = asyncio.ensure_future(self._tick_loop(interval, count))

    def _due(self, index: int) -> list[RoomSettings]:
        """The rooms in slice ``index`` of the interval."""
        rooms = self.settings.rooms
        if self._by_slice_of is not rooms or len(self._by_slice) != self._slice_count:
            by_slice: list[list[RoomSettings]] = [[] for _ in range(self._slice_count)]
            for room in rooms:
                by_slice[ticks.slice_of(room.mailbox, self._slice_count)].append(room)
            self._by_slice, self._by_slice_of = by_slice, rooms
        return self._by_slice[index]

    async def _tick_loop(self, interval: float, count: int) -> None:
        """Wake at the start of every slice of the interval, on a fixed schedule (a late wake
        does not push the next ones back), and read the slice's rooms together: each room is
        read once per interval, exactly the interval apart, and none waits longer. Each
        slice's read runs on its own, so a slow one never delays the next slice."""
        loop = asyncio.get_running_loop()
        tick = interval / count
        epoch = loop.time()
        k = 0
        while self._accepting:
            k += 1
            await asyncio.sleep(max(0.0, epoch + k * tick - loop.time()))
            if not self._accepting:
                return
            index = k % count
            due = list(self._due(index))
            runner = self._runner
            if self._org_due(loop.time(), interval) and getattr(runner, "can_poll", False):
                # on its own: a long walk (the first after a start walks all the initial sync
                # wrote) must not hold this slice's rooms back
                self._spawn(self._list_hybrid(runner))  # type: ignore[arg-type]
            if due:
                self._spawn(self.poll_rooms(due, list_hybrid=False))

    def _org_due(self, now: float, interval: float) -> bool:
        """The organization-wide Hybrid listing is due once per interval; after a failure (or
        while it cannot start yet) it is tried again at the next slice. One at a time."""
        if self._org_busy:
            return False
        last = self._org_attempt_at
        if last is None:
            return True
        if self._org_ok_at is None or self._org_ok_at < last:  # the last one failed
            return now - last >= self._tick_s * 0.5
        return now - last >= interval - self._tick_s * 0.5

    async def poll_rooms(self, rooms: Sequence[RoomSettings], *, list_hybrid: bool) -> None:
        """Read a group of rooms due their poll together (see ``RoomSync.poll``); with
        ``list_hybrid`` the organization's Hybrid listing first. A room with anything to do
        (a change on either side, owed writes, an awaited answer, an operator flag, a new
        window, a 410, a failed last round, a round already running) gets a whole round as its
        timer gave it before; an idle room's read is recorded as its round was (the round
        record, deferred with its delta link, the metrics and the ``room_round`` line)."""
        runner = self._runner
        if not self._accepting or runner is None:
            return
        if not getattr(runner, "can_poll", False):  # a runner that reads one room at a time
            for room in rooms:
                self.request_round(room.mailbox)
            return
        poller: GroupPoller = runner  # type: ignore[assignment]
        if list_hybrid:
            await self._list_hybrid(poller)
        loop = asyncio.get_running_loop()
        interval = self.settings.sync.poll_interval_seconds
        # the organization listing answered within two intervals, or one is walking whose
        # first page answered (the rooms it shows get rounds when it ends): a long walk that a
        # busy Hybrid answers slowly does not send every room back to a whole round of its
        # own, which would only make Hybrid busier (bench/lag.py, the minutes after /readyz)
        now = loop.time()
        recent = 2 * interval + self._tick_s
        fresh = (self._org_ok_at is not None and now - self._org_ok_at <= recent) or (
            self._org_busy
            and self._org_attempt_at is not None
            and now - self._org_attempt_at <= recent
            and poller.hybrid_answering(self._org_attempt_at)
        )
        group: list[RoomSettings] = []
        for room in rooms:
            mailbox = room.mailbox
            if mailbox in self._polling or self.settings.room_by_mailbox(mailbox) is None:
                continue
            running = self._rounds.get(mailbox)
            if mailbox not in self._settled and running is not None and not running.done():
                continue  # its first round in this process, queued or running, reads it all
            if (
                not fresh
                or mailbox in self._needs_whole
                or mailbox in self._hurried
                or (running is not None and not running.done())
                or self.room_lock(mailbox).locked()
            ):
                self.request_round(mailbox)
            else:
                group.append(room)
        if not group:
            return
        locks = [self.room_lock(r.mailbox) for r in group]
        for lock in locks:  # all free (checked above, nothing awaited since): taken at once
            await lock.acquire()
        names = [r.mailbox for r in group]
        self._polling.update(names)
        generations = {m: self._generation.get(m, 0) for m in names}
        started = time.monotonic()
        try:
            result = await poller.poll(group)
        except Exception as exc:  # a failed group read: each room tries a round of its own
            self._log.warning("group_read_failed", rooms=len(group), error=describe_error(exc))
            result = PollResult(whole=set(names))
        finally:
            for lock in locks:
                lock.release()
            self._polling.difference_update(names)
        duration = time.monotonic() - started
        for mailbox in result.idle:
            read = self.settings.room_by_mailbox(mailbox)
            if read is not None:
                current = generations.get(mailbox) == self._generation.get(mailbox, 0)
                await self._record_idle(read, duration, current=current)
        for mailbox in sorted(result.whole):
            self.request_round(mailbox)

    async def _list_hybrid(self, poller: GroupPoller) -> None:
        """One listing of the organization's Hybrid changes; each room it shows news for gets
        a round now."""
        loop = asyncio.get_running_loop()
        self._org_busy = True
        self._org_attempt_at = loop.time()
        try:
            changed = await poller.hybrid_changes()
        except Exception as exc:
            self._log.warning("hybrid_listing_failed", error=describe_error(exc))
            return
        finally:
            self._org_busy = False
        if changed is None:  # no room listing has answered yet: nothing to start from
            return
        self._org_ok_at = loop.time()
        for mailbox in sorted(changed):
            # a poll that found something, as a room's own listing did: not ahead of the rounds
            # webhooks asked for (after a start, every room's echoes are found at once)
            self.request_round(mailbox)

    async def _record_idle(self, room: RoomSettings, duration: float, *, current: bool) -> None:
        """Record a grouped read that found nothing as the room's round: its success is
        written with its deferred delta link at the next ``flush_idle``."""
        assert self.store is not None
        stats = RoundStats(delta_pages=1)
        stats.extra.update(
            baseline=False, planned=0, written=0, write_failures=0, gave_up=0, grouped=True
        )
        fields: dict[str, Any] = {
            "inbound": 0,
            "outbound": 0,
            "conflicts": 0,
            "delta_pages": 1,
            "duration_s": round(duration, 3),
            "outcome": "ok",
            **stats.extra,
        }
        try:
            if not self.store.defer_success(room.mailbox, utc.now()):
                async with self.store.write(room.mailbox) as tx:
                    await tx.record_round(ok=True, error=None, at=utc.now())
        except Exception as exc:
            fields["state_error"] = describe_error(exc)
        self._record(room, stats, None, duration, fields, current=current)

    def _schedule_pruning(self) -> None:
        assert self._scheduler is not None
        self._scheduler.add_job(
            self._prune,
            "interval",
            seconds=PRUNE_EVERY_S,
            id="__prune__",
            replace_existing=True,
            max_instances=1,
            coalesce=True,
        )

    async def _prune(self) -> None:
        """Forget finished outbox rows and old audit lines, room by room under the room's lock
        (one thing per room at a time). Done rows are kept long enough that a replayed change
        still finds its intent (invariant 1); failed and dead rows are never pruned."""
        if self.store is None:
            return
        now = utc.now()
        keep_audit = timedelta(days=self.settings.sync.audit_retention_days)
        outbox = audit = 0
        for room in self.settings.rooms:
            async with self.room_lock(room.mailbox):
                try:
                    async with self.store.write(room.mailbox) as tx:
                        outbox += await tx.prune_outbox(now - DONE_OUTBOX_KEPT)
                        audit += await tx.prune_audit(now - keep_audit)
                except StoreError as exc:
                    self._log.warning("prune_failed", room=room.mailbox, error=describe_error(exc))
        if outbox or audit:
            self._log.info("pruned", outbox_rows=outbox, audit_lines=audit)

    def _schedule_gauges(self, interval: float) -> None:
        assert self._scheduler is not None
        self._scheduler.add_job(
            self._export_outbox_gauges,
            "interval",
            seconds=interval,
            id="__outbox_gauges__",
            replace_existing=True,
            max_instances=1,
            coalesce=True,
        )

    def request_round(self, mailbox: str, *, hurry: bool = False) -> None:
        """Start the room's round now, or one more right after the round that is running;
        ``hurry``: a change is waiting, the round goes ahead of rooms only due a poll."""
        if not self._accepting or self.settings.room_by_mailbox(mailbox) is None:
            return
        if hurry:
            self._hurried.add(mailbox)
            self._round_slots.hurry(mailbox)  # queued for a slot, not yet reading: it will see it
        running = self._rounds.get(mailbox)
        if running is not None and not running.done():
            self._again.add(mailbox)
            return
        task = asyncio.create_task(self._round_loop(mailbox), name=f"round:{mailbox}")
        self._rounds[mailbox] = task
        task.add_done_callback(functools.partial(self._round_ended, mailbox))

    def _round_ended(self, mailbox: str, task: asyncio.Task[None]) -> None:
        """A room's round loop ended: forget its task, so the daemon holds tasks only for rounds
        that run or wait (a finished one kept ~850 B per room for ever: bench/README.md, RSS).
        A newer task that request_round started since is kept."""
        if self._rounds.get(mailbox) is task:
            del self._rounds[mailbox]
            if not self._rounds:
                # a dict keeps its table when emptied: the initial sync's 10,000 tasks left one
                # of ~0.3 MB for ever
                self._rounds = {}

    async def _round_loop(self, mailbox: str) -> None:
        while True:
            self._again.discard(mailbox)
            room = self.settings.room_by_mailbox(mailbox)
            if room is None or not self._accepting:
                return
            await self.run_round(room)
            if mailbox not in self._again or not self._accepting:
                return

    def room_lock(self, mailbox: str) -> asyncio.Lock:
        """Per room, one thing at a time (design.md invariant 8). Held only while taken or
        waited for (``RoomLock``): every caller takes it as soon as it gets it."""
        key = mailbox.lower()
        lock = self._room_locks.get(key)
        if lock is None:
            lock = self._room_locks[key] = RoomLock(self._room_locks, key)
        return lock

    async def run_round(self, room: RoomSettings) -> None:
        """Run one round for a room, record its outcome in the store, metrics and the log.

        A round longer than ``sync.stale_after_seconds`` is cut short: by then the room is
        stale anyway, and a hung round must not hold the room for ever.
        """
        assert self.store is not None
        urgent = room.mailbox in self._hurried
        self._hurried.discard(room.mailbox)
        async with (
            self._round_slots.slot(room.mailbox, urgent=urgent),
            self.room_lock(room.mailbox),
        ):
            runner = self._runner
            assert runner is not None
            generation = self._generation.get(room.mailbox, 0)
            started = time.monotonic()
            error: str | None = None
            stats = RoundStats()
            limit = self.settings.sync.stale_after_seconds
            try:
                async with asyncio.timeout(limit):
                    stats = await runner.run_round(room)
            except TimeoutError:
                error = f"TimeoutError: round took longer than {limit:g} s (stale_after_seconds)"
            except Exception as exc:  # any failure of one room must not stop the others
                error = describe_error(exc)
                if not isinstance(exc, RoundFailed):
                    self._log.error("round_crashed", room=room.mailbox, exc_info=exc)
            duration = time.monotonic() - started
            outcome = "ok" if error is None else "error"
            self._settled.add(room.mailbox)
            if error is None:
                self._needs_whole.discard(room.mailbox)
            else:
                self._needs_whole.add(room.mailbox)
            fields: dict[str, Any] = {
                "inbound": stats.inbound,
                "outbound": stats.outbound,
                "conflicts": stats.conflicts,
                "delta_pages": stats.delta_pages,
                "duration_s": round(duration, 3),
                "outcome": outcome,
                **stats.extra,
            }
            try:
                # an idle round's success waits for flush_idle with its delta link
                if error is not None or not self.store.defer_success(room.mailbox, utc.now()):
                    async with self.store.write(room.mailbox) as tx:
                        await tx.record_round(ok=error is None, error=error, at=utc.now())
            except Exception as exc:
                fields["state_error"] = describe_error(exc)
            finally:
                current = generation == self._generation.get(room.mailbox, 0)
                self._record(room, stats, error, duration, fields, current=current)

    def _record(
        self,
        room: RoomSettings,
        stats: RoundStats,
        error: str | None,
        duration: float,
        fields: dict[str, Any],
        *,
        current: bool,
    ) -> None:
        label = room.mailbox
        observe.round_done(label, fields["outcome"], duration)
        log = self._log.bind(room=label)
        if error is None:
            if current:
                self._synced.add(label)
            observe.LAST_SUCCESS.labels(room=label).set(time.time())
            for (direction, outcome), count in stats.changes.items():
                observe.CHANGES.labels(room=label, direction=direction, outcome=outcome).inc(count)
            log.info("room_round", **fields)
        else:
            log.warning("room_round", error=error, **fields)

    async def _export_outbox_gauges(self) -> None:
        """Outbox depth and age for every room: one query per poll interval, not per round.

        The breaker and the last success come from the database too: the breaker stays tripped
        across rounds until an operator releases it, and after a restart the last success is
        the stored one, so a room that keeps failing stays visible as stale to alerting."""
        if self.store is None:
            return
        try:  # idle rounds' delta links and successes, all rooms' in one transaction
            await self.store.flush_idle()
        except StoreError as exc:
            self._log.warning("idle_flush_failed", error=describe_error(exc))
        now = utc.now()
        configured = {r.mailbox for r in self.settings.rooms}
        flags = await self.store.room_flags()
        for st in await self.store.room_statuses():
            if st.room not in configured:
                continue
            tripped = "breaker" in flags.get(st.room, {})
            observe.BREAKER_TRIPPED.labels(room=st.room).set(1 if tripped else 0)
            if st.last_success_at is not None:
                observe.LAST_SUCCESS.labels(room=st.room).set(st.last_success_at.timestamp())
            observe.OUTBOX_DEPTH.labels(room=st.room).set(st.outbox_depth)
            observe.OUTBOX_OLDEST_AGE.labels(room=st.room).set(
                utc.age_seconds(st.oldest_pending_at, now) or 0.0
            )
        # once per interval, after the rounds' transients are gone: glibc keeps what they
        # freed for ever otherwise (bench/README.md, RSS); well under a millisecond
        heap.trim()

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
        # a new secret, or a fix made in Entra ID or Hybrid: try refused credentials again now
        refusals.forgive_all()
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
        observe.STALE_AFTER.set(self.settings.sync.stale_after_seconds)
        observe.configure_logging(self._log_level_override or self.settings.log.level)
        self._log.info("config_reloaded", rooms=len(self.settings.rooms))
        self._notifier.status(f"syncing {len(self.settings.rooms)} rooms")
        return True

    async def _apply_room_changes(self, old: Settings, new: Settings) -> None:
        before = {r.mailbox: r for r in old.rooms}
        after = {r.mailbox: r for r in new.rooms}
        added = sorted(after.keys() - before.keys())
        removed = sorted(before.keys() - after.keys())
        changed = sorted(k for k in after.keys() & before.keys() if after[k] != before[k])
        if added or removed or changed:
            self._log.info("rooms_changed", added=added, removed=removed, changed=changed)
        self._synced -= set(removed) | set(changed)
        for mailbox in changed:
            self._generation[mailbox] = self._generation.get(mailbox, 0) + 1
        for mailbox in removed:
            self._needs_whole.discard(mailbox)
            observe.forget_room(mailbox)
        assert self.store is not None
        if self._runner is None or _client_settings(old) != _client_settings(new):
            # new endpoints or credentials: new clients (and a new token); the old ones close
            # once the rounds that hold them have finished
            retiring = self._runner
            self._runner = await self._runner_factory(new, self.store)
            self._org_ok_at = None  # the new runner lists Hybrid afresh before rooms group
            if retiring is not None:
                self._spawn(self._retire(retiring, tuple(before)))
        else:
            self._runner.reconfigure(new)
        interval = new.sync.poll_interval_seconds
        if interval != old.sync.poll_interval_seconds:
            self._start_ticker(interval)
            self._schedule_gauges(interval)
        for mailbox in added:
            self.request_round(mailbox)
        for mailbox in changed:
            # a round of the old mapping may still be running: run again after it
            self.request_round(mailbox)

    async def _retire(self, runner: RoundRunner, rooms: tuple[str, ...]) -> None:
        for mailbox in rooms:  # wait for every round that may hold the old runner
            async with self.room_lock(mailbox):
                pass
        await self._close_step("retired clients", runner.aclose())

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # --- readiness -----------------------------------------------------------------------------
    async def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Ready when the database takes writes and every room had a recent successful round
        in this process. The write check is cached for a few seconds: /readyz is polled, and
        each check is a synced commit competing with the rounds."""
        assert self.store is not None
        detail: dict[str, Any] = {"rooms": {}}
        ready = True
        if time.monotonic() - self._writable_checked_at > WRITABLE_CHECK_CACHE_S:
            try:
                await self.store.check_writable()
                self._writable_error = None
            except Exception as exc:
                self._writable_error = describe_error(exc)
            self._writable_checked_at = time.monotonic()
        detail["database"] = self._writable_error or "ok"
        ready = self._writable_error is None
        try:
            statuses = {st.room: st for st in await self.store.room_statuses()}
        except Exception as exc:
            detail["database"] = describe_error(exc)
            detail["ready"] = False
            return False, detail
        try:
            flags = await self.store.room_flags()
        except StoreError as exc:
            flags = {}
            detail["database"] = describe_error(exc)
        stale_after = self.settings.sync.stale_after_seconds
        now = utc.now()
        for room in self.settings.rooms:
            st = statuses.get(room.mailbox)
            last_ok = st.last_success_at if st is not None else None
            age = utc.age_seconds(last_ok, now)
            room_flags = flags.get(room.mailbox, {})
            entry: dict[str, Any] = {
                "last_success_at": utc.iso_z(last_ok),
                "last_error": st.last_error if st is not None else None,
                "problem": room_flags.get("problem"),
                "outbox_dead": st.outbox_dead if st is not None else 0,
            }
            if "breaker" in room_flags:
                # the mass-delete breaker holds this room's changes back until an operator
                # looks: not ready, with the reason and the command that releases it
                entry["state"] = "breaker"
                entry["breaker"] = room_flags["breaker"]
                ready = False
            elif age is None or room.mailbox not in self._synced:
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


WRITABLE_CHECK_CACHE_S = 5.0


def lock_state(db_path: Path) -> int:
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


def _client_settings(settings: Settings) -> tuple[Any, ...]:
    """What the clients are built from (the webhook secret is read live, not by a client)."""
    return settings.graph, settings.hybrid.model_copy(update={"webhook_secret": None})


def _merge_live(new: Settings, old: Settings) -> Settings:
    return new.model_copy(update={"http": old.http, "state": old.state})
