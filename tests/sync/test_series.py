"""Recurring series both ways, end to end (issue "sync engine, part 2"): one booking on each side,
never a flood of separate ones, with moved and cancelled occurrences."""

from __future__ import annotations

import time
from datetime import timedelta

from support.sync_world import (
    ADELE,
    ALEX,
    ROOM,
    ROOM_ID,
    SyncWorld,
    at,
    hybrid_time,
    utc_of,
    wait_for,
)


def test_an_outlook_weekly_series_becomes_one_recurring_hybrid_booking(world: SyncWorld) -> None:
    world.start()
    master = world.book_series(ADELE, at(9), subject="Weekly sync", count=20)
    booking = wait_for(lambda: world.live_bookings(), "the Hybrid series")[0]
    time.sleep(3)
    # one series, not 20 bookings; the series runs on UTC and the room on London's clock, so
    # the weeks London is on summer time are exception children at the series' instant
    assert [b["_id"] for b in world.bookings() if not b.get("parent")] == [booking["_id"]]
    assert {b.get("parent") for b in world.bookings()} <= {None, booking["_id"]}
    assert booking["summary"] == "Weekly sync"
    assert booking["recurrence"]["rrule"].startswith("FREQ=WEEKLY")
    assert "COUNT=20" in booking["recurrence"]["rrule"]
    assert hybrid_time(booking["start"]) == at(9)
    assert booking["reference"] == master["iCalUId"]


def test_a_moved_and_a_cancelled_occurrence_become_an_exception_and_an_exdate(
    world: SyncWorld,
) -> None:
    world.start()
    master = world.book_series(ADELE, at(9), count=6)
    series = wait_for(lambda: world.live_bookings(), "the Hybrid series")[0]
    occurrences = world.instances(ADELE, master["id"], at(0), at(0, days=60))
    second, third = occurrences[1], occurrences[2]
    moved_to = utc_of(second["start"]) + timedelta(hours=2)
    world.move(ADELE, second["id"], moved_to)
    world.cancel(ADELE, third["id"])
    third_start = utc_of(third["start"])

    def exception_and_exdate() -> bool:
        children = [b for b in world.bookings() if b.get("parent") == series["_id"]]
        exdates = world.booking(series["_id"])["recurrence"]["exdates"]
        moved = [c for c in children if hybrid_time(c["start"]) == moved_to and not c["canceled"]]
        cancelled = any(hybrid_time({"dateTime": x}) == third_start for x in exdates) or any(
            c["canceled"]
            and hybrid_time(
                c["originalStart"]
                if isinstance(c["originalStart"], dict)
                else {"dateTime": c["originalStart"]}
            )
            == third_start
            for c in children
        )
        return bool(moved) and cancelled

    wait_for(exception_and_exdate, "one exception and one exdate in Hybrid")
    time.sleep(2)
    series_now = world.booking(series["_id"])
    assert not series_now["canceled"]
    assert len([b for b in world.bookings() if not b.get("parent")]) == 1


def test_a_hybrid_recurring_booking_becomes_one_outlook_series(world: SyncWorld) -> None:
    world.start()
    booking = world.hybrid_book(
        ADELE,
        at(14),
        summary="Team lunch",
        members=[world.member_id(ALEX)],
        rrule="FREQ=WEEKLY;COUNT=8",
    )
    master = wait_for(
        lambda: next((e for e in world.events(ADELE) if e.get("type") == "seriesMaster"), None),
        "the organizer's series",
    )
    assert master["subject"] == "Team lunch"
    assert master["recurrence"]["range"]["numberOfOccurrences"] == 8
    wait_for(lambda: world.copy_of(ROOM, master["iCalUId"]), "the room's series")
    wait_for(lambda: world.copy_of(ALEX, master["iCalUId"]), "the guest's series")
    time.sleep(4)  # the room's copy comes back through delta: nothing is created again
    assert [b["_id"] for b in world.bookings() if not b.get("parent")] == [booking["_id"]]
    assert len([e for e in world.events(ADELE) if e.get("type") == "seriesMaster"]) == 1
    assert ROOM_ID
