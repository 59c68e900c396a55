"""Exchange room behaviour (issue 3 item 3; graph-behaviour.md 2.1, 2.6, 6, checklist 7.5)."""

from __future__ import annotations

from datetime import timedelta

from .conftest import ADELE, ALEX, ROOM, World, fixture, same_shape, tomorrow_at


def room_status(event: dict[str, object]) -> str:
    for att in event["attendees"]:  # type: ignore[attr-defined]
        if att["type"] == "resource":
            return str(att["status"]["response"])
    raise AssertionError("no resource attendee")


async def test_room_copy_has_same_icaluid_other_id_and_rewritten_subject(world: World) -> None:
    """Set-CalendarProcessing defaults + OfficeDocs-Support "calendar shows organizer name":
    the room copy's subject is the organizer's name, its body empty, isOrganizer false,
    responseStatus accepted (synthesized/room-calendar-copy-event.json)."""
    org = await world.book(attendees=(ALEX,), sensitivity="private")
    room = await world.only_event(ROOM)
    assert room["iCalUId"] == org["iCalUId"]
    assert room["id"] != org["id"]
    assert room["subject"] == "Adele Vance"
    assert room["body"]["content"] == ""
    assert room["sensitivity"] == "normal"
    assert room["isOrganizer"] is False
    assert room["responseStatus"]["response"] == "accepted"
    assert room["location"]["locationType"] == "conferenceRoom"
    assert not same_shape(room, fixture("synthesized/room-calendar-copy-event.json"), subset=True)
    alex = await world.only_event(ALEX)
    assert alex["iCalUId"] == org["iCalUId"]
    assert alex["subject"] == "Quarterly planning"


async def test_room_copy_first_shows_real_subject_then_the_organizers_name(world: World) -> None:
    """contrib #3877 [OBS]: two versions of the room event, seconds apart."""
    body = world.meeting(tomorrow_at(9))
    await world.graph.post(f"/users/{ADELE}/events", json=body)
    assert world.sim.control.run_rba_step() == 1
    first = await world.only_event(ROOM)
    assert first["subject"] == "Quarterly planning"
    world.sim.control.run_rba()
    second = await world.only_event(ROOM)
    assert second["subject"] == "Adele Vance"
    assert second["changeKey"] != first["changeKey"]


async def test_room_acceptance_is_reported_on_the_organizer_copy(world: World) -> None:
    """responsestatus.md / attendee.md: the room's reply appears in the organizer's copy."""
    org = await world.book()
    assert room_status(org) == "none"  # before the RBA answered
    after = (await world.get(ADELE, org["id"])).json()
    assert room_status(after) == "accepted"


async def test_room_keeps_subject_when_settings_say_so(world: World) -> None:
    """The documented fix: -DeleteSubject $false -AddOrganizerToSubject $false -DeleteComments
    $false keeps subject and body on the room copy."""
    world.sim.control.set_calendar_processing(
        ROOM, DeleteSubject=False, AddOrganizerToSubject=False, DeleteComments=False
    )
    await world.book()
    room = await world.only_event(ROOM)
    assert room["subject"] == "Quarterly planning"
    assert "Agenda" in room["body"]["content"]


async def test_room_declines_a_conflicting_request(world: World) -> None:
    """Set-CalendarProcessing AutomateProcessing AutoAccept: "free = accept; busy = decline";
    a declined request leaves no event on the room calendar [INF]."""
    await world.book(start=tomorrow_at(9))
    clash = await world.book(organizer=ALEX, start=tomorrow_at(9, 30))
    assert len(await world.events(ROOM)) == 1
    assert room_status((await world.get(ALEX, clash["id"])).json()) == "declined"


async def test_conflicts_allowed_accepts_both(world: World) -> None:
    """graph-behaviour.md 6.1 (AllowConflicts, default $false: "Conflicting
    requests are declined") and checklist 7.5, citing Set-CalendarProcessing.md
    (MicrosoftDocs/office-docs-powershell): with AllowConflicts $true the room accepts both."""
    world.sim.control.set_calendar_processing(ROOM, AllowConflicts=True)
    await world.book(start=tomorrow_at(9))
    await world.book(organizer=ALEX, start=tomorrow_at(9, 30))
    assert len(await world.events(ROOM)) == 2


async def test_room_declines_beyond_its_booking_window(world: World) -> None:
    """BookingWindowInDays (default 180): requests further ahead are declined."""
    far = await world.book(start=tomorrow_at(9, days=200))
    assert room_status((await world.get(ADELE, far["id"])).json()) == "declined"
    assert await world.events(ROOM) == []


async def test_booking_window_moves_with_the_simulated_clock(world: World) -> None:
    """graph-behaviour.md 6.1 (BookingWindowInDays, 180 by default) and checklist
    7.5 ("horizon rules"), citing Set-CalendarProcessing.md: the window counts from "now", so it
    moves with the simulator's one clock."""
    world.sim.control.advance_clock(timedelta(days=30).total_seconds())
    world.graph.headers["Authorization"] = f"Bearer {world.sim.control.token()}"  # old one expired
    await world.book(start=tomorrow_at(9, days=200))
    assert len(await world.events(ROOM)) == 1


async def test_room_declines_meetings_longer_than_its_maximum(world: World) -> None:
    """graph-behaviour.md 6.1 (MaximumDurationInMinutes, 1440 by default: "Longer
    meetings are declined"), citing Set-CalendarProcessing.md."""
    world.sim.control.set_calendar_processing(ROOM, MaximumDurationInMinutes=30)
    org = await world.book()
    assert room_status((await world.get(ADELE, org["id"])).json()) == "declined"


async def test_autoupdate_room_holds_requests_tentatively(world: World) -> None:
    """AutomateProcessing AutoUpdate: requests stay tentative until a delegate approves."""
    world.sim.control.set_calendar_processing(ROOM, AutomateProcessing="AutoUpdate")
    org = await world.book()
    room = await world.only_event(ROOM)
    assert room["responseStatus"]["response"] == "tentativelyAccepted"
    assert room["subject"] == "Quarterly planning"
    r = await world.graph.post(
        f"/users/{ROOM}/events/{room['id']}/accept", json={"sendResponse": False}
    )
    assert r.status_code == 202
    assert room_status((await world.get(ADELE, org["id"])).json()) == "accepted"


async def test_organizer_update_reaches_every_copy(world: World) -> None:
    """user-post-events.md: "If the meeting is rescheduled, the server automatically updates
    the event in the resource's calendar"."""
    org = await world.book(attendees=(ALEX,))
    new_start = tomorrow_at(14)
    r = await world.graph.patch(
        f"/users/{ADELE}/events/{org['id']}",
        json={
            "start": {"dateTime": new_start.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
            "end": {
                "dateTime": (new_start + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S"),
                "timeZone": "UTC",
            },
            "subject": "Moved",
        },
    )
    assert r.status_code == 200
    world.sim.control.run_rba()
    room = await world.only_event(ROOM)
    alex = await world.only_event(ALEX)
    assert room["start"]["dateTime"].startswith(new_start.strftime("%Y-%m-%dT%H:%M"))
    assert alex["start"] == room["start"]
    assert alex["subject"] == "Moved"


async def test_organizer_cancel_removes_room_copy_and_marks_attendee_copy(world: World) -> None:
    """event-cancel.md: 202, organizer only; [OBS lab] rooms remove their copy, attendees keep
    a "Canceled:" item."""
    org = await world.book(attendees=(ALEX,))
    r = await world.graph.post(
        f"/users/{ADELE}/events/{org['id']}/cancel", json=fixture("event-cancel-request.json")
    )
    assert r.status_code == 202
    assert r.content == b""
    world.sim.control.run_rba()
    assert await world.events(ROOM) == []
    alex = await world.only_event(ALEX)
    assert alex["isCancelled"] is True
    assert alex["subject"].startswith("Canceled: ")
    assert (await world.get(ADELE, org["id"])).status_code == 404


async def test_organizer_cancel_can_leave_the_room_copy_cancelled(world: World) -> None:
    """Switch organizer_cancel=mark_cancelled (RemoveCanceledMeetings $false, the default)."""
    world.sim.control.set_switches(organizer_cancel="mark_cancelled")
    org = await world.book()
    await world.graph.delete(f"/users/{ADELE}/events/{org['id']}")
    world.sim.control.run_rba()
    room = await world.only_event(ROOM)
    assert room["isCancelled"] is True


async def test_only_the_organizer_can_cancel(world: World) -> None:
    """graph-behaviour.md 2.6 ("Organizer cancels") and checklist 7.6 ("/cancel -> 202
    (organizer only, else 400)"), citing event-cancel.md @3bd18aec: "You need to be an organizer
    to cancel a meeting." """
    await world.book(attendees=(ALEX,))
    alex = await world.only_event(ALEX)
    r = await world.graph.post(f"/users/{ALEX}/events/{alex['id']}/cancel", json={})
    assert r.status_code == 400
    assert "organizer" in r.json()["error"]["message"]


async def test_room_decline_frees_the_room_and_flips_organizer_tracking(world: World) -> None:
    """event-decline.md: 202; [OBS lab] the copy leaves the room calendar (404 afterwards) and
    the organizer's tracking shows Declined."""
    org = await world.book()
    room = await world.only_event(ROOM)
    r = await world.graph.post(
        f"/users/{ROOM}/events/{room['id']}/decline", json=fixture("event-decline-request.json")
    )
    assert r.status_code == 202
    assert (await world.get(ROOM, room["id"])).status_code == 404
    assert room_status((await world.get(ADELE, org["id"])).json()) == "declined"


async def test_decline_with_proposed_time_needs_send_response(world: World) -> None:
    """graph-behaviour.md 2.6 ("Room declines") and checklist 7.6 ("/decline -> 202
    (proposedNewTime rules)"), citing event-decline.md @43b49839: ``proposedNewTime`` requires
    ``sendResponse: true``, otherwise 400."""
    await world.book()
    room = await world.only_event(ROOM)
    body = fixture("event-decline-request.json")
    body["sendResponse"] = False
    r = await world.graph.post(f"/users/{ROOM}/events/{room['id']}/decline", json=body)
    assert r.status_code == 400


async def test_deleting_the_room_copy_shows_declined_to_the_organizer(world: World) -> None:
    """graph-behaviour.md 2.6 ("Attendee or room copy deleted") and 6.2
    "Responses" [OBS lab notes]: DELETE on the room's copy is 204 (event-delete.md), sends no
    cancellation, and the organizer's tracking shows the room Declined."""
    org = await world.book()
    room = await world.only_event(ROOM)
    assert (await world.graph.delete(f"/users/{ROOM}/events/{room['id']}")).status_code == 204
    assert room_status((await world.get(ADELE, org["id"])).json()) == "declined"
    assert (await world.get(ADELE, org["id"])).json()["isCancelled"] is False


async def test_removing_the_room_from_attendees_removes_its_copy(world: World) -> None:
    """graph-behaviour.md 2.1, citing user-post-events.md "Setting the location in
    an event" ("If the meeting is rescheduled, the server automatically updates the event in the
    resource's calendar") and event-update.md (a PATCH of ``attendees`` reaches the attendees
    that changed): the room no longer invited loses its copy."""
    org = await world.book()
    r = await world.graph.patch(f"/users/{ADELE}/events/{org['id']}", json={"attendees": []})
    assert r.status_code == 200
    world.sim.control.run_rba()
    assert await world.events(ROOM) == []


async def test_a_room_taken_off_one_occurrence_lets_it_go_and_takes_it_back_when_invited(
    world: World,
) -> None:
    """event-update.md (an update of only the attendees "sends a meeting update to only the
    attendees that have changed") and user-post-events.md (the server accepts or rejects for
    the resource by its free/busy schedule): the room taken off one occurrence no longer holds
    it; invited back to it, its booking assistant takes it again while the slot is free."""
    first = tomorrow_at(9)
    day = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")[
        (first.weekday() + 1) % 7
    ]
    recurrence = {
        "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": [day]},
        "range": {
            "type": "numbered",
            "startDate": first.date().isoformat(),
            "numberOfOccurrences": 3,
        },
    }
    org = await world.book(start=first, recurrence=recurrence)
    lo, hi = first - timedelta(days=1), first + timedelta(weeks=4)

    async def room_starts() -> list[str]:
        return sorted(e["start"]["dateTime"][:16] for e in await world.view(ROOM, lo, hi))

    held = await room_starts()
    assert len(held) == 3
    r = await world.graph.get(
        f"/users/{ADELE}/events/{org['id']}/instances",
        params={"startDateTime": lo.isoformat(), "endDateTime": hi.isoformat()},
    )
    second = sorted(r.json()["value"], key=lambda i: str(i["start"]["dateTime"]))[1]
    others = [a for a in second["attendees"] if a["type"] != "resource"]
    path = f"/users/{ADELE}/events/{second['id']}"
    assert (await world.graph.patch(path, json={"attendees": others})).status_code == 200
    world.sim.control.run_rba()
    assert await room_starts() == [held[0], held[2]]
    room = {"emailAddress": {"address": ROOM}, "type": "resource"}
    r = await world.graph.patch(path, json={"attendees": [*others, room]})
    assert r.status_code == 200
    world.sim.control.run_rba()
    assert await room_starts() == held


async def test_event_written_directly_in_the_room_keeps_its_subject(world: World) -> None:
    """kb.wisc.edu 42396 [OBS]: events created in the room calendar bypass the RBA."""
    r = await world.graph.post(
        f"/users/{ROOM}/events", json=world.meeting(tomorrow_at(9), room=None)
    )
    assert r.status_code == 201
    world.sim.control.run_rba()
    room = await world.only_event(ROOM)
    assert room["subject"] == "Quarterly planning"
    assert room["isOrganizer"] is True


async def test_rba_runs_by_itself_after_its_delay(world: World) -> None:
    """The RBA acts "shortly after" the write; switch rba_delay (seconds of loop time)."""
    import asyncio

    world.sim.control.set_switches(rba_delay=0.0)
    body = world.meeting(tomorrow_at(9))
    await world.graph.post(f"/users/{ADELE}/events", json=body)
    for _ in range(50):
        if world.sim.control.pending_rba() == 0:
            break
        await asyncio.sleep(0.01)
    room = await world.only_event(ROOM)
    assert room["subject"] == "Adele Vance"


async def test_two_requests_for_one_slot_the_first_wins(world: World) -> None:
    """The RBA handles requests in arrival order: a request still waiting does not block the
    one before it (free = accept; busy = decline)."""
    first = await world.graph.post(f"/users/{ADELE}/events", json=world.meeting(tomorrow_at(9)))
    second = await world.graph.post(f"/users/{ALEX}/events", json=world.meeting(tomorrow_at(9)))
    world.sim.control.run_rba()
    assert room_status((await world.get(ADELE, first.json()["id"])).json()) == "accepted"
    assert room_status((await world.get(ALEX, second.json()["id"])).json()) == "declined"


async def test_room_tentatively_accepts_and_the_organizer_sees_it(world: World) -> None:
    """event-tentativelyaccept.md: 202; the organizer's tracking follows (responsestatus.md)."""
    org = await world.book()
    room = await world.only_event(ROOM)
    r = await world.graph.post(
        f"/users/{ROOM}/events/{room['id']}/tentativelyAccept", json={"sendResponse": True}
    )
    assert r.status_code == 202
    assert (await world.only_event(ROOM))["responseStatus"]["response"] == "tentativelyAccepted"
    assert room_status((await world.get(ADELE, org["id"])).json()) == "tentativelyAccepted"
    mine = await world.graph.post(f"/users/{ADELE}/events/{org['id']}/accept", json={})
    assert mine.status_code == 400  # the organizer cannot answer their own meeting
