"""One-off bookings both ways, end to end: the simulators and a real ``roomd run`` process.

Each test is one of the promises in issue "sync engine, part 1" (scenarios 1–4), written as a user
would check it: look at the other side and see the booking there, once.
"""

from __future__ import annotations

import re
import time

import httpx
from support.sync_world import (
    ADELE,
    ALEX,
    MEGAN,
    PAT,
    ROOM,
    ROOM_ID,
    SyncWorld,
    at,
    hybrid_time,
    utc_of,
    wait_for,
)


def test_an_outlook_booking_appears_once_in_hybrid_with_its_real_title_and_people(
    world: SyncWorld,
) -> None:
    world.start()
    meeting = world.book(ADELE, at(9), subject="Budget review", attendees=(ALEX, PAT))
    booking = wait_for(lambda: world.live_bookings(), "the Hybrid booking")[0]
    # the room's copy shows the organizer's name (docs/graph-behaviour.md 6.2); the title is
    # read from the organizer's copy
    room_copy = wait_for(lambda: world.copy_of(ROOM, meeting["iCalUId"]), "the room's copy")
    wait_for(
        lambda: world.copy_of(ROOM, meeting["iCalUId"])["subject"] != "Budget review",  # type: ignore[index]
        "Exchange replacing the room copy's subject",
    )
    assert room_copy["iCalUId"] == meeting["iCalUId"]
    assert booking["summary"] == "Budget review"
    assert booking["resourceId"] == ROOM_ID
    assert booking["member"] == world.member_id(ADELE)
    assert world.member_id(ALEX) in booking["members"]
    assert hybrid_time(booking["start"]) == at(9)
    assert hybrid_time(booking["end"]) == at(10)
    # several more rounds (and the room's rewritten copy coming back) create nothing more
    world.daemon.wait_log(lambda x: x.get("event") == "room_round", since=world.daemon.mark())  # type: ignore[union-attr]
    time.sleep(3)
    assert len(world.bookings()) == 1
    metrics = httpx.get(world.daemon.url("/metrics")).text  # type: ignore[union-attr]
    lag = re.search(
        r'roomd_propagation_lag_seconds_count\{direction="outlook_to_hybrid"\} (\S+)', metrics
    )
    assert lag is not None and float(lag.group(1)) >= 1
    created = (
        f'roomd_changes_total{{direction="outlook_to_hybrid",outcome="created",room="{ROOM}"}} 1.0'
    )
    assert created in metrics


def test_outlook_moves_retitles_and_deletion_follow_in_hybrid_which_keeps_it_canceled(
    world: SyncWorld,
) -> None:
    world.start()
    meeting = world.book(ADELE, at(9), subject="Standup")
    booking = wait_for(lambda: world.live_bookings(), "the Hybrid booking")[0]
    world.move(ADELE, meeting["id"], at(11), minutes=30)
    wait_for(
        lambda: hybrid_time(world.booking(booking["_id"])["start"]) == at(11),
        "the move in Hybrid",
    )
    assert hybrid_time(world.booking(booking["_id"])["end"]) == at(11, 30)
    world.patch(ADELE, meeting["id"], subject="Standup (moved)")
    wait_for(
        lambda: world.booking(booking["_id"])["summary"] == "Standup (moved)",
        "the new title in Hybrid",
    )
    world.delete(ADELE, meeting["id"])
    wait_for(lambda: world.booking(booking["_id"])["canceled"], "the cancellation in Hybrid")
    assert len(world.bookings()) == 1  # kept, never deleted
    assert any(
        "cancelled (or deleted) in Outlook by the organizer" in line
        for line in world.audit(f"o:{meeting['iCalUId']}")
    )


def test_an_outlook_cancellation_cancels_the_hybrid_booking(world: SyncWorld) -> None:
    world.start()
    meeting = world.book(ADELE, at(9))
    booking = wait_for(lambda: world.live_bookings(), "the Hybrid booking")[0]
    world.cancel(ADELE, meeting["id"])
    wait_for(lambda: world.booking(booking["_id"])["canceled"], "the cancellation in Hybrid")


def test_a_hybrid_booking_appears_in_the_organizer_guest_and_room_calendars_once(
    world: SyncWorld,
) -> None:
    world.start()
    booking = world.hybrid_book(
        ADELE, at(14), summary="Design review", members=[world.member_id(MEGAN)]
    )
    organizer_copy = wait_for(
        lambda: next(iter(world.live_events(ADELE)), None), "the organizer's meeting"
    )
    assert organizer_copy["subject"] == "Design review"
    assert utc_of(organizer_copy["start"]) == at(14)
    uid = organizer_copy["iCalUId"]
    wait_for(lambda: world.copy_of(ROOM, uid), "the room's copy")
    wait_for(lambda: world.copy_of(MEGAN, uid), "the guest's copy")
    # the room's copy comes back through delta: no second Hybrid booking (no echo)
    time.sleep(4)
    assert [b["_id"] for b in world.bookings()] == [booking["_id"]]
    assert len(world.live_events(ADELE)) == 1


def test_hybrid_changes_and_cancellation_reach_every_outlook_copy(world: SyncWorld) -> None:
    world.start()
    booking = world.hybrid_book(ADELE, at(14), summary="Design review")
    uid = wait_for(lambda: next(iter(world.live_events(ADELE)), None), "the meeting")["iCalUId"]
    wait_for(lambda: world.copy_of(ROOM, uid), "the room's copy")
    world.hybrid_call(
        lambda: world.hybrid.update_booking(
            booking["_id"], start=at(15), end=at(16), summary="Design review II"
        )
    )
    wait_for(
        lambda: utc_of(world.copy_of(ADELE, uid)["start"]) == at(15),  # type: ignore[index]
        "the organizer's meeting moved",
    )
    assert world.copy_of(ADELE, uid)["subject"] == "Design review II"  # type: ignore[index]
    wait_for(
        lambda: utc_of(world.copy_of(ROOM, uid)["start"]) == at(15),  # type: ignore[index]
        "the room's copy moved",
    )
    world.hybrid_call(lambda: world.hybrid.cancel_booking(booking["_id"]))
    wait_for(
        lambda: (c := world.copy_of(ADELE, uid)) is None or c.get("isCancelled"),
        "the organizer's meeting cancelled",
    )
    wait_for(lambda: world.copy_of(ROOM, uid) is None, "the room freed")
    assert world.booking(booking["_id"])["canceled"]
    assert len(world.bookings()) == 1


def test_meetings_found_in_one_round_each_get_their_own_real_title(world: SyncWorld) -> None:
    # a first round reads the organizers' copies 20 per JSON $batch (bench/README.md section 2):
    # each booking still gets its own meeting's title, whoever organized it
    booked = [
        world.book(ADELE, at(9), subject="Budget review"),
        world.book(ADELE, at(11), subject="Hiring sync"),
        world.book(MEGAN, at(13), subject="Design crit"),
        world.book(ALEX, at(15), subject="1:1"),
    ]
    for meeting in booked:
        wait_for(lambda m=meeting: world.copy_of(ROOM, m["iCalUId"]), "the room's copy")  # type: ignore[misc]
    world.start()
    bookings = wait_for(
        lambda: b if len(b := world.live_bookings()) == len(booked) else None,
        "every Hybrid booking",
    )
    titles = {b["reference"]: b["summary"] for b in bookings}
    assert titles == {m["iCalUId"]: m["subject"] for m in booked}
