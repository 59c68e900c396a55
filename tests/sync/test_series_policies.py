"""Series policies an operator relies on, end to end through both simulators and a real
``roomd run`` process (as test_series.py): the mass-delete breaker counts series and
occurrences, an occurrence Hybrid cancelled stays cancelled, and an occurrence Hybrid refuses
(409) is declined by the room in Outlook, never left as a dead write."""

from __future__ import annotations

import signal
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from support.daemon import DaemonProcess
from support.sync_world import ADELE, MEGAN, PAT, ROOM, ROOM_ID, SyncWorld, at, utc_of, wait_for
from sync.test_series_more import (
    NEW_YORK,
    WINDOWS,
    add_exception,
    all_instances,
    children,
    hybrid_slots,
    local_weekly,
    occurrences_of,
    open_outbox,
    room_answers,
    room_slots,
    roomd,
    series_bookings,
    settle,
    settled,
    weekly,
    year_of_weeks,
)

from roomd.store import Link
from roomd.sync.decide import LinkIndex, Plan, mass_delete
from roomd.sync.model import HybridState, OutlookState, RoomContext, Slot
from roomd.sync.series import (
    HybridSeries,
    OutlookSeries,
    Shape,
    hybrid_rule,
    plan_series,
    shape_fingerprint,
    zone_shifts,
)

LONDON_TZ = ZoneInfo("Europe/London")

# --- the mass-delete breaker counts series and occurrences ------------------------------------


def breaker(world: SyncWorld) -> str | None:
    assert world.daemon is not None
    try:
        detail = httpx.get(world.daemon.url("/readyz")).json()
    except httpx.HTTPError:
        return None
    return detail["rooms"][ROOM].get("breaker")  # type: ignore[no-any-return]


def test_many_outlook_series_deleted_in_one_round_are_held_until_forced(
    world: SyncWorld,
) -> None:
    daemon = world.start(sync="mass_delete_min = 3\nmass_delete_threshold = 0.5")
    masters = [
        world.book_series(ADELE, at(8 + i), subject=f"Series {i}", count=4) for i in range(4)
    ]
    wait_for(lambda: len(series_bookings(world)) == 4, "four Hybrid series")
    # stop roomd, delete three of the four in Outlook, start it again: one round sees them all
    daemon.signal(signal.SIGTERM)
    assert daemon.wait_exit() == 0
    for master in masters[:3]:
        world.delete(ADELE, master["id"])
    world.daemon = DaemonProcess(daemon.config).start()

    text = wait_for(lambda: breaker(world), "the breaker in /readyz")
    assert "would cancel 3 of" in text and f"roomd sync --force {ROOM}" in text
    time.sleep(3)
    assert [s["canceled"] for s in series_bookings(world)] == [False] * 4  # nothing cancelled

    forced = roomd("sync", "--force", ROOM, config=world.daemon.config)
    assert forced.returncode == 0, forced.stderr
    wait_for(
        lambda: [s["canceled"] for s in series_bookings(world)] == [True, True, True, False],
        "the three series cancelled in Hybrid",
    )
    wait_for(lambda: breaker(world) is None, "the breaker released")
    assert len(series_bookings(world)) == 4  # kept, as canceled
    assert ROOM_ID


def _seen(occurrences: int, missing: int) -> tuple[Link, OutlookSeries]:
    first = datetime(2027, 1, 4, 9, tzinfo=UTC)
    rule = "FREQ=WEEKLY;BYDAY=MO;WKST=MO;COUNT=20"
    shape = Shape(rule, "UTC", first, first + timedelta(hours=1), "Weekly sync")
    link = Link(
        link_id="o:UID",
        hybrid_id="h1",
        room_event_id="m1",
        series_master_id="m1",
        ical_uid="UID",
        outlook_fingerprint=shape_fingerprint(shape),
        hybrid_fingerprint=shape_fingerprint(shape),
    )
    starts = [first + timedelta(weeks=n) for n in range(occurrences)]
    series = OutlookSeries(
        "m1",
        OutlookState.LIVE,
        ical_uid="UID",
        shape=shape,
        exceptions={t: None for t in starts[:missing]},
        window=(first - timedelta(days=30), first + timedelta(days=365)),
        occurrences={t: f"occ-{n}" for n, t in enumerate(starts[missing:])},
        organizer=ADELE,
        member_id="member-adele",
    )
    return link, series


def test_a_round_cancelling_most_occurrences_of_a_series_trips_the_breaker() -> None:
    """An organizer cancelling a few weeks of a long series goes through; a round that would
    cancel most of its occurrences (a misread room calendar looks just like it) is held."""
    room = RoomContext(mailbox=ROOM, hybrid_id=ROOM_ID, name="Room 4A")
    for missing, held in ((4, False), (15, True)):
        link, series = _seen(20, missing)
        out = Plan()
        plan_series(room, LinkIndex([link]), [series], [], out)
        cancels = [op for op in out.ops if op.payload.get("cancel")]
        assert len(cancels) == missing
        assert (mass_delete(room, LinkIndex([link]), out) is not None) is held, missing


# --- an occurrence Hybrid cancelled is final ---------------------------------------------------


def synced_series(world: SyncWorld) -> tuple[datetime, dict[str, Any], dict[str, Any]]:
    """An Outlook series of six from tomorrow 09:00 in a room whose rule is outlook_wins,
    synced and settled: its first start, the organizer's master and the Hybrid series."""
    world.start(sync='conflict = "outlook_wins"')
    first = at(9)
    lo, hi = first - timedelta(days=1), first + timedelta(weeks=7)
    master = world.book_series(ADELE, first, subject="Weekly sync", count=6)
    series = wait_for(lambda: series_bookings(world), "the Hybrid series")[0]
    wait_for(lambda: room_slots(world, lo, hi) == weekly(first, 6), "the room's series")
    settled(world)
    return first, master, series


def moved_and_declined(
    world: SyncWorld, master: dict[str, Any], original: datetime, moved_to: datetime
) -> DaemonProcess:
    """The organizer moves one occurrence while roomd is paused; roomd resumes, and the room
    ends declining the moved occurrence."""
    lo, hi = original - timedelta(weeks=3), original + timedelta(weeks=5)
    occurrence = next(
        i
        for i in all_instances(world, ADELE, master["id"], lo, hi)
        if utc_of(i["start"]) == original
    )
    world.move(ADELE, occurrence["id"], moved_to)
    time.sleep(1)  # the room's booking assistant answers
    daemon = world.resume()
    wait_for(
        lambda: room_answers(world, ADELE, master["id"], lo, hi).get(moved_to) == "declined",
        "the room declining the moved occurrence",
    )
    settled(world)
    return daemon


def quiet_after(world: SyncWorld, daemon: DaemonProcess) -> None:
    """No write was given up, and the next rounds plan and write nothing."""
    assert [row for row in open_outbox(world) if row[1] == "dead"] == []
    mark = daemon.mark()
    time.sleep(3)
    daemon.mark()
    rounds = [x for x in daemon.lines[mark:] if x.get("event") == "room_round"]
    assert rounds and all(not r.get("planned") and not r.get("written") for r in rounds), rounds


def test_an_occurrence_cancelled_in_hybrid_and_moved_in_outlook_stays_cancelled(
    world: SyncWorld,
) -> None:
    """Under outlook_wins: the member cancels the third occurrence in Hybrid (a canceled
    exception child, which Hybrid cannot restore) while the organizer moves it in Outlook.
    Hybrid's cancellation is final: no write to Hybrid, the room declines the moved occurrence
    in Outlook and says why; nothing is given up, and later rounds plan nothing."""
    first, master, series = synced_series(world)
    lo, hi = first - timedelta(days=1), first + timedelta(weeks=7)
    world.pause()
    third = first + timedelta(weeks=2)
    child = add_exception(world, series, third, third)
    world.hybrid_call(lambda: world.hybrid.cancel_booking(child["_id"]))
    moved_to = third + timedelta(hours=3)
    daemon = moved_and_declined(world, master, third, moved_to)
    assert room_slots(world, lo, hi) == weekly(first, 6, skip=(2,))
    # the organizer keeps the occurrence, moved; Hybrid keeps it cancelled, nothing restored
    wanted = sorted([*weekly(first, 6, skip=(2,)), (moved_to, moved_to + timedelta(hours=1))])
    assert occurrences_of(world, ADELE, master["iCalUId"], lo, hi) == wanted
    kids = children(world, series["_id"])
    assert [(c["_id"], c["canceled"]) for c in kids] == [(child["_id"], True)]
    trail = world.audit(f"o:{master['iCalUId']}")
    final = [x for x in trail if x.startswith("room_decline:") and "final" in x]
    assert final and "outlook_wins" in final[0], trail
    assert not [x for x in trail if x.startswith("gave_up")], trail
    quiet_after(world, daemon)


# --- Hybrid refuses to restore an occurrence's slot --------------------------------------------


def test_an_exdate_outlook_moves_back_over_a_taken_slot_is_declined_by_the_room(
    world: SyncWorld,
) -> None:
    """Under outlook_wins: the member cancels the third occurrence in Hybrid (an exdate) and
    another member books its slot, while the organizer moves it in Outlook. Making the
    exception lifts the exdate first, which would restore the taken slot: Hybrid refuses
    (409). As for an occurrence Hybrid refuses in a new series (scenario 9), the room declines
    the moved occurrence in Outlook, naming the booking in the way; Hybrid keeps the exdate,
    nothing is given up, and later rounds plan nothing."""
    first, master, series = synced_series(world)
    lo, hi = first - timedelta(days=1), first + timedelta(weeks=7)
    world.pause()
    third = first + timedelta(weeks=2)
    world.hybrid_call(
        lambda: world.hybrid.update_booking(
            series["_id"],
            recurrence={
                "rrule": series["recurrence"]["rrule"],
                "exdates": [third.strftime("%Y-%m-%dT%H:%M:%SZ")],
            },
        )
    )
    taken = world.hybrid_book(MEGAN, third, summary="Took the slot")
    moved_to = third + timedelta(hours=3)
    daemon = moved_and_declined(world, master, third, moved_to)
    booking = world.booking(series["_id"])
    assert not booking["canceled"]
    assert booking["recurrence"]["exdates"] and children(world, series["_id"]) == []
    assert not world.booking(taken["_id"])["canceled"]
    # the organizer keeps the occurrence, moved; the room holds Megan's meeting in its slot
    wanted = sorted([*weekly(first, 6, skip=(2,)), (moved_to, moved_to + timedelta(hours=1))])
    assert occurrences_of(world, ADELE, master["iCalUId"], lo, hi) == wanted
    assert room_slots(world, lo, hi) == weekly(first, 6)  # Megan's at the third's time
    trail = world.audit(f"o:{master['iCalUId']}")
    refused = [x for x in trail if x.startswith("room_decline:") and "409" in x]
    assert refused and taken["_id"] in refused[0], trail
    assert not [x for x in trail if x.startswith("gave_up")], trail
    quiet_after(world, daemon)


# --- the same decisions, as the pure plan makes them (what --dry-run shows) ------------------


def test_zone_shifts_are_the_weeks_new_york_and_london_disagree() -> None:
    first = datetime(2027, 3, 1, 14, tzinfo=UTC)  # 09:00 in New York, 14:00 in London
    rule = "FREQ=WEEKLY;BYDAY=MO;WKST=MO;COUNT=6"
    shape = Shape(rule, "America/New_York", first, first + timedelta(hours=1))
    until = first + timedelta(weeks=8)
    assert zone_shifts(shape, "Europe/London", until) == {
        datetime(2027, 3, 15, 13, tzinfo=UTC): datetime(2027, 3, 15, 14, tzinfo=UTC),
        datetime(2027, 3, 22, 13, tzinfo=UTC): datetime(2027, 3, 22, 14, tzinfo=UTC),
    }
    assert zone_shifts(shape, "America/Toronto", until) == {}  # the same clocks
    assert zone_shifts(shape, "America/New_York", until) == {}


def test_a_final_hybrid_cancellation_plans_no_hybrid_write_and_a_room_decline() -> None:
    link, outlook = _seen(6, 0)
    assert outlook.shape is not None
    third = outlook.shape.start + timedelta(weeks=2)
    moved = Slot(third + timedelta(hours=3), third + timedelta(hours=4))
    outlook = OutlookSeries(
        **{**{f: getattr(outlook, f) for f in outlook.__slots__}, "exceptions": {third: moved}}
    )
    hybrid = HybridSeries(
        "h1",
        HybridState.LIVE,
        shape=outlook.shape,
        exceptions={third: None},
        final=frozenset({third}),
    )
    room = RoomContext(mailbox=ROOM, hybrid_id=ROOM_ID, name="Room 4A", conflict="outlook_wins")
    out = Plan()
    plan_series(room, LinkIndex([link]), [outlook], [hybrid], out)
    assert [(op.op, op.payload.get("release")) for op in out.ops] == [("graph.occurrence", True)]
    assert "cancelled in the room booking system" in out.ops[0].payload["comment"]
    assert any(a.action == "room_decline" and "final" in a.reason for a in out.audit)
    occurrence = [lk for lk in out.links if lk.original_start == third]
    assert [(lk.outlook_fingerprint, lk.hybrid_fingerprint) for lk in occurrence] == [
        ("cancelled", "cancelled")
    ]


# --- a series in another zone than the room's, retimed ----------------------------------------


def test_a_new_york_series_retimed_in_outlook_keeps_every_occurrence_at_its_instant(
    world: SyncWorld,
) -> None:
    """The exception children that held the weeks New York and London disagree were made for
    the old time: they are cancelled (they would replace no occurrence once Hybrid's series
    has moved, and would stand in the way of the new ones), and new ones are made for the new
    time; nothing is declined, nothing comes back to Outlook."""
    lo, hi = year_of_weeks(world, (ROOM,))
    daemon = world.start()
    wall = at(9, days=1 - 70).replace(tzinfo=None)
    zone = WINDOWS[NEW_YORK]
    master = world.book_series(ADELE, wall, subject="From New York", count=52, zone=zone)
    wanted = [s for s in local_weekly(wall, NEW_YORK, 52) if lo <= s[0] < hi]
    wait_for(lambda: hybrid_slots(world, lo, hi) == wanted, "every occurrence at its instant")
    settled(world)

    def retimed(start: datetime, minutes: int, what: str) -> None:
        """The organizer gives the series a new start and length; both sides follow."""
        wire = {
            "start": {"dateTime": start.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": zone},
            "end": {
                "dateTime": (start + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S"),
                "timeZone": zone,
            },
        }
        world.patch(ADELE, master["id"], **wire)
        wanted = [s for s in local_weekly(start, NEW_YORK, 52, minutes) if lo <= s[0] < hi]
        wait_for(lambda: room_slots(world, lo, hi) == wanted, f"the room's series {what}")
        wait_for(lambda: hybrid_slots(world, lo, hi) == wanted, f"Hybrid's series {what}")
        settled(world)
        assert occurrences_of(world, ADELE, master["iCalUId"], lo, hi) == wanted
        assert len(series_bookings(world)) == 1
        assert not [x for x in world.audit(f"o:{master['iCalUId']}") if "409" in x]
        quiet_after(world, daemon)

    later = wall + timedelta(minutes=30)  # the new children overlap the old ones
    retimed(later, 45, "retimed")
    retimed(later, 90, "longer")  # the same start: the children are stretched in place


def _new_york_series(rrule: str, first: datetime, minutes: int = 60) -> tuple[Link, Shape]:
    """A New York series roomd synced to a London room (the link records its shape)."""
    shape = Shape(rrule, "America/New_York", first, first + timedelta(minutes=minutes))
    link = Link(
        link_id="o:NY",
        hybrid_id="h1",
        room_event_id="m1",
        series_master_id="m1",
        ical_uid="NY",
        outlook_fingerprint=shape_fingerprint(shape),
        hybrid_fingerprint=shape_fingerprint(replace(shape, zone="Europe/London")),
    )
    return link, shape


def _outlook_now(shape: Shape) -> OutlookSeries:
    window = (shape.start - timedelta(days=30), shape.start + timedelta(days=365))
    return OutlookSeries(
        "m1", OutlookState.LIVE, ical_uid="NY", shape=shape, window=window, organizer=ADELE
    )


def test_a_cross_zone_series_retimed_cancels_its_old_shift_children_and_makes_new_ones() -> None:
    first = datetime(2027, 3, 1, 14, tzinfo=UTC)  # 09:00 in New York
    rule = "FREQ=WEEKLY;BYDAY=MO;WKST=MO;COUNT=6"
    link, shape = _new_york_series(rule, first)
    room = RoomContext(mailbox=ROOM, hybrid_id=ROOM_ID, name="Room 4A", zone="Europe/London")
    later = replace(shape, start=first + timedelta(hours=1), end=first + timedelta(hours=2))
    out = Plan()
    plan_series(room, LinkIndex([link]), [_outlook_now(later)], [], out)
    ops = [(op.op, op.payload.get("original_start"), op.payload.get("cancel")) for op in out.ops]
    assert ops == [
        ("hybrid.update", None, None),
        ("hybrid.occurrence", "2027-03-15T14:00:00Z", True),  # the old children go
        ("hybrid.occurrence", "2027-03-22T14:00:00Z", True),
        ("hybrid.occurrence", "2027-03-15T15:00:00Z", None),  # new ones at 10:00 New York
        ("hybrid.occurrence", "2027-03-22T15:00:00Z", None),
    ]
    assert all(op.payload.get("stale") for op in out.ops if op.payload.get("cancel"))


def test_a_cross_zone_series_ended_earlier_keeps_its_shift_children() -> None:
    """A new end of the rule (Outlook's "this and following" ends the series) keeps the start:
    the children of the weeks still in the series stay, none is cancelled."""
    first = datetime(2027, 3, 1, 14, tzinfo=UTC)
    link, shape = _new_york_series("FREQ=WEEKLY;BYDAY=MO;WKST=MO;COUNT=6", first)
    room = RoomContext(mailbox=ROOM, hybrid_id=ROOM_ID, name="Room 4A", zone="Europe/London")
    shorter = replace(shape, rrule="FREQ=WEEKLY;BYDAY=MO;WKST=MO;COUNT=4")
    out = Plan()
    plan_series(room, LinkIndex([link]), [_outlook_now(shorter)], [], out)
    assert [(op.op, op.payload.get("cancel")) for op in out.ops] == [
        ("hybrid.update", None),
        ("hybrid.occurrence", None),  # the shifted weeks still in it: their children stay
        ("hybrid.occurrence", None),
    ]


@pytest.mark.parametrize("hour", [0, 1], ids=["the-series-instant", "the-rooms-rule-instant"])
def test_a_shifted_week_whose_instant_hybrid_holds_is_declined_by_the_room_on_that_date(
    world: SyncWorld, hour: int
) -> None:
    """A New York series in a London room: in a week the zones disagree, another booking
    (one Outlook cannot show) holds the series' instant in Hybrid, so Hybrid refuses the
    exception child (409); or it holds the instant the room's rule gives that week (an hour
    later), so Hybrid refuses the series (409) until that occurrence is left out, and then
    its exception. Either way the room declines that date, as the organizer's calendar has it
    (not as Hybrid's rule has it), naming the booking; Hybrid leaves it out; nothing else
    moves and later rounds plan nothing."""
    lo, hi = year_of_weeks(world, (ROOM,))
    daemon = world.start()
    wall = at(9, days=1 - 70).replace(tzinfo=None)
    wanted = [s for s in local_weekly(wall, NEW_YORK, 52) if lo <= s[0] < hi]
    now = datetime.now(UTC)
    shifted = next(s for s in wanted if s[0] > now and s[0].astimezone(LONDON_TZ).hour == 13)
    held = world.hybrid_book(PAT, shifted[0] + timedelta(hours=hour), summary="Held in Hybrid")
    pats = (shifted[0] + timedelta(hours=hour), shifted[1] + timedelta(hours=hour))
    wait_for(
        lambda: httpx.get(daemon.url("/readyz")).json()["rooms"][ROOM].get("problem"),
        "roomd's problem with the one-off it cannot show",
    )
    master = world.book_series(
        ADELE, wall, subject="From New York", count=52, zone=WINDOWS[NEW_YORK]
    )
    wait_for(
        lambda: room_answers(world, ADELE, master["id"], lo, hi).get(shifted[0]) == "declined",
        "the room declining the week Hybrid holds",
    )
    settle(world)  # Pat's meeting stays owed (dead): not settled() here
    rest = [s for s in wanted if s != shifted]
    assert hybrid_slots(world, lo, hi) == sorted([*rest, pats])  # the series, and Pat's
    assert room_slots(world, lo, hi) == rest
    assert occurrences_of(world, ADELE, master["iCalUId"], lo, hi) == wanted
    assert not world.booking(held["_id"])["canceled"]
    trail = world.audit(f"o:{master['iCalUId']}")
    refused = [x for x in trail if x.startswith("room_decline:") and "409" in x]
    assert refused and held["_id"] in refused[0], trail
    assert f"{shifted[0]:%Y-%m-%d %H:%M}" in refused[0], trail
    dead = [row for row in open_outbox(world) if row[1] == "dead"]
    assert [row[0] for row in dead] == [f"graph.create:{held['_id']}"], dead  # Pat's, as before
    mark = daemon.mark()
    time.sleep(3)
    daemon.mark()
    rounds = [x for x in daemon.lines[mark:] if x.get("event") == "room_round"]
    assert rounds and all(not r.get("planned") and not r.get("written") for r in rounds), rounds


def test_a_new_york_evening_series_is_the_next_day_in_london_and_lands_at_its_instants(
    world: SyncWorld,
) -> None:
    """20:00 on Mondays in New York is 01:00 on Tuesdays in London: Hybrid, evaluating the rule
    in the room's zone, needs it on Tuesdays (a series must start on its first occurrence)."""
    lo, hi = year_of_weeks(world, (ROOM,))
    daemon = world.start()
    wall = at(20, days=1 - 70).replace(tzinfo=None)
    master = world.book_series(
        ADELE, wall, subject="Evening call", count=52, zone=WINDOWS[NEW_YORK]
    )
    wanted = [s for s in local_weekly(wall, NEW_YORK, 52) if lo <= s[0] < hi]
    wait_for(lambda: room_slots(world, lo, hi) == wanted, "the room's series")
    wait_for(lambda: hybrid_slots(world, lo, hi) == wanted, "every occurrence at its instant")
    settled(world)
    assert occurrences_of(world, ADELE, master["iCalUId"], lo, hi) == wanted
    assert len(series_bookings(world)) == 1
    quiet_after(world, daemon)


def test_hybrid_rule_moves_a_weekly_rules_days_with_the_first_occurrence() -> None:
    evening = datetime(2027, 1, 5, 1, tzinfo=UTC)  # Monday 20:00 in New York, Tuesday in London
    weekly = "FREQ=WEEKLY;BYDAY=MO,SU;WKST=MO;COUNT=10"
    shape = Shape(weekly, "America/New_York", evening, evening + timedelta(hours=1))
    assert hybrid_rule(shape, "Europe/London") == "FREQ=WEEKLY;BYDAY=TU,MO;WKST=TU;COUNT=10"
    assert hybrid_rule(shape, "America/New_York") == weekly
    morning = replace(shape, start=evening + timedelta(hours=13), end=evening + timedelta(hours=14))
    assert hybrid_rule(morning, "Europe/London") == weekly  # the same day in both
    monthly = replace(shape, rrule="FREQ=MONTHLY;BYMONTHDAY=4;COUNT=3")
    # the 4th at 20:00 in New York is the 5th in London (tests/sync/test_rule_shift.py)
    assert hybrid_rule(monthly, "Europe/London") == "FREQ=MONTHLY;BYMONTHDAY=5;COUNT=3"
