"""The sync policy, row by row: every row of ``decide.DECISIONS`` planned through ``plan()``.

Each case below is one row of the table (``hybrid side, outlook side``) told as a situation a user
would recognise: the link roomd holds, what each side reported, and what roomd then plans: the
remote writes (outbox ops and their payload's key fields), the link it stores, the audit action,
the counts and the conflicts. ``test_every_row_has_a_case`` fails when a row is added to the
table without a case here.

The engine is pure, so these tests are too: no store, no simulator, no clock.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import roomd.sync.decide as engine
from roomd.store import Link
from roomd.sync.decide import DECISIONS, ByRule, LinkIndex, Op, Plan, Seen, plan
from roomd.sync.model import (
    HybridItem,
    HybridState,
    OutlookItem,
    OutlookState,
    RoomContext,
    Slot,
    fingerprint,
)

N, NEW, ORPHAN, STRAY = Seen.NONE, Seen.NEW, Seen.ORPHAN, Seen.STRAY
SAME, CHANGED, GONE, RELEASED = Seen.SAME, Seen.CHANGED, Seen.GONE, Seen.RELEASED

# --- the world: one room, one meeting, one booking ----------------------------------------------

ROOM = RoomContext(mailbox="room-4a@contoso.com", hybrid_id="res-4a", name="Room 4A")
ADELE = "adele@contoso.com"  # books in Outlook
ALEX = "alex@contoso.com"  # books in Hybrid
GUEST = "guest@fabrikam.com"

UID = "uid-1"  # the meeting's iCalUId
EV = "ev-1"  # the room's copy of it
ORG_EV = "org-ev-1"  # the organizer's copy of it
HB = "hb-1"  # the Hybrid booking
KEY = "o:uid-1"  # the link of a meeting booked in Outlook

T = datetime(2030, 3, 4, 9, 0, tzinfo=UTC)
SLOT = Slot(T, T + timedelta(hours=1), "Budget review")
MOVED = Slot(T + timedelta(hours=2), T + timedelta(hours=3), "Budget review")
RETITLED = Slot(SLOT.start, SLOT.end, "Budget review (final)")
UNTITLED = Slot(SLOT.start, SLOT.end, None)  # a room copy whose title nobody could read


def iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def graph_time(value: datetime) -> dict[str, str]:
    return {"dateTime": iso(value), "timeZone": "UTC"}


def linked(status: Literal["booked", "tentative"] = "booked", **changes: Any) -> Link:
    """The link of a meeting Adele booked in Outlook and roomd copied to Hybrid, both in sync."""
    link = Link(
        link_id=KEY,
        hybrid_id=HB,
        room_event_id=EV,
        ical_uid=UID,
        organizer_mailbox=ADELE,
        organizer_event_id=ORG_EV,
        hybrid_fingerprint=fingerprint(SLOT, status),
        outlook_fingerprint=fingerprint(SLOT),
        outlook_change_key="ck-1",
    )
    return replace(link, **changes)


def meeting(slot: Slot = SLOT, **fields: Any) -> OutlookItem:
    """The room's copy of Adele's meeting, as the shell reads it (title from Adele's copy)."""
    values: dict[str, Any] = {
        "ical_uid": UID,
        "change_key": "ck-1",
        "slot": slot,
        "organizer": ADELE,
        "organizer_event_id": ORG_EV,
        "room_response": "accepted",
        "room_subject": "Adele Vance",
    }
    values.update(fields)
    return OutlookItem(EV, OutlookState.LIVE, **values)


def new_meeting(**fields: Any) -> OutlookItem:
    """A meeting no link knows: the shell resolved its people to Hybrid members."""
    values: dict[str, Any] = {
        "member_id": "m-adele",
        "member_ids": ("m-adele", "m-alex"),
        "visitors": (GUEST,),
        "room_response": None,
    }
    values.update(fields)
    return meeting(**values)


def removed(
    reason: str | None = "deleted in Outlook by the organizer", **fields: Any
) -> OutlookItem:
    """The room's copy of a linked meeting, confirmed gone."""
    values: dict[str, Any] = {"ical_uid": UID, "reason": reason}
    values.update(fields)
    return OutlookItem(EV, OutlookState.GONE, **values)


def kept_cancelled(**fields: Any) -> OutlookItem:
    """A cancelled meeting the room mailbox keeps (``isCancelled: true``)."""
    values: dict[str, Any] = {"ical_uid": UID, "reason": "cancelled in Outlook by the organizer"}
    values.update(fields)
    return OutlookItem(EV, OutlookState.CANCELLED, **values)


def booking(slot: Slot = SLOT, hybrid_id: str = HB, **fields: Any) -> HybridItem:
    return HybridItem(hybrid_id, HybridState.LIVE, slot=slot, **fields)


def new_booking(**fields: Any) -> HybridItem:
    """A booking Alex made in Hybrid: the shell read its people's addresses."""
    values: dict[str, Any] = {
        "organizer": ALEX,
        "guests": (ADELE, GUEST),
        "description": "Quarterly numbers",
    }
    values.update(fields)
    return booking(**values)


def canceled(**fields: Any) -> HybridItem:
    values: dict[str, Any] = {"slot": SLOT, "cancel_reason": "canceled by the member"}
    values.update(fields)
    return HybridItem(HB, HybridState.CANCELED, **values)


def released(reason: str = "no-show", **fields: Any) -> HybridItem:
    values: dict[str, Any] = {"slot": SLOT, "cancel_reason": reason}
    values.update(fields)
    return HybridItem(HB, HybridState.RELEASED, **values)


# --- running the engine --------------------------------------------------------------------------


@dataclass
class Run:
    plan: Plan
    rows: list[tuple[Seen, Seen]]  # the rows of DECISIONS plan() looked up, in order

    def ops(self, name: str | None = None) -> list[Op]:
        return [op for op in self.plan.ops if name is None or op.op == name]


def run(
    room: RoomContext = ROOM,
    links: Sequence[Link] = (),
    outlook: Sequence[OutlookItem] = (),
    hybrid: Sequence[HybridItem] = (),
    *,
    force: bool = False,
) -> Run:
    """``plan()``, watching which rows of the table it looks up."""
    with mock.patch.object(engine, "decide", wraps=engine.decide) as spy:
        planned = plan(room, LinkIndex(links), list(outlook), list(hybrid), force=force)
    rows = [(c.args[0], c.args[1]) for c in spy.call_args_list]
    return Run(planned, rows)


def within(expected: Any, actual: Any, where: str = "") -> None:
    """``expected`` holds only the fields a user would check; dicts compare by those keys."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{where}: {actual!r} is not a mapping"
        for k, v in expected.items():
            assert k in actual, f"{where}.{k} missing from {actual!r}"
            within(v, actual[k], f"{where}.{k}")
    else:
        assert actual == expected, f"{where}: {actual!r} != {expected!r}"


def actions(p: Plan) -> list[str]:
    return [line.action for line in p.audit]


# --- the table, one case per row (two for a row decided by the conflict rule) ------------------

Ops = tuple[tuple[str, dict[str, Any]], ...]
Rule = Literal["outlook_wins", "hybrid_wins"]
Direction = Literal["outlook_to_hybrid", "hybrid_to_outlook"]


@dataclass(frozen=True)
class Case:
    row: tuple[Seen, Seen]
    story: str
    links: tuple[Link, ...] = ()
    outlook: tuple[OutlookItem, ...] = ()
    hybrid: tuple[HybridItem, ...] = ()
    conflict: Rule = "outlook_wins"
    ops: Ops = ()  # (op, the payload's key fields), in order
    stored: tuple[dict[str, Any], ...] = ()  # the links written, by their key fields
    audit: tuple[str, ...] = ()
    changes: dict[tuple[str, str], int] = field(default_factory=dict)
    conflicts: int = 0
    unreachable: str | None = None  # why plan() never looks this row up

    @property
    def id(self) -> str:
        text = f"{self.row[0]},{self.row[1]}"
        return f"{text}[{self.conflict}]" if isinstance(DECISIONS[self.row], ByRule) else text

    @property
    def room(self) -> RoomContext:
        return replace(ROOM, conflict=self.conflict)

    def run(self, room: RoomContext | None = None) -> Run:
        return run(room or self.room, self.links, self.outlook, self.hybrid)


O2H, H2O = "outlook_to_hybrid", "hybrid_to_outlook"

# A booking made in Hybrid carries no reference, so pair_up() keys it by its own id, and an
# unlinked meeting by its iCalUId: the two never meet in one pair. A Hybrid booking whose link
# was lost and its meeting are planned as (new, none) and (none, new) instead: one more meeting
# and one more booking (test_a_lost_link_of_a_hybrid_booking_is_planned_as_two_new_bookings).
LOST_LINK = "an unlinked Hybrid booking without reference never pairs with a meeting"

CASES: list[Case] = [
    # --- nothing links them yet ---------------------------------------------------------------
    Case(
        (N, NEW),
        "Adele books the room in Outlook: a Hybrid booking is made for her member",
        outlook=(new_meeting(),),
        ops=(
            (
                "hybrid.create",
                {
                    "link_id": KEY,
                    "reference": UID,
                    "booking": {
                        "resource_id": "res-4a",
                        "start": iso(SLOT.start),
                        "end": iso(SLOT.end),
                        "summary": "Budget review",
                        "description": None,
                        "member": "m-adele",
                        "members": ["m-alex"],
                        "visitors": [GUEST],
                    },
                },
            ),
        ),
        stored=({"link_id": KEY, "state": "active", "hybrid_id": None, "room_event_id": EV},),
        audit=("create",),
        changes={(O2H, "created"): 1},
    ),
    Case(
        (NEW, N),
        "Alex books the room in Hybrid: a meeting is made in his calendar with room and guests",
        hybrid=(new_booking(),),
        ops=(
            (
                "graph.create",
                {
                    "link_id": "h:hb-1",
                    "organizer": ALEX,
                    "idempotency_key": HB,
                    "event": {
                        "subject": "Budget review",
                        "body": {"content": "Quarterly numbers"},
                        "start": graph_time(SLOT.start),
                        "end": graph_time(SLOT.end),
                        "attendees": [
                            {
                                "emailAddress": {"address": ROOM.mailbox, "name": "Room 4A"},
                                "type": "resource",
                            },
                            {"emailAddress": {"address": ADELE}, "type": "required"},
                            {"emailAddress": {"address": GUEST}, "type": "required"},
                        ],
                    },
                },
            ),
        ),
        stored=(
            {"link_id": "h:hb-1", "state": "active", "hybrid_id": HB, "organizer_mailbox": ALEX},
        ),
        audit=("create",),
        changes={(H2O, "created"): 1},
    ),
    Case(
        (NEW, NEW),
        "a Hybrid booking and its meeting both found, link lost: linked, nothing created",
        outlook=(new_meeting(),),
        hybrid=(new_booking(),),
        stored=({"hybrid_id": HB, "room_event_id": EV, "state": "active"},),
        audit=("linked",),
        changes={(O2H, "linked"): 1},
        unreachable=LOST_LINK,
    ),
    Case(
        (ORPHAN, NEW),
        "roomd's own Hybrid booking (it carries the iCalUId) and its meeting: linked again",
        outlook=(new_meeting(),),
        hybrid=(booking(reference=UID),),
        stored=(
            {
                "link_id": KEY,
                "state": "active",
                "hybrid_id": HB,
                "room_event_id": EV,
                "ical_uid": UID,
                "hybrid_fingerprint": fingerprint(SLOT),
                "outlook_fingerprint": fingerprint(SLOT),
            },
        ),
        audit=("linked",),
        changes={(O2H, "linked"): 1},
    ),
    Case(
        (ORPHAN, N),
        "roomd's own Hybrid booking whose meeting the room no longer has: not recreated",
        hybrid=(booking(reference=UID),),
        audit=("not_recreated",),
    ),
    Case(
        (STRAY, NEW),
        "the meeting's Hybrid booking is already canceled: linked as canceled, no second booking",
        outlook=(new_meeting(),),
        hybrid=(canceled(reference=UID),),
        stored=({"link_id": KEY, "state": "canceled", "hybrid_id": HB, "room_event_id": EV},),
        audit=("linked",),
        changes={(O2H, "linked"): 1},
    ),
    Case(
        (STRAY, N),
        "a cancellation in Hybrid of a booking roomd never synced: nothing",
        hybrid=(canceled(),),
    ),
    Case(
        (N, STRAY),
        "a removal from the room's calendar of a meeting roomd never synced: nothing",
        outlook=(OutlookItem("ev-9", OutlookState.GONE),),
    ),
    Case(
        (NEW, STRAY),
        "a new Hybrid booking while an unknown meeting is removed: the meeting is made",
        outlook=(OutlookItem("ev-9", OutlookState.GONE),),
        hybrid=(new_booking(),),
        ops=(("graph.create", {"link_id": "h:hb-1", "organizer": ALEX}),),
        stored=({"link_id": "h:hb-1", "hybrid_id": HB},),
        audit=("create",),
        changes={(H2O, "created"): 1},
        unreachable=LOST_LINK,
    ),
    Case(
        (ORPHAN, STRAY),
        "roomd's own Hybrid booking, its meeting kept as cancelled, link lost: nothing",
        outlook=(kept_cancelled(),),
        hybrid=(booking(reference=UID),),
    ),
    Case(
        (STRAY, STRAY),
        "both sides cancelled, no link: nothing",
        outlook=(kept_cancelled(),),
        hybrid=(canceled(reference=UID),),
    ),
    # --- linked -------------------------------------------------------------------------------
    Case(
        (SAME, SAME),
        "both sides as last synced (Exchange rewrote the room's copy): only the change key kept",
        links=(linked(),),
        outlook=(meeting(change_key="ck-2"),),
        hybrid=(booking(),),
        stored=({"link_id": KEY, "state": "active", "outlook_change_key": "ck-2"},),
    ),
    Case(
        (SAME, CHANGED),
        "Adele moves the meeting: the Hybrid booking moves",
        links=(linked(),),
        outlook=(meeting(MOVED, change_key="ck-2"),),
        ops=(
            (
                "hybrid.update",
                {
                    "link_id": KEY,
                    "changes": {
                        "start": iso(MOVED.start),
                        "end": iso(MOVED.end),
                        "summary": "Budget review",
                    },
                },
            ),
        ),
        stored=(
            {
                "state": "active",
                "outlook_fingerprint": fingerprint(MOVED),
                "hybrid_fingerprint": fingerprint(MOVED),
                "outlook_change_key": "ck-2",
            },
        ),
        audit=("update",),
        changes={(O2H, "updated"): 1},
    ),
    Case(
        (CHANGED, SAME),
        "the booking is moved in Hybrid: the organizer's meeting moves",
        links=(linked(),),
        hybrid=(booking(MOVED),),
        ops=(
            (
                "graph.update",
                {
                    "link_id": KEY,
                    "changes": {
                        "start": graph_time(MOVED.start),
                        "end": graph_time(MOVED.end),
                        "subject": "Budget review",
                    },
                },
            ),
        ),
        stored=(
            {
                "state": "active",
                "outlook_fingerprint": fingerprint(MOVED),
                "hybrid_fingerprint": fingerprint(MOVED),
            },
        ),
        audit=("update",),
        changes={(H2O, "updated"): 1},
    ),
    Case(
        (CHANGED, CHANGED),
        "both moved since the last sync, Outlook wins: Hybrid gets Outlook's time and title",
        links=(linked(),),
        outlook=(meeting(Slot(MOVED.start, MOVED.end, "Budget (Outlook)")),),
        hybrid=(booking(Slot(SLOT.start, MOVED.end, "Budget (Hybrid)")),),
        ops=(
            (
                "hybrid.update",
                {
                    "changes": {
                        "start": iso(MOVED.start),
                        "end": iso(MOVED.end),
                        "summary": "Budget (Outlook)",
                    }
                },
            ),
        ),
        stored=(
            {
                "hybrid_fingerprint": fingerprint(Slot(MOVED.start, MOVED.end, "Budget (Outlook)")),
                "outlook_fingerprint": fingerprint(
                    Slot(MOVED.start, MOVED.end, "Budget (Outlook)")
                ),
            },
        ),
        audit=("conflict", "update"),
        changes={(O2H, "updated"): 1},
        conflicts=1,
    ),
    Case(
        (CHANGED, CHANGED),
        "both moved since the last sync, Hybrid wins: Outlook gets Hybrid's time and title",
        links=(linked(),),
        outlook=(meeting(Slot(MOVED.start, MOVED.end, "Budget (Outlook)")),),
        hybrid=(booking(Slot(SLOT.start, MOVED.end, "Budget (Hybrid)")),),
        conflict="hybrid_wins",
        ops=(
            (
                "graph.update",
                {
                    "changes": {
                        "start": graph_time(SLOT.start),
                        "end": graph_time(MOVED.end),
                        "subject": "Budget (Hybrid)",
                    }
                },
            ),
        ),
        stored=(
            {
                "hybrid_fingerprint": fingerprint(Slot(SLOT.start, MOVED.end, "Budget (Hybrid)")),
                "outlook_fingerprint": fingerprint(Slot(SLOT.start, MOVED.end, "Budget (Hybrid)")),
            },
        ),
        audit=("conflict", "update"),
        changes={(H2O, "updated"): 1},
        conflicts=1,
    ),
    Case(
        (SAME, GONE),
        "Adele deletes the meeting: the booking is kept in Hybrid as canceled, with the reason",
        links=(linked(),),
        outlook=(removed("deleted in Outlook by the organizer"),),
        ops=(("hybrid.cancel", {"link_id": KEY, "reason": "deleted in Outlook by the organizer"}),),
        stored=({"link_id": KEY, "state": "canceled"},),
        audit=("cancel",),
        changes={(O2H, "canceled"): 1},
    ),
    Case(
        (GONE, SAME),
        "a person cancels the booking in Hybrid: the meeting is cancelled for everyone",
        links=(linked(),),
        hybrid=(canceled(),),
        ops=(
            ("graph.cancel", {"link_id": KEY, "comment": "Cancelled in the room booking system"}),
        ),
        stored=({"link_id": KEY, "state": "canceled"},),
        audit=("cancel",),
        changes={(H2O, "canceled"): 1},
    ),
    Case(
        (RELEASED, SAME),
        "nobody checked in: the room declines, Adele and her guests keep the meeting",
        links=(linked(),),
        hybrid=(released("no-show"),),
        ops=(
            (
                "graph.respond",
                {
                    "link_id": KEY,
                    "response": "decline",
                    "comment": "Nobody checked in: the room was released. Your meeting stays in "
                    "your calendar.",
                },
            ),
        ),
        stored=({"link_id": KEY, "state": "canceled"},),
        audit=("release_room",),
        changes={(H2O, "released"): 1},
    ),
    Case(
        (GONE, GONE),
        "cancelled on both sides: recorded, nothing written",
        links=(linked(),),
        outlook=(removed(),),
        hybrid=(canceled(),),
        stored=({"link_id": KEY, "state": "canceled"},),
        audit=("canceled",),
    ),
    Case(
        (RELEASED, GONE),
        "released in Hybrid and removed in Outlook: recorded, nothing written",
        links=(linked(),),
        outlook=(removed(),),
        hybrid=(released(),),
        stored=({"link_id": KEY, "state": "canceled"},),
        audit=("canceled",),
    ),
    Case(
        (CHANGED, GONE),
        "moved in Hybrid, deleted in Outlook, Outlook wins: canceled in Hybrid",
        links=(linked(),),
        outlook=(removed(),),
        hybrid=(booking(MOVED),),
        ops=(("hybrid.cancel", {"link_id": KEY, "reason": "deleted in Outlook by the organizer"}),),
        stored=({"link_id": KEY, "state": "canceled"},),
        audit=("conflict", "cancel"),
        changes={(O2H, "canceled"): 1},
        conflicts=1,
    ),
    Case(
        (CHANGED, GONE),
        "moved in Hybrid, deleted in Outlook, Hybrid wins: the meeting is made again",
        links=(linked(),),
        outlook=(removed(),),
        # a linked booking: the shell reads no people for it (no organizer, no guests)
        hybrid=(booking(MOVED),),
        conflict="hybrid_wins",
        ops=(
            (
                "graph.create",
                {
                    "link_id": KEY,
                    "organizer": ADELE,  # the link's organizer
                    "idempotency_key": f"{HB}:{fingerprint(MOVED)}",
                    "event": {"start": graph_time(MOVED.start), "end": graph_time(MOVED.end)},
                },
            ),
        ),
        stored=(
            {
                "link_id": KEY,
                "state": "active",
                "hybrid_id": HB,
                "room_event_id": None,  # the old copy is gone: the new one is learnt later
                "ical_uid": None,
                "organizer_event_id": None,
                "hybrid_fingerprint": fingerprint(MOVED),
            },
        ),
        audit=("conflict", "create"),
        changes={(H2O, "created"): 1},
        conflicts=1,
    ),
    Case(
        (GONE, CHANGED),
        "canceled in Hybrid, moved in Outlook, Outlook wins: the booking is made again",
        links=(linked(),),
        hybrid=(canceled(),),
        outlook=(meeting(MOVED, member_id="m-adele"),),
        ops=(
            (
                "hybrid.create",
                {
                    "link_id": KEY,
                    "reference": UID,
                    "booking": {
                        "start": iso(MOVED.start),
                        "end": iso(MOVED.end),
                        "member": "m-adele",
                    },
                },
            ),
        ),
        stored=(
            {
                "link_id": KEY,
                "state": "active",
                "hybrid_id": None,  # the canceled booking stays canceled; the new one is learnt
                "room_event_id": EV,
                "outlook_fingerprint": fingerprint(MOVED),
                "hybrid_fingerprint": None,
            },
        ),
        audit=("conflict", "create"),
        changes={(O2H, "created"): 1},
        conflicts=1,
    ),
    Case(
        (GONE, CHANGED),
        "canceled in Hybrid, moved in Outlook, Hybrid wins: the meeting is cancelled",
        links=(linked(),),
        hybrid=(canceled(),),
        outlook=(meeting(MOVED),),
        conflict="hybrid_wins",
        ops=(("graph.cancel", {"link_id": KEY}),),
        stored=({"link_id": KEY, "state": "canceled"},),
        audit=("conflict", "cancel"),
        changes={(H2O, "canceled"): 1},
        conflicts=1,
    ),
    Case(
        (RELEASED, CHANGED),
        "rejected in Hybrid while Adele moved it: the room declines, the edit does not undo it",
        links=(linked(),),
        hybrid=(released("rejected"),),
        outlook=(meeting(MOVED),),
        ops=(
            (
                "graph.respond",
                {
                    "response": "decline",
                    "comment": "The booking was rejected in the room booking system.",
                },
            ),
        ),
        stored=({"link_id": KEY, "state": "canceled"},),
        audit=("release_room",),
        changes={(H2O, "released"): 1},
    ),
]


def _param(case: Case) -> Any:
    marks = []
    if case.unreachable:
        marks.append(pytest.mark.xfail(reason=f"unreachable: {case.unreachable}", strict=True))
    return pytest.param(case, id=case.id, marks=marks)


REACHABLE = [pytest.param(c, id=c.id) for c in CASES if not c.unreachable]


def test_every_row_has_a_case() -> None:
    covered = {(c.row, c.conflict) for c in CASES}
    wanted: set[tuple[tuple[Seen, Seen], str]] = set()
    for row, rule in DECISIONS.items():
        rules = ("outlook_wins", "hybrid_wins") if isinstance(rule, ByRule) else ("outlook_wins",)
        wanted |= {(row, r) for r in rules}
    assert covered == wanted
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_row(case: Case) -> None:
    result = case.run()
    assert case.row in result.rows, f"{case.story}: plan() looked up {result.rows}"
    p = result.plan
    assert [op.op for op in p.ops] == [name for name, _ in case.ops], case.story
    for i, (op, (_, fields)) in enumerate(zip(p.ops, case.ops, strict=True)):
        within(fields, op.payload, f"ops[{i}].payload")
    assert len(p.links) == len(case.stored), p.links
    for i, (link, fields) in enumerate(zip(p.links, case.stored, strict=True)):
        within(fields, dataclasses.asdict(link), f"links[{i}]")
    assert actions(p) == list(case.audit)
    assert p.changes == case.changes
    assert p.conflicts == case.conflicts
    assert p.breaker is None and not p.problems


@pytest.mark.parametrize("case", REACHABLE)
def test_planning_twice_gives_the_same_writes(case: Case) -> None:
    """Intent ids come from the change, not from a counter or a clock: the outbox queues a
    change planned twice (a re-read page, a round retried) once."""
    first, second = case.run().plan, case.run().plan
    assert [(op.intent_id, op.op, op.payload) for op in first.ops] == [
        (op.intent_id, op.op, op.payload) for op in second.ops
    ]
    assert first.links == second.links and first.audit == second.audit


# --- conflicts: the room's rule picks the winner; the loser is overwritten ----------------------


def test_both_changed_outlook_wins_overwrites_hybrid_with_outlooks_time_and_title() -> None:
    outlook_slot = Slot(MOVED.start, MOVED.end, "Budget (Outlook)")
    result = run(
        replace(ROOM, conflict="outlook_wins"),
        [linked()],
        [meeting(outlook_slot)],
        [booking(Slot(SLOT.start, MOVED.end, "Budget (Hybrid)"))],
    )
    assert result.rows == [(CHANGED, CHANGED)]
    assert [op.op for op in result.plan.ops] == ["hybrid.update"]
    assert result.plan.ops[0].payload["changes"] == {
        "start": iso(MOVED.start),
        "end": iso(MOVED.end),
        "summary": "Budget (Outlook)",
    }
    assert result.plan.conflicts == 1
    conflict = result.plan.audit[0]
    assert (conflict.action, conflict.side) == ("conflict", "none")
    assert "outlook_wins" in conflict.reason


def test_both_changed_hybrid_wins_moves_outlook_back_even_when_hybrid_only_approved() -> None:
    """Hybrid approved the booking (its only change) while Adele moved the meeting: with
    hybrid_wins the meeting goes back to Hybrid's time, and the room accepts."""
    result = run(
        replace(ROOM, conflict="hybrid_wins"),
        [linked("tentative")],
        [meeting(MOVED, room_response="tentativelyAccepted")],
        [booking(SLOT)],
    )
    assert result.rows == [(CHANGED, CHANGED)]
    assert [op.op for op in result.plan.ops] == ["graph.update", "graph.respond"]
    assert result.plan.ops[0].payload["changes"] == {
        "start": graph_time(SLOT.start),
        "end": graph_time(SLOT.end),
        "subject": "Budget review",
    }
    assert result.plan.ops[1].payload["response"] == "accept"
    (link,) = result.plan.links
    assert link.outlook_fingerprint == fingerprint(SLOT)
    assert link.hybrid_fingerprint == fingerprint(SLOT, "booked")


def test_both_changed_hybrid_wins_overwrites_a_title_changed_only_in_outlook() -> None:
    result = run(
        replace(ROOM, conflict="hybrid_wins"),
        [linked("tentative")],
        [meeting(RETITLED)],
        [booking(SLOT)],
    )
    assert result.rows == [(CHANGED, CHANGED)]
    updates = result.ops("graph.update")
    assert len(updates) == 1
    assert updates[0].payload["changes"]["subject"] == "Budget review"


@pytest.mark.parametrize("rule", ["outlook_wins", "hybrid_wins"])
def test_a_conflict_is_counted_and_audited_under_either_rule(rule: Rule) -> None:
    result = run(
        replace(ROOM, conflict=rule),
        [linked()],
        [removed()],
        [booking(MOVED)],
    )
    assert result.plan.conflicts == 1
    assert actions(result.plan)[0] == "conflict"
    assert rule in result.plan.audit[0].reason


# --- echoes: roomd's own writes coming back change nothing --------------------------------------


def test_a_hybrid_echo_plans_nothing() -> None:
    assert run(links=[linked()], hybrid=[booking()]).plan.empty


def test_an_outlook_echo_plans_nothing() -> None:
    assert run(links=[linked()], outlook=[meeting()]).plan.empty


def test_an_outlook_echo_with_a_new_change_key_only_records_the_key() -> None:
    result = run(links=[linked()], outlook=[meeting(change_key="ck-9")])
    assert not result.plan.ops and not result.plan.audit and not result.plan.changes
    assert [lk.outlook_change_key for lk in result.plan.links] == ["ck-9"]


def test_a_room_copy_whose_title_is_unknown_is_not_a_change() -> None:
    """Exchange shows the organizer's name on the room's copy; with the organizer's copy out of
    reach the title is None, which never overwrites the real title."""
    result = run(links=[linked()], outlook=[meeting(UNTITLED)], hybrid=[booking()])
    assert result.rows == [(SAME, SAME)]
    assert result.plan.empty


def test_a_move_seen_on_a_room_copy_without_title_keeps_hybrids_title() -> None:
    moved_untitled = Slot(MOVED.start, MOVED.end, None)
    result = run(links=[linked()], outlook=[meeting(moved_untitled)])
    (update,) = result.ops("hybrid.update")
    assert update.payload["changes"] == {"start": iso(MOVED.start), "end": iso(MOVED.end)}
    (link,) = result.plan.links
    assert link.hybrid_fingerprint == fingerprint(MOVED)  # the title it had, kept


def test_the_echo_of_a_meeting_roomd_made_links_nothing_twice() -> None:
    """Alex's booking became a meeting; its room copy appears: the link learns the copy's id."""
    link = Link(
        "h:hb-1",
        hybrid_id=HB,
        organizer_mailbox=ALEX,
        organizer_event_id=ORG_EV,
        ical_uid=UID,
        hybrid_fingerprint=fingerprint(SLOT),
        outlook_fingerprint=fingerprint(SLOT),
    )
    result = run(links=[link], outlook=[meeting(UNTITLED, organizer=ALEX)], hybrid=[booking()])
    assert result.rows == [(SAME, SAME)]
    assert not result.plan.ops and not result.plan.audit
    (learnt,) = result.plan.links
    assert (learnt.room_event_id, learnt.state) == (EV, "active")


# --- a canceled link stays canceled --------------------------------------------------------------

WHATEVER_COMES: list[tuple[str, list[OutlookItem], list[HybridItem]]] = [
    ("meeting moved", [meeting(MOVED, change_key="ck-2")], []),
    ("booking moved", [], [booking(MOVED)]),
    ("both moved", [meeting(MOVED)], [booking(MOVED)]),
    ("meeting back, booking live", [meeting()], [booking()]),
    ("meeting removed", [removed()], []),
    ("booking canceled", [], [canceled()]),
    ("booking released", [], [released()]),
    ("booking approved", [meeting(room_response="tentativelyAccepted")], [booking()]),
]


@pytest.mark.parametrize(
    ("outlook", "hybrid"), [pytest.param(o, h, id=name) for name, o, h in WHATEVER_COMES]
)
@pytest.mark.parametrize("rule", ["outlook_wins", "hybrid_wins"])
def test_a_canceled_link_stays_canceled_whatever_comes(
    outlook: list[OutlookItem], hybrid: list[HybridItem], rule: Rule
) -> None:
    room = replace(ROOM, conflict=rule)
    result = run(room, [linked(state="canceled")], outlook, hybrid)
    assert result.plan.empty
    assert result.plan.conflicts == 0


# --- direction: a one-way room writes one side only ---------------------------------------------


@pytest.mark.parametrize("case", REACHABLE)
@pytest.mark.parametrize("direction", ["outlook_to_hybrid", "hybrid_to_outlook"])
def test_a_one_way_room_writes_only_the_side_it_feeds(case: Case, direction: Direction) -> None:
    room = replace(case.room, direction=direction)
    dropped = "graph." if direction == "outlook_to_hybrid" else "hybrid."
    result = case.run(room)
    kept = [name for name, _ in case.ops if not name.startswith(dropped)]
    assert [op.op for op in result.plan.ops] == kept


def test_outlook_to_hybrid_still_copies_an_outlook_booking() -> None:
    room = replace(ROOM, direction="outlook_to_hybrid")
    assert [op.op for op in run(room, outlook=[new_meeting()]).plan.ops] == ["hybrid.create"]
    assert run(room, hybrid=[new_booking()]).plan.empty


def test_hybrid_to_outlook_still_copies_a_hybrid_booking() -> None:
    room = replace(ROOM, direction="hybrid_to_outlook")
    assert [op.op for op in run(room, hybrid=[new_booking()]).plan.ops] == ["graph.create"]
    assert run(room, outlook=[new_meeting()]).plan.empty
    deleted = run(room, [linked()], [removed()])
    assert not deleted.plan.ops and not deleted.plan.links  # the link stays active


# --- the mass-delete breaker ---------------------------------------------------------------------

BREAKER_ROOM = replace(ROOM, mass_delete_min=2, mass_delete_threshold=0.5)
THREE_LINKS = [
    linked(link_id=f"o:uid-{n}", hybrid_id=f"hb-{n}", room_event_id=f"ev-{n}", ical_uid=f"uid-{n}")
    for n in (1, 2, 3)
]


def deleted_in_outlook(n: int) -> OutlookItem:
    return OutlookItem(f"ev-{n}", OutlookState.GONE, ical_uid=f"uid-{n}", reason="deleted")


def test_two_of_three_deleted_trips_the_breaker_and_plans_nothing() -> None:
    result = run(BREAKER_ROOM, THREE_LINKS, [deleted_in_outlook(1), deleted_in_outlook(2)])
    p = result.plan
    assert p.breaker is not None
    assert "roomd sync --force room-4a@contoso.com" in p.breaker
    assert "2 of the room's 3 live bookings" in p.breaker
    assert not p.ops and not p.links and not p.audit


def test_one_of_three_deleted_goes_through() -> None:
    p = run(BREAKER_ROOM, THREE_LINKS, [deleted_in_outlook(1)]).plan
    assert p.breaker is None
    assert [(op.op, op.payload["link_id"]) for op in p.ops] == [("hybrid.cancel", "o:uid-1")]


def test_force_lets_the_deletions_through() -> None:
    p = run(
        BREAKER_ROOM, THREE_LINKS, [deleted_in_outlook(1), deleted_in_outlook(2)], force=True
    ).plan
    assert p.breaker is None
    assert [(op.op, op.payload["link_id"]) for op in p.ops] == [
        ("hybrid.cancel", "o:uid-1"),
        ("hybrid.cancel", "o:uid-2"),
    ]
    assert p.changes == {(O2H, "canceled"): 2}
    assert [lk.state for lk in p.links] == ["canceled", "canceled"]


def test_hybrid_cancellations_count_for_the_breaker_too() -> None:
    hybrid = [
        HybridItem(f"hb-{n}", HybridState.CANCELED, slot=SLOT, cancel_reason="admin")
        for n in (1, 2)
    ]
    assert run(BREAKER_ROOM, THREE_LINKS, hybrid=hybrid).plan.breaker is not None


# --- bad data and people roomd cannot map ---------------------------------------------------------


def test_an_outlook_item_with_a_problem_is_skipped_and_says_why() -> None:
    bad = OutlookItem(EV, OutlookState.LIVE, ical_uid=UID, problem="event uid-1 has no organizer")
    p = run(outlook=[bad]).plan
    assert not p.ops and not p.links
    (line,) = p.audit
    assert (line.booking, line.action) == (KEY, "skipped")
    assert "event uid-1 has no organizer" in line.reason
    assert p.changes == {(O2H, "skipped"): 1}
    assert p.problems == ["event uid-1 has no organizer"]


def test_a_hybrid_item_with_a_problem_is_skipped_even_when_linked() -> None:
    problem = "booking hb-1 ends (2030-03-04 09:00) before it starts"
    bad = HybridItem(HB, HybridState.LIVE, problem=problem)
    p = run(links=[linked()], hybrid=[bad]).plan
    assert not p.ops and not p.links
    (line,) = p.audit
    assert (line.booking, line.action) == (KEY, "skipped")
    assert problem in line.reason
    assert p.changes == {(H2O, "skipped"): 1}
    assert p.problems == [problem]


def test_an_organizer_without_a_member_books_for_the_fallback_member() -> None:
    room = replace(ROOM, fallback_member_id="m-frontdesk")
    p = run(room, outlook=[new_meeting(member_id=None, member_ids=("m-alex",))]).plan
    (create,) = p.ops
    assert create.op == "hybrid.create"
    assert create.payload["booking"]["member"] == "m-frontdesk"
    assert create.payload["booking"]["members"] == ["m-alex"]
    assert ADELE in create.payload["booking"]["description"]
    assert p.changes == {(O2H, "created"): 1} and not p.problems


def test_an_organizer_without_a_member_and_no_fallback_is_skipped_naming_the_organizer() -> None:
    p = run(outlook=[new_meeting(member_id=None)]).plan
    assert not p.ops and not p.links
    assert actions(p) == ["skipped"]
    assert p.changes == {(O2H, "skipped"): 1}
    (problem,) = p.problems
    assert ADELE in problem and "fallback_member" in problem


def test_a_meeting_with_no_title_anywhere_is_booked_under_the_room_copys_subject() -> None:
    (create,) = run(outlook=[new_meeting(slot=UNTITLED)]).plan.ops
    assert create.payload["booking"]["summary"] == "Adele Vance"


# --- approval: the room's answer follows Hybrid's approval state --------------------------------


def test_approved_in_hybrid_the_room_accepts() -> None:
    result = run(links=[linked("tentative")], hybrid=[booking()])
    assert result.rows == [(CHANGED, SAME)]
    p = result.plan
    assert [(op.op, op.payload["response"]) for op in p.ops] == [("graph.respond", "accept")]
    assert actions(p) == ["room_accept"]
    (link,) = p.links
    assert link.hybrid_fingerprint == fingerprint(SLOT, "booked")


def test_awaiting_approval_again_the_room_answers_tentatively() -> None:
    p = run(links=[linked()], hybrid=[booking(tentative=True)]).plan
    assert [(op.op, op.payload["response"]) for op in p.ops] == [
        ("graph.respond", "tentativelyAccept")
    ]


def test_a_room_copy_accepted_while_hybrid_awaits_approval_is_answered_tentatively() -> None:
    """Exchange's booking assistant accepted on its own: roomd answers for the room again."""
    result = run(links=[linked("tentative")], outlook=[meeting(room_response="accepted")])
    assert result.rows == [(SAME, SAME)]
    (answer,) = result.plan.ops
    assert (answer.op, answer.payload["response"]) == ("graph.respond", "tentativelyAccept")
    assert answer.intent_id == f"graph.respond:{KEY}:tentativelyAccept:ck-1"


def test_a_room_copy_answered_as_hybrid_says_needs_no_answer() -> None:
    tentative = meeting(room_response="tentativelyAccepted")
    assert not run(links=[linked("tentative")], outlook=[tentative]).plan.ops
    assert not run(links=[linked()], outlook=[meeting(room_response="accepted")]).plan.ops


# --- idempotency ---------------------------------------------------------------------------------


def test_intent_ids_name_the_change() -> None:
    create_h = run(outlook=[new_meeting()]).plan.ops[0]
    create_o = run(hybrid=[new_booking()]).plan.ops[0]
    update_h = run(links=[linked()], outlook=[meeting(MOVED)]).plan.ops[0]
    cancel_o = run(links=[linked()], hybrid=[canceled()]).plan.ops[0]
    assert create_h.intent_id == "hybrid.create:uid-1"
    assert create_o.intent_id == "graph.create:hb-1"
    assert create_o.payload["idempotency_key"] == "hb-1"
    assert update_h.intent_id == f"hybrid.update:{KEY}:{fingerprint(MOVED)}"
    assert cancel_o.intent_id == f"graph.cancel:{KEY}"


def stored_after(links: Sequence[Link], p: Plan) -> list[Link]:
    """The room's links once the plan's links are stored (by link id, the new one winning)."""
    merged = {lk.link_id: lk for lk in links}
    merged.update({lk.link_id: lk for lk in p.links})
    return list(merged.values())


@pytest.mark.parametrize(
    "case", [pytest.param(c, id=c.id) for c in CASES if not c.unreachable and not c.conflicts]
)
def test_a_replayed_round_plans_no_write(case: Case) -> None:
    """The same delta page and Hybrid listing read again once the plan is stored (a replay, an
    echo of what the plan itself recorded) write nothing. Conflict rows are left out: read
    again, the losing side still shows its own edit until the overwrite lands."""
    first = case.run().plan
    again = run(case.room, stored_after(case.links, first), case.outlook, case.hybrid).plan
    assert not again.ops


def test_the_echo_of_a_conflict_resolution_plans_nothing() -> None:
    outlook_slot = Slot(MOVED.start, MOVED.end, "Budget (Outlook)")
    first = run(links=[linked()], outlook=[meeting(outlook_slot)], hybrid=[booking(RETITLED)])
    assert first.plan.conflicts == 1
    # Hybrid now shows what roomd wrote; Outlook shows what it showed
    echo = run(
        links=stored_after([linked()], first.plan),
        outlook=[meeting(outlook_slot)],
        hybrid=[booking(outlook_slot)],
    )
    assert echo.plan.empty


def test_a_replayed_new_meeting_creates_one_booking() -> None:
    first = run(outlook=[new_meeting()]).plan
    again = run(links=stored_after([], first), outlook=[new_meeting()]).plan
    assert again.empty
    # the create's result recorded, then the booking itself shows up in the listing
    made = replace(first.links[0], hybrid_id=HB, hybrid_fingerprint=fingerprint(SLOT))
    later = run(links=[made], outlook=[new_meeting()], hybrid=[booking(reference=UID)]).plan
    assert later.empty


def test_a_booking_roomd_made_is_adopted_before_its_result_is_recorded() -> None:
    """The create went through but its answer was lost: the listing shows the booking with the
    meeting's iCalUId, and the link learns its id instead of a second create."""
    first = run(outlook=[new_meeting()]).plan
    p = run(links=stored_after([], first), outlook=[], hybrid=[booking(reference=UID)]).plan
    assert not p.ops
    assert [lk.hybrid_id for lk in p.links] == [HB]


# --- superseded identities: a recreated booking or meeting is the link's, the old one is not -----


def test_the_canceled_booking_outlook_won_over_does_not_cancel_the_meeting_later() -> None:
    """Outlook won over a Hybrid cancellation and the booking was made again (hb-2, same
    reference); the old canceled hb-1 listed again (a full sync) is not the link's booking."""
    link = linked(hybrid_id="hb-2")
    old = canceled(reference=UID)
    for hybrid in ([old], [booking(hybrid_id="hb-2"), old], [old, booking(hybrid_id="hb-2")]):
        result = run(links=[link], outlook=[meeting()], hybrid=hybrid)
        assert not result.plan.ops, hybrid
        assert all(lk.state == "active" for lk in result.plan.links)


def test_the_canceled_booking_outlook_won_over_is_not_taken_for_its_successor() -> None:
    """The same for a booking made in Hybrid (link h:hb-1, no reference): its canceled first
    version listed again is not the link's booking, whose id it shares the link's name with."""
    link = Link(
        "h:hb-1",
        hybrid_id="hb-2",
        room_event_id=EV,
        ical_uid=UID,
        organizer_mailbox=ALEX,
        organizer_event_id=ORG_EV,
        hybrid_fingerprint=fingerprint(SLOT),
        outlook_fingerprint=fingerprint(SLOT),
        outlook_change_key="ck-1",
    )
    result = run(links=[link], outlook=[meeting(organizer=ALEX)], hybrid=[canceled()])
    assert not result.plan.ops
    assert all(lk.state == "active" for lk in result.plan.links)


def test_the_old_copy_of_a_meeting_hybrid_won_over_makes_no_second_meeting() -> None:
    """Hybrid won over an Outlook deletion and the meeting is being made again; the old copy,
    kept as cancelled, shows up once more with the old iCalUId."""
    remade = linked(room_event_id=None, ical_uid=None, organizer_event_id=None)
    for hybrid in ([], [booking(MOVED, reference=UID)], [booking(RETITLED, reference=UID)]):
        ops = run(links=[remade], outlook=[kept_cancelled()], hybrid=hybrid).plan.ops
        # the meeting being made again follows Hybrid's edit; none is made a second time
        assert not [op for op in ops if op.op in ("graph.create", "graph.cancel")], ops


# --- gaps: situations plan() reaches that have no row ------------------------------------------


def hybrid_made_link(**changes: Any) -> Link:
    """Alex's booking, its meeting made in his calendar; the room's copy not read yet."""
    link = Link(
        "h:hb-1",
        hybrid_id=HB,
        organizer_mailbox=ALEX,
        organizer_event_id=ORG_EV,
        ical_uid=UID,
        hybrid_fingerprint=fingerprint(SLOT),
        outlook_fingerprint=fingerprint(SLOT),
    )
    return replace(link, **changes)


def test_a_hybrid_cancellation_before_the_room_copy_is_read_cancels_the_meeting() -> None:
    result = run(links=[hybrid_made_link()], hybrid=[canceled()])
    assert result.rows == [(GONE, SAME)]
    assert [op.op for op in result.plan.ops] == ["graph.cancel"]


def test_a_hybrid_move_before_the_room_copy_is_read_moves_the_meeting() -> None:
    result = run(links=[hybrid_made_link()], hybrid=[booking(MOVED)])
    assert result.rows == [(CHANGED, SAME)]
    assert [op.op for op in result.plan.ops] == ["graph.update"]


def test_an_outlook_deletion_before_the_hybrid_booking_exists_cancels_it() -> None:
    pending = linked(hybrid_id=None, hybrid_fingerprint=None)
    result = run(links=[pending], outlook=[removed()])
    assert result.rows == [(SAME, GONE)]
    assert [op.op for op in result.plan.ops] == ["hybrid.cancel"]


def test_a_lost_link_of_a_hybrid_booking_is_planned_as_two_new_bookings() -> None:
    """What plan() does today for the (new, new) row's situation (see LOST_LINK)."""
    result = run(outlook=[new_meeting()], hybrid=[new_booking()])
    assert sorted(result.rows) == sorted([(N, NEW), (NEW, N)])
    assert sorted(op.op for op in result.plan.ops) == ["graph.create", "hybrid.create"]


# --- properties over every combination -----------------------------------------------------------

# a link: none; in sync; made in Hybrid (h:hb-1); the room's copy not read yet; the Hybrid create
# still owed; made again after a conflict (it knows hb-2 now); canceled
LINK_KINDS = (
    "none",
    "linked",
    "from_hybrid",
    "copy_unread",
    "booking_owed",
    "made_again",
    "canceled",
)
SLOTS = (SLOT, MOVED, RETITLED, UNTITLED)


@st.composite
def situations(
    draw: st.DrawFn,
) -> tuple[RoomContext, list[Link], list[OutlookItem], list[HybridItem]]:
    """One booking as the shells could report it: any link, any Hybrid and Outlook items."""
    room = replace(
        ROOM,
        conflict=draw(st.sampled_from(["outlook_wins", "hybrid_wins"])),
        direction=draw(st.sampled_from(["both", "outlook_to_hybrid", "hybrid_to_outlook"])),
        fallback_member_id=draw(st.sampled_from([None, "m-frontdesk"])),
    )
    status = draw(st.sampled_from(["booked", "tentative"]))
    recorded = draw(st.sampled_from([SLOT, UNTITLED]))
    kind = draw(st.sampled_from(LINK_KINDS))
    links: list[Link] = []
    if kind != "none":
        link = linked(
            status,
            hybrid_fingerprint=fingerprint(recorded, status),
            outlook_fingerprint=fingerprint(recorded),
        )
        if kind == "from_hybrid":
            link = replace(link, link_id="h:hb-1", organizer_mailbox=ALEX)
        elif kind == "copy_unread":
            link = replace(link, room_event_id=None)
        elif kind == "made_again":
            link = replace(link, hybrid_id="hb-2")
        elif kind == "booking_owed":
            link = replace(link, hybrid_id=None, hybrid_fingerprint=None)
        elif kind == "canceled":
            link = replace(link, state="canceled")
        links.append(link)
    linked_booking = bool(links) and links[0].hybrid_id == HB

    outlook: list[OutlookItem] = []
    o_kind = draw(st.sampled_from(["none", "live", "gone", "cancelled", "left_window", "bad"]))
    if o_kind == "live":
        outlook.append(
            meeting(
                draw(st.sampled_from(SLOTS)),
                change_key=draw(st.sampled_from(["ck-1", "ck-2"])),
                member_id=draw(st.sampled_from([None, "m-adele"])),
                room_response=draw(
                    st.sampled_from([None, "accepted", "tentativelyAccepted", "organizer"])
                ),
            )
        )
    elif o_kind == "bad":
        outlook.append(OutlookItem(EV, OutlookState.LIVE, ical_uid=UID, problem="no organizer"))
    elif o_kind != "none":
        state = {
            "gone": OutlookState.GONE,
            "cancelled": OutlookState.CANCELLED,
            "left_window": OutlookState.LEFT_WINDOW,
        }[o_kind]
        uid = draw(st.sampled_from([UID, None]))
        outlook.append(
            OutlookItem(EV, state, ical_uid=uid, reason=draw(st.sampled_from([None, "x"])))
        )

    hybrid: list[HybridItem] = []
    h_kind = draw(st.sampled_from(["none", "live", "canceled", "released", "bad"]))
    reference = draw(st.sampled_from([None, UID]))
    if h_kind == "live":
        # the shell reads people only for a live booking no link knows and roomd did not make
        new = not linked_booking and reference is None
        hybrid.append(
            booking(
                draw(st.sampled_from(SLOTS)),
                tentative=draw(st.booleans()),
                reference=reference,
                organizer=ALEX if new else None,
                guests=(ADELE,) if new else (),
            )
        )
    elif h_kind == "canceled":
        hybrid.append(canceled(reference=reference))
    elif h_kind == "released":
        hybrid.append(released(draw(st.sampled_from(["no-show", "rejected"])), reference=reference))
    elif h_kind == "bad":
        hybrid.append(HybridItem(HB, HybridState.LIVE, problem="ends before it starts"))
    return room, links, outlook, hybrid


FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(situations())
def test_plan_never_raises_and_never_creates_twice(
    s: tuple[RoomContext, list[Link], list[OutlookItem], list[HybridItem]],
) -> None:
    room, links, outlook, hybrid = s
    p = run(room, links, outlook, hybrid).plan
    for side in ("hybrid.create", "graph.create"):
        assert sum(op.op == side for op in p.ops) <= 1, p.ops
    per_link: dict[str, int] = {}
    for op in p.ops:
        if op.op.endswith(".create"):
            per_link[op.payload["link_id"]] = per_link.get(op.payload["link_id"], 0) + 1
    assert all(n == 1 for n in per_link.values()), p.ops
    assert len({op.intent_id for op in p.ops}) == len(p.ops)


@FAST
@given(situations())
def test_a_canceled_link_is_never_written_to(
    s: tuple[RoomContext, list[Link], list[OutlookItem], list[HybridItem]],
) -> None:
    room, links, outlook, hybrid = s
    p = run(room, links, outlook, hybrid).plan
    canceled_ids = {lk.link_id for lk in links if lk.state == "canceled"}
    assert not [op for op in p.ops if op.payload.get("link_id") in canceled_ids]
    assert not [lk for lk in p.links if lk.link_id in canceled_ids]


@FAST
@given(situations())
def test_a_one_way_room_never_writes_the_other_side(
    s: tuple[RoomContext, list[Link], list[OutlookItem], list[HybridItem]],
) -> None:
    room, links, outlook, hybrid = s
    p = run(room, links, outlook, hybrid).plan
    if room.direction == "hybrid_to_outlook":
        assert not [op for op in p.ops if op.op.startswith("hybrid.")]
    if room.direction == "outlook_to_hybrid":
        assert not [op for op in p.ops if op.op in ("graph.create", "graph.update", "graph.cancel")]


@FAST
@given(situations())
def test_planning_is_deterministic(
    s: tuple[RoomContext, list[Link], list[OutlookItem], list[HybridItem]],
) -> None:
    room, links, outlook, hybrid = s
    a, b = run(room, links, outlook, hybrid).plan, run(room, links, outlook, hybrid).plan
    assert a == b


@FAST
@given(
    st.sampled_from(["booked", "tentative"]),
    st.sampled_from([SLOT, UNTITLED]),
    st.booleans(),
    st.booleans(),
    st.sampled_from([SLOT, UNTITLED]),
    st.sampled_from(["outlook_wins", "hybrid_wins"]),
    st.sampled_from(["both", "outlook_to_hybrid", "hybrid_to_outlook"]),
)
def test_both_sides_as_last_synced_plan_nothing(
    status: Literal["booked", "tentative"],
    recorded: Slot,
    with_hybrid: bool,
    with_outlook: bool,
    seen: Slot,
    rule: Rule,
    direction: Literal["both", "outlook_to_hybrid", "hybrid_to_outlook"],
) -> None:
    link = linked(
        status,
        hybrid_fingerprint=fingerprint(recorded, status),
        outlook_fingerprint=fingerprint(recorded),
    )
    answer = "accepted" if status == "booked" else "tentativelyAccepted"
    outlook = [meeting(seen, room_response=answer)] if with_outlook else []
    hybrid = [booking(recorded, tentative=status == "tentative")] if with_hybrid else []
    room = replace(ROOM, conflict=rule, direction=direction)
    p = run(room, [link], outlook, hybrid).plan
    assert not p.ops and not p.audit and not p.changes and not p.conflicts


@FAST
@given(situations())
def test_a_replayed_round_creates_nothing(
    s: tuple[RoomContext, list[Link], list[OutlookItem], list[HybridItem]],
) -> None:
    """Whatever was planned, reading the same items again once the plan is stored makes no
    second booking and no second meeting."""
    room, links, outlook, hybrid = s
    first = run(room, links, outlook, hybrid).plan
    again = run(room, stored_after(links, first), outlook, hybrid).plan
    assert not [op for op in again.ops if op.op.endswith(".create")], (first.ops, again.ops)
