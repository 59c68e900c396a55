"""Event operations against the simulated Exchange: idempotent creates, conditional updates,
answers as the room, cancel, delete, instances, series masters and iCalUId look-ups."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from roomd.graph import GraphClient, GraphProtocolError, NotFound, PreconditionFailed, tag_value
from roomd.graph.events import transaction_id_for
from roomd.sim.graph import GraphSimulator

from .conftest import ORGANIZER, ROOM, config_for, event_body, metric, tomorrow_at
from .control import faults_left, lose_next_answer


async def test_repeated_create_with_the_same_key_makes_one_meeting(graph: GraphClient) -> None:
    body = event_body("Quarterly planning", tomorrow_at(9))
    first = await graph.events.create(ORGANIZER, body, idempotency_key="booking-123")
    again = await graph.events.create(ORGANIZER, body, idempotency_key="booking-123")
    assert again["id"] == first["id"]
    assert first["transactionId"] == transaction_id_for("booking-123")
    copies = await graph.events.find_by_ical_uid(ORGANIZER, first["iCalUId"])
    assert [c["id"] for c in copies] == [first["id"]]


async def test_different_keys_make_different_meetings(graph: GraphClient) -> None:
    a = await graph.events.create(
        ORGANIZER, event_body("A", tomorrow_at(9), room=None), idempotency_key="k-a"
    )
    b = await graph.events.create(
        ORGANIZER, event_body("A", tomorrow_at(9), room=None), idempotency_key="k-b"
    )
    assert a["id"] != b["id"]


async def test_update_with_stale_etag_is_refused(graph: GraphClient) -> None:
    # No room: the room's answer would itself change the organizer copy's etag.
    created = await graph.events.create(
        ORGANIZER, event_body("Design review", tomorrow_at(11), room=None), idempotency_key="dr-1"
    )
    stale = created["@odata.etag"]
    updated = await graph.events.update(
        ORGANIZER, created["id"], {"subject": "Design review (moved)"}, etag=stale
    )
    assert updated["subject"] == "Design review (moved)"
    with pytest.raises(PreconditionFailed) as caught:
        await graph.events.update(ORGANIZER, created["id"], {"subject": "lost"}, etag=stale)
    assert caught.value.status == 412
    current = await graph.events.get(ORGANIZER, created["id"])
    assert current["subject"] == "Design review (moved)"


async def test_room_copy_is_found_by_ical_uid_and_can_be_declined(graph: GraphClient) -> None:
    created = await graph.events.create(
        ORGANIZER, event_body("Offsite prep", tomorrow_at(13)), idempotency_key="op-1"
    )
    room_copies = await graph.events.find_by_ical_uid(ROOM, created["iCalUId"])
    assert len(room_copies) == 1 and room_copies[0]["id"] != created["id"]
    await graph.events.decline(ROOM, room_copies[0]["id"], comment="no-show", send_response=True)
    organizer_copy = await graph.events.get(ORGANIZER, created["id"])
    statuses = {
        a["emailAddress"]["address"].lower(): a["status"]["response"]
        for a in organizer_copy["attendees"]
    }
    assert statuses[ROOM] == "declined"


async def test_organizer_cancel_frees_the_room(graph: GraphClient) -> None:
    created = await graph.events.create(
        ORGANIZER, event_body("All hands", tomorrow_at(15)), idempotency_key="ah-1"
    )
    assert await graph.events.find_by_ical_uid(ROOM, created["iCalUId"])
    await graph.events.cancel(ORGANIZER, created["id"], comment="moved online")
    remaining = [
        e
        for e in await graph.events.find_by_ical_uid(ROOM, created["iCalUId"])
        if not e.get("isCancelled")
    ]
    assert remaining == []


async def test_delete_reports_whether_anything_was_there(graph: GraphClient) -> None:
    created = await graph.events.create(
        ORGANIZER, event_body("1:1", tomorrow_at(16), room=None), idempotency_key="11-1"
    )
    assert await graph.events.delete(ORGANIZER, created["id"]) == "deleted"
    assert await graph.events.delete(ORGANIZER, created["id"]) == "already_gone"
    with pytest.raises(NotFound):
        await graph.events.get(ORGANIZER, created["id"])


async def test_a_delete_whose_answer_was_lost_is_told_from_one_already_gone(
    sim: GraphSimulator, graph: GraphClient
) -> None:
    """The first DELETE is carried out but its answer never comes; the retry meets 404. That
    is roomd's own delete, not an event someone else had already removed."""
    created = await graph.events.create(
        ORGANIZER, event_body("1:1", tomorrow_at(16)), idempotency_key="11-lost"
    )
    retries = metric("roomd_graph_retries_total", reason="connection")
    lose_next_answer(sim, method="DELETE")
    assert await graph.events.delete(ORGANIZER, created["id"]) == "deleted_on_retry"
    assert metric("roomd_graph_retries_total", reason="connection") == retries + 1
    assert faults_left(sim) == 0
    assert created["id"] not in [e["id"] for e in sim.control.events(ORGANIZER)]
    # the first DELETE really went through: the room's copy went with the organizer's
    assert await graph.events.find_by_ical_uid(ROOM, created["iCalUId"]) == []


@pytest.mark.parametrize(
    "fault",
    [{"kind": "drop"}, {"kind": "status", "status": 503}],
    ids=["connection-dropped-before-it-ran", "503"],
)
async def test_a_delete_that_only_the_retry_carried_out_is_deleted(
    sim: GraphSimulator, graph: GraphClient, fault: dict[str, object]
) -> None:
    created = await graph.events.create(
        ORGANIZER, event_body("1:1", tomorrow_at(17), room=None), idempotency_key="11-retry"
    )
    sim.control.inject_fault(count=1, method="DELETE", **fault)
    assert await graph.events.delete(ORGANIZER, created["id"]) == "deleted"
    assert faults_left(sim) == 0
    with pytest.raises(NotFound):
        await graph.events.get(ORGANIZER, created["id"])


async def test_tag_is_only_visible_when_expanded(graph: GraphClient) -> None:
    created = await graph.events.create(
        ORGANIZER,
        event_body("Tagged", tomorrow_at(8)),
        idempotency_key="tag-1",
        tag="booking-000123",
    )
    plain = await graph.events.get(ORGANIZER, created["id"])
    assert tag_value(plain) is None
    tagged = await graph.events.get(ORGANIZER, created["id"], tagged=True)
    assert tag_value(tagged) == "booking-000123"
    found = await graph.events.find_by_tag(ORGANIZER, "booking-000123")
    assert [e["id"] for e in found] == [created["id"]]


async def test_series_instances_and_master(graph: GraphClient) -> None:
    start = tomorrow_at(9)
    body = event_body("Weekly sync", start)
    body["recurrence"] = {
        "pattern": {
            "type": "weekly",
            "interval": 1,
            "daysOfWeek": [start.strftime("%A").lower()],
            "firstDayOfWeek": "sunday",
        },
        "range": {
            "type": "numbered",
            "startDate": start.date().isoformat(),
            "numberOfOccurrences": 5,
        },
    }
    master = await graph.events.create(ORGANIZER, body, idempotency_key="weekly-1")
    assert master["type"] == "seriesMaster"
    instances = await graph.events.instances(
        ORGANIZER,
        master["id"],
        start=start - timedelta(days=1),
        end=start + timedelta(weeks=10),
        page_size=2,
    )
    assert len(instances) == 5
    assert all(i["seriesMasterId"] == master["id"] for i in instances)
    again = await graph.events.series_master(ORGANIZER, instances[2])
    assert again["id"] == master["id"] and again["subject"] == "Weekly sync"


async def test_room_answers_tentative_then_accepts(graph: GraphClient) -> None:
    created = await graph.events.create(
        ORGANIZER, event_body("Approval needed", tomorrow_at(17)), idempotency_key="ap-1"
    )
    room_copy = (await graph.events.find_by_ical_uid(ROOM, created["iCalUId"]))[0]

    async def room_status() -> str:
        event = await graph.events.get(ORGANIZER, created["id"])
        by_address = {a["emailAddress"]["address"].lower(): a for a in event["attendees"]}
        return str(by_address[ROOM]["status"]["response"])

    await graph.events.tentatively_accept(ROOM, room_copy["id"], send_response=True)
    assert await room_status() == "tentativelyAccepted"
    await graph.events.accept(ROOM, room_copy["id"], send_response=True)
    assert await room_status() == "accepted"


async def test_prefer_headers_are_applied(graph: GraphClient) -> None:
    created = await graph.events.create(
        ORGANIZER, event_body("Prefs", tomorrow_at(7), room=None), idempotency_key="pf-1"
    )
    response = await graph.http.request(
        "GET", f"/users/{ORGANIZER}/events/{created['id']}", mailbox=ORGANIZER
    )
    assert response is not None
    applied = response.headers.get("Preference-Applied", "")
    assert 'outlook.timezone="UTC"' in applied
    assert response.json()["start"]["timeZone"] == "UTC"
    # Prefer: IdType="ImmutableId" (issue 3, client item 2): the simulator answers ids in the
    # immutable format (AAkALg...) only for that preference, the default REST format (AAMkAG...)
    # otherwise (docs/graph-simulator.md; outlook-immutable-id.md: the two formats differ).
    assert 'IdType="ImmutableId"' in applied
    for event_id in (created["id"], response.json()["id"]):
        assert event_id.startswith("AAkALg"), event_id


async def test_links_to_other_hosts_are_refused(graph: GraphClient) -> None:
    with pytest.raises(GraphProtocolError, match="outside"):
        await graph.http.get_json(
            "https://attacker.example/v1.0/users/x/calendarView/delta?$deltatoken=abc",
            mailbox=ROOM,
        )


async def test_update_whose_answer_was_lost_is_not_reported_as_a_conflict(
    sim: GraphSimulator, ca_bundle: Path
) -> None:
    async with GraphClient(config_for(sim, ca_bundle, read_timeout=0.3)) as graph:
        created = await graph.events.create(
            ORGANIZER, event_body("Budget", tomorrow_at(12), room=None), idempotency_key="bu-1"
        )
        # The PATCH is applied after the client gave up; the retry (after a 503) then meets the
        # new etag and gets 412, although the change it carries is already there.
        sim.control.inject_fault(kind="slow", delay_s=0.5, count=1, method="PATCH")
        sim.control.inject_fault(
            kind="status", status=503, retry_after="0.4", count=1, method="PATCH"
        )
        moved = tomorrow_at(13)
        changes = {
            "subject": "Budget (moved)",
            "start": {"dateTime": moved.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
            "end": {
                "dateTime": (moved + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%S"),
                "timeZone": "UTC",
            },
        }
        refused = metric("roomd_graph_requests_total", status="412")
        result = await graph.events.update(
            ORGANIZER, created["id"], changes, etag=created["@odata.etag"]
        )
    assert metric("roomd_graph_requests_total", status="412") == refused + 1
    assert result["subject"] == "Budget (moved)"
    assert result["start"]["dateTime"].startswith(moved.strftime("%Y-%m-%dT%H:%M:%S"))


async def test_update_after_someone_else_changed_it_is_a_conflict(graph: GraphClient) -> None:
    created = await graph.events.create(
        ORGANIZER, event_body("Roadmap", tomorrow_at(12), room=None), idempotency_key="rm-1"
    )
    await graph.events.update(ORGANIZER, created["id"], {"subject": "Roadmap v2"}, etag=None)
    with pytest.raises(PreconditionFailed):
        await graph.events.update(
            ORGANIZER, created["id"], {"subject": "Roadmap v3"}, etag=created["@odata.etag"]
        )


async def test_a_mixed_case_organizer_address_is_the_same_mailbox(graph: GraphClient) -> None:
    """Organizer addresses come from Graph and Hybrid as people typed them."""
    found = await graph.events.find_by_ical_uid("AdeleV@Contoso.com", "no-such-uid")
    assert found == []  # not a KeyError from the per-mailbox limiter
