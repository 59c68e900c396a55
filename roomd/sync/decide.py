"""The sync policy: one table from (Hybrid side, Outlook side) to an action, and ``plan``.

Read :data:`DECISIONS` to know what roomd does in any situation: "what happens when Outlook
deletes a meeting?" is the row ``(SAME, GONE)``. Everything here is pure: no I/O, no clock, no
asyncio. The shells hand in what they read (``OutlookItem``, ``HybridItem``) and the room's links;
``plan`` returns the links to store, the remote writes to queue (outbox rows) and the audit lines,
which the shell stores in one transaction with the feed positions (design.md invariant 2).

Each side of a booking is classified against its link:

* ``NONE``: no link and nothing read on that side.
* ``NEW``: read, and no link knows it (a booking made on that side).
* ``ORPHAN``: a Hybrid booking roomd created from an Outlook meeting (it carries the meeting's
  iCalUId as ``reference``) whose link is unknown, and whose meeting the room no longer has.
* ``STRAY``: a cancellation or removal of something no link knows.
* ``SAME``: linked, and nothing changed that the other side would show (echoes land here).
* ``CHANGED``: linked, and start, end, title or (Hybrid) approval state changed.
* ``GONE``: linked, and cancelled or deleted on that side.
* ``RELEASED``: (Hybrid only) cancelled by the room's policy: a no-show or a rejected approval.

A booking whose link is already canceled stays canceled: nothing is recreated from a late echo.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from roomd.store import Link

from .model import (
    HybridItem,
    HybridState,
    HybridStatus,
    OutlookItem,
    OutlookState,
    RoomContext,
    Slot,
    fingerprint,
    link_id_for,
    read_fingerprint,
    recorded_status,
    same_slot,
)


class Seen(StrEnum):
    NONE = "none"
    NEW = "new"
    ORPHAN = "orphan"
    STRAY = "stray"
    SAME = "same"
    CHANGED = "changed"
    GONE = "gone"
    RELEASED = "released"


class Action(StrEnum):
    NOTHING = "nothing"
    LINK = "link"  # the same booking found on both sides: remember, write nothing
    LINK_CANCELED = "link_canceled"  # ... and it is canceled in Hybrid: never resurrect it
    CREATE_HYBRID = "create_hybrid"
    CREATE_OUTLOOK = "create_outlook"
    UPDATE_HYBRID = "update_hybrid"
    UPDATE_OUTLOOK = "update_outlook"
    CANCEL_HYBRID = "cancel_hybrid"  # kept in Hybrid as canceled, never deleted
    CANCEL_OUTLOOK = "cancel_outlook"  # the organizer's meeting is cancelled: every copy follows
    RELEASE_ROOM = "release_room"  # the room's copy only declines; organizer and guests keep it
    MARK_CANCELED = "mark_canceled"  # both sides already say canceled: record it
    RECREATE_HYBRID = "recreate_hybrid"  # Outlook won over a Hybrid cancellation
    RECREATE_OUTLOOK = "recreate_outlook"  # Hybrid won over an Outlook deletion


@dataclass(frozen=True)
class ByRule:
    """Both sides changed since the last sync: the room's ``conflict`` setting picks the winner
    (design.md invariant 9), never a clock comparison between two systems."""

    outlook_wins: Action
    hybrid_wins: Action


N, NEW, ORPHAN, STRAY = Seen.NONE, Seen.NEW, Seen.ORPHAN, Seen.STRAY
SAME, CHANGED, GONE, RELEASED = Seen.SAME, Seen.CHANGED, Seen.GONE, Seen.RELEASED
A = Action

# (Hybrid side, Outlook side) -> what roomd does.
DECISIONS: dict[tuple[Seen, Seen], Action | ByRule] = {
    # --- nothing links them yet ---------------------------------------------------------------
    (N, NEW): A.CREATE_HYBRID,  # booked in Outlook
    (NEW, N): A.CREATE_OUTLOOK,  # booked in Hybrid
    (NEW, NEW): A.LINK,  # found on both sides (a lost link rebuilt)
    (ORPHAN, NEW): A.LINK,  # roomd's own Hybrid booking and its meeting
    (ORPHAN, N): A.NOTHING,  # its meeting is gone: never recreate it in Outlook
    (STRAY, NEW): A.LINK_CANCELED,  # canceled in Hybrid already: no second booking
    (STRAY, N): A.NOTHING,
    (N, STRAY): A.NOTHING,  # a removal of something roomd never synced
    (NEW, STRAY): A.CREATE_OUTLOOK,
    (ORPHAN, STRAY): A.NOTHING,
    (STRAY, STRAY): A.NOTHING,
    # --- linked -------------------------------------------------------------------------------
    (SAME, SAME): A.NOTHING,  # includes every echo of roomd's own writes
    (SAME, CHANGED): A.UPDATE_HYBRID,
    (CHANGED, SAME): A.UPDATE_OUTLOOK,
    (CHANGED, CHANGED): ByRule(A.UPDATE_HYBRID, A.UPDATE_OUTLOOK),
    (SAME, GONE): A.CANCEL_HYBRID,  # Outlook deletion: kept in Hybrid, canceled
    (GONE, SAME): A.CANCEL_OUTLOOK,
    (RELEASED, SAME): A.RELEASE_ROOM,  # no-show or rejection: the room's copy only
    (GONE, GONE): A.MARK_CANCELED,
    (RELEASED, GONE): A.MARK_CANCELED,
    (CHANGED, GONE): ByRule(A.CANCEL_HYBRID, A.RECREATE_OUTLOOK),
    (GONE, CHANGED): ByRule(A.RECREATE_HYBRID, A.CANCEL_OUTLOOK),
    (RELEASED, CHANGED): A.RELEASE_ROOM,  # the room's policy decided; an edit cannot undo it
}

WRITES_HYBRID = frozenset({A.CREATE_HYBRID, A.UPDATE_HYBRID, A.CANCEL_HYBRID, A.RECREATE_HYBRID})
WRITES_OUTLOOK = frozenset(
    {A.CREATE_OUTLOOK, A.UPDATE_OUTLOOK, A.CANCEL_OUTLOOK, A.RELEASE_ROOM, A.RECREATE_OUTLOOK}
)


def decide(hybrid: Seen, outlook: Seen, conflict: str) -> tuple[Action, bool]:
    """The action for one booking, and whether it was a conflict."""
    rule = DECISIONS.get((hybrid, outlook), A.NOTHING)
    if isinstance(rule, ByRule):
        return (rule.hybrid_wins if conflict == "hybrid_wins" else rule.outlook_wins), True
    return rule, False


# --- the plan ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Op:
    """One planned remote write: an outbox row. ``intent_id`` is derived from the change that
    caused it, so planning the same change twice queues it once (design.md invariant 1)."""

    intent_id: str
    op: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class AuditLine:
    booking: str  # the link id: ``roomd explain`` finds it from any of the booking's ids
    side: str  # the side written to ("hybrid", "outlook"), or "none" for a decision to skip
    action: str
    reason: str


@dataclass
class Plan:
    links: list[Link] = field(default_factory=list)
    ops: list[Op] = field(default_factory=list)
    audit: list[AuditLine] = field(default_factory=list)
    changes: dict[tuple[str, str], int] = field(default_factory=dict)  # (direction, outcome)
    conflicts: int = 0
    problems: list[str] = field(default_factory=list)
    breaker: str | None = None  # set: the mass-delete breaker held the whole plan back
    occurrences: int = 0  # live occurrences of the series planned: the breaker counts them

    def count(self, direction: str, outcome: str) -> None:
        key = (direction, outcome)
        self.changes[key] = self.changes.get(key, 0) + 1

    @property
    def empty(self) -> bool:
        return not (self.links or self.ops or self.audit)


@dataclass
class Pair:
    """One booking as this round saw it: its link (if any) and what each side reported."""

    link: Link | None = None
    outlook: OutlookItem | None = None
    hybrid: HybridItem | None = None


class LinkIndex:
    """A room's links by each of the ids that can name them."""

    def __init__(self, links: Iterable[Link]) -> None:
        self.all = list(links)
        self.by_room_event = {lk.room_event_id: lk for lk in self.all if lk.room_event_id}
        self.by_ical = {
            lk.ical_uid: lk for lk in self.all if lk.ical_uid and lk.original_start is None
        }
        self.by_hybrid = {
            lk.hybrid_id: lk for lk in self.all if lk.hybrid_id and lk.original_start is None
        }

    def for_outlook(self, item: OutlookItem) -> Link | None:
        by_id = self.by_room_event.get(item.room_event_id) if item.room_event_id else None
        return by_id or (self.by_ical.get(item.ical_uid) if item.ical_uid else None)

    def for_hybrid(self, item: HybridItem) -> Link | None:
        found = self.by_hybrid.get(item.hybrid_id)
        if found is None and item.reference:
            # a booking roomd made for the link's meeting, its id not recorded yet; a link that
            # knows another booking (made again after this one was canceled) is not this one's
            by_meeting = self.by_ical.get(item.reference)
            if by_meeting is not None and by_meeting.hybrid_id in (None, item.hybrid_id):
                found = by_meeting
        return found

    @property
    def live(self) -> int:
        return sum(1 for lk in self.all if lk.state == "active")


def pair_up(
    links: LinkIndex, outlook: Sequence[OutlookItem], hybrid: Sequence[HybridItem]
) -> list[Pair]:
    """Join what each side reported through the links; an unlinked Hybrid booking whose
    ``reference`` is an unlinked meeting's iCalUId pairs with that meeting. Unlinked items are
    kept apart from linked ones even where their ids look alike: a link made from ``o:<uid>``
    or ``h:<id>`` may since know another meeting or booking (one made again)."""
    pairs: dict[tuple[bool, str], Pair] = {}
    for o in outlook:
        link = links.for_outlook(o)
        if link is not None and (link.series_master_id or link.original_start is not None):
            # a series' removal (its master's id in the room's delta) is the series planner's
            # (series.py), which reads the series whole: planned here too, it was cancelled
            # twice, and counted twice in roomd_changes_total
            continue
        key = (
            (True, link.link_id)
            if link
            else (False, link_id_for("outlook", o.ical_uid or o.room_event_id))
        )
        pair = pairs.setdefault(key, Pair(link=link))
        kept = pair.outlook
        if (
            kept is not None
            and kept.state is OutlookState.LIVE
            and o.state is not OutlookState.LIVE
            and o.room_event_id
            and o.room_event_id != kept.room_event_id
        ):
            continue  # the room holds a live copy: another copy's removal does not free it
        pair.outlook = o  # a later version wins
    for h in hybrid:
        link = links.for_hybrid(h)
        if link is not None:
            key = (True, link.link_id)
        elif h.reference and (False, link_id_for("outlook", h.reference)) in pairs:
            key = (False, link_id_for("outlook", h.reference))
        else:
            key = (False, link_id_for("hybrid", h.hybrid_id))
        pairs.setdefault(key, Pair(link=link)).hybrid = h
    return list(pairs.values())


def hybrid_seen(pair: Pair) -> Seen:
    h, link = pair.hybrid, pair.link
    if h is None:  # linked and nothing new: SAME, also while roomd's own create is owed
        return Seen.NONE if link is None else Seen.SAME
    if link is None:
        if h.state is not HybridState.LIVE:
            return Seen.STRAY
        return Seen.ORPHAN if h.reference else Seen.NEW
    if h.state is HybridState.CANCELED:
        return Seen.GONE
    if h.state is HybridState.RELEASED:
        return Seen.RELEASED
    recorded = link.hybrid_fingerprint or link.outlook_fingerprint
    assert h.slot is not None
    if same_slot(recorded, h.slot) and recorded_status(recorded) in (h.status, None):
        return Seen.SAME
    if link.hybrid_fingerprint is None and same_slot(recorded, h.slot):
        return Seen.SAME  # roomd's create, read back before its result was recorded
    return Seen.CHANGED


def outlook_seen(pair: Pair) -> Seen:
    o, link = pair.outlook, pair.link
    if o is None or (link is not None and o.state is OutlookState.LEFT_WINDOW):
        # linked and nothing new: SAME, also before the room's copy was first read
        return Seen.NONE if link is None else Seen.SAME
    if link is None:
        return Seen.NEW if o.state is OutlookState.LIVE else Seen.STRAY
    if o.state is not OutlookState.LIVE:
        return Seen.GONE
    assert o.slot is not None
    recorded = link.outlook_fingerprint or link.hybrid_fingerprint
    return Seen.SAME if same_slot(recorded, o.slot) else Seen.CHANGED


def plan(
    room: RoomContext,
    links: LinkIndex,
    outlook: Sequence[OutlookItem],
    hybrid: Sequence[HybridItem],
    *,
    force: bool = False,
) -> Plan:
    """Everything this round must write, decided from what both sides reported.

    ``force``: the operator confirmed (``roomd sync --force``) that a round cancelling more
    than the mass-delete threshold is intended.
    """
    out = Plan()
    for pair in pair_up(links, outlook, hybrid):
        _plan_pair(room, pair, out)
    breaker = None if force else mass_delete(room, links, out)
    return Plan(breaker=breaker) if breaker is not None else out


OCCURRENCE_OPS = frozenset({"hybrid.occurrence", "graph.occurrence"})


def cancels_one_occurrence(op: Op) -> bool:
    """An occurrence write that cancels it (a room's no-show release only declines)."""
    payload = op.payload
    return op.op in OCCURRENCE_OPS and bool(payload.get("cancel")) and not payload.get("release")


def mass_delete(room: RoomContext, links: LinkIndex, out: Plan) -> str | None:
    """The mass-delete breaker's reason to hold ``out``'s cancellations, or None.

    Bookings and whole series cancelled are weighed against the room's live links (a series
    is one booking); single occurrences cancelled against the occurrences of the series the
    round read, so that an organizer cancelling a few weeks of a long series goes through,
    and a round that would empty a series (a bug, a misread calendar) is held. Counted by
    intent: a series both planners cancel is one cancellation."""
    whole = {op.intent_id for op in out.ops if op.op in ("hybrid.cancel", "graph.cancel")}
    single = {op.intent_id for op in out.ops if cancels_one_occurrence(op)}
    floor = max(room.mass_delete_min, 1)
    held = (
        f"(mass_delete_threshold {room.mass_delete_threshold:g}, mass_delete_min "
        f"{room.mass_delete_min}); nothing is cancelled until an operator who checked it "
        f"runs `roomd sync --force {room.mailbox}`"
    )
    live = links.live
    if len(whole) >= floor and len(whole) > room.mass_delete_threshold * live:
        return f"this round would cancel {len(whole)} of the room's {live} live bookings {held}"
    read = out.occurrences + len(single)
    if len(single) >= floor and len(single) > room.mass_delete_threshold * read:
        return (
            f"this round would cancel {len(single)} of the {read} occurrences of the room's "
            f"series it read {held}"
        )
    return None


def _plan_pair(room: RoomContext, pair: Pair, out: Plan) -> None:
    o, h, link = pair.outlook, pair.hybrid, pair.link
    for item, side in ((o, "outlook"), (h, "hybrid")):
        if item is not None and item.problem:
            key = link.link_id if link else _key(pair)
            out.audit.append(AuditLine(key, "none", "skipped", f"{side}: {item.problem}"))
            out.count(_direction_from(side), "skipped")
            out.problems.append(item.problem)
            return
    if link is not None and link.state == "canceled":
        _keep_room_free(pair, link, out)
        return  # canceled stays canceled: late echoes and stale copies change nothing
    hs, os_ = hybrid_seen(pair), outlook_seen(pair)
    action, conflict = decide(hs, os_, room.conflict)
    key = link.link_id if link else _key(pair)
    if conflict:
        out.conflicts += 1
        out.audit.append(
            AuditLine(
                key,
                "none",
                "conflict",
                f"both sides changed since the last sync (hybrid {hs}, outlook {os_}); "
                f"rule {room.conflict}: {action}",
            )
        )
    if action in WRITES_HYBRID and room.direction == "hybrid_to_outlook":
        action = A.NOTHING
    if action in WRITES_OUTLOOK and room.direction == "outlook_to_hybrid":
        action = A.NOTHING
    planned = len(out.ops)
    _ACTIONS[action](room, pair, key, out)
    _answer_as_room(room, pair, action, out)
    for op in out.ops[planned:]:
        # when the change happened on the side it came from: the propagation lag's start
        source = pair.outlook if op.op.startswith("hybrid.") else pair.hybrid
        if source is not None and source.modified_at is not None:
            op.payload["changed_at"] = _iso(source.modified_at)


def _key(pair: Pair) -> str:
    if pair.outlook is not None:
        return link_id_for("outlook", pair.outlook.ical_uid or pair.outlook.room_event_id)
    assert pair.hybrid is not None
    return link_id_for("hybrid", pair.hybrid.hybrid_id)


def _direction_from(side: str) -> str:
    return "outlook_to_hybrid" if side == "outlook" else "hybrid_to_outlook"


def _observed(link: Link, pair: Pair) -> Link:
    """The link with the ids this round learnt (a room copy appearing, an adopted booking)."""
    o, h = pair.outlook, pair.hybrid
    changes: dict[str, Any] = {}
    if o is not None and o.state is OutlookState.LIVE:
        changes["room_event_id"] = o.room_event_id
        if o.ical_uid and not link.ical_uid:
            changes["ical_uid"] = o.ical_uid
        if o.organizer_event_id and not link.organizer_event_id:
            changes["organizer_event_id"] = o.organizer_event_id
            changes["organizer_mailbox"] = o.organizer
        if o.change_key:
            changes["outlook_change_key"] = o.change_key
    if h is not None and not link.hybrid_id:
        changes["hybrid_id"] = h.hybrid_id
    return replace(link, **changes) if changes else link


def _store(out: Plan, old: Link | None, new: Link) -> None:
    if new != old:
        out.links.append(new)


# --- what each action writes ------------------------------------------------------------------


def _nothing(room: RoomContext, pair: Pair, key: str, out: Plan) -> None:
    if pair.link is not None:
        _store(out, pair.link, _observed(pair.link, pair))
    elif pair.hybrid is not None and pair.hybrid.reference and pair.outlook is None:
        out.audit.append(
            AuditLine(
                key,
                "none",
                "not_recreated",
                f"Hybrid booking {pair.hybrid.hybrid_id} was made from Outlook meeting "
                f"{pair.hybrid.reference}, which this room no longer has",
            )
        )


def _link(room: RoomContext, pair: Pair, key: str, out: Plan) -> None:
    o, h = pair.outlook, pair.hybrid
    assert o is not None and h is not None and o.slot is not None
    canceled = h.state is not HybridState.LIVE
    link = Link(
        link_id=key,
        hybrid_id=h.hybrid_id,
        room_event_id=o.room_event_id,
        ical_uid=o.ical_uid,
        organizer_mailbox=o.organizer,
        organizer_event_id=o.organizer_event_id,
        outlook_fingerprint=fingerprint(o.slot),
        hybrid_fingerprint=fingerprint(h.slot, h.status) if h.slot else None,
        outlook_change_key=o.change_key,
        state="canceled" if canceled else "active",
    )
    out.links.append(link)
    what = "canceled Hybrid booking" if canceled else "Hybrid booking"
    out.audit.append(
        AuditLine(
            key,
            "none",
            "linked",
            f"{what} {h.hybrid_id} carries this meeting's iCalUId: linked, nothing created",
        )
    )
    out.count("outlook_to_hybrid", "linked")


def _create_hybrid(
    room: RoomContext, pair: Pair, key: str, out: Plan, *, again: bool = False
) -> None:
    o = pair.outlook
    assert o is not None and o.slot is not None and o.ical_uid is not None
    member = o.member_id or room.fallback_member_id
    if member is None:
        problem = (
            f"organizer {o.organizer or '(none)'} has no Hybrid member and no "
            "hybrid.fallback_member is configured: meeting not synced"
        )
        out.audit.append(AuditLine(key, "none", "skipped", problem))
        out.count("outlook_to_hybrid", "skipped")
        out.problems.append(problem)
        return
    description = None
    if o.member_id is None:
        description = f"Booked in Outlook by {o.organizer or 'an unknown organizer'}"
    body = {
        "resource_id": room.hybrid_id,
        "start": _iso(o.slot.start),
        "end": _iso(o.slot.end),
        "summary": o.slot.title or o.room_subject,
        "description": description,
        "member": member,
        "members": [m for m in o.member_ids if m != member],
        "visitors": list(o.visitors),
    }
    old = pair.link
    link = Link(
        link_id=key,
        room_event_id=o.room_event_id,
        ical_uid=o.ical_uid,
        organizer_mailbox=o.organizer,
        organizer_event_id=o.organizer_event_id,
        outlook_fingerprint=fingerprint(o.slot),
        outlook_change_key=o.change_key,
    )
    fp = fingerprint(o.slot)
    intent = f"hybrid.create:{o.ical_uid}" + (f":{fp}" if again else "")
    out.links.append(
        link
        if old is None
        else replace(
            _observed(old, pair), hybrid_id=None, outlook_fingerprint=fp, hybrid_fingerprint=None
        )
    )
    out.ops.append(
        Op(intent, "hybrid.create", {"link_id": key, "booking": body, "reference": o.ical_uid})
    )
    why = (
        "booked in Outlook"
        if not again
        else "changed in Outlook after Hybrid cancelled it (outlook_wins)"
    )
    out.audit.append(AuditLine(key, "hybrid", "create", f"{why}: {_describe(o.slot)}"))
    out.count("outlook_to_hybrid", "created")


def _recreate_hybrid(room: RoomContext, pair: Pair, key: str, out: Plan) -> None:
    _create_hybrid(room, pair, key, out, again=True)


def _create_outlook(
    room: RoomContext, pair: Pair, key: str, out: Plan, *, again: bool = False
) -> None:
    h = pair.hybrid
    assert h is not None and h.slot is not None
    if room.now is not None and h.slot.end <= room.now:
        # no invitations for meetings that are over: a full sync copies the past from Outlook
        out.audit.append(AuditLine(key, "none", "skipped", "ended before it reached Outlook"))
        out.count("hybrid_to_outlook", "skipped")
        return
    # the shell reads people for a new booking only; a linked one (made again after an Outlook
    # deletion, hybrid_wins) keeps the organizer its link knows
    organizer = h.organizer or (pair.link.organizer_mailbox if pair.link else None)
    if organizer is None:
        problem = f"booking {h.hybrid_id}: no organizer is known for its meeting: not synced"
        out.audit.append(AuditLine(key, "none", "skipped", problem))
        out.count("hybrid_to_outlook", "skipped")
        out.problems.append(problem)
        return
    guests = list(h.guests)
    fp = fingerprint(h.slot, h.status)
    event = {
        "subject": h.slot.title or "Room booking",
        "body": {"contentType": "text", "content": h.description or ""},
        "start": {"dateTime": _iso(h.slot.start), "timeZone": "UTC"},
        "end": {"dateTime": _iso(h.slot.end), "timeZone": "UTC"},
        "location": {"displayName": room.name, "locationEmailAddress": room.mailbox},
        "attendees": [
            {"emailAddress": {"address": room.mailbox, "name": room.name}, "type": "resource"},
            *(
                {"emailAddress": {"address": g}, "type": "required"}
                for g in guests
                if g.lower() != organizer.lower()
            ),
        ],
    }
    old = pair.link
    base = Link(link_id=key, hybrid_id=h.hybrid_id) if old is None else old
    link = replace(
        base,
        hybrid_id=h.hybrid_id,
        hybrid_fingerprint=fp,
        outlook_fingerprint=fingerprint(h.slot),
        organizer_mailbox=organizer,
        organizer_event_id=None if again else base.organizer_event_id,
        room_event_id=None if again else base.room_event_id,
        ical_uid=None if again else base.ical_uid,
    )
    out.links.append(link)
    idem = h.hybrid_id + (f":{fp}" if again else "")
    out.ops.append(
        Op(
            f"graph.create:{idem}",
            "graph.create",
            {
                "link_id": key,
                "organizer": organizer,
                # a member with no mailbox in the tenant: the service mailbox organizes and
                # invites the member (never the room itself, docs/graph-behaviour.md 2.1)
                "fallback_organizer": room.service_mailbox,
                "event": event,
                "idempotency_key": idem,
            },
        )
    )
    why = (
        "booked in Hybrid"
        if not again
        else "changed in Hybrid after Outlook deleted it (hybrid_wins)"
    )
    out.audit.append(
        AuditLine(key, "outlook", "create", f"{why}: {_describe(h.slot)}, organizer {organizer}")
    )
    out.count("hybrid_to_outlook", "created")


def _recreate_outlook(room: RoomContext, pair: Pair, key: str, out: Plan) -> None:
    _create_outlook(room, pair, key, out, again=True)


def _update_hybrid(room: RoomContext, pair: Pair, key: str, out: Plan) -> None:
    o, h, link = pair.outlook, pair.hybrid, pair.link
    assert o is not None and o.slot is not None and link is not None
    old = read_fingerprint(link.hybrid_fingerprint or link.outlook_fingerprint)
    status: HybridStatus = old[1] if old else "booked"
    if h is not None and h.state is HybridState.LIVE:
        status = h.status  # an approval read in this round stands whichever side's edit wins
    title = o.slot.title if o.slot.title is not None else (old[0].title if old else None)
    slot = Slot(o.slot.start, o.slot.end, title)
    changes: dict[str, Any] = {"start": _iso(slot.start), "end": _iso(slot.end)}
    if o.slot.title is not None:
        changes["summary"] = o.slot.title
    fp = fingerprint(slot, status)
    new = replace(
        _observed(link, pair), outlook_fingerprint=fingerprint(o.slot), hybrid_fingerprint=fp
    )
    out.links.append(new)
    out.ops.append(
        Op(f"hybrid.update:{key}:{fp}", "hybrid.update", {"link_id": key, "changes": changes})
    )
    out.audit.append(AuditLine(key, "hybrid", "update", f"changed in Outlook: {_describe(slot)}"))
    out.count("outlook_to_hybrid", "updated")


def _update_outlook(room: RoomContext, pair: Pair, key: str, out: Plan) -> None:
    h, link = pair.hybrid, pair.link
    assert h is not None and h.slot is not None and link is not None
    old = read_fingerprint(link.outlook_fingerprint or link.hybrid_fingerprint)
    fp = fingerprint(h.slot, h.status)
    new = replace(
        _observed(link, pair), hybrid_fingerprint=fp, outlook_fingerprint=fingerprint(h.slot)
    )
    out.links.append(new)
    shown = None if old is None else (old[0].start, old[0].end, old[0].title)
    o = pair.outlook
    if o is not None and o.state is OutlookState.LIVE and o.slot is not None:
        # what the meeting shows now, not what was last synced: when Hybrid wins a conflict,
        # Outlook's own edit is overwritten even if Hybrid's only change was its approval
        title = o.slot.title if o.slot.title is not None else (shown[2] if shown else None)
        shown = (o.slot.start, o.slot.end, title)
    moved = shown is None or (shown[0], shown[1]) != (h.slot.start, h.slot.end)
    if moved or (h.slot.title is not None and shown is not None and shown[2] != h.slot.title):
        changes: dict[str, Any] = {
            "start": {"dateTime": _iso(h.slot.start), "timeZone": "UTC"},
            "end": {"dateTime": _iso(h.slot.end), "timeZone": "UTC"},
        }
        if h.slot.title is not None:
            changes["subject"] = h.slot.title
        out.ops.append(
            Op(f"graph.update:{key}:{fp}", "graph.update", {"link_id": key, "changes": changes})
        )
        out.audit.append(
            AuditLine(key, "outlook", "update", f"changed in Hybrid: {_describe(h.slot)}")
        )
        out.count("hybrid_to_outlook", "updated")
    before = recorded_status(link.hybrid_fingerprint)
    if before is not None and before != h.status and new.room_event_id:  # or read just now
        response = "accept" if h.status == "booked" else "tentativelyAccept"
        why = "approved in Hybrid" if h.status == "booked" else "awaiting approval in Hybrid"
        _respond(out, key, response, why, f"{fp}")


def _cancel_hybrid(room: RoomContext, pair: Pair, key: str, out: Plan) -> None:
    o, link = pair.outlook, pair.link
    assert link is not None
    reason = (o.reason if o is not None and o.reason else None) or "deleted in Outlook"
    out.links.append(replace(link, state="canceled"))
    out.ops.append(Op(f"hybrid.cancel:{key}", "hybrid.cancel", {"link_id": key, "reason": reason}))
    out.audit.append(AuditLine(key, "hybrid", "cancel", f"{reason}; kept in Hybrid as canceled"))
    out.count("outlook_to_hybrid", "canceled")


def _cancel_outlook(room: RoomContext, pair: Pair, key: str, out: Plan) -> None:
    h, link = pair.hybrid, pair.link
    assert link is not None
    who = h.cancel_reason if h is not None and h.cancel_reason else "a person"
    out.links.append(replace(_observed(link, pair), state="canceled"))
    comment = "Cancelled in the room booking system"
    out.ops.append(Op(f"graph.cancel:{key}", "graph.cancel", {"link_id": key, "comment": comment}))
    out.audit.append(
        AuditLine(key, "outlook", "cancel", f"cancelled in Hybrid ({who}): meeting cancelled")
    )
    out.count("hybrid_to_outlook", "canceled")


def _release_room(room: RoomContext, pair: Pair, key: str, out: Plan) -> None:
    h, link = pair.hybrid, pair.link
    assert h is not None and link is not None
    out.links.append(replace(_observed(link, pair), state="canceled"))
    rejected = (h.cancel_reason or "").lower() == "rejected"
    comment = (
        "The booking was rejected in the room booking system."
        if rejected
        else "Nobody checked in: the room was released. Your meeting stays in your calendar."
    )
    if link.room_event_id or (pair.outlook and pair.outlook.state is OutlookState.LIVE):
        out.ops.append(
            Op(
                f"graph.respond:{key}:decline",
                "graph.respond",
                {"link_id": key, "response": "decline", "comment": comment},
            )
        )
    reason = "rejected in Hybrid" if rejected else "no-show in Hybrid"
    out.audit.append(
        AuditLine(key, "outlook", "release_room", f"{reason}: the room declines, others keep it")
    )
    out.count("hybrid_to_outlook", "released")


def _keep_room_free(pair: Pair, link: Link, out: Plan) -> None:
    """Canceled stays canceled, and so does the room's answer: a new room copy of a canceled
    booking is declined again.

    After a no-show, a rejection or a refusal the room declines (its copy goes) and the organizer
    keeps the meeting. When the organizer then edits it, Exchange sends the update to the room
    too and its booking assistant books the room again, as a new copy; the assistant may also
    answer a request after roomd declined it, or deliver the copy only after the release. Either
    way the room would hold what Hybrid shows free. The copy the link already knows is an echo,
    or still has its answer coming: nothing to do."""
    o = pair.outlook
    if o is None or o.state is not OutlookState.LIVE or o.slot is None:
        return
    if o.room_event_id == link.room_event_id:
        return
    key = link.link_id
    out.links.append(replace(_observed(link, pair), outlook_fingerprint=fingerprint(o.slot)))
    out.ops.append(
        Op(
            f"graph.respond:{key}:decline:{o.change_key or o.room_event_id}",
            "graph.respond",
            {
                "link_id": key,
                "response": "decline",
                "comment": "The booking was canceled in the room booking system: the room "
                "stays free.",
            },
        )
    )
    out.audit.append(
        AuditLine(
            key,
            "outlook",
            "release_room",
            f"the room holds the meeting again after Hybrid canceled it: it declines again "
            f"({_describe(o.slot)})",
        )
    )
    out.count("hybrid_to_outlook", "released")


def _mark_canceled(room: RoomContext, pair: Pair, key: str, out: Plan) -> None:
    assert pair.link is not None
    out.links.append(replace(pair.link, state="canceled"))
    out.audit.append(AuditLine(key, "none", "canceled", "canceled on both sides"))


def _link_canceled(room: RoomContext, pair: Pair, key: str, out: Plan) -> None:
    _link(room, pair, key, out)


def _respond(out: Plan, key: str, response: str, why: str, version: str) -> None:
    out.ops.append(
        Op(
            f"graph.respond:{key}:{response}:{version}",
            "graph.respond",
            {"link_id": key, "response": response, "comment": ""},
        )
    )
    out.audit.append(AuditLine(key, "outlook", f"room_{response}", why))


def _answer_as_room(room: RoomContext, pair: Pair, action: Action, out: Plan) -> None:
    """The room's answer follows Hybrid's approval state: tentative while a booking awaits
    approval, accepted once booked. Checked whenever the room's copy is read, so it converges
    even when Exchange's booking assistant answered on its own after roomd."""
    o = pair.outlook
    if o is None or o.state is not OutlookState.LIVE or action in WRITES_OUTLOOK:
        return
    links = [lk for lk in out.links if lk.link_id == (pair.link.link_id if pair.link else "")]
    link = links[-1] if links else pair.link
    if link is None or link.state != "active":
        return
    status = recorded_status(link.hybrid_fingerprint)
    wanted = {"booked": "accepted", "tentative": "tentativelyAccepted"}.get(status or "")
    if wanted is None or o.room_response in (None, "organizer", wanted):
        return
    response = "accept" if wanted == "accepted" else "tentativelyAccept"
    why = "approved in Hybrid" if wanted == "accepted" else "awaiting approval in Hybrid"
    _respond(out, link.link_id, response, why, o.change_key or "")


_ACTIONS = {
    A.NOTHING: _nothing,
    A.LINK: _link,
    A.LINK_CANCELED: _link_canceled,
    A.CREATE_HYBRID: _create_hybrid,
    A.CREATE_OUTLOOK: _create_outlook,
    A.UPDATE_HYBRID: _update_hybrid,
    A.UPDATE_OUTLOOK: _update_outlook,
    A.CANCEL_HYBRID: _cancel_hybrid,
    A.CANCEL_OUTLOOK: _cancel_outlook,
    A.RELEASE_ROOM: _release_room,
    A.MARK_CANCELED: _mark_canceled,
    A.RECREATE_HYBRID: _recreate_hybrid,
    A.RECREATE_OUTLOOK: _recreate_outlook,
}


def _iso(value: Any) -> str:
    return str(value.strftime("%Y-%m-%dT%H:%M:%SZ"))


def _describe(slot: Slot) -> str:
    title = f"{slot.title!r} " if slot.title else ""
    return f"{title}{slot.start:%Y-%m-%d %H:%M}–{slot.end:%H:%M} UTC"
