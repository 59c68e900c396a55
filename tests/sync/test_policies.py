"""Room policies and refusals, end to end (issue "sync engine, part 1", scenarios 5–9): members
without a mailbox, no-shows, approval, rooms that decline, Hybrid refusing a double booking, and
mailboxes that keep cancelled meetings."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import httpx
from support.sync_world import (
    ADELE,
    ALEX,
    APPROVAL_ROOM,
    APPROVAL_ROOM_ID,
    CHECKIN_ROOM,
    CHECKIN_ROOM_ID,
    PAT,
    ROOM,
    SyncWorld,
    at,
    wait_for,
)

SERVICE = "bookings@contoso.com"


def room_status(world: SyncWorld, organizer: str, uid: str, room: str) -> str | None:
    copy = world.copy_of(organizer, uid)
    if copy is None:
        return None
    for attendee in copy.get("attendees") or []:
        if attendee["emailAddress"]["address"].lower() == room:
            return str(attendee["status"]["response"])
    return None


def test_a_member_without_a_mailbox_gets_a_meeting_organized_by_the_service_mailbox(
    world: SyncWorld,
) -> None:
    world.sims.call(lambda: world.sims.graph.control.add_user(SERVICE, "Room bookings"))
    world.start(graph=f'service_mailbox = "{SERVICE}"')
    world.hybrid_book(PAT, at(14), summary="Visitor demo")
    meeting = wait_for(lambda: next(iter(world.live_events(SERVICE)), None), "the meeting")
    invited = {a["emailAddress"]["address"].lower() for a in meeting["attendees"]}
    assert {PAT, ROOM} <= invited
    assert meeting["subject"] == "Visitor demo"
    wait_for(lambda: world.copy_of(ROOM, meeting["iCalUId"]), "the room's copy")
    assert not world.live_events(ROOM) or all(
        e["organizer"]["emailAddress"]["address"].lower() != ROOM for e in world.events(ROOM)
    )  # never organized by the room itself


def test_without_a_service_mailbox_the_room_reports_a_problem_and_writes_nothing(
    world: SyncWorld,
) -> None:
    daemon = world.start()
    booking = world.hybrid_book(PAT, at(14), summary="Visitor demo")

    def problem() -> str | None:
        detail = httpx.get(daemon.url("/readyz")).json()
        return detail["rooms"][ROOM].get("problem")

    text = wait_for(problem, "a problem in /readyz")
    assert PAT in text and "service_mailbox" in text
    assert world.events(ROOM) == []  # nothing half-written
    status = daemon_status(world)
    assert PAT in status
    assert not world.booking(booking["_id"])["canceled"]


def daemon_status(world: SyncWorld) -> str:
    import subprocess
    import sys

    assert world.daemon is not None
    out = subprocess.run(
        [sys.executable, "-m", "roomd", "status", "-c", str(world.daemon.config)],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout


def test_a_no_show_releases_the_room_only(world: SyncWorld) -> None:
    world.start()
    start = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=3)
    booking = world.hybrid_book(
        ADELE,
        start,
        resource_id=CHECKIN_ROOM_ID,
        summary="Board prep",
        members=[world.member_id(ALEX)],
    )
    uid = wait_for(lambda: next(iter(world.live_events(ADELE)), None), "the meeting")["iCalUId"]
    wait_for(lambda: world.copy_of(CHECKIN_ROOM, uid), "the room's copy")
    wait_for(lambda: world.copy_of(ALEX, uid), "the guest's copy")
    world.hybrid_call(lambda: world.hybrid.advance_clock(30 * 60))
    world.hybrid_call(lambda: world.hybrid.run_noshow_sweep())
    assert world.booking(booking["_id"])["canceled"]
    wait_for(lambda: world.copy_of(CHECKIN_ROOM, uid) is None, "the room released")
    assert room_status(world, ADELE, uid, CHECKIN_ROOM) == "declined"
    organizer = world.copy_of(ADELE, uid)
    assert organizer is not None and not organizer.get("isCancelled")
    guest = world.copy_of(ALEX, uid)
    assert guest is not None and not guest.get("isCancelled")


def test_an_outlook_booking_in_an_approval_room_is_tentative_until_approved(
    world: SyncWorld,
) -> None:
    world.start()
    meeting = world.book(ADELE, at(10), room=APPROVAL_ROOM, subject="Offsite planning")
    uid = meeting["iCalUId"]
    booking = wait_for(lambda: world.live_bookings(APPROVAL_ROOM_ID), "the Hybrid booking")[0]
    assert booking["tentative"] is True
    wait_for(
        lambda: room_status(world, ADELE, uid, APPROVAL_ROOM) == "tentativelyAccepted",
        "the room answering tentatively",
    )
    world.hybrid_call(lambda: world.hybrid.approve(booking["_id"]))
    wait_for(
        lambda: room_status(world, ADELE, uid, APPROVAL_ROOM) == "accepted",
        "the room accepting once approved",
    )


def test_a_rejected_outlook_booking_is_declined_by_the_room_and_stays_canceled(
    world: SyncWorld,
) -> None:
    world.start()
    meeting = world.book(ADELE, at(10), room=APPROVAL_ROOM)
    uid = meeting["iCalUId"]
    booking = wait_for(lambda: world.live_bookings(APPROVAL_ROOM_ID), "the Hybrid booking")[0]
    world.hybrid_call(lambda: world.hybrid.reject(booking["_id"]))
    wait_for(
        lambda: room_status(world, ADELE, uid, APPROVAL_ROOM) == "declined",
        "the room declining",
    )
    time.sleep(3)
    assert world.booking(booking["_id"])["canceled"]
    assert len(world.bookings(APPROVAL_ROOM_ID)) == 1


def test_a_meeting_the_room_declines_never_becomes_a_live_booking(world: SyncWorld) -> None:
    world.start()
    world.book(ADELE, at(9), subject="First")
    wait_for(lambda: world.live_bookings(), "the first booking")
    second = world.book(ALEX, at(9, 30), subject="Second")  # overlaps: the room declines it
    wait_for(
        lambda: room_status(world, ALEX, second["iCalUId"], ROOM) == "declined",
        "the room declining the overlap",
    )
    time.sleep(3)
    assert [b["summary"] for b in world.live_bookings()] == ["First"]


def test_hybrid_refusing_a_double_booking_makes_the_room_decline_with_the_reason(
    world: SyncWorld,
) -> None:
    world.start()
    # a Hybrid booking Outlook cannot show (its member has no mailbox, no service mailbox):
    # the room looks free in Exchange, but Hybrid holds the slot
    world.hybrid_book(PAT, at(15), summary="Held in Hybrid")
    time.sleep(2)
    meeting = world.book(ADELE, at(15), subject="Clash")
    uid = meeting["iCalUId"]
    wait_for(
        lambda: room_status(world, ADELE, uid, ROOM) == "declined",
        "the room declining the meeting Hybrid refused",
    )
    assert [b["summary"] for b in world.live_bookings()] == ["Held in Hybrid"]
    assert any("409" in line for line in world.audit(f"o:{uid}"))


def test_a_hybrid_booking_the_room_declines_in_outlook_is_canceled_with_the_reason(
    world: SyncWorld,
) -> None:
    world.start()
    booking = world.hybrid_book(ADELE, at(14))
    uid = wait_for(lambda: next(iter(world.live_events(ADELE)), None), "the meeting")["iCalUId"]
    room_copy = wait_for(lambda: world.copy_of(ROOM, uid), "the room's copy")
    r = world._http.post(
        f"/users/{ROOM}/events/{room_copy['id']}/decline",
        json={"comment": "maintenance", "sendResponse": True},
        headers=world._auth(),
    )
    assert r.status_code == 202, r.text
    wait_for(lambda: world.booking(booking["_id"])["canceled"], "the booking canceled")
    assert any("declined by the room" in line for line in world.audit(f"h:{booking['_id']}"))


def test_a_room_that_keeps_cancelled_meetings_is_treated_like_a_removal(
    world: SyncWorld,
) -> None:
    world.sims.call(
        lambda: world.sims.graph.control.set_switches(organizer_cancel="mark_cancelled")
    )
    world.start()
    meeting = world.book(ADELE, at(9))
    booking = wait_for(lambda: world.live_bookings(), "the Hybrid booking")[0]
    world.cancel(ADELE, meeting["id"])
    wait_for(
        lambda: (c := world.copy_of(ROOM, meeting["iCalUId"])) is not None and c["isCancelled"],
        "the room keeping a cancelled copy",
    )
    wait_for(lambda: world.booking(booking["_id"])["canceled"], "the booking canceled")


NEWHIRE = "newhire@contoso.com"  # a mailbox in the tenant, but not (yet) a Hybrid member


def test_an_organizer_who_is_no_member_books_as_the_fallback_member(world: SyncWorld) -> None:
    world.sims.call(lambda: world.sims.graph.control.add_user(NEWHIRE, "New Hire"))
    world.start(hybrid=f'fallback_member = "{ALEX}"')
    world.book(NEWHIRE, at(9), subject="Onboarding")
    booking = wait_for(lambda: world.live_bookings(), "the Hybrid booking")[0]
    assert booking["member"] == world.member_id(ALEX)
    assert NEWHIRE in (booking.get("description") or "")
    assert booking["summary"] == "Onboarding"


def test_without_a_fallback_member_the_meeting_is_skipped_counted_and_shown(
    world: SyncWorld,
) -> None:
    world.sims.call(lambda: world.sims.graph.control.add_user(NEWHIRE, "New Hire"))
    daemon = world.start()
    meeting = world.book(NEWHIRE, at(9), subject="Onboarding")
    wait_for(lambda: NEWHIRE in daemon_status(world), "the problem in roomd status")
    assert world.bookings() == []
    assert any(
        line.startswith("skipped") and "fallback_member" in line
        for line in world.audit(f"o:{meeting['iCalUId']}")
    )
    metrics = httpx.get(daemon.url("/metrics")).text
    assert (
        f'roomd_changes_total{{direction="outlook_to_hybrid",outcome="skipped",room="{ROOM}"}}'
        in metrics
    )
