"""What an operator runs by hand: ``roomd sync`` (the "Sync" button) and ``roomd explain``.

``roomd sync --full`` reconciles every booking in the window (by default the past 90 days and
the next year) on both sides against the links: what is missing is created, nothing twice.
``--dry-run`` prints the plan and writes nothing anywhere, so it is safe beside a running
daemon. Without ``--dry-run``, a running daemon (it holds the state lock) is asked to do it in
its next round through the room's flags (``full``, ``force``): one writer per room, always.
When no daemon runs, the rounds run here, under the same lock.

``roomd explain ID`` answers "why does this booking look like this" from the link, the writes
still owed and the audit trail, given any id an operator has at hand.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from roomd import utc
from roomd.compose import build_sync
from roomd.config import RoomSettings, Settings
from roomd.daemon import lock_state
from roomd.store import AuditEntry, Link, OutboxItem, StoreError, open_store
from roomd.sync import RoundFailed
from roomd.sync.model import link_id_for, read_fingerprint
from roomd.sync.series import CANCELLED, REGULAR, read_shape, refused_by


class UsageError(Exception):
    """The operator named something that is not there (a room not in the config)."""


def pick_rooms(settings: Settings, names: Sequence[str]) -> list[RoomSettings]:
    if not names:
        return list(settings.rooms)
    rooms = []
    for name in names:
        room = settings.room_by_mailbox(name) or settings.room_by_hybrid_id(name)
        if room is None:
            raise UsageError(f"{name!r} is not a room in the configuration")
        rooms.append(room)
    return rooms


async def manual_sync(
    settings: Settings, names: Sequence[str], *, full: bool, dry_run: bool, force: bool
) -> list[str]:
    """Run (or plan, or hand to the daemon) a sync of the named rooms; lines to print."""
    rooms = pick_rooms(settings, names)
    if dry_run:
        return await _dry_run(settings, rooms)
    try:
        fd = lock_state(settings.state.path)
    except StoreError as exc:
        if "already running" not in str(exc):
            raise
        return await _ask_daemon(settings, rooms, full=full, force=force)
    try:
        return await _run_here(settings, rooms, full=full, force=force)
    finally:
        os.close(fd)


async def _dry_run(settings: Settings, rooms: list[RoomSettings]) -> list[str]:
    if not settings.state.path.exists():  # nothing synced yet: plan against no links
        scratch = tempfile.TemporaryDirectory(prefix="roomd-dry-run-")
        store = await open_store(Path(scratch.name) / "empty.sqlite3")
    else:
        scratch = None
        store = await open_store(settings.state.path, readonly=True)
    engine = build_sync(settings, store)
    lines: list[str] = []
    try:
        for room in rooms:
            stats = await engine.run_round(room, full=True, dry_run=True)
            plan = stats.plan
            lines.append(f"{room.mailbox} ({room.name}):")
            if plan is None or (not plan.ops and not plan.breaker and not plan.problems):
                lines.append("  nothing to do")
                continue
            if plan.breaker:
                lines.append(f"  cancellations held by the mass-delete breaker: {plan.breaker}")
            for line in plan.audit:
                if line.side == "none" and line.action not in ("skipped", "conflict"):
                    continue
                where = "both" if line.side == "none" else line.side
                lines.append(f"  {line.action:<14} {where:<8} {line.booking}: {line.reason}")
    finally:
        await engine.aclose()
        await store.close()
        if scratch is not None:
            scratch.cleanup()
    lines.append("dry run: nothing was written")
    return lines


async def _ask_daemon(
    settings: Settings, rooms: list[RoomSettings], *, full: bool, force: bool
) -> list[str]:
    store = await open_store(settings.state.path)
    try:
        for room in rooms:
            async with store.write(room.mailbox) as tx:
                if full:
                    await tx.set_flag("full", "requested by roomd sync --full")
                if force:
                    await tx.set_flag("force", "requested by roomd sync --force")
    finally:
        await store.close()
    what = " and ".join(
        w for w, on in (("a full sync", full), ("cancellations past the breaker", force)) if on
    )
    return [
        f"roomd is running: its next round of {room.mailbox} does {what or 'a normal round'}"
        for room in rooms
    ]


async def _run_here(
    settings: Settings, rooms: list[RoomSettings], *, full: bool, force: bool
) -> list[str]:
    store = await open_store(settings.state.path)
    engine = build_sync(settings, store)
    lines = []
    try:
        for room in rooms:
            if force:
                async with store.write(room.mailbox) as tx:
                    await tx.set_flag("force", "requested by roomd sync --force")
            try:
                stats = await engine.run_round(room, full=full)
            except RoundFailed as exc:
                lines.append(f"{room.mailbox}: failed: {exc}")
                continue
            changes = ", ".join(
                f"{n} {outcome} ({direction.replace('_', ' ')})"
                for (direction, outcome), n in sorted(stats.changes.items())
            )
            held = f"; held back: {stats.extra['breaker']}" if "breaker" in stats.extra else ""
            lines.append(
                f"{room.mailbox}: {changes or 'nothing to do'}; "
                f"{stats.extra.get('written', 0)} writes made{held}"
            )
    finally:
        await engine.aclose()
        await store.close()
    return lines


# --- explain -------------------------------------------------------------------------------------


@dataclass
class Story:
    room: str
    link: Link
    outbox: list[OutboxItem]
    audit: list[AuditEntry]
    unlinked: bool = False  # roomd never linked it (skipped: the audit trail says why)

    def as_json(self) -> dict[str, Any]:
        lk = self.link
        return {
            "room": self.room,
            "link_id": lk.link_id,
            "state": "not synced" if self.unlinked else lk.state,
            "hybrid_id": lk.hybrid_id,
            "room_event_id": lk.room_event_id,
            "organizer": lk.organizer_mailbox,
            "organizer_event_id": lk.organizer_event_id,
            "ical_uid": lk.ical_uid,
            "original_start": utc.iso_z(lk.original_start),
            "hybrid_last_synced": _synced_json(lk.hybrid_fingerprint),
            "outlook_last_synced": _synced_json(lk.outlook_fingerprint),
            "pending_writes": [
                {
                    "op": o.op,
                    "state": o.state,
                    "attempts": o.attempts,
                    "last_error": o.last_error,
                    "next_at": utc.iso_z(o.next_at),
                }
                for o in self.outbox
                if o.state != "done"
            ],
            "history": [
                {"at": utc.iso_z(a.at), "side": a.side, "action": a.action, "reason": a.reason}
                for a in self.audit
            ],
        }


async def explain(settings: Settings, any_id: str) -> list[Story]:
    store = await open_store(settings.state.path, readonly=True)
    try:
        stories = []
        for room, link in await store.find_links(any_id):
            audit = await store.audit_for(room, booking=link.link_id, limit=1000)
            outbox = await store.outbox_for_link(room, link.link_id)
            stories.append(Story(room, link, outbox, list(reversed(audit))))
        if not stories:  # skipped, never linked (a series Hybrid cannot hold in its zone): why
            for key in (link_id_for("outlook", any_id), link_id_for("hybrid", any_id)):
                for configured in settings.rooms:
                    mailbox = configured.mailbox
                    audit = await store.audit_for(mailbox, booking=key, limit=1000)
                    if audit:
                        link = Link(link_id=key, ical_uid=any_id if key.startswith("o:") else None)
                        stories.append(
                            Story(mailbox, link, [], list(reversed(audit)), unlinked=True)
                        )
        return stories
    finally:
        await store.close()


def _synced_json(fingerprint: str | None) -> dict[str, Any] | None:
    if fingerprint in (REGULAR, CANCELLED):
        return {"occurrence": fingerprint}
    holder = refused_by(fingerprint)
    if holder is not None:
        return {"occurrence": CANCELLED, "refused_for": holder}
    shape = read_shape(fingerprint)
    if shape is not None:
        series, series_status = shape
        return {
            "rrule": series.rrule,
            "zone": series.zone,
            "start": utc.iso_z(series.start),
            "end": utc.iso_z(series.end),
            "title": series.title,
            "status": series_status,
        }
    read = read_fingerprint(fingerprint)
    if read is None:
        return None
    slot, status = read
    return {
        "start": utc.iso_z(slot.start),
        "end": utc.iso_z(slot.end),
        "title": slot.title,
        "status": status,
    }


def _synced_text(fingerprint: str | None) -> str:
    """A link's last synced state in words: a booking's slot, a series' rule, or the state of
    one occurrence of a series (regular, moved, cancelled)."""
    if fingerprint in (REGULAR, CANCELLED):
        return "the occurrence as the rule has it" if fingerprint == REGULAR else "cancelled"
    holder = refused_by(fingerprint)
    if holder is not None:
        return (
            f"left out: refused (409) while booking {holder} held its slot; given back to the "
            "organizer when that booking frees it"
        )
    shape = read_shape(fingerprint)
    if shape is not None:
        series, status = shape
        title = f"{series.title!r} " if series.title is not None else "(title unknown) "
        return (
            f"series {title}{series.rrule} in {series.zone}, first "
            f"{series.start:%Y-%m-%d %H:%M}–{series.end:%H:%M} UTC, {status}"
        )
    read = read_fingerprint(fingerprint)
    if read is None:
        return "nothing yet"
    slot, status = read
    title = f"{slot.title!r} " if slot.title is not None else "(title unknown) "
    return f"{title}{slot.start:%Y-%m-%d %H:%M}–{slot.end:%H:%M} UTC, {status}"


def render(stories: list[Story], settings: Settings) -> list[str]:
    lines: list[str] = []
    for story in stories:
        lk = story.link
        room = settings.room_by_mailbox(story.room)
        name = f", {room.name}" if room is not None else ""
        origin = "booked in Outlook" if lk.link_id.startswith("o:") else "booked in Hybrid"
        if story.unlinked:
            lines.append(f"booking {lk.link_id} ({story.room}{name}): {origin}, not synced")
            lines += _history(story)
            continue
        if lk.original_start is not None:
            lines += [
                f"occurrence {lk.link_id} ({story.room}{name}), originally "
                f"{lk.original_start:%Y-%m-%d %H:%M} UTC: now {lk.state}",
                f"  Hybrid:  {_synced_text(lk.hybrid_fingerprint)}",
                f"  Outlook: {_synced_text(lk.outlook_fingerprint)}",
            ]
            lines += _history(story)
            continue
        lines += [
            f"booking {lk.link_id} ({story.room}{name}): {origin}, now {lk.state}",
            f"  Hybrid:  booking {lk.hybrid_id or '(not created yet)'}",
            f"           last synced: {_synced_text(lk.hybrid_fingerprint)}",
            f"  Outlook: organizer {lk.organizer_mailbox or '(unknown)'}"
            f" event {lk.organizer_event_id or '(unknown)'}",
            f"           room copy {lk.room_event_id or '(not seen yet)'},"
            f" iCalUId {lk.ical_uid or '(unknown)'}",
            f"           last synced: {_synced_text(lk.outlook_fingerprint)}",
        ]
        lines += _history(story)
    return lines


def _history(story: Story) -> list[str]:
    lines = []
    owed = [o for o in story.outbox if o.state != "done"]
    if owed:
        lines.append("  writes still owed:")
        for o in owed:
            error = f", last error: {o.last_error}" if o.last_error else ""
            lines.append(f"    {o.op} ({o.state}, {o.attempts} attempts{error})")
    if story.audit:
        lines.append("  history:")
    for entry in story.audit:
        side = "decided" if entry.side == "none" else f"→ {entry.side}"
        lines.append(
            f"    {entry.at:%Y-%m-%d %H:%M:%S}Z  {side:<9} {entry.action:<14} {entry.reason}"
        )
    lines.append("")
    return lines
