"""The ports' contract: what the sync engine relies on from ``GraphPort`` and ``HybridPort``,
checked against the production adapters (``GraphAdapter``, ``HybridAdapter``) over roomd's real
clients (msal, httpx, TLS) and the simulators.

Each test states one promise the engine's shells (``roomd/sync/inbound.py``, ``outbox.py``)
depend on; if a promise breaks, a user sees a meeting made twice, a room left booked, a
cancellation mailed twice or a change never synced. The Graph simulator's booking assistant runs
only when told (``rba_delay=None`` and ``run_rba()``), as Exchange's runs "shortly after".
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from support.graph_world import ADELE, ALEX, ROOM, config_for, dtz, running_graph_sim, window
from support.graph_world import tomorrow_at as at
from support.hybrid_world import FAST_RETRY, HARBOUR, NOW, ROOM_4A, ROOM_4B, make_config
from support.loopback import forbid_non_loopback

from roomd.graph import BadRequest, GraphClient, GraphError, NotFound
from roomd.hybrid import DoubleBooking, HybridClient, booking_payload
from roomd.hybrid.model import format_datetime
from roomd.sim.graph import GraphSimulator
from roomd.sim.graph.wire import GraphError as SimGraphError
from roomd.sim.hybrid import DeliveryPolicy, HybridSimulator, SimClock
from roomd.sim.tls import LocalCA
from roomd.sync.outbox import NO_MAILBOX_CODES
from roomd.sync.ports import GraphAdapter, GraphPort, HybridAdapter, HybridPort, transient

NOBODY = "pat@fabrikam.com"  # a person of the tenant's world with no mailbox in it
UNKNOWN_ID = "0123456789abcdef01234567"  # shaped like a Hybrid id, naming nothing

# --- the worlds -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> Iterator[LocalCA]:
    yield LocalCA()


@pytest.fixture
def ca_bundle(ca: LocalCA, tmp_path: Path) -> Path:
    return Path(ca.write_ca_bundle(tmp_path / "ca.pem"))


@pytest.fixture
async def gsim(ca: LocalCA, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[GraphSimulator]:
    forbid_non_loopback(monkeypatch)
    async with running_graph_sim(ca, rba_delay=None) as simulator:
        yield simulator


@pytest.fixture
async def graph(gsim: GraphSimulator, ca_bundle: Path) -> AsyncIterator[GraphPort]:
    adapter = GraphAdapter(GraphClient(config_for(gsim, ca_bundle)))
    try:
        yield adapter
    finally:
        await adapter.aclose()


@pytest.fixture
async def hsim(ca: LocalCA) -> AsyncIterator[HybridSimulator]:
    simulator = HybridSimulator(ca=ca, clock=SimClock(frozen_at=NOW), delivery=DeliveryPolicy())
    await simulator.start()
    try:
        yield simulator
    finally:
        await simulator.stop()


def _hybrid_adapter(hsim: HybridSimulator, ca_bundle: Path) -> HybridAdapter:
    return HybridAdapter(HybridClient(make_config(hsim, ca_bundle, retry=FAST_RETRY)))


@pytest.fixture
async def hybrid(hsim: HybridSimulator, ca_bundle: Path) -> AsyncIterator[HybridPort]:
    adapter = _hybrid_adapter(hsim, ca_bundle)
    try:
        yield adapter
    finally:
        await adapter.aclose()


# --- Graph helpers ----------------------------------------------------------------------------


def meeting(
    subject: str, start: datetime, minutes: int = 60, attendees: tuple[str, ...] = ()
) -> dict[str, Any]:
    """A meeting as roomd writes one: UTC times, the room as location and resource attendee."""
    return {
        "subject": subject,
        "start": dtz(start),
        "end": dtz(start + timedelta(minutes=minutes)),
        "location": {"displayName": "Room 4A", "locationEmailAddress": ROOM},
        "attendees": [{"emailAddress": {"address": ROOM}, "type": "resource"}]
        + [{"emailAddress": {"address": a}, "type": "required"} for a in attendees],
    }


def copies(sim: GraphSimulator, mailbox: str, ical_uid: str) -> list[dict[str, Any]]:
    """Every copy of one meeting in a mailbox, as stored (cancelled ones included)."""
    return [e for e in sim.control.events(mailbox) if e.get("iCalUId") == ical_uid]


def copy_in(sim: GraphSimulator, mailbox: str, ical_uid: str) -> dict[str, Any]:
    found = copies(sim, mailbox, ical_uid)
    assert len(found) == 1, found
    return found[0]


def live_copies(sim: GraphSimulator, mailbox: str, ical_uid: str) -> list[dict[str, Any]]:
    return [e for e in copies(sim, mailbox, ical_uid) if not e.get("isCancelled")]


def utc(value: dict[str, str]) -> datetime:
    return datetime.fromisoformat(value["dateTime"][:19]).replace(tzinfo=UTC)


def room_status(organizer_copy: dict[str, Any]) -> str:
    """The room attendee's response as the organizer's copy tracks it."""
    for attendee in organizer_copy["attendees"]:
        if attendee["emailAddress"]["address"].lower() == ROOM:
            return str(attendee["status"]["response"])
    raise AssertionError(f"the room is no attendee of {organizer_copy['id']}")


def cancellations_to(
    sim: GraphSimulator, monkeypatch: pytest.MonkeyPatch, mailbox: str
) -> list[str]:
    """The iCalUIds of cancellations delivered to ``mailbox`` from now on, one per delivery."""
    seen: list[str] = []
    keeper = sim.exchange.copies
    original = keeper.cancel_copy

    def recording(cal: Any, ical_uid: str, remove: bool) -> None:
        if cal.mailbox == mailbox:
            seen.append(ical_uid)
        original(cal, ical_uid, remove)

    monkeypatch.setattr(keeper, "cancel_copy", recording)
    return seen


def delete_in_outlook(sim: GraphSimulator, mailbox: str, event_id: str) -> None:
    """The mailbox's owner deletes the event in Outlook (an organizer's delete cancels it)."""
    owner = sim.directory.find(mailbox)
    assert owner is not None
    sim.exchange.delete(owner, event_id)


async def booked(
    graph: GraphPort, sim: GraphSimulator, key: str, *, attendees: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Adele's meeting in Room 4A tomorrow 09:00, made through the port; the room has accepted."""
    created = await graph.create_event(
        ADELE, meeting("Quarterly planning", at(9), attendees=attendees), idempotency_key=key
    )
    sim.control.run_rba()
    assert copy_in(sim, ROOM, created["iCalUId"])["responseStatus"]["response"] == "accepted"
    return created


# --- GraphPort: create ------------------------------------------------------------------------


async def test_create_event_makes_one_meeting_per_key_even_after_roomd_forgot_the_answer(
    gsim: GraphSimulator, graph: GraphPort, ca_bundle: Path
) -> None:
    body = meeting("Quarterly planning", at(9))
    first = await graph.create_event(ADELE, body, idempotency_key="booking-1")
    again = await graph.create_event(ADELE, body, idempotency_key="booking-1")
    # a restarted roomd with a lost state database: a new client, the same key
    restarted = GraphAdapter(GraphClient(config_for(gsim, ca_bundle)))
    try:
        after_restart = await restarted.create_event(ADELE, body, idempotency_key="booking-1")
    finally:
        await restarted.aclose()
    assert isinstance(first["id"], str) and first["id"]
    assert isinstance(first["iCalUId"], str) and first["iCalUId"]
    assert again["id"] == after_restart["id"] == first["id"]
    assert again["iCalUId"] == after_restart["iCalUId"] == first["iCalUId"]
    assert [e["id"] for e in gsim.control.events(ADELE)] == [first["id"]]
    assert gsim.control.events(ROOM) == []  # the room answers only once its assistant ran
    gsim.control.run_rba()
    room_copy = copy_in(gsim, ROOM, first["iCalUId"])
    assert room_copy["responseStatus"]["response"] == "accepted"
    assert room_copy["id"] != first["id"]


async def test_create_event_with_another_key_makes_another_meeting(
    gsim: GraphSimulator, graph: GraphPort
) -> None:
    one = await graph.create_event(ADELE, meeting("One", at(9)), idempotency_key="booking-1")
    two = await graph.create_event(ADELE, meeting("Two", at(11)), idempotency_key="booking-2")
    assert one["id"] != two["id"] and one["iCalUId"] != two["iCalUId"]
    assert sorted(e["subject"] for e in gsim.control.events(ADELE)) == ["One", "Two"]


async def test_create_event_whose_answer_was_lost_makes_one_meeting(
    gsim: GraphSimulator, graph: GraphPort
) -> None:
    gsim.control.inject_fault(
        kind="lose_answer", method="POST", path_contains="/events", mailbox=ADELE, count=1
    )
    created = await graph.create_event(
        ADELE, meeting("Quarterly planning", at(9)), idempotency_key="booking-1"
    )
    assert gsim.control.faults() == []  # the answer was lost indeed
    assert [(e["id"], e["iCalUId"]) for e in gsim.control.events(ADELE)] == [
        (created["id"], created["iCalUId"])
    ]


async def test_create_event_for_an_organizer_without_a_mailbox_is_refused_as_such(
    gsim: GraphSimulator, graph: GraphPort
) -> None:
    """The outbox falls back to the service mailbox only on NotFound or one of these codes."""
    with pytest.raises((NotFound, BadRequest)) as refused:
        await graph.create_event(NOBODY, meeting("Visit", at(9)), idempotency_key="booking-1")
    assert isinstance(refused.value, NotFound) or refused.value.code in NO_MAILBOX_CODES
    gsim.control.run_rba()
    assert gsim.control.events(ROOM) == []


# --- GraphPort: update ------------------------------------------------------------------------


async def test_update_event_moves_the_meeting_and_the_room_copy_follows(
    gsim: GraphSimulator, graph: GraphPort
) -> None:
    created = await booked(graph, gsim, "booking-1")
    new_start = at(14)
    answer = await graph.update_event(
        ADELE,
        created["id"],
        {
            "subject": "Planning, moved",
            "start": dtz(new_start),
            "end": dtz(new_start + timedelta(minutes=30)),
        },
    )
    assert answer["id"] == created["id"]
    assert utc(answer["start"]) == new_start
    assert utc(answer["end"]) == new_start + timedelta(minutes=30)
    organizer_copy = copy_in(gsim, ADELE, created["iCalUId"])
    assert organizer_copy["subject"] == "Planning, moved"
    assert utc(organizer_copy["start"]) == new_start
    gsim.control.run_rba()
    room_copy = copy_in(gsim, ROOM, created["iCalUId"])
    assert (utc(room_copy["start"]), utc(room_copy["end"])) == (
        new_start,
        new_start + timedelta(minutes=30),
    )
    assert room_copy["responseStatus"]["response"] == "accepted"


async def test_update_event_sent_twice_leaves_the_same_meeting(
    gsim: GraphSimulator, graph: GraphPort
) -> None:
    """A replayed outbox row repeats its update: harmless."""
    created = await booked(graph, gsim, "booking-1")
    changes = {"start": dtz(at(15)), "end": dtz(at(16))}
    await graph.update_event(ADELE, created["id"], changes)
    again = await graph.update_event(ADELE, created["id"], changes)
    assert (utc(again["start"]), utc(again["end"])) == (at(15), at(16))
    gsim.control.run_rba()
    room_copy = copy_in(gsim, ROOM, created["iCalUId"])
    assert utc(room_copy["start"]) == at(15)
    assert room_copy["responseStatus"]["response"] == "accepted"


# --- GraphPort: cancel ------------------------------------------------------------------------


async def test_cancel_event_cancels_once_and_says_so(
    gsim: GraphSimulator, graph: GraphPort, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = await booked(graph, gsim, "booking-1", attendees=(ALEX,))
    assert copy_in(gsim, ALEX, created["iCalUId"])["isCancelled"] is False
    to_alex = cancellations_to(gsim, monkeypatch, ALEX)
    first = await graph.cancel_event(ADELE, created["id"], comment="cancelled in Hybrid")
    second = await graph.cancel_event(ADELE, created["id"], comment="cancelled in Hybrid")
    assert first == "cancelled"
    assert second in ("already_cancelled", "already_gone")
    assert to_alex == [created["iCalUId"]]  # one cancellation mailed, not two
    assert copy_in(gsim, ALEX, created["iCalUId"])["isCancelled"] is True
    gsim.control.run_rba()
    assert live_copies(gsim, ROOM, created["iCalUId"]) == []  # the room is free again


async def test_cancel_event_of_a_deleted_meeting_is_already_gone_and_sends_nothing(
    gsim: GraphSimulator, graph: GraphPort, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = await booked(graph, gsim, "booking-1", attendees=(ALEX,))
    to_alex = cancellations_to(gsim, monkeypatch, ALEX)
    delete_in_outlook(gsim, ADELE, created["id"])
    assert to_alex == [created["iCalUId"]]
    result = await graph.cancel_event(ADELE, created["id"], comment="cancelled in Hybrid")
    assert result == "already_gone"
    assert to_alex == [created["iCalUId"]]


@pytest.mark.parametrize("how", ["connection closed", "503"])
async def test_cancel_event_whose_answer_was_lost_is_not_sent_again(
    gsim: GraphSimulator, graph: GraphPort, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """Graph cancels, then its answer is lost (or is a 503): roomd reads the meeting instead of
    cancelling again, and says the cancel went through."""
    created = await booked(graph, gsim, "booking-1", attendees=(ALEX,))
    to_alex = cancellations_to(gsim, monkeypatch, ALEX)
    if how == "503":
        cancel = gsim.exchange.cancel

        def cancel_then_fail(mailbox: Any, event_id: str) -> None:
            cancel(mailbox, event_id)
            raise SimGraphError(503, "ServiceUnavailable", "The service is unavailable.")

        monkeypatch.setattr(gsim.exchange, "cancel", cancel_then_fail)
    else:
        gsim.control.inject_fault(
            kind="lose_answer", method="POST", path_contains="/cancel", count=1
        )
    result = await graph.cancel_event(ADELE, created["id"], comment="cancelled in Hybrid")
    assert result == "cancelled_on_retry"
    assert to_alex == [created["iCalUId"]]
    gsim.control.run_rba()
    assert live_copies(gsim, ROOM, created["iCalUId"]) == []


async def test_cancel_event_that_never_reached_graph_fails_and_its_retry_cancels_once(
    gsim: GraphSimulator, graph: GraphPort, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The connection closed before Graph ran the cancel: roomd must not call it done (the
    outbox retries a failure without a status), and the retry mails one cancellation."""
    created = await booked(graph, gsim, "booking-1", attendees=(ALEX,))
    to_alex = cancellations_to(gsim, monkeypatch, ALEX)
    gsim.control.inject_fault(kind="drop", method="POST", path_contains="/cancel", count=1)
    with pytest.raises(GraphError) as failed:
        await graph.cancel_event(ADELE, created["id"], comment="cancelled in Hybrid")
    assert transient(failed.value)
    assert to_alex == []
    assert copy_in(gsim, ADELE, created["iCalUId"])["isCancelled"] is False
    assert await graph.cancel_event(ADELE, created["id"], comment="again") == "cancelled"
    assert to_alex == [created["iCalUId"]]


# --- GraphPort: answers as the room -----------------------------------------------------------


@pytest.mark.parametrize(
    ("response", "shown"),
    [
        ("tentativelyAccept", "tentativelyAccepted"),
        ("accept", "accepted"),
        ("decline", "declined"),
    ],
)
async def test_respond_as_the_room_shows_on_the_organizers_copy(
    gsim: GraphSimulator, graph: GraphPort, response: str, shown: str
) -> None:
    created = await booked(graph, gsim, "booking-1")
    room_copy_id = copy_in(gsim, ROOM, created["iCalUId"])["id"]
    if response == "accept":  # the room accepted already: make the answer a change
        await graph.respond(ROOM, room_copy_id, "tentativelyAccept", comment="pending approval")
        assert room_status(copy_in(gsim, ADELE, created["iCalUId"])) == "tentativelyAccepted"
    await graph.respond(ROOM, room_copy_id, response, comment="from the booking system")
    assert room_status(copy_in(gsim, ADELE, created["iCalUId"])) == shown
    if response == "decline":
        assert live_copies(gsim, ROOM, created["iCalUId"]) == []  # the room is free
        with pytest.raises(NotFound):
            await graph.get_event(ROOM, room_copy_id)
    else:  # the room's own copy says it too (inbound reads it from the delta feed)
        room_copy = await graph.get_event(ROOM, room_copy_id)
        assert room_copy["responseStatus"]["response"] == shown


async def test_respond_with_an_unknown_answer_is_refused_before_graph_is_asked(
    gsim: GraphSimulator, graph: GraphPort
) -> None:
    created = await booked(graph, gsim, "booking-1")
    room_copy_id = copy_in(gsim, ROOM, created["iCalUId"])["id"]
    with pytest.raises(ValueError, match="maybe"):
        await graph.respond(ROOM, room_copy_id, "maybe", comment="")
    assert copy_in(gsim, ROOM, created["iCalUId"])["responseStatus"]["response"] == "accepted"


# --- GraphPort: reads -------------------------------------------------------------------------


async def test_get_event_reads_a_copy_and_raises_not_found_once_it_is_deleted(
    gsim: GraphSimulator, graph: GraphPort
) -> None:
    created = await booked(graph, gsim, "booking-1")
    room_copy_id = copy_in(gsim, ROOM, created["iCalUId"])["id"]
    read = await graph.get_event(ROOM, room_copy_id)
    assert (read["id"], read["iCalUId"]) == (room_copy_id, created["iCalUId"])
    delete_in_outlook(gsim, ROOM, room_copy_id)
    with pytest.raises(NotFound):
        await graph.get_event(ROOM, room_copy_id)
    organizer_copy = await graph.get_event(ADELE, created["id"])
    assert room_status(organizer_copy) == "declined"  # how inbound tells "declined by the room"


async def test_find_by_ical_uid_finds_the_organizers_copy_from_the_room_copy(
    gsim: GraphSimulator, graph: GraphPort
) -> None:
    created = await booked(graph, gsim, "booking-1")
    room_copy = copy_in(gsim, ROOM, created["iCalUId"])
    found = await graph.find_by_ical_uid(
        ADELE, room_copy["iCalUId"], ("id", "subject", "isCancelled", "attendees", "type")
    )
    assert [(f["id"], f["subject"], f["isCancelled"]) for f in found] == [
        (created["id"], "Quarterly planning", False)
    ]
    assert await graph.find_by_ical_uid(ADELE, "040000008200E00074C5B7101A82E008000000") == []


async def test_a_series_read_ahead_answers_the_series_readers_requests_once_each(
    gsim: GraphSimulator, graph: GraphPort
) -> None:
    start = at(9)
    body = meeting("Weekly sync", start)
    body["recurrence"] = {
        "pattern": {
            "type": "weekly",
            "interval": 1,
            "daysOfWeek": [start.strftime("%A").lower()],
        },
        "range": {
            "type": "numbered",
            "startDate": start.strftime("%Y-%m-%d"),
            "numberOfOccurrences": 3,
        },
    }
    created = await graph.create_event(ADELE, body, idempotency_key="series-1")
    gsim.control.run_rba()
    master = copy_in(gsim, ROOM, created["iCalUId"])
    lo, hi = window()
    masters = await graph.read_ahead_series(ROOM, [master["id"], UNKNOWN_ID], lo, hi)
    assert list(masters) == [master["id"]]
    await graph.read_ahead_copies([(ADELE, created["iCalUId"])], ("id", "subject", "type"))
    expected = await graph.instances(ROOM, master["id"], lo, hi)  # not read ahead: asked
    assert len(expected) == 3
    delete_in_outlook(gsim, ADELE, created["id"])  # after the read ahead, before its use
    # the series reader's requests are answered from what was read, each once
    assert (await graph.get_event(ROOM, master["id"]))["iCalUId"] == created["iCalUId"]
    assert [i["id"] for i in await graph.instances(ROOM, master["id"], lo, hi)] == [
        i["id"] for i in expected
    ]
    organizer = await graph.find_by_ical_uid(ADELE, created["iCalUId"], ("id", "subject", "type"))
    assert [(c["id"], c["type"]) for c in organizer] == [(created["id"], "seriesMaster")]
    with pytest.raises(NotFound):  # read ahead as missing: missing
        await graph.get_event(ROOM, UNKNOWN_ID)
    # used up: the next request asks Graph, which knows of the deletion
    assert await graph.find_by_ical_uid(ADELE, created["iCalUId"], ("id", "subject", "type")) == []


async def test_delta_round_gives_changes_then_a_link_and_a_replay_gives_them_again(
    gsim: GraphSimulator, graph: GraphPort
) -> None:
    start, end = window()
    empty = await graph.delta_round(ROOM, window_start=start, window_end=end, delta_link=None)
    assert empty.changes == [] and empty.delta_link
    created = await booked(graph, gsim, "booking-1")
    room_copy_id = copy_in(gsim, ROOM, created["iCalUId"])["id"]
    round_1 = await graph.delta_round(
        ROOM, window_start=start, window_end=end, delta_link=empty.delta_link
    )
    assert [(c["id"], c["iCalUId"]) for c in round_1.changes] == [
        (room_copy_id, created["iCalUId"])
    ]
    assert round_1.delta_link and round_1.delta_link != empty.delta_link
    # roomd crashed before storing round_1's link: the same link gives the same changes
    replay = await graph.delta_round(
        ROOM, window_start=start, window_end=end, delta_link=empty.delta_link
    )
    assert [(c["id"], c.get("changeKey")) for c in replay.changes] == [
        (c["id"], c.get("changeKey")) for c in round_1.changes
    ]
    quiet = await graph.delta_round(
        ROOM, window_start=start, window_end=end, delta_link=round_1.delta_link
    )
    assert quiet.changes == []
    await graph.cancel_event(ADELE, created["id"], comment="cancelled")
    gsim.control.run_rba()
    after = await graph.delta_round(
        ROOM, window_start=start, window_end=end, delta_link=quiet.delta_link
    )
    assert [c["id"] for c in after.changes] == [room_copy_id]
    change = after.changes[0]
    assert "@removed" in change or change.get("isCancelled") is True


# --- HybridPort -------------------------------------------------------------------------------

START = NOW.replace(hour=9, minute=0) + timedelta(days=2)


def payload(
    hsim: HybridSimulator,
    start: datetime = START,
    minutes: int = 60,
    *,
    room: str = ROOM_4A,
    summary: str = "Design review",
) -> dict[str, Any]:
    return booking_payload(
        resource_id=room,
        start=start,
        end=start + timedelta(minutes=minutes),
        summary=summary,
        member=hsim.control.member_id(ADELE),
    )


async def test_create_booking_makes_one_booking_per_reference_even_after_roomd_forgot(
    hsim: HybridSimulator, hybrid: HybridPort, ca_bundle: Path
) -> None:
    first = await hybrid.create_booking(payload(hsim), reference="uid-1")
    again = await hybrid.create_booking(payload(hsim), reference="uid-1")
    restarted = _hybrid_adapter(hsim, ca_bundle)
    try:
        after_restart = await restarted.create_booking(payload(hsim), reference="uid-1")
    finally:
        await restarted.aclose()
    assert again.id == after_restart.id == first.id
    assert [(b["_id"], b["reference"]) for b in hsim.control.bookings()] == [(first.id, "uid-1")]
    assert (first.resource_id, first.start, first.end, first.summary) == (
        ROOM_4A,
        START,
        START + timedelta(hours=1),
        "Design review",
    )
    assert first.tentative is False and first.canceled is False


async def test_create_booking_in_a_room_needing_approval_is_tentative(
    hsim: HybridSimulator, hybrid: HybridPort
) -> None:
    booking = await hybrid.create_booking(payload(hsim, room=ROOM_4B), reference="uid-1")
    assert booking.tentative is True and booking.canceled is False


async def test_create_booking_over_another_booking_raises_double_booking(
    hsim: HybridSimulator, hybrid: HybridPort
) -> None:
    """The outbox turns this refusal into the room declining the meeting."""
    taken = await hybrid.create_booking(payload(hsim), reference="uid-1")
    with pytest.raises(DoubleBooking):
        await hybrid.create_booking(payload(hsim, START + timedelta(minutes=30)), reference="uid-2")
    assert [b["_id"] for b in hsim.control.bookings()] == [taken.id]


async def test_find_by_reference_finds_canceled_bookings_too(
    hsim: HybridSimulator, hybrid: HybridPort
) -> None:
    made = await hybrid.create_booking(payload(hsim), reference="uid-1")
    hsim.control.cancel_booking(made.id)
    found = await hybrid.find_by_reference("uid-1")
    assert found is not None
    assert (found.id, found.canceled) == (made.id, True)
    assert await hybrid.find_by_reference("uid-2") is None


async def test_get_booking_reads_a_booking_and_is_none_for_an_unknown_id(
    hsim: HybridSimulator, hybrid: HybridPort
) -> None:
    made = await hybrid.create_booking(payload(hsim), reference="uid-1")
    read = await hybrid.get_booking(made.id)
    assert read is not None and (read.id, read.reference, read.start) == (made.id, "uid-1", START)
    assert await hybrid.get_booking(UNKNOWN_ID) is None


async def test_patch_booking_moves_and_retitles_and_may_be_repeated(
    hsim: HybridSimulator, hybrid: HybridPort
) -> None:
    made = await hybrid.create_booking(payload(hsim), reference="uid-1")
    later = START + timedelta(hours=3)
    changes = {
        "start": {"dateTime": format_datetime(later)},
        "end": {"dateTime": format_datetime(later + timedelta(minutes=30))},
        "summary": "Design review, moved",
    }
    patched = await hybrid.patch_booking(made.id, changes)
    again = await hybrid.patch_booking(made.id, changes)
    for answer in (patched, again):
        assert (answer.id, answer.start, answer.end, answer.summary) == (
            made.id,
            later,
            later + timedelta(minutes=30),
            "Design review, moved",
        )
    stored = hsim.control.booking(made.id)
    assert stored["summary"] == "Design review, moved"


async def test_cancel_booking_twice_is_harmless_and_none_for_an_unknown_id(
    hsim: HybridSimulator, hybrid: HybridPort
) -> None:
    made = await hybrid.create_booking(payload(hsim), reference="uid-1")
    first = await hybrid.cancel_booking(made.id)
    second = await hybrid.cancel_booking(made.id)
    assert first is not None and second is not None
    assert (first.id, first.canceled) == (second.id, second.canceled) == (made.id, True)
    assert second.modified_at == first.modified_at  # the second cancel changed nothing
    assert hsim.control.booking(made.id)["canceled"] is True
    assert await hybrid.cancel_booking(UNKNOWN_ID) is None


async def test_member_id_ignores_case_and_is_none_for_a_non_member(
    hsim: HybridSimulator, hybrid: HybridPort
) -> None:
    adele = hsim.control.member_id(ADELE)
    assert await hybrid.member_id(ADELE) == adele
    assert await hybrid.member_id("AdeleV@Contoso.COM") == adele
    mixed = hsim.control.add_member("Mixed Case", "Mixed.Case@Contoso.com")
    assert await hybrid.member_id("mixed.case@contoso.com") == mixed["_id"]
    assert await hybrid.member_id("nobody@contoso.com") is None


async def test_member_email_is_lower_case_and_none_for_an_unknown_id(
    hsim: HybridSimulator, hybrid: HybridPort
) -> None:
    assert await hybrid.member_email(hsim.control.member_id(ADELE)) == ADELE
    mixed = hsim.control.add_member("Mixed Case", "Mixed.Case@Contoso.com")
    assert await hybrid.member_email(mixed["_id"]) == "mixed.case@contoso.com"
    assert await hybrid.member_email(UNKNOWN_ID) is None


async def test_changes_since_reports_each_version_once_after_it_is_confirmed(
    hsim: HybridSimulator, hybrid: HybridPort
) -> None:
    made = hsim.control.create_booking(
        ROOM_4A, START, START + timedelta(hours=1), member=ADELE, summary="First"
    )
    hsim.control.create_booking(HARBOUR, START, START + timedelta(hours=1), member=ADELE)
    changes, cursor = await hybrid.changes_since(None, resource_id=ROOM_4A)
    assert [(b.id, b.summary) for b in changes] == [(made["_id"], "First")]
    hybrid.confirm_changes(ROOM_4A)
    again, cursor = await hybrid.changes_since(cursor, resource_id=ROOM_4A)
    assert again == []
    hybrid.confirm_changes(ROOM_4A)
    hsim.control.update_booking(made["_id"], summary="Second")
    changes, _ = await hybrid.changes_since(cursor, resource_id=ROOM_4A)
    assert [(b.id, b.summary) for b in changes] == [(made["_id"], "Second")]
    # the round failed before its cursor was stored: the change is reported again
    retried, cursor = await hybrid.changes_since(cursor, resource_id=ROOM_4A)
    assert [(b.id, b.summary) for b in retried] == [(made["_id"], "Second")]
    hybrid.confirm_changes(ROOM_4A)
    after, _ = await hybrid.changes_since(cursor, resource_id=ROOM_4A)
    assert after == []


async def test_bookings_between_lists_bookings_overlapping_the_window(
    hsim: HybridSimulator, hybrid: HybridPort
) -> None:
    long = hsim.control.create_booking(ROOM_4A, START, START + timedelta(hours=2), member=ADELE)
    later = hsim.control.create_booking(
        ROOM_4A, START + timedelta(hours=4), START + timedelta(hours=5), member=ADELE
    )
    hsim.control.create_booking(HARBOUR, START, START + timedelta(hours=2), member=ADELE)
    found = await hybrid.bookings_between(
        START + timedelta(hours=1), START + timedelta(hours=3), resource_id=ROOM_4A
    )
    assert [b.id for b in found] == [long["_id"]]
    found = await hybrid.bookings_between(
        START - timedelta(hours=1), START + timedelta(hours=6), resource_id=ROOM_4A
    )
    assert sorted(b.id for b in found) == sorted([long["_id"], later["_id"]])


async def test_resource_zone_is_the_rooms_zone_in_hybrid_and_none_for_an_unknown_room(
    hybrid: HybridPort,
) -> None:
    """The zone Hybrid evaluates a room's series in, for a room whose ``time_zone`` is not
    configured (the tenant's Room 4A is in London)."""
    assert await hybrid.resource_zone(ROOM_4A) == "Europe/London"
    assert await hybrid.resource_zone(UNKNOWN_ID) is None
