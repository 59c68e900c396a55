"""Recurring series: one booking on each side (design.md invariant 6), planned by the same table.

A series is compared on two levels:

* **the series as a whole** (:class:`Shape`: the rule, its zone, the first occurrence's start and
  end, the title): classified against the link exactly as a one-off booking is, and looked up in
  the same ``decide.DECISIONS`` table: create, update, cancel, conflict rule;
* **each occurrence** that differs from the rule (an *exception*: moved, retitled, or
  cancelled), keyed by its original start: each side's state of that occurrence is compared
  with the state last synced (stored in the occurrence's link,
  ``<series link>@<original start>``), and the side that changed is written to the other.
  Both sides changed: the conflict rule again.

The Outlook side is read from the room's copy of the series (its master and ``/instances``
inside the sync window), so an occurrence the room declined or that was cancelled without a
delta signal is simply missing from the expected occurrences: it counts as cancelled
(docs/graph-behaviour.md 1.4, 2.7). Exceptions are only compared inside that window: what lies
outside it is not read, and not knowing is never a change.

**"This and following"** is no operation of its own on either side: the series ends early
(a changed shape) and a new, unlinked series begins. When both sides changed a series and the
conflict rule's loser split it, the loser's new series goes with its split (``_split_offs``):
it takes the winner's new series' shape when the winner split too, and is cancelled otherwise,
so that no day is held twice. A split may move the series in the same edit (another time of
day, length or zone, on the same days: ``_split_at``); on one side only, it is followed as
any change is. When the round that decides the conflict reads no new series of the loser's
split (a member's app writes the two halves apart; the room's booking assistant answers the
organizer's new series later), the series link records the lost split (``lost_split`` in its
Outlook fingerprint: the losing side and the first occurrence the split removed), and the
winner's series is written whole (Hybrid's rule over the organizer's split end also when
Hybrid changed only the title, ``_hybrid_wins_whole``, as ``_plan_split_off`` does). A later
round that reads one new series on that side, by the series' organizer, beginning that day,
while the series itself is as the conflict left it, cancels it, audited
(``_late_split_offs``), and forgets the record. Cancelled also when the winner split too: by
then the winner's new series has been written to the loser's side, so linking the late one
onto it would make two of it. The record lasts until the series changes again (every write
of its shape drops it): a new series that person begins on that very day before then is
taken for the split's. Not handled: under hybrid_wins, a late new series of the organizer's
that the room itself declines (it reaches the room after Hybrid's series took those days
back) never shows in the room's calendar, so roomd never sees it: the room and Hybrid hold
each day once, the organizer's own calendar shows those days twice.

**An occurrence Hybrid refused (409)** is left out of the Hybrid series (an exdate) and declined
by the room, naming what holds the slot (outbox ``_decline_refused``, ``_move_refused``); its
occurrence link records it cancelled on both sides, and, when Hybrid refused it in a new series,
the booking that held its slot (``refused_fingerprint``; read as cancelled everywhere else).
When that slot frees (issue 8, d: the holder is canceled, released, or moved off it), the
occurrence is the organizer's again without anyone asking: the room declined it only because the
room was taken, the organizer still has it in their calendar and was told why, and nobody will
think to book "the room again" for a date the room turned down. The round whose Hybrid feed
shows the holder reads that series again on both sides (runner ``_refusals_freed``: the series'
own feeds show nothing), and ``_plan_restores`` plans a ``hybrid.restore`` for each refused
occurrence that lies ahead, inside the window, still left out on both sides. The outbox checks
that the organizer still holds it at that time (cancelled or moved meanwhile: it stays out,
audited ``restore_skipped``), lifts the exdate (a 409: the slot is taken anew, it stays declined,
recorded with the new holder and not audited again), then has the room asked again on the
organizer's occurrence: a declined occurrence has left the room's calendar (event-decline.md,
docs/graph-behaviour.md 2.6), so there is nothing to accept as the room; the room is taken off
the occurrence's attendees and added back, updates that reach that attendee only
(event-update.md), and its booking assistant accepts a free slot (Set-CalendarProcessing
AutoAccept "free = accept; busy = decline"). Audited "restored" with the booking that had held
the slot; the link records Hybrid's side regular and Outlook's cancelled until the room's answer
comes back through its delta. Never for an occurrence the room declined by its own policy (its
booking window, a conflict in Outlook), one a member cancelled in Hybrid (final,
``_decline_cancelled``), a week a zone shift put elsewhere in Hybrid, or one refused where
Outlook moved it (``_move_refused``): none of those records a holder. Not handled: the room's
booking assistant declining the re-invite (the slot taken in Exchange between the check and its
answer) leaves Hybrid holding the occurrence.

**Outlook's reschedule gives cancelled occurrences back**: a new start or rule drops the series'
exceptions, cancelled occurrences too (``_rescheduled_away``). The update writing it to Hybrid
lifts the exdates it dropped (``_dropped_exdates``: those both sides last synced cancelled,
refused ones too, as the room re-answers the rescheduled series; not Outlook's cancelled ones
now, a member's new ones, nor the final ones), and records them regular; otherwise one would
cancel that day again once the series is back at that time. Retimed and back before a round
(the series reads unchanged), or held again by the room on its own (Exchange re-sending the
series), an occurrence last synced cancelled reads regular in Outlook: its exdate is lifted
(``_lift_exdate``; a 409 there: the room declines it, left out with its holder).

Pure, like ``decide``: no I/O, no clock.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from roomd.store import Link, LinkState

from .decide import (
    WRITES_HYBRID,
    WRITES_OUTLOOK,
    A,
    Action,
    AuditLine,
    LinkIndex,
    Op,
    Plan,
    Seen,
    decide,
)
from .model import (
    HybridState,
    HybridStatus,
    OutlookState,
    RoomContext,
    Slot,
    fingerprint,
    link_id_for,
    read_fingerprint,
)
from .recurrence import occurrences
from .rule_shift import NotExpressible, rule_in_zone, same_occurrences
from .zones import to_windows, zone_info

REGULAR = "regular"
CANCELLED = "cancelled"
REFUSED = "refused:"
"""An occurrence link's Hybrid side when Hybrid refused the occurrence (409) and the series was
written without it (an exdate): cancelled, as ``CANCELLED``, and held by the booking whose id
follows, so the round whose feed shows that booking gone can give the occurrence back."""


def refused_fingerprint(holder_id: str) -> str:
    return REFUSED + holder_id


def refused_by(text: str | None) -> str | None:
    """The booking that held the slot of an occurrence Hybrid refused, or None."""
    return text[len(REFUSED) :] if text is not None and text.startswith(REFUSED) else None


def _plain(text: str | None) -> str | None:
    """An occurrence's recorded state without the refusal's holder (which is no state)."""
    return CANCELLED if refused_by(text) is not None else text


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError(f"{value.isoformat()} has no time zone; the engine works in UTC")
    return value.astimezone(UTC).replace(microsecond=0)


def iso(value: datetime) -> str:
    return _utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class Shape:
    """What both sides own of a series as a whole. ``rrule`` is in the canonical form both
    shells produce (``recurrence.rrule_from_graph`` of the Graph pattern), evaluated in
    ``zone`` from ``start``; ``title`` None when the side cannot tell it."""

    rrule: str
    zone: str
    start: datetime
    end: datetime
    title: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", _utc(self.start))
        object.__setattr__(self, "end", _utc(self.end))
        if self.end <= self.start:
            raise ValueError(f"end {self.end.isoformat()} is not after start {self.start}")


def shape_fingerprint(shape: Shape, status: HybridStatus = "booked") -> str:
    data = {
        "rrule": shape.rrule,
        "zone": shape.zone,
        "start": iso(shape.start),
        "end": iso(shape.end),
        "status": status,
    }
    if shape.title is not None:
        data["title"] = shape.title
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def read_shape(text: str | None) -> tuple[Shape, HybridStatus] | None:
    if not text:
        return None
    try:
        data = json.loads(text)
        shape = Shape(
            data["rrule"],
            data["zone"],
            datetime.fromisoformat(data["start"]),
            datetime.fromisoformat(data["end"]),
            data.get("title"),
        )
    except (ValueError, KeyError, TypeError):
        return None
    status = data.get("status", "booked")
    return (shape, status) if status in ("booked", "tentative", "canceled") else None


def same_shape(recorded: str | None, seen: Shape) -> bool:
    old = read_shape(recorded)
    if old is None:
        return False
    shape = old[0]
    if (shape.rrule, shape.zone, shape.start, shape.end) != (
        seen.rrule,
        seen.zone,
        seen.start,
        seen.end,
    ):
        return False
    return seen.title is None or shape.title is None or seen.title == shape.title


ExceptionState = Slot | None
"""An occurrence that differs from the rule: moved or retitled (its slot; its ``title`` only when
it is not the series', so a series retitled later does not make every exception differ) or
cancelled (None)."""


def exception_fingerprint(state: ExceptionState | str) -> str:
    if state == REGULAR:
        return REGULAR
    if state is None:
        return CANCELLED
    assert isinstance(state, Slot)
    return fingerprint(state)


def hybrid_rule(shape: Shape, hybrid_zone: str) -> str:
    """The rule Hybrid must hold for the series, which it evaluates in the room's zone and
    which must start on its first occurrence (docs/hybrid-api.md): the series' own, moved by
    the days its first occurrence moves between the two zones' calendars (a New York
    organizer's 20:00 Monday is 01:00 Tuesday in London; the 15th of the month at 20:00 is
    the 16th there). Raises ``rule_shift.NotExpressible`` when no single rule in the room's
    zone has the series' occurrences (the caller fails the series clearly)."""
    return rule_in_zone(shape.rrule, shape.start, shape.zone, hybrid_zone)


def organizer_shape(hybrid: Shape, link: Link) -> Shape:
    """Hybrid's series as the organizer's calendar must hold it: a series whose Outlook rule
    runs in another zone than the room's keeps that zone and its own pattern (a New York
    organizer's 09:00 stays 09:00 New York time in the weeks London disagrees), changed only
    in what the member changed in Hybrid: the title, the length, or (moved back into the
    organizer's zone) the start and rule. Hybrid's shape itself when both zones agree or
    nothing was synced before. Raises ``rule_shift.NotExpressible`` when the member's new
    rule has no counterpart in the organizer's zone."""
    synced = read_shape(link.outlook_fingerprint)
    if synced is None or synced[0].zone == hybrid.zone:
        return hybrid
    ours = synced[0]
    held = read_shape(link.hybrid_fingerprint)
    if held is not None and (held[0].rrule, held[0].start) == (hybrid.rrule, hybrid.start):
        # the member changed the title or the length only
        return replace(ours, end=ours.start + (hybrid.end - hybrid.start), title=hybrid.title)
    if same_occurrences(ours.rrule, ours.zone, hybrid.rrule, hybrid.zone, hybrid.start):
        rule = ours.rrule  # a new start the organizer's rule still has (a new time of day)
    else:
        rule = rule_in_zone(hybrid.rrule, hybrid.start, hybrid.zone, ours.zone)
    return Shape(rule, ours.zone, hybrid.start, hybrid.end, hybrid.title)


def graph_time(instant: datetime, zone: str) -> dict[str, str]:
    """A Graph ``dateTimeTimeZone`` on ``zone``'s wall clock, the zone by its Windows name
    where it has one (what every Graph endpoint takes; resources/datetimetimezone.md)."""
    try:
        name = to_windows(zone)
    except ValueError:
        name = zone
    wall = instant.astimezone(zone_info(zone))
    return {"dateTime": wall.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": name}


def zone_shifts(shape: Shape, hybrid_zone: str, until: datetime) -> dict[datetime, datetime]:
    """The occurrences before ``until`` that Hybrid would put at another instant than the
    series: each original start (the rule in the series' own zone, as Outlook evaluates it)
    -> the start of the same occurrence in Hybrid, which evaluates every rule in the room's
    zone (docs/hybrid-api.md). A New York organizer's 09:00 weekly meeting in a London room is
    14:00 in London, but 13:00 in the weeks when one zone has changed its clocks and the other
    not yet: Hybrid's rule says 14:00. Occurrences are paired in order from the first, which
    both sides share. Empty when both zones agree (the same zone, or the same rules)."""
    if hybrid_zone == shape.zone or until <= shape.start:
        return {}
    try:
        ours = _rule_starts(shape, (shape.start, until))
        theirs = occurrences(
            hybrid_rule(shape, hybrid_zone),
            dtstart_local=shape.start,
            zone=hybrid_zone,
            exdates=(),
            between=(shape.start, until + timedelta(days=1)),
        )
    except ValueError:
        return {}
    return {z: h for z, h in zip(ours, theirs, strict=False) if z != h}


@dataclass(frozen=True, slots=True)
class OutlookSeries:
    """The room's copy of a series, read by the shell: its master, and the exceptions inside
    ``window`` (original start → moved slot, or None for an occurrence the room does not hold).
    ``occurrences`` are the room copy's occurrence ids by original start (for answers as the
    room)."""

    master_id: str
    state: OutlookState
    ical_uid: str | None = None
    shape: Shape | None = None
    exceptions: Mapping[datetime, ExceptionState] = field(default_factory=dict)
    window: tuple[datetime, datetime] | None = None
    occurrences: Mapping[datetime, str] = field(default_factory=dict)
    organizer: str | None = None
    organizer_master_id: str | None = None
    member_id: str | None = None
    member_ids: tuple[str, ...] = ()
    visitors: tuple[str, ...] = ()
    room_response: str | None = None
    room_subject: str | None = None
    reason: str | None = None
    modified_at: datetime | None = None
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class HybridSeries:
    """A recurring Hybrid booking with its exdates and exception children. ``released`` are
    the original starts of cancelled occurrences that the room's policy released (a no-show):
    the room declines those, the organizer keeps them. ``final`` are those whose exception
    child is canceled: Hybrid cannot bring them back (a change to a canceled booking, or a
    second exception for the occurrence, is a 409; docs/hybrid-api.md)."""

    hybrid_id: str
    state: HybridState
    shape: Shape | None = None
    exceptions: Mapping[datetime, ExceptionState] = field(default_factory=dict)
    released: frozenset[datetime] = frozenset()
    final: frozenset[datetime] = frozenset()
    stale: tuple[datetime, ...] = ()  # live exception children that replace no occurrence
    tentative: bool = False
    cancel_reason: str | None = None
    reference: str | None = None
    organizer: str | None = None
    guests: tuple[str, ...] = ()
    description: str | None = None
    modified_at: datetime | None = None
    problem: str | None = None

    @property
    def status(self) -> HybridStatus:
        if self.state is not HybridState.LIVE:
            return "canceled"
        return "tentative" if self.tentative else "booked"


@dataclass
class SeriesPair:
    link: Link | None = None
    outlook: OutlookSeries | None = None
    hybrid: HybridSeries | None = None


def pair_series(
    links: LinkIndex, outlook: Sequence[OutlookSeries], hybrid: Sequence[HybridSeries]
) -> list[SeriesPair]:
    pairs: dict[str, SeriesPair] = {}
    for o in outlook:
        link = links.by_room_event.get(o.master_id) or (
            links.by_ical.get(o.ical_uid) if o.ical_uid else None
        )
        key = link.link_id if link else link_id_for("outlook", o.ical_uid or o.master_id)
        pairs.setdefault(key, SeriesPair(link=link)).outlook = o
    for h in hybrid:
        link = links.by_hybrid.get(h.hybrid_id)
        if link is None and h.reference:
            candidate = links.by_ical.get(h.reference)
            if candidate is not None and candidate.hybrid_id in (None, h.hybrid_id):
                link = candidate
        if link is not None:
            key = link.link_id
        elif h.reference and link_id_for("outlook", h.reference) in pairs:
            key = link_id_for("outlook", h.reference)
        else:
            key = link_id_for("hybrid", h.hybrid_id)
        pairs.setdefault(key, SeriesPair(link=link)).hybrid = h
    return list(pairs.values())


def _hybrid_seen(pair: SeriesPair) -> Seen:
    h, link = pair.hybrid, pair.link
    if h is None:
        return Seen.NONE if link is None else Seen.SAME
    if link is None:
        if h.state is not HybridState.LIVE:
            return Seen.STRAY
        return Seen.ORPHAN if h.reference else Seen.NEW
    if h.state is HybridState.CANCELED:
        return Seen.GONE
    if h.state is HybridState.RELEASED:
        return Seen.RELEASED
    assert h.shape is not None
    recorded = link.hybrid_fingerprint or link.outlook_fingerprint
    old = read_shape(recorded)
    if link.hybrid_fingerprint is None and old is not None:
        # roomd's create, read back before its result was recorded: Hybrid holds it in the
        # room's zone, whatever zone the Outlook series runs in
        zone = h.shape.zone
        with contextlib.suppress(NotExpressible):  # then never created: no rule to compare
            recorded = shape_fingerprint(
                replace(old[0], zone=zone, rrule=hybrid_rule(old[0], zone)), old[1]
            )
    status_same = old is None or old[1] == h.status or link.hybrid_fingerprint is None
    return Seen.SAME if same_shape(recorded, h.shape) and status_same else Seen.CHANGED


def _outlook_seen(pair: SeriesPair) -> Seen:
    o, link = pair.outlook, pair.link
    if o is None or (link is not None and o.state is OutlookState.LEFT_WINDOW):
        return Seen.NONE if link is None else Seen.SAME
    if link is None:
        return Seen.NEW if o.state is OutlookState.LIVE else Seen.STRAY
    if o.state is not OutlookState.LIVE:
        return Seen.GONE
    assert o.shape is not None
    recorded = link.outlook_fingerprint or link.hybrid_fingerprint
    return Seen.SAME if same_shape(recorded, o.shape) else Seen.CHANGED


def plan_series(
    room: RoomContext,
    links: LinkIndex,
    outlook: Sequence[OutlookSeries],
    hybrid: Sequence[HybridSeries],
    out: Plan,
    *,
    holders: Mapping[str, Holder] | None = None,
) -> None:
    """Add what the series this round read need to ``out`` (the round's one plan).

    Series already linked are planned first: their writes (a new end, a new time, a cancel)
    may free occurrences that a new series in the same round takes, as when "this and
    following" ends one series where the next begins, and Hybrid refuses (409) a series over
    occurrences another still holds. Writes run in the order they are planned. A series both
    sides split is planned with the two new series it became (``_split_offs``), in the order
    that frees before it takes."""
    by_id = {lk.link_id: lk for lk in links.all}
    pairs = pair_series(links, outlook, hybrid)
    splits = _split_offs(room, pairs)
    late = _late_split_offs(room, links, pairs, {id(p) for s in splits for p in s.taken})
    taken = {id(p) for s in splits for p in s.taken} | {id(x.lost) for x in late}
    rest = sorted((p for p in pairs if id(p) not in taken), key=lambda p: p.link is None)
    for late_one in late:  # frees days the series holds again
        _plan_late_split_off(room, late_one, pairs, out)
    for split in splits:  # a write that frees the loser's days goes before the one taking them
        if split.first:
            _plan_split_off(room, split, by_id, out)
    for pair in rest:
        lost = _lost_split_at(room, pair, splits)
        if lost is not None and lost[0] == "outlook":
            _hybrid_wins_whole(room, pair, out)
        _plan_one(room, pair, by_id, out)
        if lost is not None:
            _note_lost_split(out, pair, *lost)
        for split in splits:
            if split.original is pair and not split.first:
                _plan_split_off(room, split, by_id, out)
    if holders:
        _plan_restores(room, pairs, by_id, out, holders)


# --- "this and following" in a conflict -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _SplitOff:
    """A linked series changed on both sides since the last sync, where the side the room's
    conflict rule does not pick split it ("this and following": ended it early, and began a
    new series on the day it ended it before). The rule picks the winner's series, whole (the
    split's end is undone, as for any change the loser made), so the loser's new series is no
    series of its own: it held the same days as the winner's series, and was written to the
    other side beside it (Hybrid refused one of them, 409, or the room declined it).

    * ``pair``: the winner split too: the two new series are the same part of the series; the
      loser's takes the winner's shape (linked to both), as the original takes the winner's.
    * ``lost``: the winner did not split (or its new series is not read yet): the loser's new
      series is cancelled, audited as the conflict rule's choice.

    ``taken``: the unlinked pairs this replaces in the plan. ``first``: planned before the
    original, whose winning shape takes back days the loser's new series frees."""

    original: SeriesPair
    taken: tuple[SeriesPair, ...]
    winner: str
    first: bool
    pair: SeriesPair | None = None
    lost: SeriesPair | None = None


def _rule_starts(shape: Shape, between: tuple[datetime, datetime]) -> list[datetime]:
    """The starts in ``between`` of every occurrence ``shape``'s rule has, in its own zone,
    before any exception or exdate (ValueError: a rule roomd cannot evaluate)."""
    return occurrences(
        shape.rrule, dtstart_local=shape.start, zone=shape.zone, exdates=(), between=between
    )


def _split_at(old: Shape, new: Shape, until: datetime) -> datetime | None:
    """The first occurrence (before ``until``) of the series ``old`` that ``new`` no longer has,
    when ``new`` is ``old`` ended early ("this and following": its occurrences' days a strict
    prefix of the old ones', each in its series' zone); None for any other change. The
    series may have moved as well, in the same edit (another time of day, length or zone, on
    the same days): its new series too is the split's."""
    try:
        before = _rule_starts(old, (old.start, until))
        after = _rule_starts(new, (new.start, until))
    except ValueError:
        return None
    if not after or len(after) >= len(before):
        return None
    old_tz, new_tz = zone_info(old.zone), zone_info(new.zone)
    days = [t.astimezone(old_tz).date() for t in before[: len(after)]]
    if days != [t.astimezone(new_tz).date() for t in after]:
        return None
    return before[len(after)]


def _began(
    shape: Shape | None, person: str | None, at: datetime, zone: str, who: str | None
) -> bool:
    """Whether a new series is the one ``who`` began where a split removed ``at``: its first
    occurrence on that day (in the series' zone; at any time of it), by the same person."""
    if shape is None or (who and (person or "").lower() != who.lower()):
        return False
    tz = zone_info(zone)
    return shape.start.astimezone(tz).date() == at.astimezone(tz).date()


def _new_series(pairs: Sequence[SeriesPair]) -> tuple[list[SeriesPair], list[SeriesPair]]:
    """The live series this round read on one side only, that no link knows: (Outlook's,
    Hybrid's, not roomd's own)."""
    outlook = [
        p
        for p in pairs
        if p.link is None
        and p.hybrid is None
        and p.outlook is not None
        and p.outlook.state is OutlookState.LIVE
        and p.outlook.shape is not None
        and p.outlook.ical_uid is not None
        and not p.outlook.problem
    ]
    hybrid = [
        p
        for p in pairs
        if p.link is None
        and p.outlook is None
        and p.hybrid is not None
        and p.hybrid.state is HybridState.LIVE
        and p.hybrid.shape is not None
        and not p.hybrid.reference
        and not p.hybrid.problem
    ]
    return outlook, hybrid


def _both_changed(pair: SeriesPair) -> bool:
    o, h, link = pair.outlook, pair.hybrid, pair.link
    return (
        link is not None
        and link.state == "active"
        and o is not None
        and h is not None
        and not o.problem
        and not h.problem
        and o.state is OutlookState.LIVE
        and h.state is HybridState.LIVE
        and o.shape is not None
        and h.shape is not None
        and o.window is not None
        and _hybrid_seen(pair) is Seen.CHANGED
        and _outlook_seen(pair) is Seen.CHANGED
    )


def _split_offs(room: RoomContext, pairs: Sequence[SeriesPair]) -> list[_SplitOff]:
    """The linked series the conflict rule's loser split since the last sync, with the new
    series it began (one new, unlinked series on that side, by the series' organizer, its
    first occurrence on the day the split removed first), and the winner's if it split too.
    Only where the winner may be written (the room's ``direction``)."""
    winner = "hybrid" if room.conflict == "hybrid_wins" else "outlook"
    if room.direction == ("hybrid_to_outlook" if winner == "outlook" else "outlook_to_hybrid"):
        return []
    new_o, new_h = _new_series(pairs)
    if not (new_h if winner == "outlook" else new_o):
        return []
    found: list[_SplitOff] = []
    for pair in pairs:
        if not _both_changed(pair):
            continue
        o, h, link = pair.outlook, pair.hybrid, pair.link
        assert o is not None and h is not None and link is not None
        assert o.shape is not None and h.shape is not None and o.window is not None
        old_o = read_shape(link.outlook_fingerprint or link.hybrid_fingerprint)
        old_h = read_shape(link.hybrid_fingerprint or link.outlook_fingerprint)
        if old_o is None or old_h is None:
            continue
        who, zone = link.organizer_mailbox, old_o[0].zone
        at_o = _split_at(old_o[0], o.shape, o.window[1])
        at_h = _split_at(old_h[0], h.shape, o.window[1])
        outlook_new = [
            p
            for p in new_o
            if at_o is not None
            and p.outlook is not None
            and _began(p.outlook.shape, p.outlook.organizer, at_o, zone, who)
        ]
        hybrid_new = [
            p
            for p in new_h
            if at_h is not None
            and p.hybrid is not None
            and _began(p.hybrid.shape, p.hybrid.organizer, at_h, zone, who)
        ]
        lost, won = (hybrid_new, outlook_new) if winner == "outlook" else (outlook_new, hybrid_new)
        if len(lost) != 1:
            continue
        if len(won) == 1:
            assert at_o is not None and at_h is not None
            split = _SplitOff(
                original=pair,
                taken=(lost[0], won[0]),
                winner=winner,
                first=(at_o > at_h) if winner == "outlook" else (at_h > at_o),
                pair=_split_pair(winner, outlook_new[0], hybrid_new[0]),
            )
        else:
            split = _SplitOff(
                original=pair, taken=(lost[0],), winner=winner, first=True, lost=lost[0]
            )
        for used in split.taken:  # each new series is one split's
            for side in (new_o, new_h):
                if used in side:
                    side.remove(used)
        found.append(split)
    return found


def _outlook_link(
    key: str,
    o: OutlookSeries,
    outlook_fingerprint: str,
    *,
    hybrid_id: str | None = None,
    hybrid_fingerprint: str | None = None,
    state: LinkState = "active",
) -> Link:
    """A link naming the room's copy of the Outlook series ``o`` and its organizer's: the ids
    every series link read from Outlook carries, in one place."""
    return Link(
        link_id=key,
        hybrid_id=hybrid_id,
        room_event_id=o.master_id,
        series_master_id=o.master_id,
        ical_uid=o.ical_uid,
        organizer_mailbox=o.organizer,
        organizer_event_id=o.organizer_master_id,
        outlook_fingerprint=outlook_fingerprint,
        hybrid_fingerprint=hybrid_fingerprint,
        state=state,
    )


def _split_pair(winner: str, outlook: SeriesPair, hybrid: SeriesPair) -> SeriesPair:
    """The two new series linked, recorded as the loser's shape: the pair reads as changed on
    the winner's side only, and is planned as any linked series (the winner's shape written)."""
    n_o, n_h = outlook.outlook, hybrid.hybrid
    assert n_o is not None and n_o.shape is not None and n_o.ical_uid is not None
    assert n_h is not None and n_h.shape is not None
    loser = n_h.shape if winner == "outlook" else n_o.shape
    link = _outlook_link(
        link_id_for("outlook", n_o.ical_uid),
        n_o,
        shape_fingerprint(loser),
        hybrid_id=n_h.hybrid_id,
        hybrid_fingerprint=shape_fingerprint(loser, n_h.status),
    )
    return SeriesPair(link=link, outlook=n_o, hybrid=n_h)


def _plan_split_off(room: RoomContext, split: _SplitOff, by_id: dict[str, Link], out: Plan) -> None:
    original = split.original
    assert original.link is not None and original.outlook is not None
    assert original.outlook.shape is not None
    out.conflicts += 1
    since = f"since the last sync; rule {room.conflict}"
    if split.pair is not None:
        pair = split.pair
        assert pair.link is not None and pair.outlook is not None and pair.hybrid is not None
        if split.winner == "outlook":
            loser = f"Hybrid's new series {pair.hybrid.hybrid_id} takes Outlook's times"
        else:
            loser = f"Outlook's new series {pair.outlook.master_id} takes Hybrid's times"
        out.audit.append(
            AuditLine(
                pair.link.link_id,
                "none",
                "conflict",
                f"both sides split series {original.link.link_id} (this and following) {since}: "
                f"{loser}, no second new series",
            )
        )
        _plan_one(room, pair, by_id, out)
        return
    assert split.lost is not None
    why = (
        f"split off series {original.link.link_id} (this and following), which the other side "
        f"changed too {since}: that side's series wins whole, the split is undone"
    )
    _cancel_split_off(split.lost, split.winner, why, out)
    if split.winner == "hybrid":
        # Hybrid's series wins whole: its rule is written over the organizer's split end too,
        # also when Hybrid changed only the title (which alone would leave Outlook's times)
        original.link = replace(
            original.link, outlook_fingerprint=shape_fingerprint(original.outlook.shape)
        )


def _cancel_split_off(lost: SeriesPair, winner: str, why: str, out: Plan) -> None:
    """Cancel the conflict rule's loser's new series (``lost``, unlinked, on the side that is
    not ``winner``), audited as the rule's choice: Hybrid keeps it as canceled; the organizer's
    is cancelled with a comment saying why."""
    if winner == "outlook":
        h = lost.hybrid
        assert h is not None and h.shape is not None
        key = link_id_for("hybrid", h.hybrid_id)
        out.links.append(
            Link(
                link_id=key,
                hybrid_id=h.hybrid_id,
                hybrid_fingerprint=shape_fingerprint(h.shape, "canceled"),
                state="canceled",
            )
        )
        reason = f"Hybrid's new series {why}"
        out.audit.append(AuditLine(key, "none", "conflict", reason))
        out.ops.append(
            Op(f"hybrid.cancel:{key}", "hybrid.cancel", {"link_id": key, "reason": reason})
        )
        out.audit.append(AuditLine(key, "hybrid", "cancel", f"{reason}; kept as canceled"))
        out.count("outlook_to_hybrid", "canceled")
        return
    o = lost.outlook
    assert o is not None and o.shape is not None and o.ical_uid is not None
    key = link_id_for("outlook", o.ical_uid)
    out.links.append(_outlook_link(key, o, shape_fingerprint(o.shape), state="canceled"))
    reason = f"Outlook's new series {why}"
    out.audit.append(AuditLine(key, "none", "conflict", reason))
    out.ops.append(
        Op(
            f"graph.cancel:{key}",
            "graph.cancel",
            {
                "link_id": key,
                "comment": "Cancelled: the series was changed in the room booking system at "
                "the same time, and its change wins; this part of it is there again.",
            },
        )
    )
    out.audit.append(AuditLine(key, "outlook", "cancel", reason))
    out.count("hybrid_to_outlook", "canceled")


# --- a losing split whose new series is read in a later round ----------------------------------

LOST_SPLIT = "lost_split"
"""The key of a series link's Outlook fingerprint (its JSON) that records a split the conflict
rule undid while the loser's new series was not read yet: ``{"side", "at"}``, the losing side
and the first occurrence its split removed. ``read_shape`` ignores it; a later change of the
series writes a new fingerprint without it."""


@dataclass(frozen=True, slots=True)
class _LateSplitOff:
    """A new series read on one side only, which is the new series of a split that side lost
    in an earlier round (``original``'s link records it): it goes with its split."""

    original: Link
    lost: SeriesPair
    winner: str


def _winner(room: RoomContext) -> str:
    return "hybrid" if room.conflict == "hybrid_wins" else "outlook"


def _lost_split_at(
    room: RoomContext, pair: SeriesPair, splits: Sequence[_SplitOff]
) -> tuple[str, datetime] | None:
    """(the losing side, the first occurrence its split removed) when both sides changed
    ``pair`` since the last sync, the conflict rule's loser ended it early ("this and
    following") and this round read no new series of that split: its new series may be read
    in a later round (a member's app writes the two halves apart; the room's booking assistant
    answers the organizer's new series later), once the winner's series has been written over
    the split's end. None otherwise, or where the winner is not written (``direction``)."""
    winner = _winner(room)
    if room.direction == ("hybrid_to_outlook" if winner == "outlook" else "outlook_to_hybrid"):
        return None
    if any(s.original is pair for s in splits) or not _both_changed(pair):
        return None
    o, h, link = pair.outlook, pair.hybrid, pair.link
    assert o is not None and h is not None and link is not None and o.window is not None
    loser = h.shape if winner == "outlook" else o.shape
    old = read_shape(
        link.hybrid_fingerprint or link.outlook_fingerprint
        if winner == "outlook"
        else link.outlook_fingerprint or link.hybrid_fingerprint
    )
    if old is None or loser is None:
        return None
    at = _split_at(old[0], loser, o.window[1])
    return None if at is None else ("hybrid" if winner == "outlook" else "outlook", at)


def _hybrid_wins_whole(room: RoomContext, pair: SeriesPair, out: Plan) -> None:
    """Hybrid's series wins over the organizer's split whole, as in ``_plan_split_off``: its
    rule is written over the split's end too, also when Hybrid changed only the title (which
    alone would leave the split's end in Outlook, and the late new series then booked in
    Hybrid too, though the rule picked Hybrid's series). The link is read with Outlook's
    split as last synced, so the conflict is counted and audited here."""
    link, o = pair.link, pair.outlook
    assert link is not None and o is not None and o.shape is not None
    out.conflicts += 1
    out.audit.append(
        AuditLine(
            link.link_id,
            "none",
            "conflict",
            f"both sides changed the series since the last sync; the organizer ended it early "
            f"(this and following) and Hybrid changed it; rule {room.conflict}: Hybrid's "
            f"series is written whole",
        )
    )
    pair.link = replace(link, outlook_fingerprint=shape_fingerprint(o.shape))


def _note_lost_split(out: Plan, pair: SeriesPair, side: str, at: datetime) -> None:
    """Record the lost split in the series link this round writes (the winner's shape)."""
    assert pair.link is not None
    for n in range(len(out.links) - 1, -1, -1):
        link = out.links[n]
        if link.link_id != pair.link.link_id or link.original_start is not None:
            continue
        if link.state != "active" or not link.outlook_fingerprint:
            return
        with contextlib.suppress(ValueError, TypeError):
            data = json.loads(link.outlook_fingerprint)
            data[LOST_SPLIT] = {"side": side, "at": iso(at)}
            text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
            out.links[n] = replace(link, outlook_fingerprint=text)
        return


def _lost_split(link: Link) -> tuple[str, datetime] | None:
    """What ``_note_lost_split`` recorded in ``link``, if anything (parsed only where the text
    names it: every link of the room is asked, every round that reads a series)."""
    text = link.outlook_fingerprint
    if link.original_start is not None or link.state != "active" or not text:
        return None
    if f'"{LOST_SPLIT}"' not in text:
        return None
    try:
        note = json.loads(text).get(LOST_SPLIT)
        side, at = note["side"], datetime.fromisoformat(note["at"])
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
    return (side, _utc(at)) if side in ("outlook", "hybrid") and at.tzinfo else None


def _forget_lost_split(link: Link) -> Link:
    data = json.loads(link.outlook_fingerprint or "{}")
    data.pop(LOST_SPLIT, None)
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return replace(link, outlook_fingerprint=text)


def _late_split_offs(
    room: RoomContext, links: LinkIndex, pairs: Sequence[SeriesPair], taken: set[int]
) -> list[_LateSplitOff]:
    """The new series this round read that are the new series of a split lost in an earlier
    round: one new, unlinked series on the losing side, by the series' organizer, its first
    occurrence on the day the split removed first (as ``_split_offs`` pairs them in one
    round). Not when this round reads the series itself changed again (a split done anew
    after the conflict is the person's new decision, planned as any change)."""
    if not any(_lost_split(lk) for lk in links.all):
        return []
    new_o, new_h = ([p for p in side if id(p) not in taken] for side in _new_series(pairs))
    read = {p.link.link_id: p for p in pairs if p.link is not None}
    found: list[_LateSplitOff] = []
    for link in links.all:
        note = _lost_split(link)
        recorded = read_shape(link.outlook_fingerprint)
        if note is None or recorded is None:
            continue
        side, at = note
        if room.direction == ("hybrid_to_outlook" if side == "hybrid" else "outlook_to_hybrid"):
            continue  # the loser's side is not written (any more)
        pair = read.get(link.link_id)
        if pair is not None and Seen.CHANGED in (_hybrid_seen(pair), _outlook_seen(pair)):
            continue
        zone, who = recorded[0].zone, link.organizer_mailbox
        if side == "hybrid":
            ours = [
                p
                for p in new_h
                if p.hybrid is not None
                and _began(p.hybrid.shape, p.hybrid.organizer, at, zone, who)
            ]
        else:
            ours = [
                p
                for p in new_o
                if p.outlook is not None
                and _began(p.outlook.shape, p.outlook.organizer, at, zone, who)
            ]
        if len(ours) != 1:
            continue
        (new_h if side == "hybrid" else new_o).remove(ours[0])
        found.append(_LateSplitOff(link, ours[0], "outlook" if side == "hybrid" else "hybrid"))
    return found


def _plan_late_split_off(
    room: RoomContext, late: _LateSplitOff, pairs: Sequence[SeriesPair], out: Plan
) -> None:
    """Cancel the late new series (the conflict was decided and counted when the series was
    read), and forget the record: one new series per split."""
    why = (
        f"began where a split (this and following) ended series {late.original.link_id}, a "
        f"split that lost to the other side's change of the series in an earlier round (rule "
        f"{room.conflict}): that side's series stays whole, the split is undone"
    )
    _cancel_split_off(late.lost, late.winner, why, out)
    forgotten = _forget_lost_split(late.original)
    out.links.append(forgotten)
    for pair in pairs:
        if pair.link is not None and pair.link.link_id == late.original.link_id:
            pair.link = forgotten  # read this round too: planned from the link without it


def _plan_one(room: RoomContext, pair: SeriesPair, by_id: dict[str, Link], out: Plan) -> None:
    o, h, link = pair.outlook, pair.hybrid, pair.link
    key = link.link_id if link else _key(pair)
    for item, side in ((o, "outlook"), (h, "hybrid")):
        if item is not None and item.problem:
            out.audit.append(AuditLine(key, "none", "skipped", f"{side}: {item.problem}"))
            out.count("outlook_to_hybrid" if side == "outlook" else "hybrid_to_outlook", "skipped")
            out.problems.append(item.problem)
            return
    if link is not None and link.state == "canceled":
        return
    if o is not None and o.state is OutlookState.LIVE:
        out.occurrences += len(o.occurrences)  # what the breaker weighs cancellations against
    hs, os_ = _hybrid_seen(pair), _outlook_seen(pair)
    action, conflict = decide(hs, os_, room.conflict)
    if conflict:
        out.conflicts += 1
        out.audit.append(
            AuditLine(
                key,
                "none",
                "conflict",
                f"both sides changed the series since the last sync (hybrid {hs}, outlook "
                f"{os_}); rule {room.conflict}: {action}",
            )
        )
    if action in WRITES_HYBRID and room.direction == "hybrid_to_outlook":
        action = A.NOTHING
    if action in WRITES_OUTLOOK and room.direction == "outlook_to_hybrid":
        action = A.NOTHING
    planned = len(out.ops)
    reshaped = _reshaped(pair, action)
    if reshaped == "retimed":
        _cancel_rescheduled_children(room, pair, key, out)
    new_link = _SERIES_ACTIONS.get(action, _series_nothing)(room, pair, key, out)
    lifted: dict[datetime, datetime] = {}
    if reshaped == "retimed" and new_link is not None:
        lifted = _dropped_exdates(room, pair, key, by_id)
        for op in out.ops[planned:]:
            if op.op == "hybrid.update" and lifted:
                op.payload["changes"]["lift"] = sorted({iso(t) for t in lifted.values()})
    if new_link is not None and new_link.state == "active" and action not in _CREATES:
        _plan_exceptions(
            room,
            pair,
            new_link,
            by_id,
            out,
            reshaped=reshaped,
            hybrid_shape=_retimes_outlook(pair, action),
            lifted=set(lifted),
        )
    for op in out.ops[planned:]:
        source = pair.outlook if op.op.startswith("hybrid.") else pair.hybrid
        if source is not None and source.modified_at is not None:
            op.payload["changed_at"] = iso(source.modified_at)


def _dropped_exdates(
    room: RoomContext, pair: SeriesPair, key: str, by_id: Mapping[str, Link]
) -> dict[datetime, datetime]:
    """The cancelled occurrences that Outlook's reschedule (a new start or rule, written to
    Hybrid this round) gave back: Outlook drops a rescheduled series' exceptions, cancelled
    occurrences too (``_rescheduled_away``), so the exdates Hybrid has for them go with the
    update (outbox ``_hybrid_update``, payload ``lift``), or one would cancel that day again
    once the series is back at that time (tests/sync/test_series_retime_back.py). Original
    start → Hybrid's instant of it (they differ for a series in another zone than the room's).

    Only cancellations both sides last synced (an occurrence link cancelled on both sides, or
    refused: the room re-answers the rescheduled series, and declines anew what it cannot
    hold), inside the window read, and not cancelled in Outlook's series as it is now. Kept:
    those a member added in Hybrid since the last sync (no such link: a Hybrid change, still to
    be planned), and the final ones (a canceled exception child, ``HybridSeries.final``, or a
    released no-show)."""
    o, h, link = pair.outlook, pair.hybrid, pair.link
    if (
        o is None
        or o.state is not OutlookState.LIVE
        or o.window is None
        or link is None
        or (h is not None and h.state is not HybridState.LIVE)
    ):
        return {}
    now_cancelled = {t for t, state in o.exceptions.items() if state is None}
    old = read_shape(link.outlook_fingerprint or link.hybrid_fingerprint)
    zone = h.shape.zone if h is not None and h.shape is not None else room.zone
    shifts = zone_shifts(old[0], zone, o.window[1]) if old is not None else {}
    # a round that read Outlook only: a final occurrence is a canceled child, no exdate, so
    # lifting its instant leaves it cancelled in Hybrid (a later round reads it so)
    kept = h.final | h.released if h is not None else frozenset()
    dropped: dict[datetime, datetime] = {}
    for lk in by_id.values():
        original = lk.original_start
        if (
            original is None
            or not lk.link_id.startswith(key + "@")
            or not _in_window(pair, original)
            or lk.outlook_fingerprint != CANCELLED
            or _plain(lk.hybrid_fingerprint) != CANCELLED
            or original in now_cancelled
        ):
            continue
        target = shifts.get(original, original)
        if original not in kept and target not in kept:
            dropped[original] = target
    return dropped


def _retimes_outlook(pair: SeriesPair, action: Action) -> bool:
    """Whether this round writes Hybrid's times to the organizer's series (a new start or
    rule, as ``_update_outlook`` writes them): Outlook's series then has Hybrid's rule."""
    h, link = pair.hybrid, pair.link
    if action is not A.UPDATE_OUTLOOK or h is None or h.shape is None or link is None:
        return False
    try:
        target = organizer_shape(h.shape, link)
    except NotExpressible:
        return False  # nothing is written
    old = read_shape(link.outlook_fingerprint or link.hybrid_fingerprint)
    return old is None or (old[0].rrule, old[0].zone, old[0].start) != (
        target.rrule,
        target.zone,
        target.start,
    )


def _key(pair: SeriesPair) -> str:
    if pair.outlook is not None:
        return link_id_for("outlook", pair.outlook.ical_uid or pair.outlook.master_id)
    assert pair.hybrid is not None
    return link_id_for("hybrid", pair.hybrid.hybrid_id)


def _observed(link: Link, pair: SeriesPair) -> Link:
    o, h = pair.outlook, pair.hybrid
    changes: dict[str, Any] = {}
    if o is not None and o.state is OutlookState.LIVE:
        changes["room_event_id"] = o.master_id
        changes["series_master_id"] = o.master_id
        if o.ical_uid and not link.ical_uid:
            changes["ical_uid"] = o.ical_uid
        if o.organizer_master_id and not link.organizer_event_id:
            changes["organizer_event_id"] = o.organizer_master_id
            changes["organizer_mailbox"] = o.organizer
    if h is not None and not link.hybrid_id:
        changes["hybrid_id"] = h.hybrid_id
    return replace(link, **changes) if changes else link


def _in_window(pair: SeriesPair, original: datetime) -> bool:
    window = pair.outlook.window if pair.outlook is not None else None
    return window is None or window[0] <= original < window[1]


# --- the series as a whole ----------------------------------------------------------------------


def _series_nothing(room: RoomContext, pair: SeriesPair, key: str, out: Plan) -> Link | None:
    if pair.link is None:
        return None
    new = _observed(pair.link, pair)
    if new != pair.link:
        out.links.append(new)
    return new


def _booking_body(
    room: RoomContext,
    o: OutlookSeries,
    member: str,
    shifts: Mapping[datetime, datetime],
    rule: str,
) -> dict[str, Any]:
    assert o.shape is not None
    description = None
    if o.member_id is None:
        description = f"Booked in Outlook by {o.organizer or 'an unknown organizer'}"
    cancelled = sorted(iso(shifts.get(t, t)) for t, state in o.exceptions.items() if state is None)
    return {
        "resource_id": room.hybrid_id,
        "start": iso(o.shape.start),
        "end": iso(o.shape.end),
        "summary": o.shape.title or o.room_subject,
        "description": description,
        "member": member,
        "members": [m for m in o.member_ids if m != member],
        "visitors": list(o.visitors),
        "rrule": rule,
        "exdates": cancelled,
        # Hybrid's original start -> the series' (another zone than the room's): what the room
        # declines in Outlook if Hybrid refuses such an occurrence
        **({"shifts": {iso(t): iso(z) for z, t in sorted(shifts.items())}} if shifts else {}),
    }


def _create_hybrid(room: RoomContext, pair: SeriesPair, key: str, out: Plan) -> Link | None:
    o = pair.outlook
    assert o is not None and o.shape is not None and o.ical_uid is not None
    member = o.member_id or room.fallback_member_id
    if member is None:
        problem = (
            f"organizer {o.organizer or '(none)'} has no Hybrid member and no "
            "hybrid.fallback_member is configured: series not synced"
        )
        out.audit.append(AuditLine(key, "none", "skipped", problem))
        out.count("outlook_to_hybrid", "skipped")
        out.problems.append(problem)
        return None
    try:
        rule = hybrid_rule(o.shape, room.zone)
    except NotExpressible as exc:
        _not_expressible(out, key, "outlook_to_hybrid", o.shape.title or o.room_subject, exc)
        return None
    fp = shape_fingerprint(o.shape)
    shifts = zone_shifts(o.shape, room.zone, o.window[1]) if o.window is not None else {}
    link = _outlook_link(key, o, fp)
    # made again (Outlook's change won over Hybrid's cancel): the first create's intent is
    # done, so the same intent would be dropped by the outbox as already carried out, and the
    # series would stay in Outlook only; the new intent is named after the shape it books
    again = pair.link is not None
    out.links.append(link)
    out.ops.append(
        Op(
            f"hybrid.create:{o.ical_uid}" + (f":{fp}" if again else ""),
            "hybrid.create",
            {
                "link_id": key,
                "booking": _booking_body(room, o, member, shifts, rule),
                "reference": o.ical_uid,
            },
        )
    )
    moved = {t: s for t, s in o.exceptions.items() if s is not None}
    for original, slot in sorted(moved.items()):
        _hybrid_occurrence_op(out, key, original, shifts.get(original, original), slot)
    duration = o.shape.end - o.shape.start
    for original, target in sorted(shifts.items()):
        if original not in o.exceptions and _in_window(pair, original):
            _shift_op(out, key, original, target, duration)
    _record_occurrences(out, key, link, o.exceptions, o.exceptions)
    cancelled = sum(1 for s in o.exceptions.values() if s is None)
    out.audit.append(
        AuditLine(
            key,
            "hybrid",
            "create",
            f"series booked in Outlook: {o.shape.rrule} from {o.shape.start:%Y-%m-%d %H:%M} UTC"
            f", {len(moved)} moved and {cancelled} cancelled occurrences",
        )
    )
    out.count("outlook_to_hybrid", "created")
    return link


NOT_EXPRESSIBLE = "not_expressible"
"""The ``roomd_changes_total`` outcome of a series one side's rules cannot hold (issue 8, 7)."""


def _not_expressible(
    out: Plan, key: str, direction: str, title: str | None, exc: NotExpressible
) -> None:
    """A series whose rule the other side cannot evaluate in its zone: nothing is written (a
    write the other side can only refuse would be a dead write), and the operator is told
    which series and why: the audit trail (``roomd explain``), the room's problem
    (``/readyz``, ``roomd status``) and ``roomd_changes_total{outcome="not_expressible"}``.
    Planned again only when the series changes."""
    name = f"series {title!r}" if title else "series"
    problem = f"{name} ({key}) not synced: {exc}"
    out.audit.append(AuditLine(key, "none", "skipped", problem))
    out.count(direction, NOT_EXPRESSIBLE)
    out.problems.append(problem)


def _create_outlook(room: RoomContext, pair: SeriesPair, key: str, out: Plan) -> Link | None:
    h = pair.hybrid
    assert h is not None and h.shape is not None
    # the shell reads people for a new series only; one made again (after an Outlook
    # deletion, hybrid_wins) keeps the organizer its link knows, as a one-off booking does
    organizer = h.organizer or (pair.link.organizer_mailbox if pair.link else None)
    if organizer is None:
        problem = f"series {h.hybrid_id}: its member has no email address"
        out.audit.append(AuditLine(key, "none", "skipped", problem))
        out.count("hybrid_to_outlook", "skipped")
        out.problems.append(problem)
        return None
    fp = shape_fingerprint(h.shape, h.status)
    event = {
        "subject": h.shape.title or "Room booking",
        "body": {"contentType": "text", "content": h.description or ""},
        "start": {"dateTime": iso(h.shape.start), "timeZone": "UTC"},
        "end": {"dateTime": iso(h.shape.end), "timeZone": "UTC"},
        "location": {"displayName": room.name, "locationEmailAddress": room.mailbox},
        "attendees": [
            {"emailAddress": {"address": room.mailbox, "name": room.name}, "type": "resource"},
            *(
                {"emailAddress": {"address": g}, "type": "required"}
                for g in h.guests
                if g.lower() != organizer.lower()
            ),
        ],
    }
    link = Link(
        link_id=key,
        hybrid_id=h.hybrid_id,
        hybrid_fingerprint=fp,
        outlook_fingerprint=shape_fingerprint(h.shape),
        organizer_mailbox=organizer,
    )
    # made again (Hybrid's change won over Outlook's delete): a new intent and a new Graph
    # transaction id, or the outbox (and Graph) would take it for the first, done, create
    idem = h.hybrid_id + (f":{fp}" if pair.link is not None else "")
    out.links.append(link)
    out.ops.append(
        Op(
            f"graph.create:{idem}",
            "graph.create",
            {
                "link_id": key,
                "organizer": organizer,
                "fallback_organizer": room.service_mailbox,
                "event": event,
                "series": {"rrule": h.shape.rrule, "zone": h.shape.zone},
                "idempotency_key": idem,
            },
        )
    )
    exceptions = {t: s for t, s in h.exceptions.items() if _in_window(pair, t)}
    for original, state in sorted(exceptions.items()):
        _occurrence_op(out, key, "outlook", original, state)
    _record_occurrences(out, key, link, exceptions, exceptions)
    out.audit.append(
        AuditLine(
            key,
            "outlook",
            "create",
            f"series booked in Hybrid: {h.shape.rrule} from {h.shape.start:%Y-%m-%d %H:%M} UTC, "
            f"organizer {organizer}, {len(exceptions)} exceptions",
        )
    )
    out.count("hybrid_to_outlook", "created")
    return link


def _update_hybrid(room: RoomContext, pair: SeriesPair, key: str, out: Plan) -> Link | None:
    o, link = pair.outlook, pair.link
    assert o is not None and o.shape is not None and link is not None
    old = read_shape(link.hybrid_fingerprint or link.outlook_fingerprint)
    status: HybridStatus = old[1] if old else "booked"
    title = o.shape.title if o.shape.title is not None else (old[0].title if old else None)
    shape = replace(o.shape, title=title)
    fp = shape_fingerprint(shape, status)
    zone = pair.hybrid.shape.zone if pair.hybrid and pair.hybrid.shape else room.zone
    try:
        rule = hybrid_rule(shape, zone)
    except NotExpressible as exc:  # Hybrid keeps the series as it was; said, not retried
        _not_expressible(out, key, "outlook_to_hybrid", shape.title, exc)
        return None
    changes: dict[str, Any] = {"start": iso(shape.start), "end": iso(shape.end), "rrule": rule}
    if o.shape.title is not None:
        changes["summary"] = o.shape.title
    # the occurrences Outlook's series has cancelled stay cancelled in Hybrid at the times
    # this update gives them: a member who retimed the series moved its exdates with it, and
    # Outlook's times winning back would leave them at instants the rule no longer has (the
    # occurrence then held the room in Hybrid only); added to the exdates Hybrid has
    if o.window is not None and any(state is None for state in o.exceptions.values()):
        shifts = zone_shifts(o.shape, zone, o.window[1])
        changes["exdates"] = sorted(
            iso(shifts.get(t, t)) for t, state in o.exceptions.items() if state is None
        )
    new = replace(
        _observed(link, pair), outlook_fingerprint=shape_fingerprint(o.shape), hybrid_fingerprint=fp
    )
    out.links.append(new)
    out.ops.append(
        Op(f"hybrid.update:{key}:{fp}", "hybrid.update", {"link_id": key, "changes": changes})
    )
    out.audit.append(
        AuditLine(key, "hybrid", "update", f"series changed in Outlook: {shape.rrule}")
    )
    out.count("outlook_to_hybrid", "updated")
    return new


def _update_outlook(room: RoomContext, pair: SeriesPair, key: str, out: Plan) -> Link | None:
    h, link = pair.hybrid, pair.link
    assert h is not None and h.shape is not None and link is not None
    try:  # a series in another zone than the room's keeps the organizer's zone and pattern
        target = organizer_shape(h.shape, link)
    except NotExpressible as exc:
        _not_expressible(out, key, "hybrid_to_outlook", h.shape.title, exc)
        return None
    fp = shape_fingerprint(h.shape, h.status)
    old = read_shape(link.outlook_fingerprint or link.hybrid_fingerprint)
    new = replace(
        _observed(link, pair),
        hybrid_fingerprint=fp,
        outlook_fingerprint=shape_fingerprint(target),
    )
    out.links.append(new)
    if (
        old is None
        or not same_shape(shape_fingerprint(old[0]), target)
        or (target.title is not None and old[0].title != target.title)
    ):
        series = None
        if old is None or (old[0].rrule, old[0].zone, old[0].start) != (
            target.rrule,
            target.zone,
            target.start,
        ):
            series = {"rrule": target.rrule, "zone": target.zone}
        # only what Hybrid changed: the organizer may have changed the rest meanwhile, which
        # roomd has not read yet (the room's copy shows it once its booking assistant has
        # answered), and times written back unasked would undo a retime Outlook's rule wins
        changes: dict[str, Any] = {}
        length = target.end - target.start
        if series is not None or old is None or old[0].end - old[0].start != length:
            if series is None and target.zone != h.shape.zone:
                # on the organizer's clock: a master's times in UTC would put the series in UTC
                changes["start"] = graph_time(target.start, target.zone)
                changes["end"] = graph_time(target.end, target.zone)
            else:
                changes["start"] = {"dateTime": iso(target.start), "timeZone": "UTC"}
                changes["end"] = {"dateTime": iso(target.end), "timeZone": "UTC"}
        if target.title is not None and (old is None or old[0].title != target.title):
            changes["subject"] = target.title
        out.ops.append(
            Op(
                f"graph.update:{key}:{fp}",
                "graph.update",
                {"link_id": key, "changes": changes, "series": series},
            )
        )
        out.audit.append(
            AuditLine(key, "outlook", "update", f"series changed in Hybrid: {h.shape.rrule}")
        )
        out.count("hybrid_to_outlook", "updated")
    before = read_shape(link.hybrid_fingerprint)
    if before is not None and before[1] != h.status and link.room_event_id:
        response = "accept" if h.status == "booked" else "tentativelyAccept"
        out.ops.append(
            Op(
                f"graph.respond:{key}:{response}:{fp}",
                "graph.respond",
                {"link_id": key, "response": response, "comment": ""},
            )
        )
        out.audit.append(AuditLine(key, "outlook", f"room_{response}", "approval state in Hybrid"))
    return new


def _cancel_hybrid(room: RoomContext, pair: SeriesPair, key: str, out: Plan) -> Link | None:
    o, link = pair.outlook, pair.link
    assert link is not None
    reason = (o.reason if o is not None and o.reason else None) or "series deleted in Outlook"
    new = replace(link, state="canceled")
    out.links.append(new)
    out.ops.append(Op(f"hybrid.cancel:{key}", "hybrid.cancel", {"link_id": key, "reason": reason}))
    out.audit.append(AuditLine(key, "hybrid", "cancel", f"{reason}; kept in Hybrid as canceled"))
    out.count("outlook_to_hybrid", "canceled")
    return new


def _cancel_outlook(room: RoomContext, pair: SeriesPair, key: str, out: Plan) -> Link | None:
    link = pair.link
    assert link is not None
    new = replace(_observed(link, pair), state="canceled")
    out.links.append(new)
    out.ops.append(
        Op(
            f"graph.cancel:{key}",
            "graph.cancel",
            {"link_id": key, "comment": "Cancelled in the room booking system"},
        )
    )
    out.audit.append(AuditLine(key, "outlook", "cancel", "series cancelled in Hybrid"))
    out.count("hybrid_to_outlook", "canceled")
    return new


def _release_room(room: RoomContext, pair: SeriesPair, key: str, out: Plan) -> Link | None:
    h, link = pair.hybrid, pair.link
    assert h is not None and link is not None
    new = replace(_observed(link, pair), state="canceled")
    out.links.append(new)
    rejected = (h.cancel_reason or "").lower() == "rejected"
    comment = (
        "The booking was rejected in the room booking system."
        if rejected
        else "Nobody checked in: the room was released."
    )
    out.ops.append(
        Op(
            f"graph.respond:{key}:decline",
            "graph.respond",
            {"link_id": key, "response": "decline", "comment": comment},
        )
    )
    why = "rejected in Hybrid" if rejected else "released in Hybrid"
    out.audit.append(AuditLine(key, "outlook", "release_room", f"series {why}: the room declines"))
    out.count("hybrid_to_outlook", "released")
    return new


def _mark_canceled(room: RoomContext, pair: SeriesPair, key: str, out: Plan) -> Link | None:
    assert pair.link is not None
    new = replace(pair.link, state="canceled")
    out.links.append(new)
    out.audit.append(AuditLine(key, "none", "canceled", "series canceled on both sides"))
    return new


def _link(room: RoomContext, pair: SeriesPair, key: str, out: Plan) -> Link | None:
    o, h = pair.outlook, pair.hybrid
    assert o is not None and h is not None and o.shape is not None
    canceled = h.state is not HybridState.LIVE
    link = _outlook_link(
        key,
        o,
        shape_fingerprint(o.shape),
        hybrid_id=h.hybrid_id,
        hybrid_fingerprint=shape_fingerprint(h.shape, h.status) if h.shape else None,
        state="canceled" if canceled else "active",
    )
    out.links.append(link)
    out.audit.append(
        AuditLine(key, "none", "linked", f"Hybrid series {h.hybrid_id} carries this iCalUId")
    )
    out.count("outlook_to_hybrid", "linked")
    return link


_CREATES = frozenset({A.CREATE_HYBRID, A.CREATE_OUTLOOK, A.RECREATE_HYBRID, A.RECREATE_OUTLOOK})
_SERIES_ACTIONS: dict[Action, Any] = {
    A.NOTHING: _series_nothing,
    A.LINK: _link,
    A.LINK_CANCELED: _link,
    A.CREATE_HYBRID: _create_hybrid,
    A.RECREATE_HYBRID: _create_hybrid,
    A.CREATE_OUTLOOK: _create_outlook,
    A.RECREATE_OUTLOOK: _create_outlook,
    A.UPDATE_HYBRID: _update_hybrid,
    A.UPDATE_OUTLOOK: _update_outlook,
    A.CANCEL_HYBRID: _cancel_hybrid,
    A.CANCEL_OUTLOOK: _cancel_outlook,
    A.RELEASE_ROOM: _release_room,
    A.MARK_CANCELED: _mark_canceled,
}


# --- an occurrence Hybrid refused, given back when its slot frees -----------------------------


@dataclass(frozen=True, slots=True)
class Holder:
    """A booking this round's Hybrid feed shows that held the slot of an occurrence Hybrid
    refused (its id is in that occurrence's link, ``refused_fingerprint``), as it is now.
    ``changed``: its ``modifiedAt``, so that each of its changes may try the slot once."""

    booking_id: str
    state: HybridState
    start: datetime
    end: datetime
    recurring: bool = False
    changed: str = ""

    def frees(self, start: datetime, end: datetime) -> str | None:
        """How the booking gave up the slot [start, end), or None while it still holds it. A
        recurring holder's occurrences are not evaluated here: any change of it may free the
        slot, and Hybrid answers that (a 409 leaves the occurrence declined)."""
        if self.state is HybridState.CANCELED:
            return "canceled"
        if self.state is HybridState.RELEASED:
            return "released (nobody checked in)"
        if self.recurring:
            return "changed"
        if self.start < end and start < self.end:
            return None
        return f"moved to {self.start:%Y-%m-%d %H:%M}-{self.end:%H:%M} UTC"


RESTORE_OP = "hybrid.restore"
_WHOLE_SERIES_OPS = frozenset(
    f"{side}.{op}" for side in ("hybrid", "graph") for op in ("create", "update", "cancel")
)


def refused_holders(links: Sequence[Link]) -> dict[str, set[str]]:
    """Each booking recorded as holding the slot of a refused occurrence -> the link ids of
    the series whose occurrences it held (the runner reads those series again when the
    booking changes: their own feeds show nothing)."""
    out: dict[str, set[str]] = {}
    for link in links:
        holder = refused_by(link.hybrid_fingerprint)
        if holder is not None and link.original_start is not None and link.state == "active":
            out.setdefault(holder, set()).add(link.link_id.rpartition("@")[0])
    return out


def _plan_restores(
    room: RoomContext,
    pairs: Sequence[SeriesPair],
    by_id: Mapping[str, Link],
    out: Plan,
    holders: Mapping[str, Holder],
) -> None:
    """Occurrences Hybrid refused whose slot the holder gave up this round (canceled, released,
    moved away): the room declined them only because the room was taken, the organizer still
    has them and was told why, and nobody will think to book the room again for a date the
    room turned down; so they go back to the organizer, unasked. Only occurrences ahead, inside
    the window, still left out on both sides (an exdate in Hybrid, not in the room's calendar),
    in a series this round writes nothing else to; whether the organizer still holds it at
    that time is checked when written (``outbox._hybrid_restore``), which lifts the exdate in
    Hybrid (a 409: taken anew, it stays declined) and has the room asked again. Occurrences
    the room declined by its own policy and those a member cancelled in Hybrid were never
    recorded as refused, so they are never given back."""
    if room.direction == "hybrid_to_outlook":
        return
    for pair in pairs:
        link, o, h = pair.link, pair.outlook, pair.hybrid
        if link is None or link.state != "active" or o is None or h is None:
            continue
        if o.state is not OutlookState.LIVE or h.state is not HybridState.LIVE:
            continue
        if o.shape is None or o.window is None:
            continue
        key = link.link_id
        mine = [op for op in out.ops if op.payload.get("link_id") == key]
        if any(op.op in _WHOLE_SERIES_OPS for op in mine):
            continue  # the series itself changes this round: not in the middle of that
        touched = {op.payload.get("original_start") for op in mine}
        length = o.shape.end - o.shape.start
        for lk in sorted(by_id.values(), key=lambda x: x.link_id):
            original = lk.original_start
            holder = holders.get(refused_by(lk.hybrid_fingerprint) or "")
            if original is None or holder is None or not lk.link_id.startswith(key + "@"):
                continue
            freed = holder.frees(original, original + length)
            if (
                freed is None
                or (room.now is not None and original <= room.now)
                or not o.window[0] <= original < o.window[1]
                or h.exceptions.get(original, REGULAR) is not None
                or original in h.final
                or o.exceptions.get(original, REGULAR) is not None
                or iso(original) in touched
            ):
                continue
            out.ops.append(
                Op(
                    f"{RESTORE_OP}:{key}:{iso(original)}:{holder.booking_id}:{holder.changed}",
                    RESTORE_OP,
                    {
                        "link_id": key,
                        "original_start": iso(original),
                        "end": iso(original + length),
                        "holder": holder.booking_id,
                        "freed": freed,
                    },
                )
            )


# --- occurrences ------------------------------------------------------------------------------


def occurrence_link_id(series_link_id: str, original: datetime) -> str:
    return f"{series_link_id}@{iso(original)}"


def _occurrence_op(
    out: Plan,
    key: str,
    side: str,
    original: datetime,
    state: ExceptionState,
    *,
    release: bool = False,
) -> None:
    """Write one occurrence's state to ``side``: moved to ``state``, or cancelled (None);
    ``release``: cancelled by the room's policy, so only the room declines it."""
    op = "hybrid.occurrence" if side == "hybrid" else "graph.occurrence"
    payload: dict[str, Any] = {"link_id": key, "original_start": iso(original)}
    if state is None:
        payload["cancel"] = True
        if release:
            payload["release"] = True
    else:
        payload["start"] = iso(state.start)
        payload["end"] = iso(state.end)
        if state.title is not None:  # the occurrence's own title, not the series'
            payload["title"] = state.title
    what = "released" if release and state is None else exception_fingerprint(state)
    out.ops.append(Op(f"{op}:{key}:{iso(original)}:{what}", op, payload))


def _hybrid_occurrence_op(
    out: Plan, key: str, original: datetime, target: datetime, state: ExceptionState
) -> None:
    """An occurrence write to Hybrid, at Hybrid's original start ``target`` of the series'
    occurrence ``original`` (they differ for a series in another zone than the room's): the
    outbox declines ``original`` in Outlook if Hybrid refuses it."""
    _occurrence_op(out, key, "hybrid", target, state)
    if target != original:
        out.ops[-1].payload["series_start"] = iso(original)


def _record_occurrences(
    out: Plan,
    key: str,
    series: Link,
    outlook: Mapping[datetime, ExceptionState],
    hybrid: Mapping[datetime, ExceptionState],
) -> None:
    for original in sorted(set(outlook) | set(hybrid)):
        out.links.append(
            Link(
                link_id=occurrence_link_id(key, original),
                original_start=original,
                hybrid_parent_id=series.hybrid_id,
                series_master_id=series.series_master_id,
                ical_uid=series.ical_uid,
                outlook_fingerprint=exception_fingerprint(outlook.get(original, REGULAR)),
                hybrid_fingerprint=exception_fingerprint(hybrid.get(original, REGULAR)),
            )
        )


def _reshaped(pair: SeriesPair, action: Action) -> str | None:
    """What Outlook changed of the series' times that this round writes to Hybrid:
    ``"retimed"``, a new start or rule (the exception children Hybrid holds were made for the
    old times, and replace no occurrence once the series has moved); ``"resized"``, only a
    new end; None, neither."""
    o, link = pair.outlook, pair.link
    if action is not A.UPDATE_HYBRID or o is None or o.shape is None or link is None:
        return None
    old = read_shape(link.outlook_fingerprint or link.hybrid_fingerprint)
    if old is None or (old[0].rrule, old[0].start) != (o.shape.rrule, o.shape.start):
        return "retimed"
    return "resized" if old[0].end != o.shape.end else None


def _plan_exceptions(
    room: RoomContext,
    pair: SeriesPair,
    series: Link,
    by_id: dict[str, Link],
    out: Plan,
    *,
    reshaped: str | None = None,
    hybrid_shape: bool = False,
    lifted: set[datetime] | None = None,
) -> None:
    """``lifted``: cancelled occurrences whose exdates this round's update lifts
    (``_dropped_exdates``): regular on both sides from now on."""
    o, h = pair.outlook, pair.hybrid
    key = series.link_id
    shifts, duration = _shifts(room, pair, series)
    owed: dict[datetime, datetime] = {}
    title = _series_title(series)
    if h is not None and shifts:
        titles = {title, _series_title(pair.link), h.shape.title if h.shape else None}
        h, owed = _in_series_zone(h, shifts, duration, titles - {None}, title)
    retimed = reshaped == "retimed"
    retitled = title is not None and _series_title(pair.link) not in (None, title)
    if reshaped or retitled:
        # every shifted week needs its child at the new time (the old ones go first), or with
        # the series' new title (or Hybrid would hold it as an occurrence titled apart)
        held = pair.hybrid.exceptions if pair.hybrid is not None else {}
        owed = {z: at for z, at in shifts.items() if at not in held or held[at] is not None}
    if retimed:
        _cancel_old_shifts(room, pair, out, key, keep=set(shifts.values()))
    recorded = {
        lk.original_start: lk
        for lk in by_id.values()
        if lk.original_start is not None and lk.link_id.startswith(key + "@")
    }
    originals = set(recorded)
    if o is not None and o.state is OutlookState.LIVE:
        originals |= set(o.exceptions)
    if h is not None and h.state is HybridState.LIVE:
        originals |= set(h.exceptions)
    # only Outlook's own reschedule drops its exceptions: a rule Hybrid changed (written to
    # Outlook this round) leaves Hybrid's exceptions at originals Outlook's old rule lacks
    # nor does Outlook's own reschedule when Hybrid's series wins this round (hybrid_shape): the
    # organizer's series takes Hybrid's rule, whose occurrences Hybrid's exceptions are at (a
    # split Outlook made ends the series before a day Hybrid cancelled: that day is in Hybrid's
    # rule again once written, and must stay cancelled there)
    link = pair.link
    rescheduled = not hybrid_shape and (
        o is None
        or o.shape is None
        or link is None
        or not same_shape(link.outlook_fingerprint or link.hybrid_fingerprint, o.shape)
    )
    gone = _rescheduled_away(o, originals) if rescheduled else set()
    for original in sorted(t for t in originals if _in_window(pair, t)):
        old = recorded.get(original)
        rec_o = old.outlook_fingerprint if old else REGULAR
        rec_h = _plain(old.hybrid_fingerprint) if old else REGULAR
        o_state: ExceptionState | str = (
            o.exceptions.get(original, REGULAR)
            if o is not None and o.state is OutlookState.LIVE
            else _from_fp(rec_o)
        )
        h_state: ExceptionState | str = (
            h.exceptions.get(original, REGULAR)
            if h is not None and h.state is HybridState.LIVE and not retimed
            else _from_fp(rec_h)
        )
        if original in (lifted or ()):
            h_state = REGULAR  # the update lifts its exdate: Outlook's reschedule gave it back
        if original in gone and h_state != REGULAR:
            o_state = None  # nothing is there in Outlook any more: Hybrid's exception goes too
        o_fp, h_fp = exception_fingerprint(o_state), exception_fingerprint(h_state)
        o_changed, h_changed = o_fp != rec_o, h_fp != rec_h
        if not o_changed and not h_changed:
            continue
        if o_fp == h_fp:
            winner: str | None = None  # both sides agree already: record it
        elif o_changed and h_changed:
            winner = "outlook" if room.conflict == "outlook_wins" else "hybrid"
            out.conflicts += 1
            out.audit.append(
                AuditLine(
                    key,
                    "none",
                    "conflict",
                    f"occurrence {iso(original)} changed on both sides; rule {room.conflict}",
                )
            )
        else:
            winner = "outlook" if o_changed else "hybrid"
        final = o_state if winner in (None, "outlook") else h_state
        if (
            winner == "outlook"
            and h_state is None
            and h is not None
            and original in h.final
            and room.direction != "hybrid_to_outlook"
        ):
            winner, final = "final", None
            _decline_cancelled(room, out, key, original)
        final_fp = exception_fingerprint(final)
        if (
            winner == "outlook"
            and final == REGULAR
            and h_state is None
            and (h is None or original not in h.released)
            and room.direction != "hybrid_to_outlook"
        ):
            # Outlook holds the occurrence again (only an organizer's reschedule gives a
            # cancelled occurrence back, as it drops the series' exceptions; retimed and back
            # before a round, the series reads unchanged): Hybrid's exdate is lifted
            _lift_exdate(out, key, original, shifts.get(original), duration or _length(pair))
        elif winner == "outlook" and room.direction != "hybrid_to_outlook":
            _write_occurrence(out, key, "hybrid", original, final, target=shifts.get(original))
        elif winner == "hybrid" and room.direction != "outlook_to_hybrid":
            released = h is not None and original in h.released
            _write_occurrence(out, key, "outlook", original, final, release=released)
        base = old or Link(
            link_id=occurrence_link_id(key, original),
            original_start=original,
        )
        out.links.append(
            replace(
                base,
                hybrid_parent_id=base.hybrid_parent_id or series.hybrid_id,
                series_master_id=base.series_master_id or series.series_master_id,
                ical_uid=base.ical_uid or series.ical_uid,
                outlook_fingerprint=final_fp,
                hybrid_fingerprint=final_fp,
            )
        )
    if room.direction == "hybrid_to_outlook":
        return
    for at in h.stale if h is not None and h.state is HybridState.LIVE else ():
        _occurrence_op(out, key, "hybrid", at, None)
        out.audit.append(
            AuditLine(
                key,
                "hybrid",
                "occurrence",
                f"exception {iso(at)} was made for an earlier time of the series and replaces "
                "no occurrence: cancelled, so it no longer holds the room",
            )
        )
    if o is not None and o.state is not OutlookState.LIVE:
        return
    for original, target in sorted(owed.items()):
        old = recorded.get(original)
        regular = (  # in Outlook: as read, or as last synced when this round read Hybrid only
            o.exceptions.get(original, REGULAR) == REGULAR
            if o is not None
            else old is None or old.outlook_fingerprint == REGULAR
        )
        if (
            _in_window(pair, original)
            and regular
            and (old is None or old.hybrid_fingerprint == REGULAR)
        ):
            _shift_op(out, key, original, target, duration, title)


def _cancel_rescheduled_children(room: RoomContext, pair: SeriesPair, key: str, out: Plan) -> None:
    """Outlook rescheduled the series (a new start or rule) and drops its exceptions: Hybrid's
    exception children at the occurrences the new rule no longer has replace nothing once the
    series moves, and one may hold a slot the moved series takes (a member moved Tuesday's
    occurrence to 09:30 as the organizer moved the whole series to 09:30), so Hybrid refuses
    the series' new time (409) and the series stayed at its old time there, for good.
    Cancelled before the series is written (writes run in the order planned), as those left
    over would be cancelled later as stale anyway. Only where both sides evaluate the rule in
    the same zone: a cross-zone series' shift children are ``_cancel_old_shifts``'s."""
    o, h = pair.outlook, pair.hybrid
    if (
        room.direction == "hybrid_to_outlook"
        or h is None
        or h.state is not HybridState.LIVE
        or h.shape is None
        or o is None
        or o.shape is None
        or h.shape.zone != o.shape.zone
    ):
        return
    held = {t for t, state in h.exceptions.items() if state is not None}
    for original in sorted(_rescheduled_away(o, held)):
        _occurrence_op(out, key, "hybrid", original, None)
        out.ops[-1].payload["stale"] = True  # no exdate where no child is left
        out.audit.append(
            AuditLine(
                key,
                "hybrid",
                "occurrence",
                f"exception {iso(original)} is not on the series' new schedule in Outlook: "
                "cancelled before the series moves, so it holds no slot the series takes",
            )
        )


def _cancel_old_shifts(
    room: RoomContext, pair: SeriesPair, out: Plan, key: str, *, keep: set[datetime]
) -> None:
    """The children that kept the series' old time in the weeks the zones disagree replace no
    occurrence once Hybrid's series moves, and may stand in the way of the new ones (409):
    cancelled first (only where such a child exists: ``stale``). Those still at an occurrence
    Hybrid shifts (``keep``: a new end of the rule, the same start) are moved instead."""
    o, h, link = pair.outlook, pair.hybrid, pair.link
    old = read_shape(link.outlook_fingerprint) if link is not None else None
    if old is None or o is None or o.window is None or room.direction == "hybrid_to_outlook":
        return
    zone = h.shape.zone if h is not None and h.shape is not None else room.zone
    for target in sorted(zone_shifts(old[0], zone, o.window[1]).values()):
        if _in_window(pair, target) and target not in keep:
            _occurrence_op(out, key, "hybrid", target, None)
            out.ops[-1].payload["stale"] = True


def _decline_cancelled(room: RoomContext, out: Plan, key: str, original: datetime) -> None:
    """An occurrence cancelled in Hybrid by a canceled exception child and changed in Outlook:
    Hybrid's cancellation is final, whatever the conflict rule, as a cancelled booking is never
    resurrected (and Hybrid could not bring it back). No write to Hybrid; the room declines
    that occurrence in Outlook, saying why; the organizer keeps it."""
    _occurrence_op(out, key, "outlook", original, None, release=True)
    out.ops[-1].payload["comment"] = (
        "Declined: this occurrence was cancelled in the room booking system, which does not "
        "restore a cancelled occurrence. Book the room again for this date if you need it."
    )
    out.audit.append(
        AuditLine(
            key,
            "outlook",
            "room_decline",
            f"occurrence {iso(original)} changed in Outlook, but cancelled in Hybrid (a canceled "
            f"exception, which Hybrid cannot restore): Hybrid's cancellation is final whatever "
            f"the rule ({room.conflict}); the room declines it",
        )
    )
    out.count("hybrid_to_outlook", "released")


def _shifts(
    room: RoomContext, pair: SeriesPair, series: Link
) -> tuple[dict[datetime, datetime], timedelta]:
    """The series' occurrences Hybrid puts elsewhere (:func:`zone_shifts`), over the window
    read, or up to Hybrid's last exception when the round read only Hybrid's side. The series
    as this round leaves it (``series``, the link it records): a length a member changed in
    Hybrid this round is the children's too, though the Outlook copy read still has the old
    one (the round that reads Outlook's new length may not read Hybrid's side again)."""
    o, h = pair.outlook, pair.hybrid
    recorded = read_shape(series.outlook_fingerprint)
    shape = recorded[0] if recorded is not None else None
    if shape is None and o is not None and o.state is OutlookState.LIVE:
        shape = o.shape
    if shape is None:
        return {}, timedelta(0)
    zone = h.shape.zone if h is not None and h.shape is not None else room.zone
    if o is not None and o.window is not None:
        until = o.window[1]
    elif h is not None and h.exceptions:
        until = max(h.exceptions) + timedelta(days=1)
    else:
        return {}, timedelta(0)
    return zone_shifts(shape, zone, until), shape.end - shape.start


def _series_title(link: Link | None) -> str | None:
    """The series' title as last synced to Hybrid (or as this round leaves it)."""
    shape = read_shape(link.hybrid_fingerprint) if link is not None else None
    return shape[0].title if shape is not None else None


def _in_series_zone(
    h: HybridSeries,
    shifts: Mapping[datetime, datetime],
    duration: timedelta,
    titles: set[str | None] | None = None,
    title: str | None = None,
) -> tuple[HybridSeries, dict[datetime, datetime]]:
    """Hybrid's exceptions keyed as the series has its occurrences: the exception child that
    holds a shifted occurrence at the series' instant is no exception at all. Also the shifted
    occurrences Hybrid has no exception for yet (held at Hybrid's instant): owed a child, and
    the children left with an earlier length or title of the series (``titles``: the series'
    titles before and after this round; ``title``, the one they must carry): owed anew. A
    child titled apart from the series stays an exception (a member retitled that week)."""
    back = {target: original for original, target in shifts.items()}
    exceptions: dict[datetime, ExceptionState] = {}
    owed: dict[datetime, datetime] = {}
    for at, state in h.exceptions.items():
        original = back.get(at, at)
        if (
            at != original
            and isinstance(state, Slot)
            and state.start == original
            and (state.title is None or state.title in (titles or ()))
        ):
            held_title = state.title if state.title is not None else h.shape and h.shape.title
            stale_title = title is not None and held_title != title
            if state.end != original + duration or stale_title:
                owed[original] = at
            continue
        exceptions[original] = state
    released = frozenset(back.get(at, at) for at in h.released)
    final = frozenset(back.get(at, at) for at in h.final)
    owed |= {original: target for original, target in shifts.items() if target not in h.exceptions}
    return replace(h, exceptions=exceptions, released=released, final=final), owed


def _shift_op(
    out: Plan,
    key: str,
    original: datetime,
    target: datetime,
    duration: timedelta,
    title: str | None = None,
) -> None:
    """Hybrid's occurrence ``target`` moved to the series' instant ``original`` by an exception
    child: the series' rule runs in another zone than the room's. ``title``: the series'
    (a child keeps the title it was made with; a series retitled since needs it written)."""
    _hybrid_occurrence_op(out, key, original, target, Slot(original, original + duration, title))
    out.audit.append(
        AuditLine(
            key,
            "hybrid",
            "zone_shift",
            f"occurrence {iso(original)}: the room's zone puts it at {target:%H:%M} UTC in "
            "Hybrid; an exception keeps it at the series' time",
        )
    )


def _rescheduled_away(o: OutlookSeries | None, originals: set[datetime]) -> set[datetime]:
    """The originals in the window that the Outlook series' rule no longer has: its time or
    pattern changed, and Outlook drops the exceptions of a rescheduled series (Outlook warns
    "changes to individual occurrences will be lost"), so no occurrence is there any more. A
    moved occurrence's exception child in Hybrid would otherwise hold the room at its old
    time beside the series' new one."""
    if o is None or o.state is not OutlookState.LIVE or o.shape is None or o.window is None:
        return set()
    try:
        rule = _rule_starts(o.shape, o.window)
    except ValueError:
        return set()
    return {t for t in originals if o.window[0] <= t < o.window[1]} - set(rule)


def _length(pair: SeriesPair) -> timedelta:
    shape = pair.outlook.shape if pair.outlook is not None else None
    return shape.end - shape.start if shape is not None else timedelta(0)


def _lift_exdate(
    out: Plan, key: str, original: datetime, target: datetime | None, duration: timedelta
) -> None:
    """Lift Hybrid's exdate of the occurrence ``original`` (at Hybrid's instant ``target``
    when it differs), which Outlook holds again. The outbox declines it as the room if Hybrid
    refuses (409: the slot was taken meanwhile), as for any occurrence Hybrid refuses."""
    at = target or original
    payload: dict[str, Any] = {
        "link_id": key,
        "original_start": iso(at),
        "regular": True,
        "end": iso(at + duration),
    }
    if at != original:
        payload["series_start"] = iso(original)
    out.ops.append(Op(f"hybrid.occurrence:{key}:{iso(at)}:{REGULAR}", "hybrid.occurrence", payload))
    out.audit.append(
        AuditLine(
            key,
            "hybrid",
            "occurrence",
            f"occurrence {iso(original)} held again in Outlook (a reschedule drops the series' "
            "cancelled occurrences): its exdate is lifted",
        )
    )
    out.count("outlook_to_hybrid", "updated")


def _from_fp(text: str | None) -> ExceptionState | str:
    if text in (None, REGULAR):
        return REGULAR
    if text == CANCELLED or refused_by(text) is not None:
        return None
    read = read_fingerprint(text)
    return read[0] if read is not None else REGULAR


def _write_occurrence(
    out: Plan,
    key: str,
    side: str,
    original: datetime,
    state: ExceptionState | str,
    *,
    release: bool = False,
    target: datetime | None = None,
) -> None:
    """``target``: the occurrence's original start on ``side`` when it is not the series'
    (Hybrid's, for a series in another zone than the room's)."""
    if state == REGULAR:
        return  # an occurrence cannot be "un-moved" by roomd; the other side keeps its own
    assert state is None or isinstance(state, Slot)
    release = release and state is None
    if side == "hybrid" and target is not None:
        _hybrid_occurrence_op(out, key, original, target, state)
    else:
        _occurrence_op(out, key, side, original, state, release=release)
    what = "cancelled" if state is None else f"moved to {state.start:%Y-%m-%d %H:%M} UTC"
    if state is not None and state.title is not None:
        what += f", titled {state.title!r}"
    source = "Outlook" if side == "hybrid" else "Hybrid"
    if release:
        out.audit.append(
            AuditLine(
                key,
                side,
                "release_room",
                f"occurrence {iso(original)} released in Hybrid (no-show): the room declines it",
            )
        )
        out.count("hybrid_to_outlook", "released")
        return
    out.audit.append(
        AuditLine(key, side, "occurrence", f"occurrence {iso(original)} {what} in {source}")
    )
    direction = "outlook_to_hybrid" if side == "hybrid" else "hybrid_to_outlook"
    out.count(direction, "updated")
