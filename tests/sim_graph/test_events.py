"""Events CRUD (issue 3 items 2, 6; graph-behaviour.md 2.2-2.5, 7.3, 7.4, 7.6)."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import quote

from .conftest import ADELE, ROOM, World, fixture, graph_time, same_shape, tomorrow_at

PROP_ID = "String {4f8d1f5e-6a0b-4d7c-9b7e-2c1d3a5e7f90} Name roomdBookingId"


async def test_create_returns_201_with_the_documented_event_shape(world: World) -> None:
    """user-post-events.md Example 1: 201 with the full event (event-create-response.json)."""
    created = await world.book(
        transactionId="tx-1", room=None, location={"displayName": "Harry's Bar"}
    )
    sample = fixture("event-create-response.json")
    assert not same_shape(created, sample)
    assert created["responseStatus"]["response"] == "organizer"
    assert created["isOrganizer"] is True
    assert created["transactionId"] == "tx-1"


async def test_times_have_seven_fractional_digits_and_follow_prefer_timezone(world: World) -> None:
    """event-get.md: UTC unless Prefer: outlook.timezone; Preference-Applied echoes it."""
    created = await world.book(start=tomorrow_at(9))
    assert created["start"]["timeZone"] == "UTC"
    assert len(created["start"]["dateTime"].split(".")[1]) == 7
    r = await world.graph.get(
        f"/users/{ADELE}/events/{created['id']}",
        headers={"Prefer": 'outlook.timezone="Pacific Standard Time"'},
    )
    assert r.headers["Preference-Applied"] == 'outlook.timezone="Pacific Standard Time"'
    local = r.json()["start"]
    assert local["timeZone"] == "Pacific Standard Time"
    assert local["dateTime"] != created["start"]["dateTime"]


async def test_start_in_a_windows_zone_is_stored_as_that_instant(world: World) -> None:
    start = tomorrow_at(17)
    body = world.meeting(start, room=None)
    body["start"] = {"dateTime": "2030-01-15T09:00:00", "timeZone": "Eastern Standard Time"}
    body["end"] = {"dateTime": "2030-01-15T10:00:00", "timeZone": "Eastern Standard Time"}
    r = await world.graph.post(f"/users/{ADELE}/events", json=body)
    assert r.status_code == 201
    assert r.json()["start"]["dateTime"] == "2030-01-15T14:00:00.0000000"
    assert r.json()["originalStartTimeZone"] == "Eastern Standard Time"


async def test_repeated_transaction_id_returns_the_same_event(world: World) -> None:
    """event.md transactionId: the server avoids redundant POSTs on client retries (2.3)."""
    body = world.meeting(tomorrow_at(9), transactionId="3f1c2a9e-0000-4000-8000-000000000001")
    first = await world.graph.post(f"/users/{ADELE}/events", json=body)
    again = await world.graph.post(f"/users/{ADELE}/events", json=body)
    assert first.json()["id"] == again.json()["id"]
    assert len(await world.events(ADELE)) == 1
    world.sim.control.run_rba()
    assert len(await world.events(ROOM)) == 1


async def test_transaction_id_cannot_change(world: World) -> None:
    """graph-behaviour.md 2.5, citing event-update.md: ``transactionId`` cannot be
    changed after create (400)."""
    created = await world.book(transactionId="tx-a", room=None)
    r = await world.graph.patch(
        f"/users/{ADELE}/events/{created['id']}", json={"transactionId": "tx-b"}
    )
    assert r.status_code == 400


async def test_patch_with_stale_if_match_is_412(world: World) -> None:
    """concepts/errors.md: 412 Precondition Failed for a failed If-Match."""
    created = await world.book(room=None)
    url = f"/users/{ADELE}/events/{created['id']}"
    ok = await world.graph.patch(
        url, json={"subject": "v2"}, headers={"If-Match": created["@odata.etag"]}
    )
    assert ok.status_code == 200
    assert ok.json()["subject"] == "v2"
    assert ok.json()["changeKey"] != created["changeKey"]
    stale = await world.graph.patch(
        url, json={"subject": "v3"}, headers={"If-Match": created["@odata.etag"]}
    )
    assert stale.status_code == 412
    assert (await world.get(ADELE, created["id"])).json()["subject"] == "v2"


async def test_extended_properties_are_hidden_unless_expanded_and_filterable(world: World) -> None:
    """singlevaluelegacyextendedproperty-post/-get.md: stored, not in the create response,
    returned with $expand, findable with $filter=singleValueExtendedProperties/Any(...)."""
    body = fixture("synthesized/organizer-event-with-room-request.json")
    body["start"]["dateTime"] = tomorrow_at(9).strftime("%Y-%m-%dT%H:%M:%S")
    body["end"]["dateTime"] = tomorrow_at(10).strftime("%Y-%m-%dT%H:%M:%S")
    body["attendees"][0]["emailAddress"]["address"] = ROOM
    r = await world.graph.post(f"/users/{ADELE}/events", json=body)
    created = r.json()
    assert "singleValueExtendedProperties" not in created
    plain = (await world.get(ADELE, created["id"])).json()
    assert "singleValueExtendedProperties" not in plain
    expanded = (
        await world.get(
            ADELE,
            created["id"],
            **{"$expand": f"singleValueExtendedProperties($filter=id eq '{PROP_ID}')"},
        )
    ).json()
    assert expanded["singleValueExtendedProperties"] == [{"id": PROP_ID, "value": "booking-000123"}]
    flt = (
        f"singleValueExtendedProperties/Any(ep: ep/id eq '{PROP_ID}' and ep/value eq "
        "'BOOKING-000123')"
    )
    found = await world.events(ADELE, **{"$filter": flt})
    assert [e["id"] for e in found] == [created["id"]]
    wrong_case_name = flt.replace("roomdBookingId", "roomdbookingid")
    assert await world.events(ADELE, **{"$filter": wrong_case_name}) == []


async def test_filter_by_icaluid_finds_each_mailboxs_copy(world: World) -> None:
    """graph-behaviour.md 2.2: iCalUId joins the copies; ids differ per mailbox."""
    created = await world.book()
    flt = {"$filter": f"iCalUId eq '{created['iCalUId']}'"}
    org = await world.events(ADELE, **flt)
    room = await world.events(ROOM, **flt)
    assert len(org) == len(room) == 1
    assert org[0]["id"] != room[0]["id"]


async def test_filter_on_organizer_is_not_supported(world: World) -> None:
    """graph-behaviour.md 2.2 "Filtering" [OBS lab notes]: ``$filter`` on
    ``organizer/emailAddress/address`` is 501 "not a supported filter expression"."""
    r = await world.graph.get(
        f"/users/{ADELE}/events",
        params={"$filter": "organizer/emailAddress/address eq 'adelev@contoso.com'"},
    )
    assert r.status_code == 501


async def test_unknown_property_and_bad_times_are_refused_with_clear_errors(world: World) -> None:
    body = world.meeting(tomorrow_at(9), room=None, color="blue")
    r = await world.graph.post(f"/users/{ADELE}/events", json=body)
    assert r.status_code == 400
    assert "'color'" in r.json()["error"]["message"]
    body = world.meeting(tomorrow_at(9), tomorrow_at(8), room=None)
    r = await world.graph.post(f"/users/{ADELE}/events", json=body)
    assert r.status_code == 400
    body = world.meeting(tomorrow_at(9), room=None)
    body["start"]["timeZone"] = "Mars/Olympus"
    r = await world.graph.post(f"/users/{ADELE}/events", json=body)
    assert r.status_code == 400
    assert "Mars/Olympus" in r.json()["error"]["message"]


async def test_delete_is_204_then_404(world: World) -> None:
    """event-delete.md: 204; afterwards ErrorItemNotFound."""
    created = await world.book(room=None)
    r = await world.graph.delete(f"/users/{ADELE}/events/{created['id']}")
    assert r.status_code == 204
    gone = await world.get(ADELE, created["id"])
    assert gone.status_code == 404
    assert gone.json()["error"]["code"] == "ErrorItemNotFound"


async def test_unknown_user_and_me_with_app_token(world: World) -> None:
    r = await world.graph.get("/users/nobody@contoso.com/events")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "ErrorInvalidUser"
    me = await world.graph.get("/me/events")
    assert me.status_code == 400


async def test_list_paging_with_top_and_next_link(world: World) -> None:
    for i in range(5):
        await world.book(start=tomorrow_at(8 + i), room=None, subject=f"m{i}")
    r = await world.graph.get(f"/users/{ADELE}/events", params={"$top": "2"})
    seen = []
    url: str | None = str(r.url)
    while url:
        body = (await world.graph.get(url)).json()
        seen += [e["subject"] for e in body["value"]]
        url = body.get("@odata.nextLink")
    assert sorted(seen) == [f"m{i}" for i in range(5)]


async def test_select_returns_only_named_properties(world: World) -> None:
    created = await world.book(room=None)
    r = await world.get(ADELE, created["id"], **{"$select": "subject,start"})
    assert set(r.json()) - {"@odata.context"} == {"@odata.etag", "id", "subject", "start"}
    bad = await world.get(ADELE, created["id"], **{"$select": "nonsense"})
    assert bad.status_code == 400


async def test_event_ids_are_url_safe(world: World) -> None:
    created = await world.book(room=None)
    assert quote(created["id"], safe="=") == created["id"]
    assert graph_time(created["end"]) - graph_time(created["start"]) == timedelta(hours=1)


async def test_ids_without_immutable_id_preference_are_in_the_rest_format(world: World) -> None:
    """outlook-immutable-id.md: the default and ImmutableId formats differ; both address the
    same item, and Prefer: IdType="ImmutableId" is echoed in Preference-Applied."""
    created = await world.book(room=None)
    rest = await world.graph.get(f"/users/{ADELE}/events/{created['id']}", headers={"Prefer": ""})
    rest_id = rest.json()["id"]
    assert rest_id != created["id"]
    same = await world.graph.get(f"/users/{ADELE}/events/{rest_id}")
    assert same.json()["id"] == created["id"]
    assert 'IdType="ImmutableId"' in same.headers["Preference-Applied"]


async def test_all_day_events_need_midnight_boundaries(world: World) -> None:
    """event.md: with isAllDay true, start and end must be midnight in the same time zone."""
    day = tomorrow_at(0)
    ok = world.meeting(day, day + timedelta(days=1), room=None, isAllDay=True)
    assert (await world.graph.post(f"/users/{ADELE}/events", json=ok)).status_code == 201
    bad = world.meeting(day + timedelta(hours=9), day + timedelta(days=1), room=None, isAllDay=True)
    r = await world.graph.post(f"/users/{ADELE}/events", json=bad)
    assert r.status_code == 400
    assert "all-day" in r.json()["error"]["message"]


async def test_every_documented_event_request_is_accepted(world: World) -> None:
    """Microsoft's own request samples must succeed as sent: event-create-request.json
    (user-post-events.md Example 1), event-create-with-extended-property-request.json
    (singlevaluelegacyextendedproperty-post-singlevalueextendedproperties.md, which writes
    ``"type": "Required"``), event-recurring-create-request.json (user-post-events.md Example 3)
    and both patternedrecurrence-*.json (outlook-schedule-recurring-events.md) as an event's
    recurrence. Graph reads enum values case-insensitively (a Microsoft maintainer in
    microsoftgraph/msgraph-sdk-android PR #68: "Graph is case-insensitive for enums"); answers
    use the canonical casing."""
    for name in (
        "event-create-request.json",
        "event-create-with-extended-property-request.json",
        "event-recurring-create-request.json",
    ):
        body = fixture(name)
        r = await world.graph.post(f"/users/{ADELE}/events", json=body)
        assert r.status_code == 201, (name, r.text)
        for sent, got in zip(body["attendees"], r.json()["attendees"], strict=True):
            assert got["type"] == sent["type"].lower()
    for name in (
        "patternedrecurrence-weekly-enddate.json",
        "patternedrecurrence-relativemonthly-noend.json",
    ):
        recurrence = fixture(name)["recurrence"]
        start = recurrence["range"]["startDate"]
        body = {
            "subject": name,
            "start": {"dateTime": f"{start}T09:00:00", "timeZone": "Pacific Standard Time"},
            "end": {"dateTime": f"{start}T10:00:00", "timeZone": "Pacific Standard Time"},
            "recurrence": recurrence,
        }
        r = await world.graph.post(f"/users/{ADELE}/events", json=body)
        assert r.status_code == 201, (name, r.text)
        assert r.json()["recurrence"]["pattern"]["type"] == recurrence["pattern"]["type"]


async def test_enum_values_are_read_case_insensitively(world: World) -> None:
    """Graph is case-insensitive for enums (msgraph-sdk-android PR #68, Microsoft maintainer;
    the extended-property sample sends "Required"); output keeps Graph's canonical casing
    (resources/event.md, attendee.md, recurrencepattern.md, recurrencerange.md)."""
    start = tomorrow_at(9)
    body = world.meeting(
        start,
        room=None,
        attendees=(),
        importance="HIGH",
        showAs="WorkingElsewhere",
        sensitivity="Private",
        recurrence={
            "pattern": {
                "type": "Daily",
                "interval": 1,
                "index": "FIRST",
                "firstDayOfWeek": "Monday",
            },
            "range": {
                "type": "NUMBERED",
                "startDate": start.date().isoformat(),
                "numberOfOccurrences": 2,
            },
        },
    )
    body["attendees"] = [{"emailAddress": {"address": ROOM}, "type": "Resource"}]
    r = await world.graph.post(f"/users/{ADELE}/events", json=body)
    assert r.status_code == 201, r.text
    got = r.json()
    assert (got["importance"], got["showAs"], got["sensitivity"]) == (
        "high",
        "workingElsewhere",
        "private",
    )
    assert got["attendees"][0]["type"] == "resource"
    pattern, rng = got["recurrence"]["pattern"], got["recurrence"]["range"]
    assert (pattern["type"], pattern["index"], pattern["firstDayOfWeek"]) == (
        "daily",
        "first",
        "monday",
    )
    assert rng["type"] == "numbered"
    wrong = await world.graph.patch(
        f"/users/{ADELE}/events/{got['id']}", json={"importance": "urgent"}
    )
    assert wrong.status_code == 400
    assert "importance" in wrong.json()["error"]["message"]
