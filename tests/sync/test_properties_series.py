"""Whatever people do to recurring series on both sides, across a daylight-saving change, and
whenever roomd dies, once the system settles every series is there once on each side with the
same occurrences at the same local times (issue 8: part 1's property test, with series).

A hypothesis state machine drives random operations on Room 4A, whose clocks are Paris's:

* Outlook organizers (through Graph's HTTP API) book a weekly or daily series (the room a
  resource attendee, the series in Paris time), move, cancel or retitle one occurrence, retime
  or retitle the whole series, split it ("this and following": the series ends the occurrence
  before, a new series takes over at another time), cancel or delete it;
* Hybrid members (through the simulator's app surface) book a series with an RRULE, move one
  occurrence or retitle it (an exception child), cancel one (an exdate, or a moved one's
  exception child), retime the series (the app drops its exception children, as Outlook drops
  a rescheduled series' exceptions; its cancelled days stay cancelled) or retitle it, split it
  (an UNTIL, and a new series), cancel it;
* the organizer and the member both edit one series (an occurrence or the whole series, in
  either order) before roomd reads either;
* roomd polls or runs one round; Graph and Hybrid fail for a while; roomd is killed at its n-th
  call to Graph, Hybrid or its database, or restarts (part 1's rules, less often).

Every clock (Graph's, Hybrid's, roomd's) starts ten days before the next spring change of
Paris's clocks, so that most series run across it: 09:00 must stay 09:00 on both sides. It
starts at 10:00 Paris time (ROOMD_PROPERTY_TIME=HH:MM for another) on that Thursday (the EU
changes on the last Sunday of March), whatever the day and hour the suite runs, so that the
suite's run is repeatable: the same weekdays, the same side of the change, every year.
ROOMD_PROPERTY_DST=autumn starts before the October change (clocks going back) instead;
ROOMD_PROPERTY_SEARCH=1 draws the time of day and the change (a failure prints both), so that
searches cover both. The regressions below replay at the defaults (or the environment's) unless
they pass a time of day of their own.

Each series keeps to a band of the day of its own (two hours of Paris time: 07:00-09:00,
09:00-11:00, ...), and every edit stays in it, on the occurrence's own day: no two series ever
overlap, so neither the room nor Hybrid refuses anything, and the band tells which series
anything found belongs to, whatever its id and whichever side made it.

``settle`` clears the faults and runs rounds until nothing is left to do, then checks, band by
band:

* every live series exists once on each side: as many live Hybrid series (recurring bookings,
  not their exception children) as series masters in the room's calendar and in the organizer's,
  starting at the same first occurrences, with the same titles; no one-off booking or meeting;
* both sides hold the same occurrences (start and end), the room's calendar as the organizer's;
  moved occurrences at their new times, cancelled ones absent, on both sides;
* every regular occurrence of a series is at its first occurrence's Paris wall time;
* when one side only was edited since the last settle, both now hold what it held right after
  its last edit (when both were, the room's conflict rule picks, occurrence by occurrence, so
  only agreement is checked); a series deleted or cancelled in Outlook is canceled in Hybrid,
  kept there, never deleted.

Known gaps, left out of the generation (another piece of work): an Outlook series in a zone
other than the room's; lifting a Hybrid exdate onto a slot another booking took; an occurrence
cancelled in Hybrid through its exception child and moved or retitled in Outlook before a
round (Hybrid cannot restore it: the room declines it, the organizer keeps it).
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import (
    initialize,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sync.test_properties import (
    PEOPLE,
    PINNED_CHANGE,
    ROOM,
    World,
    WorldMachine,
    dst_change,
    machine_settings,
    pinned,
    pinned_change,
    start_before_change,
    time_of_day,
)

from roomd.sim.graph.events import occurrence_starts
from roomd.sim.hybrid.errors import ApiError
from roomd.sim.tenant import Tenant, default_tenant

ZONE = "Europe/Paris"
PARIS = ZoneInfo(ZONE)
WINDOWS_ZONE = "Romance Standard Time"  # what Outlook sends for Paris
LENGTH = timedelta(minutes=30)
FIRST_BAND = timedelta(hours=7)  # bands of the day in Paris time: 07:00-09:00, 09:00-11:00, ...
BAND = timedelta(hours=2)
BANDS = 7
OFFSETS = (0, 30, 60, 90)  # minutes into its band an occurrence may start
BEFORE_DST = 10  # days between the example's start (a Thursday) and the change of clocks
PINNED_PARIS = time(10, 0)  # the examples' Paris time of day (unless ROOMD_PROPERTY_SEARCH=1)

Occ = tuple[datetime, datetime, str | None]  # start, end (UTC), title (None: not compared)


def paris_tenant() -> Tenant:
    """The default tenant with its London rooms in Paris (the EU changes clocks on the same
    days; the zone is Paris's so that the room's zone and the organizers' are one)."""
    tenant = default_tenant()
    rooms = tuple(
        replace(r, time_zone=ZONE) if r.time_zone == "Europe/London" else r for r in tenant.rooms
    )
    return replace(tenant, rooms=rooms)


def band_of(start: datetime) -> int | None:
    local = start.astimezone(PARIS)
    minutes = timedelta(hours=local.hour, minutes=local.minute) - FIRST_BAND
    band = int(minutes // BAND)
    return band if 0 <= band < BANDS and minutes >= timedelta(0) else None


def wall(day: Any, band: int, offset: int) -> datetime:
    """The UTC instant of ``offset`` minutes into ``band`` on ``day`` (a Paris date)."""
    local = datetime(day.year, day.month, day.day, tzinfo=PARIS)  # aware + timedelta: wall time
    return (local + FIRST_BAND + band * BAND + timedelta(minutes=offset)).astimezone(UTC)


def local_day(when: datetime) -> Any:
    return when.astimezone(PARIS).date()


def show(occs: list[Occ]) -> str:
    return ", ".join(
        f"{s.astimezone(PARIS):%m-%d %H:%M}-{e.astimezone(PARIS):%H:%M}"
        + (f" {t!r}" if t is not None else "")
        for s, e, t in occs
    )


@dataclass
class Lineage:
    """One band's series as people made them: a series, and what "this and following" split
    off it. ``o_snap``/``h_snap``: that side's occurrences right after its last edit."""

    band: int
    origin: str
    person: str
    o_snap: list[Occ] | None = None
    h_snap: list[Occ] | None = None
    o_dirty: bool = False
    h_dirty: bool = False
    settled: list[Occ] = field(default_factory=list)
    # Paris days whose occurrence a member cancelled through its exception child since the
    # last settle: Outlook does not move or retitle those (a known gap, see above)
    child_cancelled: set[Any] = field(default_factory=set)

    def expected(self) -> list[Occ] | None:
        if self.o_dirty and self.h_dirty:
            return None
        if self.o_dirty:
            return self.o_snap
        if self.h_dirty:
            return self.h_snap
        return self.settled


class SeriesWorld(World):
    """Part 1's world (simulators, roomd's engine, faults, crashes) in Paris, ten days before
    its clocks change, with people who make series."""

    def __init__(
        self,
        directory: Path,
        conflict: str,
        paris_time: time | None = None,
        change: str | None = None,
    ) -> None:
        super().__init__(directory, conflict, tenant=paris_tenant())
        # the date and time of day matter (the change's direction, a series's first day, what
        # the room's window holds): pinned unless given (a regression replays where it was found)
        wanted = paris_time or pinned(PINNED_PARIS)
        change = change or pinned_change(PINNED_CHANGE)
        now = datetime.now(UTC)
        self.advance_clocks(start_before_change(now, change, PARIS, BEFORE_DST, wanted) - now)
        self.lineages: dict[int, Lineage] = {}
        self.hybrid_seen: set[str] = set()
        self.occurrence_titles = False  # roomd does not carry one occurrence's title (yet)

    # --- reading both sides, by band ----------------------------------------------------------

    def span(self) -> tuple[datetime, datetime]:
        now = self.hybrid.control.now()
        return now - timedelta(days=1), now + timedelta(days=120)

    def calendar(self, mailbox: str) -> Any:
        sim = self.graph
        return sim.exchange.calendar(sim.directory.find(mailbox))

    def mailboxes(self) -> list[str]:
        service = self.settings.graph.service_mailbox
        return [*PEOPLE, *([service] if service else [])]

    @staticmethod
    def in_room(event: Any) -> bool:
        return any(
            a.get("type") == "resource"
            and (a.get("emailAddress") or {}).get("address", "").lower() == ROOM
            for a in event.attendees
        )

    def organizer_masters(self, band: int | None = None) -> list[tuple[str, Any]]:
        """(organizer, series master) of every live series people organized in the room."""
        found = []
        for mailbox in self.mailboxes():
            for event in self.calendar(mailbox).events.values():
                if (
                    event.type == "seriesMaster"
                    and event.is_organizer
                    and not event.is_cancelled
                    and self.in_room(event)
                    and (band is None or band_of(event.start) == band)
                ):
                    found.append((mailbox, event))
        return sorted(found, key=lambda f: (f[1].start, f[1].id))

    def outlook_view(self) -> tuple[dict[int, list[Occ]], list[str]]:
        """The organizers' occurrences in the room, by band, with their titles; and strays."""
        lo, hi = self.span()
        out: dict[int, list[Occ]] = {}
        strays = []
        for mailbox in self.mailboxes():
            for inst in self.calendar(mailbox).instances(lo, hi):
                event = inst.event
                if not event.is_organizer or event.is_cancelled or not self.in_room(event):
                    continue
                band = band_of(inst.start)
                if inst.kind == "singleInstance" or band is None:
                    strays.append(f"{mailbox}: {inst.kind} {show([(inst.start, inst.end, None)])}")
                    continue
                out.setdefault(band, []).append((inst.start, inst.end, event.subject))
        return {b: sorted(v) for b, v in out.items()}, strays

    def room_view(self) -> tuple[dict[int, list[Occ]], list[str]]:
        lo, hi = self.span()
        out: dict[int, list[Occ]] = {}
        strays = []
        for inst in self.calendar(ROOM).instances(lo, hi):
            event = inst.event
            if event.is_cancelled or event.response == "declined":
                continue
            band = band_of(inst.start)
            if inst.kind == "singleInstance" or band is None:
                strays.append(f"room: {inst.kind} {show([(inst.start, inst.end, event.subject)])}")
                continue
            out.setdefault(band, []).append((inst.start, inst.end, None))
        return {b: sorted(v) for b, v in out.items()}, strays

    def hybrid_bookings(self) -> list[Any]:
        room = self.hybrid_id(ROOM)
        found = [b for b in self.hybrid.store.bookings.values() if b.resource_id == room]
        self.hybrid_seen.update(b.id for b in found)
        return found

    def hybrid_view(self) -> tuple[dict[int, list[Occ]], list[str]]:
        lo, hi = self.span()
        store = self.hybrid.store
        out: dict[int, list[Occ]] = {}
        strays = []
        for booking in self.hybrid_bookings():
            if booking.canceled:
                continue
            for iv in store.intervals(booking, lo, hi):
                band = band_of(iv.start)
                if (booking.rrule is None and booking.parent is None) or band is None:
                    strays.append(f"hybrid {booking.id}: {show([(iv.start, iv.end, None)])}")
                    continue
                out.setdefault(band, []).append((iv.start, iv.end, booking.summary))
        return {b: sorted(v) for b, v in out.items()}, strays

    def hybrid_masters(self, band: int | None = None) -> list[Any]:
        return sorted(
            (
                b
                for b in self.hybrid_bookings()
                if b.rrule is not None
                and b.parent is None
                and not b.canceled
                and (band is None or band_of(b.start) == band)
            ),
            key=lambda b: (b.start, b.id),
        )

    def outlook_snap(self, band: int) -> list[Occ]:
        return self.outlook_view()[0].get(band, [])

    def hybrid_snap(self, band: int) -> list[Occ]:
        return self.hybrid_view()[0].get(band, [])

    def edited(self, lineage: Lineage, side: str, what: str) -> None:
        if side == "outlook":
            lineage.o_snap, lineage.o_dirty = self.outlook_snap(lineage.band), True
        else:
            lineage.h_snap, lineage.h_dirty = self.hybrid_snap(lineage.band), True
        self.log.append(f"band {lineage.band} {side}: {what}")

    # --- Outlook, as its organizers -----------------------------------------------------------

    def free_band(self, pick: int) -> int | None:
        free = [b for b in range(BANDS) if b not in self.lineages]
        return free[pick % len(free)] if free else None

    def first_day(self, days: int) -> Any:
        return local_day(self.hybrid.control.now()) + timedelta(days=days)

    async def outlook_create(
        self, organizer: str, pick: int, daily: bool, count: int, days: int, offset: int
    ) -> None:
        band = self.free_band(pick)
        if band is None:
            return
        start = wall(self.first_day(days), band, offset)
        lineage = self.lineages[band] = Lineage(band, "outlook", organizer)
        body = self.series_body(start, f"S{band}.{next(self.titles)}", daily, count)
        r = await self.graph_call("POST", f"/users/{organizer}/events", body)
        assert r.status_code == 201, r.text
        self.edited(lineage, "outlook", f"{organizer} books a {'daily' if daily else 'weekly'}")

    @staticmethod
    def series_body(start: datetime, title: str, daily: bool, count: int) -> dict[str, Any]:
        local = start.astimezone(PARIS)
        pattern: dict[str, Any] = (
            {"type": "daily", "interval": 1}
            if daily
            else {
                "type": "weekly",
                "interval": 1,
                "daysOfWeek": [local.strftime("%A").lower()],
                "firstDayOfWeek": "monday",
            }
        )
        return {
            "subject": title,
            "body": {"contentType": "text", "content": "Agenda"},
            "start": SeriesWorld.paris(start),
            "end": SeriesWorld.paris(start + LENGTH),
            "location": {"displayName": ROOM, "locationEmailAddress": ROOM},
            "attendees": [{"emailAddress": {"address": ROOM}, "type": "resource"}],
            "recurrence": {
                "pattern": pattern,
                "range": {
                    "type": "numbered",
                    "startDate": f"{local:%Y-%m-%d}",
                    "numberOfOccurrences": count,
                    "recurrenceTimeZone": WINDOWS_ZONE,
                },
            },
        }

    @staticmethod
    def paris(when: datetime) -> dict[str, str]:
        return {"dateTime": f"{when.astimezone(PARIS):%Y-%m-%dT%H:%M:%S}", "timeZone": WINDOWS_ZONE}

    def pick_outlook(self, pick: int) -> tuple[Lineage, str, Any] | None:
        found = [
            (self.lineages[band], organizer, master)
            for organizer, master in self.organizer_masters()
            if (band := band_of(master.start)) is not None and band in self.lineages
        ]
        return found[pick % len(found)] if found else None

    def instances(self, organizer: str, master: Any) -> list[Any]:
        lo, hi = self.span()
        return [
            i
            for i in self.calendar(organizer).instances(lo, hi)
            if i.kind != "singleInstance" and (i.event.series_master_id or i.event.id) == master.id
        ]

    async def outlook_occurrence(self, pick: int, which: int, what: str, offset: int) -> None:
        """Move, cancel or retitle one occurrence of an organizer's series."""
        found = self.pick_outlook(pick)
        if found is None:
            return
        lineage, organizer, master = found
        occurrences = self.instances(organizer, master)
        if not occurrences or (what == "cancel" and len(occurrences) < 3):
            return
        inst = occurrences[which % len(occurrences)]
        original = inst.original_start if inst.original_start is not None else inst.start
        if what != "cancel" and local_day(original) in lineage.child_cancelled:
            return  # the known gap: Hybrid's cancel is final, the room declines, not generated
        path = f"/users/{organizer}/events/{inst.id}"
        if what == "cancel":
            r = await self.graph_call("POST", path + "/cancel", {"comment": "not this one"})
            assert r.status_code == 202, r.text
        elif what == "move":
            start = wall(local_day(inst.start), lineage.band, offset)
            if start == inst.start:
                return
            body = {"start": self.paris(start), "end": self.paris(start + LENGTH)}
            r = await self.graph_call("PATCH", path, body)
            assert r.status_code == 200, r.text
        else:
            body = {"subject": f"S{lineage.band}.{next(self.titles)}"}
            r = await self.graph_call("PATCH", path, body)
            assert r.status_code == 200, r.text
        day = inst.start.astimezone(PARIS)
        self.edited(lineage, "outlook", f"{organizer} {what}s the occurrence of {day:%m-%d}")

    async def outlook_series(self, pick: int, what: str, offset: int, at: int) -> None:
        """Retime, retitle, split, cancel or delete an organizer's whole series."""
        found = self.pick_outlook(pick)
        if found is None:
            return
        lineage, organizer, master = found
        path = f"/users/{organizer}/events/{master.id}"
        if what == "retime":
            start = wall(local_day(master.start), lineage.band, offset)
            if start == master.start:
                return
            body = {"start": self.paris(start), "end": self.paris(start + LENGTH)}
            r = await self.graph_call("PATCH", path, body)
            assert r.status_code == 200, r.text
        elif what == "retitle":
            body = {"subject": f"S{lineage.band}.{next(self.titles)}"}
            r = await self.graph_call("PATCH", path, body)
            assert r.status_code == 200, r.text
        elif what == "split":
            starts = occurrence_starts(master, master.start + timedelta(days=400))
            if len(starts) < 3:
                return
            k = 1 + at % (len(starts) - 1)
            recurrence = master.recurrence.as_graph()
            recurrence["range"] = {
                "type": "endDate",
                "startDate": f"{local_day(starts[0]):%Y-%m-%d}",
                "endDate": f"{local_day(starts[k - 1]):%Y-%m-%d}",
                "recurrenceTimeZone": recurrence["range"].get("recurrenceTimeZone", WINDOWS_ZONE),
            }
            r = await self.graph_call("PATCH", path, {"recurrence": recurrence})
            assert r.status_code == 200, r.text
            start = wall(local_day(starts[k]), lineage.band, offset)
            daily = recurrence["pattern"]["type"] == "daily"
            body = self.series_body(start, master.subject, daily, len(starts) - k)
            r = await self.graph_call("POST", f"/users/{organizer}/events", body)
            assert r.status_code == 201, r.text
        elif what == "cancel":
            r = await self.graph_call("POST", path + "/cancel", {"comment": "off"})
            assert r.status_code == 202, r.text
        else:
            r = await self.graph_call("DELETE", path)
            assert r.status_code == 204, r.text
        self.edited(lineage, "outlook", f"{organizer} {what}s the series")

    # --- Hybrid, as its members ---------------------------------------------------------------

    async def hybrid_create(
        self, member: str, pick: int, daily: bool, count: int, days: int, offset: int
    ) -> None:
        band = self.free_band(pick)
        if band is None:
            return
        start = wall(self.first_day(days), band, offset)
        lineage = self.lineages[band] = Lineage(band, "hybrid", member)
        self.hybrid.control.create_booking(
            self.hybrid_id(ROOM),
            start,
            start + LENGTH,
            member=member,
            summary=f"S{band}.{next(self.titles)}",
            rrule=f"FREQ={'DAILY' if daily else 'WEEKLY'};COUNT={count}",
        )
        self.edited(lineage, "hybrid", f"{member} books a {'daily' if daily else 'weekly'}")

    def pick_hybrid(self, pick: int) -> tuple[Lineage, Any] | None:
        found = [
            (self.lineages[band], series)
            for series in self.hybrid_masters()
            if (band := band_of(series.start)) is not None and band in self.lineages
        ]
        return found[pick % len(found)] if found else None

    def occurrences(self, series: Any) -> list[tuple[datetime, Any]]:
        """(original start, live exception child or None) of each occurrence Hybrid holds."""
        lo, hi = self.span()
        store = self.hybrid.store
        out = [(iv.start, None) for iv in store.intervals(series, lo, hi)]
        out += [
            (c.original_start, c)
            for c in store.children(series.id)
            if not c.canceled and c.original_start is not None
        ]
        return sorted(out, key=lambda o: o[0])

    async def hybrid_occurrence(self, pick: int, which: int, what: str, offset: int) -> None:
        found = self.pick_hybrid(pick)
        if found is None:
            return
        lineage, series = found
        occurrences = self.occurrences(series)
        if what == "cancel" and len(occurrences) < 3:
            return
        if not occurrences:
            return
        original, child = occurrences[which % len(occurrences)]
        control = self.hybrid.control
        if what == "cancel" and child is not None:  # a moved one: its exception child goes
            control.cancel_booking(child.id)
            lineage.child_cancelled.add(local_day(original))
        elif what == "cancel":
            exdates = [*series.exdates, original]
            control.update_booking(
                series.id,
                recurrence={
                    "rrule": series.rrule,
                    "exdates": [f"{d.astimezone(UTC):%Y-%m-%dT%H:%M:%S.000Z}" for d in exdates],
                },
            )
        else:
            now = child or series
            start = now.start if child else original
            summary = now.summary
            if what == "move":
                start = wall(local_day(original), lineage.band, offset)
                if start == (child.start if child else original):
                    return
            else:
                summary = f"S{lineage.band}.{next(self.titles)}"
            if child is not None:
                control.update_booking(child.id, start=start, end=start + LENGTH, summary=summary)
            else:
                control.create_booking(
                    series.resource_id,
                    start,
                    start + LENGTH,
                    member=series.member,
                    summary=summary,
                    parent=series.id,
                    originalStart=f"{original.astimezone(UTC):%Y-%m-%dT%H:%M:%S.000Z}",
                )
        day = original.astimezone(PARIS)
        self.edited(lineage, "hybrid", f"its member {what}s the occurrence of {day:%m-%d}")

    async def hybrid_series(self, pick: int, what: str, offset: int, at: int) -> None:
        found = self.pick_hybrid(pick)
        if found is None:
            return
        lineage, series = found
        control = self.hybrid.control
        children = self.hybrid.store.children(series.id)
        if what == "retime":
            start = wall(local_day(series.start), lineage.band, offset)
            if start == series.start:
                return
            # the app drops the series' moved and retitled occurrences (as Outlook drops a
            # rescheduled series' exceptions), and its cancelled days stay cancelled
            dropped = [c for c in children if not c.canceled]
            for child in dropped:
                control.cancel_booking(child.id)
            clock = start.astimezone(PARIS).time()
            exdates = [datetime.combine(local_day(d), clock, tzinfo=PARIS) for d in series.exdates]
            try:
                control.update_booking(
                    series.id,
                    start=start,
                    end=start + LENGTH,
                    recurrence={
                        "rrule": series.rrule,
                        "exdates": [f"{d.astimezone(UTC):%Y-%m-%dT%H:%M:%S.000Z}" for d in exdates],
                    },
                )
            except ApiError:
                if dropped:  # refused, but the exceptions are gone already
                    self.edited(lineage, "hybrid", "its member drops the series' exceptions")
                raise
        elif what == "retitle":
            control.update_booking(series.id, summary=f"S{lineage.band}.{next(self.titles)}")
        elif what == "split":
            starts = [iv.start for iv in self.hybrid.store.intervals(series, None, None)]
            originals = sorted({*starts, *(c.original_start for c in children), *series.exdates})
            if len(originals) < 3:
                return
            k = 1 + at % (len(originals) - 1)
            split = originals[k]
            if any(c.original_start >= split for c in children) or any(
                d >= split for d in series.exdates
            ):
                return  # the app would have to move those to the new series: not generated
            rule = ";".join(
                p for p in series.rrule.split(";") if not p.startswith(("COUNT=", "UNTIL="))
            )
            until = split - timedelta(seconds=1)
            control.update_booking(
                series.id,
                recurrence={
                    "rrule": f"{rule};UNTIL={until.astimezone(UTC):%Y%m%dT%H%M%SZ}",
                    "exdates": [
                        f"{d.astimezone(UTC):%Y-%m-%dT%H:%M:%S.000Z}" for d in series.exdates
                    ],
                },
            )
            start = wall(local_day(split), lineage.band, offset)
            control.create_booking(
                series.resource_id,
                start,
                start + LENGTH,
                member=series.member,
                summary=series.summary,
                rrule=f"{rule};COUNT={len(originals) - k}",
            )
        else:
            control.cancel_booking(series.id)
        self.edited(lineage, "hybrid", f"its member {what}s the series")

    async def both_edit(
        self, pick: int, which: int, offset: int, at: int, outlook: str, hybrid: str, first: str
    ) -> None:
        """The organizer and the member each edit the same series (one band) before roomd
        reads either: an occurrence or the whole series, in either order."""
        o_bands = [band_of(m.start) for _, m in self.organizer_masters()]
        o_bands = [b for b in o_bands if b is not None and b in self.lineages]
        h_bands = [band_of(m.start) for m in self.hybrid_masters()]
        h_bands = [b for b in h_bands if b is not None and b in self.lineages]
        common = sorted(set(o_bands) & set(h_bands))
        if not common:
            return
        band = common[pick % len(common)]
        o_pick, h_pick = o_bands.index(band), h_bands.index(band)

        async def in_outlook() -> None:
            if outlook in ("move", "cancel", "retitle"):
                await self.outlook_occurrence(o_pick, which, outlook, offset)
            else:
                await self.outlook_series(o_pick, outlook.removeprefix("series_"), offset, at)

        async def in_hybrid() -> None:
            with refused_by_hybrid():
                if hybrid in ("move", "cancel", "retitle"):
                    await self.hybrid_occurrence(h_pick, which, hybrid, offset)
                else:
                    await self.hybrid_series(h_pick, hybrid.removeprefix("series_"), offset, at)

        for side in (in_outlook, in_hybrid) if first == "outlook" else (in_hybrid, in_outlook):
            await side()

    # --- the invariants -----------------------------------------------------------------------

    async def check(self) -> None:
        problems = self.series_problems()
        if problems:
            raise AssertionError("\n".join(problems) + "\n" + await self.report())
        for lineage in self.lineages.values():
            lineage.o_dirty = lineage.h_dirty = False
            lineage.child_cancelled.clear()

    def series_problems(self) -> list[str]:
        out: list[str] = []
        outlook, o_strays = self.outlook_view()
        room, r_strays = self.room_view()
        hybrid, h_strays = self.hybrid_view()
        out += [f"a one-off or a stray: {s}" for s in o_strays + r_strays + h_strays]
        for known in sorted(self.hybrid_seen):
            if known not in self.hybrid.store.bookings:
                out.append(f"Hybrid booking {known} was deleted (cancellations keep it)")
        for band in sorted(set(outlook) | set(room) | set(hybrid) | set(self.lineages)):
            lineage = self.lineages.get(band)
            if lineage is None:
                out.append(f"band {band}: something nobody booked")
                continue
            o, r, h = outlook.get(band, []), room.get(band, []), hybrid.get(band, [])
            times = [(s, e) for s, e, _ in o]
            if [(s, e) for s, e, _ in r] != times:
                out.append(f"band {band}: the room holds {show(r)}, its organizer {show(o)}")
            if [(s, e) for s, e, _ in h] != times:
                out.append(f"band {band}: Hybrid holds {show(h)}, Outlook {show(o)}")
            elif self.occurrence_titles and h != o:
                out.append(f"band {band}: Hybrid's titles {show(h)}, Outlook's {show(o)}")
            out += self.masters_problems(band)
            expected = lineage.expected()
            if expected is not None:
                wanted = [(s, e) for s, e, _ in expected]
                if times != wanted or [(s, e) for s, e, _ in h] != wanted:
                    out.append(
                        f"band {band}: only {'Outlook' if lineage.o_dirty else 'Hybrid'} was "
                        f"edited, to {show(expected)}; now Outlook {show(o)}, Hybrid {show(h)}"
                    )
            lineage.settled = o
        return out

    def masters_problems(self, band: int) -> list[str]:
        """Each live series once on each side: the same first occurrences and titles; its
        regular occurrences at its first one's Paris wall time."""
        out = []
        lo, hi = self.span()
        hybrid = self.hybrid_masters(band)
        organizer = [m for _, m in self.organizer_masters(band)]
        room = [
            e
            for e in self.calendar(ROOM).events.values()
            if e.type == "seriesMaster"
            and not e.is_cancelled
            and e.response != "declined"
            and band_of(e.start) == band
        ]
        h = sorted((b.start, b.end, b.summary) for b in hybrid)
        o = sorted((e.start, e.end, e.subject) for e in organizer)
        r = sorted((e.start, e.end) for e in room)
        if h != o:
            out.append(f"band {band}: Hybrid's series {show(h)}, the organizer's {show(o)}")
        if r != [(s, e) for s, e, _ in o]:
            out.append(f"band {band}: the room's series {r}, the organizer's {show(o)}")
        for b in hybrid:
            for iv in self.hybrid.store.intervals(b, lo, hi):
                if iv.booking_id == b.id and not same_wall_time(iv.start, b.start):
                    out.append(f"band {band}: Hybrid's occurrence {iv.start} is not at {b.start}")
        for e in room:
            for inst in self.calendar(ROOM).instances(lo, hi):
                regular = inst.event is e and inst.kind == "occurrence"
                if regular and not same_wall_time(inst.start, e.start):
                    out.append(f"band {band}: the room's {inst.start} is not at {e.start}")
        return out

    async def report(self) -> str:
        lines = ["what happened:", *(f"  {line}" for line in self.log), "bands:"]
        outlook, hybrid, room = self.outlook_view()[0], self.hybrid_view()[0], self.room_view()[0]
        for band, lineage in sorted(self.lineages.items()):
            lines += [
                f"  {band} ({lineage.origin}, {lineage.person}):"
                f"{' outlook edited' if lineage.o_dirty else ''}"
                f"{' hybrid edited' if lineage.h_dirty else ''}",
                f"    outlook snap {show(lineage.o_snap or [])}",
                f"    hybrid snap  {show(lineage.h_snap or [])}",
                f"    settled      {show(lineage.settled)}",
                f"    organizer    {show(outlook.get(band, []))}",
                f"    room         {show(room.get(band, []))}",
                f"    hybrid       {show(hybrid.get(band, []))}",
            ]
        for b in sorted(self.hybrid_bookings(), key=lambda b: b.created_at):
            lines.append(
                f"  hybrid {b.id} {b.start.astimezone(PARIS):%m-%d %H:%M} {b.summary!r} "
                f"rrule={b.rrule} exdates={[f'{d.astimezone(PARIS):%m-%d}' for d in b.exdates]} "
                f"parent={b.parent} original={b.original_start} ref=…{(b.reference or '')[-6:]}"
                f"{' canceled' if b.canceled else ''}"
            )
        for mailbox in [ROOM, *self.mailboxes()]:
            for e in self.calendar(mailbox).events.values():
                if e.type != "seriesMaster":
                    continue
                lines.append(
                    f"  {mailbox} {e.start.astimezone(PARIS):%m-%d %H:%M} {e.subject!r} "
                    f"{e.recurrence.as_graph() if e.recurrence else None} uid=…{e.ical_uid[-6:]}"
                    f" exceptions={len(e.exceptions)} cancelled={len(e.cancelled_occurrences)}"
                    f"{' cancelled' if e.is_cancelled else ''} {e.response}"
                )
        if self.store is not None:
            for entry in reversed(await self.store.audit_for(ROOM, limit=200)):
                lines.append(f"  audit {entry.booking[:14]} {entry.action}: {entry.reason[:110]}")
        return "\n".join(lines)


def same_wall_time(a: datetime, b: datetime) -> bool:
    return a.astimezone(PARIS).time() == b.astimezone(PARIS).time()


# --- the state machine -------------------------------------------------------------------------


@contextlib.contextmanager
def refused_by_hybrid() -> Iterator[None]:
    """The member's edit met a slot a series' other part holds while roomd has not yet caught
    up (Hybrid's 409): the app refuses it, nothing changed, the member does something else."""
    try:
        yield
    except ApiError as exc:
        if exc.status != 409:
            raise


people = st.sampled_from(PEOPLE)
picks = st.integers(min_value=0, max_value=15)
offsets = st.sampled_from(OFFSETS)


class SeriesMachine(WorldMachine[SeriesWorld]):
    """Rules act through ``SeriesWorld``; ``settle`` (and the end of every example) checks."""

    @initialize(
        conflict=st.sampled_from(["outlook_wins", "hybrid_wins"]),
        paris_time=time_of_day(PINNED_PARIS),
        **dst_change(),
    )
    def start(
        self, conflict: str, paris_time: time | None = None, change: str | None = None
    ) -> None:
        directory = Path(tempfile.mkdtemp(dir=self.directory))
        self.world = SeriesWorld(directory, conflict, paris_time, change)
        self.run(lambda w: w.start())

    def _outlook(self) -> bool:
        return self.world is not None and bool(self.world.organizer_masters())

    def _hybrid(self) -> bool:
        return self.world is not None and bool(self.world.hybrid_masters())

    def _room(self) -> bool:
        return self.world is not None and len(self.world.lineages) < BANDS

    @precondition(_room)
    @rule(
        organizer=people,
        pick=picks,
        daily=st.booleans(),
        count=st.integers(min_value=3, max_value=8),
        days=st.integers(min_value=1, max_value=9),
        offset=offsets,
    )
    def outlook_create(
        self, organizer: str, pick: int, daily: bool, count: int, days: int, offset: int
    ) -> None:
        count = count * 3 if daily else count  # a daily series too runs across the change
        self.run(lambda w: w.outlook_create(organizer, pick, daily, count, days, offset))

    @precondition(_outlook)
    @rule(
        pick=picks,
        which=picks,
        what=st.sampled_from(["move", "cancel", "retitle"]),
        offset=offsets,
    )
    def outlook_occurrence(self, pick: int, which: int, what: str, offset: int) -> None:
        self.run(lambda w: w.outlook_occurrence(pick, which, what, offset))

    @precondition(_outlook)
    @rule(
        pick=picks,
        what=st.sampled_from(["retime", "retitle", "split", "cancel", "delete"]),
        offset=offsets,
        at=picks,
    )
    def outlook_series(self, pick: int, what: str, offset: int, at: int) -> None:
        self.run(lambda w: w.outlook_series(pick, what, offset, at))

    @precondition(_room)
    @rule(
        member=people,
        pick=picks,
        daily=st.booleans(),
        count=st.integers(min_value=3, max_value=8),
        days=st.integers(min_value=1, max_value=9),
        offset=offsets,
    )
    def hybrid_create(
        self, member: str, pick: int, daily: bool, count: int, days: int, offset: int
    ) -> None:
        count = count * 3 if daily else count
        self.run(lambda w: w.hybrid_create(member, pick, daily, count, days, offset))

    @precondition(_hybrid)
    @rule(
        pick=picks,
        which=picks,
        what=st.sampled_from(["move", "cancel", "retitle"]),
        offset=offsets,
    )
    def hybrid_occurrence(self, pick: int, which: int, what: str, offset: int) -> None:
        async def go(w: SeriesWorld) -> None:
            with refused_by_hybrid():
                await w.hybrid_occurrence(pick, which, what, offset)

        self.run(go)

    @precondition(_hybrid)
    @rule(
        pick=picks,
        what=st.sampled_from(["retime", "retitle", "split", "cancel"]),
        offset=offsets,
        at=picks,
    )
    def hybrid_series(self, pick: int, what: str, offset: int, at: int) -> None:
        async def go(w: SeriesWorld) -> None:
            with refused_by_hybrid():
                await w.hybrid_series(pick, what, offset, at)

        self.run(go)

    def _both(self) -> bool:
        return self._outlook() and self._hybrid()

    @precondition(_both)
    @rule(
        pick=picks,
        which=picks,
        offset=offsets,
        at=picks,
        outlook=st.sampled_from(["move", "cancel", "retitle", "retime", "series_retitle"]),
        hybrid=st.sampled_from(["move", "cancel", "retitle", "retime", "series_retitle"]),
        first=st.sampled_from(["outlook", "hybrid"]),
    )
    def both_edit(
        self, pick: int, which: int, offset: int, at: int, outlook: str, hybrid: str, first: str
    ) -> None:
        self.run(lambda w: w.both_edit(pick, which, offset, at, outlook, hybrid, first))

    @rule()
    def poll(self) -> None:
        self.run(lambda w: w.poll())

    @rule(room=st.just(ROOM))
    def sync_round(self, room: str) -> None:
        async def go(w: SeriesWorld) -> None:
            w.log.append(await w.round(room))

        self.run(go)

    # part 1's faults, crashes and restarts: one rule each (the rules above are many)
    @rule(
        graph=st.booleans(),
        fault=st.sampled_from(["503", "429", "drop", "lose_answer"]),
        count=st.integers(min_value=1, max_value=8),
    )
    def fails(self, graph: bool, fault: str, count: int) -> None:
        async def go(w: SeriesWorld) -> None:
            if graph:
                w.graph_fault(fault, count, None)
            else:
                w.hybrid_fault(503 if fault in ("503", "drop") else 429, count)

        self.run(go)

    @rule(at=st.integers(min_value=1, max_value=40), after=st.booleans(), restart=st.booleans())
    def crash(self, at: int, after: bool, restart: bool) -> None:
        if restart:
            self.run(lambda w: w.restart())
        else:
            self.run(lambda w: w.crash(ROOM, at, after))

    @rule()
    def settle(self) -> None:
        self.run(self._settle_and_check)


EXAMPLES = machine_settings(30, steps=25)  # ~1 s an example
COUNT = EXAMPLES.max_examples


@pytest.mark.slow
@pytest.mark.timeout(120 + 10 * COUNT)  # shrinking a failure takes a while too
def test_every_series_is_once_on_each_side_with_the_same_occurrences(tmp_path: Path) -> None:
    with asyncio.Runner() as runner:
        run_state_machine_as_test(lambda: SeriesMachine(runner, tmp_path), settings=EXAMPLES)


# --- regressions: examples the machine found, kept as plain sequences --------------------------


def replay(
    tmp_path: Path,
    conflict: str,
    steps: Callable[[SeriesMachine], None],
    paris_time: time | None = None,
    change: str | None = None,
) -> None:
    """Run ``steps`` on a fresh machine (its clocks at ``paris_time`` in Paris, ten days before
    the ``change`` of its clocks, when given), then settle and check as at the end of an
    example."""
    with asyncio.Runner() as runner:
        machine = SeriesMachine(runner, tmp_path)
        machine.start(conflict, paris_time, change)
        try:
            steps(machine)
        finally:
            machine.teardown()


@pytest.mark.parametrize("rule", ["outlook_wins", "hybrid_wins"])
def test_a_series_retimed_in_outlook_drops_its_moved_occurrence_in_hybrid(
    tmp_path: Path, rule: str
) -> None:
    """An organizer moves one occurrence of a weekly series, then retimes the whole series:
    Outlook drops the moved occurrence (a rescheduled series loses its exceptions). Hybrid's
    exception child must go too, or the room stays held in Hybrid at the old moved time that
    week, beside the series' new time."""

    def steps(m: SeriesMachine) -> None:
        m.outlook_create(organizer=PEOPLE[0], pick=0, daily=False, count=5, days=3, offset=0)
        m.settle()
        m.outlook_occurrence(pick=0, which=1, what="move", offset=60)
        m.settle()
        m.outlook_series(pick=0, what="retime", offset=30, at=0)

    replay(tmp_path, rule, steps)


def test_a_series_retimed_in_outlook_while_an_occurrence_is_retitled_in_hybrid(
    tmp_path: Path,
) -> None:
    """Between two rounds the organizer retimes the series (Outlook's rule wins) and the member
    retitles one occurrence in Hybrid (an exception child at the old time): the child goes, the
    room is not held at a time the series no longer has."""

    def steps(m: SeriesMachine) -> None:
        m.hybrid_create(member=PEOPLE[0], pick=0, daily=True, count=12, days=1, offset=30)
        m.settle()
        m.outlook_series(pick=0, what="retime", offset=90, at=0)
        m.hybrid_occurrence(pick=0, which=5, what="retitle", offset=0)

    replay(tmp_path, "outlook_wins", steps)


@pytest.mark.parametrize("side", ["outlook", "hybrid"])
def test_one_occurrence_retitled_has_its_title_on_both_sides(tmp_path: Path, side: str) -> None:
    def steps(m: SeriesMachine) -> None:
        assert m.world is not None
        m.world.occurrence_titles = True
        m.outlook_create(organizer=PEOPLE[1], pick=0, daily=False, count=4, days=2, offset=0)
        m.settle()
        if side == "outlook":
            m.outlook_occurrence(pick=0, which=2, what="retitle", offset=0)
        else:
            m.hybrid_occurrence(pick=0, which=2, what="retitle", offset=0)

    replay(tmp_path, "outlook_wins", steps)


def test_a_series_emptied_in_outlook_before_the_room_answered_is_followed_in_hybrid(
    tmp_path: Path,
) -> None:
    """roomd makes the Outlook series of a member's daily Hybrid series; before the room's
    booking assistant answers, the organizer cancels the first occurrence and splits the series
    at the second ("this and following"). The room's copy of the old series then holds no
    occurrence, so no delta of the room names it: Hybrid must still learn of its new end, or
    the member's series goes on holding the room every day beside the new series."""

    def steps(m: SeriesMachine) -> None:
        m.hybrid_create(member=PEOPLE[0], pick=0, daily=True, count=12, days=8, offset=90)
        m.sync_round(room=ROOM)  # the meeting is made; the room has not answered yet
        m.outlook_occurrence(pick=0, which=0, what="cancel", offset=0)
        m.outlook_series(pick=0, what="split", offset=30, at=0)

    replay(tmp_path, "outlook_wins", steps)


@pytest.mark.parametrize("why", ["token expired", "a new day"])
@pytest.mark.parametrize("what", ["delete", "cancel"])
def test_a_series_deleted_just_before_a_new_baseline_is_canceled_in_hybrid(
    tmp_path: Path, why: str, what: str
) -> None:
    """The organizer deletes (or cancels) a series; before roomd reads the room's delta again,
    its token expires or the window moves on at midnight. The new baseline lists what the
    room holds, with no ``@removed`` for the series it no longer holds: the Hybrid series must
    still be canceled, not hold the room on every date. (Found with lost answers to the delta
    request, as part 1's test found it for one-off meetings.)"""

    def steps(m: SeriesMachine) -> None:
        m.outlook_create(organizer=PEOPLE[0], pick=3, daily=True, count=12, days=3, offset=30)
        m.settle()
        m.outlook_series(pick=0, what=what, offset=0, at=0)

        async def rebaseline(w: SeriesWorld) -> None:
            w.graph.control.run_rba()
            if why == "token expired":
                w.graph.control.expire_delta_tokens(ROOM)
            else:
                w.clock.offset += timedelta(days=1)

        m.run(rebaseline)

    replay(tmp_path, "outlook_wins", steps)


def test_a_series_split_and_deleted_while_a_write_to_it_waits_keeps_the_new_series(
    tmp_path: Path,
) -> None:
    """A member retitles one occurrence of a synced series in Hybrid; roomd's write of it to
    Outlook fails for a while (Graph 503s on the organizer's mailbox). The organizer then splits
    the series at the same time of day ("this and following") and deletes the old part. The
    new series must be held on both sides: the old one's cancellation in Hybrid must not wait
    behind the failed write while the new series is booked over it."""

    def steps(m: SeriesMachine) -> None:
        m.outlook_create(organizer=PEOPLE[2], pick=2, daily=True, count=12, days=3, offset=60)
        m.settle()
        m.hybrid_occurrence(pick=0, which=5, what="retitle", offset=0)

        async def organizer_unreachable(w: SeriesWorld) -> None:
            w.graph_fault("503", 30, PEOPLE[2])

        m.run(organizer_unreachable)
        m.sync_round(room=ROOM)
        m.outlook_series(pick=0, what="split", offset=60, at=3)
        m.outlook_series(pick=0, what="delete", offset=0, at=0)

    replay(tmp_path, "outlook_wins", steps)


def test_a_series_retimed_in_outlook_and_cancelled_in_hybrid_is_booked_again(
    tmp_path: Path,
) -> None:
    """Between two rounds the organizer retimes a synced series and its Hybrid member cancels
    it: Outlook's rule wins, so the series is booked in Hybrid again at its new time. (The
    second create was planned under the first one's intent, which the outbox had carried out,
    so it was dropped: the series stayed in Outlook only.)"""

    def steps(m: SeriesMachine) -> None:
        m.outlook_create(organizer=PEOPLE[0], pick=0, daily=True, count=5, days=1, offset=0)
        m.settle()
        m.outlook_series(pick=0, what="retime", offset=30, at=0)
        m.hybrid_series(pick=0, what="cancel", offset=0, at=0)

    replay(tmp_path, "outlook_wins", steps)


@pytest.mark.parametrize("rule", ["outlook_wins", "hybrid_wins"])
def test_a_hybrid_series_retimed_with_a_moved_occurrence_keeps_it_moved_in_outlook(
    tmp_path: Path, rule: str
) -> None:
    """Between two rounds a member retimes a weekly Hybrid series (07:00 -> 07:30) and moves
    its first occurrence (-> 08:30), while an organizer retimes another series in the room
    (so the round reads the room's series). Only Hybrid changed this series: Outlook must
    follow, the first occurrence at 08:30. It was taken for an occurrence Outlook's own
    reschedule had dropped (its original start is not on Outlook's old rule), so it was
    cancelled in Hybrid and declined by the room, while the organizer kept it at 07:30 (issue
    8, known failure (a); the rescheduled test now asks whether Outlook's shape changed)."""

    def steps(m: SeriesMachine) -> None:
        m.hybrid_create(member=PEOPLE[0], pick=13, daily=False, count=4, days=1, offset=0)
        m.hybrid_create(member=PEOPLE[0], pick=0, daily=False, count=5, days=4, offset=0)
        m.settle()
        m.hybrid_series(pick=1, what="retime", offset=30, at=0)
        m.outlook_series(pick=0, what="retime", offset=60, at=5)
        m.hybrid_occurrence(pick=1, what="move", offset=90, which=15)

    replay(tmp_path, rule, steps)


def test_a_split_series_edited_in_outlook_and_cancelled_in_hybrid_is_booked_again(
    tmp_path: Path,
) -> None:
    """Issue 8's known failure (b): a daily Outlook series is split ("this and following")
    while roomd's Graph requests are dropped; one round runs; the organizer retimes and
    retitles a part, the member cancels the same part in Hybrid, the organizer cancels an
    occurrence. Outlook's rule wins over Hybrid's cancel: every part of the series is held on
    both sides (the part was booked again under the first create's intent, done, so dropped)."""

    def steps(m: SeriesMachine) -> None:
        m.outlook_create(organizer=PEOPLE[0], pick=0, daily=True, count=4, days=2, offset=0)
        m.settle()
        m.fails(graph=True, fault="drop", count=3)
        m.outlook_series(pick=0, what="split", offset=30, at=4)
        m.sync_round(room=ROOM)
        m.outlook_series(pick=1, what="retime", offset=60, at=0)
        m.outlook_series(pick=1, what="retitle", offset=0, at=0)
        m.hybrid_series(pick=1, what="cancel", offset=0, at=0)
        m.outlook_occurrence(pick=0, which=2, what="cancel", offset=0)

    replay(tmp_path, "outlook_wins", steps)


@pytest.mark.parametrize("what", ["delete", "cancel"])
def test_a_series_deleted_in_outlook_is_one_change_in_the_round(tmp_path: Path, what: str) -> None:
    """The organizer deletes (or cancels) a synced series: the round that reads it cancels the
    Hybrid series once, and counts one change (what the daemon adds to roomd_changes_total);
    the audit line says the organizer cancelled it (it said "deleted", also for a cancel).
    The one-off planner also took the series master's removal for a meeting's, so the series
    was cancelled twice and counted twice."""

    def steps(m: SeriesMachine) -> None:
        m.outlook_create(organizer=PEOPLE[0], pick=0, daily=False, count=5, days=1, offset=0)
        m.settle()
        m.outlook_series(pick=0, what=what, offset=0, at=0)

        async def one_round(w: SeriesWorld) -> None:
            assert w.engine is not None
            w.graph.control.run_rba()
            stats = await w.engine.run_round(w.room(ROOM))
            assert stats.changes == {("outlook_to_hybrid", "canceled"): 1}
            assert stats.plan is not None
            cancels = [a for a in stats.plan.audit if a.action == "cancel"]
            assert len(cancels) == 1, cancels
            # what `roomd explain` shows an operator: the organizer cancelled it (Graph shows a
            # cancel and a delete alike, and a delete too cancels the meeting for everyone)
            assert w.store is not None
            (room, link), *_ = await w.store.find_links(cancels[0].booking)
            trail = await w.store.audit_for(room, booking=link.link_id)
            reasons = [a.reason for a in trail if a.action == "cancel"]
            assert reasons, trail
            assert all("cancelled" in r and "organizer" in r for r in reasons), reasons

        m.run(one_round)

    replay(tmp_path, "outlook_wins", steps)


@pytest.mark.parametrize("rule", ["outlook_wins", "hybrid_wins"])
def test_a_series_retimed_in_outlook_onto_an_occurrence_moved_in_hybrid(
    tmp_path: Path, rule: str
) -> None:
    """Between two rounds the organizer moves a daily series from 16:00 to 15:30 and the member
    moves one occurrence to 15:30 in Hybrid. The series moves in Hybrid too: the exception child
    (made for 16:00, which the series no longer has) held the 15:30 slot that day, so Hybrid
    refused the series' new time (409) and kept it at 16:00 for good. (Found by the machine.)"""

    def steps(m: SeriesMachine) -> None:
        m.outlook_create(organizer=PEOPLE[0], pick=4, daily=True, count=5, days=1, offset=60)
        m.settle()
        m.outlook_series(pick=0, what="retime", offset=30, at=0)
        m.hybrid_occurrence(pick=0, what="move", offset=30, which=1)

    replay(tmp_path, rule, steps)


@pytest.mark.parametrize("origin", ["outlook", "hybrid"])
def test_a_series_changed_in_hybrid_and_deleted_in_outlook_is_made_again_by_hybrid_wins(
    tmp_path: Path, origin: str
) -> None:
    """Between two rounds the member retitles a synced series in Hybrid and the organizer
    deletes it in Outlook: under hybrid_wins the series is made again in Outlook, by the
    organizer its link knows (the round reads no member for a linked series, so it was
    skipped as having no organizer), under a new intent (the first create's is done)."""

    def steps(m: SeriesMachine) -> None:
        if origin == "outlook":
            m.outlook_create(organizer=PEOPLE[0], pick=0, daily=True, count=5, days=1, offset=0)
        else:
            m.hybrid_create(member=PEOPLE[0], pick=0, daily=True, count=5, days=1, offset=0)
        m.settle()
        m.hybrid_series(pick=0, what="retitle", offset=0, at=0)
        m.outlook_series(pick=0, what="delete", offset=0, at=0)

    replay(tmp_path, "hybrid_wins", steps)


def test_a_series_retitled_in_hybrid_does_not_undo_a_retime_the_room_has_not_answered(
    tmp_path: Path,
) -> None:
    """After a synced Hybrid cancellation of one occurrence, the organizer retimes the series
    (13:00 -> 13:30) and the member retitles it in Hybrid; roomd runs a round before the
    room's booking assistant has answered the retime, so it reads only Hybrid's change. It
    wrote the Hybrid series' start and end to the organizer's series with the new title, and
    so moved the organizer's series back to 13:00, though Outlook's rule wins: only the title
    is written now, and the retime then reaches Hybrid. (Found by the machine.)"""

    def steps(m: SeriesMachine) -> None:
        m.outlook_create(organizer=PEOPLE[0], pick=10, daily=True, count=8, days=5, offset=0)
        m.settle()
        m.hybrid_occurrence(pick=0, what="cancel", offset=0, which=7)
        m.sync_round(room=ROOM)
        m.outlook_series(pick=0, what="retime", offset=30, at=0)
        m.hybrid_series(pick=0, what="retitle", offset=0, at=0)
        m.sync_round(room=ROOM)

    replay(tmp_path, "outlook_wins", steps)


def test_a_hybrid_retime_that_loses_to_an_outlook_split_keeps_the_cancelled_day_cancelled(
    tmp_path: Path,
) -> None:
    """A member cancels one day of a synced daily series (18:00), then retimes the series to
    17:00, the cancelled day moving with it (the exdate at 17:00); the organizer splits the
    series before a round. Outlook's rule wins: the series is back at 18:00 in Hybrid, and the
    cancelled day must stay cancelled there, as it is in Outlook: the exdate stayed at 17:00,
    an instant the rule no longer has, and the occurrence held the room in Hybrid only. (Found
    by the machine once it generated retimes of series with exceptions.)"""

    def steps(m: SeriesMachine) -> None:
        m.hybrid_create(member=PEOPLE[0], pick=5, daily=True, count=8, days=5, offset=60)
        m.hybrid_occurrence(pick=0, what="cancel", offset=60, which=14)
        m.settle()
        m.hybrid_series(pick=0, what="retime", offset=0, at=0)
        m.outlook_series(pick=0, what="split", offset=90, at=14)

    replay(tmp_path, "outlook_wins", steps)


def test_a_hybrid_retime_that_wins_over_an_outlook_split_keeps_the_cancelled_day_cancelled(
    tmp_path: Path,
) -> None:
    """The sequence above under hybrid_wins: the member's retime (17:00, the cancelled day
    moving with it) wins over the organizer's split, and is written to the organizer's series,
    whose rule is Hybrid's again (the split's end undone, as the rule says). Outlook drops a
    rescheduled series' exceptions, so the cancelled day must be cancelled there again; it was
    not: the split's rule had no such day, and roomd took Outlook's reschedule for one that had
    dropped it, so the day held the room in Outlook only. (Found by the machine.)"""

    def steps(m: SeriesMachine) -> None:
        m.hybrid_create(member=PEOPLE[0], pick=5, daily=True, count=8, days=5, offset=60)
        m.hybrid_occurrence(pick=0, what="cancel", offset=60, which=14)
        m.settle()
        m.hybrid_series(pick=0, what="retime", offset=0, at=0)
        m.outlook_series(pick=0, what="split", offset=90, at=14)
        m.settle()

    replay(tmp_path, "hybrid_wins", steps)


@pytest.mark.parametrize("what", ["retitle", "move"])
def test_an_occurrence_cancelled_by_the_organizer_and_changed_in_hybrid_goes_on_both_sides(
    tmp_path: Path, what: str
) -> None:
    """Between two rounds the member retitles (or moves) one occurrence in Hybrid and the
    organizer cancels it. hybrid_wins would write Hybrid's occurrence to Outlook, but the
    organizer's occurrence is gone and Graph cannot bring a cancelled occurrence back: the
    write found nothing and the occurrence stayed held in Hybrid only. Outlook's cancel is
    final, as a canceled exception child is in Hybrid: the occurrence goes in Hybrid too.
    (Found by the machine's both_edit.)"""

    def steps(m: SeriesMachine) -> None:
        m.outlook_create(organizer=PEOPLE[0], pick=0, daily=True, count=4, days=4, offset=0)
        m.settle()
        m.both_edit(pick=0, which=7, offset=60, at=0, outlook="cancel", hybrid=what, first="hybrid")

    replay(tmp_path, "hybrid_wins", steps)


@pytest.mark.parametrize("rule", ["outlook_wins", "hybrid_wins"])
def test_a_series_split_on_both_sides_holds_one_split_off_series_on_each_side(
    tmp_path: Path, rule: str
) -> None:
    """A member's daily series (9 days from 03-24) is synced; between two rounds the member
    splits it in Hybrid ("this and following", at its second day) and retitles an occurrence
    of the new part, and the organizer splits it in Outlook at its third day. Both split the
    same series: a conflict, which the room's rule decides. Under outlook_wins the original
    series was updated to Outlook's, but the Hybrid split's new series was still written to
    Outlook beside the organizer's own, so the organizer held two series over the same days.
    Whichever rule wins, each side must hold the winner's split-off series once. (Found by
    the machine at 00:19 Paris time.)"""

    def steps(m: SeriesMachine) -> None:
        for _ in range(4):
            m.poll()
        m.hybrid_create(member=PEOPLE[0], pick=0, daily=True, count=3, days=6, offset=0)
        m.poll()
        m.crash(at=1, after=False, restart=False)
        for _ in range(14):
            m.poll()
        m.hybrid_series(pick=13, what="split", offset=0, at=0)
        m.hybrid_occurrence(pick=3, what="retitle", offset=0, which=3)
        m.outlook_series(pick=14, what="split", offset=0, at=11)

    replay(tmp_path, rule, steps, paris_time=time(0, 19))


@pytest.mark.parametrize("rule", ["outlook_wins", "hybrid_wins"])
@pytest.mark.parametrize("hybrid_at,outlook_at,offsets", [(3, 0, (30, 30)), (2, 1, (30, 60))])
def test_a_series_split_on_both_sides_at_other_days_keeps_one_split_off_on_each_side(
    tmp_path: Path, rule: str, hybrid_at: int, outlook_at: int, offsets: tuple[int, int]
) -> None:
    """As above, the member splitting the series after the organizer's day or before it, the
    new series at the same time or not: the room's rule picks one split, so each side holds
    the original and one new series, the winner's (the loser's new one takes its days and
    time), never both new series (which doubled the days, or Hybrid refused them, 409)."""

    def steps(m: SeriesMachine) -> None:
        m.hybrid_create(member=PEOPLE[1], pick=2, daily=True, count=3, days=2, offset=30)
        m.settle()
        m.hybrid_series(pick=0, what="split", offset=offsets[0], at=hybrid_at)
        m.outlook_series(pick=0, what="split", offset=offsets[1], at=outlook_at)
        m.settle()

        async def two_series_each(w: SeriesWorld) -> None:
            (band,) = w.lineages
            assert len(w.organizer_masters(band)) == 2, await w.report()
            assert len(w.hybrid_masters(band)) == 2, await w.report()

        m.run(two_series_each)

    replay(tmp_path, rule, steps)


@pytest.mark.parametrize("rule", ["outlook_wins", "hybrid_wins"])
@pytest.mark.parametrize("what", ["retime", "retitle"])
def test_a_split_that_loses_to_a_change_of_the_whole_series_leaves_no_new_series(
    tmp_path: Path, rule: str, what: str
) -> None:
    """Between two rounds one side splits a synced daily series ("this and following", the new
    series at the same time of day as the series will have) and the other side retimes or
    retitles the whole series; the room's rule picks the other side's series, whole, so the
    split's end is undone. The split's new series then held the same slots as the series: it
    was written to the other side all the same (Hybrid refused the series' own update, 409,
    for good, or the room declined the new one, which the organizer kept). It goes with the
    split it was part of. (Found by the machine under outlook_wins at 00:47 Paris time.)"""
    splits, changes = ("hybrid", "outlook") if rule == "outlook_wins" else ("outlook", "hybrid")
    offset = 60 if what == "retime" else 0

    def steps(m: SeriesMachine) -> None:
        m.outlook_create(organizer=PEOPLE[0], pick=0, daily=True, count=7, days=8, offset=0)
        m.settle()
        for side in (splits, changes):
            if side == splits:
                split = m.hybrid_series if side == "hybrid" else m.outlook_series
                split(pick=0, what="split", offset=offset, at=13)
            else:
                change = m.hybrid_series if side == "hybrid" else m.outlook_series
                change(pick=0, what=what, offset=offset, at=0)

    replay(tmp_path, rule, steps, paris_time=time(0, 47))
