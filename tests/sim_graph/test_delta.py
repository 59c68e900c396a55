"""calendarView and calendarView/delta (issue 3 item 5; graph-behaviour.md 1, checklist 7.1-7.2)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx

from .conftest import ADELE, ROOM, World, fixture, same_shape, tomorrow_at

WS = tomorrow_at(0, days=0)
WE = tomorrow_at(0, days=30)


def ids(items: list[dict[str, Any]]) -> set[str]:
    return {i["id"] for i in items if "@removed" not in i}


def removed(items: list[dict[str, Any]]) -> set[str]:
    return {i["id"] for i in items if "@removed" in i}


async def series(world: World, count: int = 3) -> dict[str, Any]:
    start = tomorrow_at(11)
    day = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"][
        (start.weekday() + 1) % 7
    ]
    return await world.book(
        start=start,
        recurrence={
            "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": [day]},
            "range": {
                "type": "numbered",
                "startDate": start.date().isoformat(),
                "numberOfOccurrences": count,
            },
        },
    )


async def test_window_is_required(world: World) -> None:
    """[OBS] contrib #4342: 400 ErrorInvalidParameter without startDateTime/endDateTime."""
    r = await world.graph.get(f"/users/{ROOM}/calendarView/delta")
    assert r.status_code == 400
    expected = fixture("synthesized/error-400-calendarview-missing-window.json")
    assert r.json()["error"]["message"] == expected["error"]["message"]
    assert not same_shape(r.json(), expected)


async def test_the_odata_function_form_delta_parentheses_is_the_same_request(world: World) -> None:
    """Graph takes ``delta()`` as well as ``delta``; msgraph-sdk calls ``calendarView/delta()``."""
    await world.book(start=tomorrow_at(9), room=None)
    url = world.delta_url(ADELE, WS, WE).replace("/delta?", "/delta()?")
    assert "/delta()?" in url
    items, delta_link, _ = await world.delta_round(url)
    assert len(ids(items)) == 1
    assert "$deltatoken=" in delta_link


async def test_pages_follow_maxpagesize_then_a_delta_link(world: World) -> None:
    """delta-query-events.md: nextLink ($skiptoken) pages, last page deltaLink ($deltatoken);
    Prefer: odata.maxpagesize honoured (event-delta.md)."""
    for h in range(5):
        await world.book(start=tomorrow_at(8 + h), room=None)
    url = world.delta_url(ADELE, WS, WE)
    r = await world.graph.get(url, headers={"Prefer": "odata.maxpagesize=2"})
    page1 = r.json()
    assert "odata.maxpagesize=2" in r.headers["Preference-Applied"]
    assert len(page1["value"]) == 2
    assert "$skiptoken=" in page1["@odata.nextLink"]
    assert not same_shape(page1, fixture("calendarview-delta-page1.json"), subset=True)
    items, delta_link, pages = await world.delta_round(url, page_size=2)
    assert pages == 3
    assert len(ids(items)) == 5
    assert "$deltatoken=" in delta_link
    again, _, _ = await world.delta_round(delta_link)
    assert again == []


async def test_occurrences_are_bare_and_no_series_master_by_default(world: World) -> None:
    """[OBS] docs #7632: occurrence items carry only seven properties; no seriesMaster
    (event-delta.md beta comparison table)."""
    master = await series(world)
    items, _, _ = await world.delta_round(world.delta_url(ROOM, WS, WE))
    assert {i["type"] for i in items} == {"occurrence"}
    sample = fixture("synthesized/calendarview-delta-bare-occurrences.json")["value"][0]
    for item in items:
        assert set(item) == set(sample)
        assert not same_shape(item, sample)
    org_items, _, _ = await world.delta_round(world.delta_url(ADELE, WS, WE))
    assert {i["seriesMasterId"] for i in org_items} == {master["id"]}


async def test_series_master_switch(world: World) -> None:
    """graph-behaviour.md 1.4 "No series master" and checklist 7.2 ("no seriesMaster
    (behind a switch)"): user-list-calendarview.md and beta event-delta.md say calendarView
    delta has no masters; one third party (ridafkih/keeper.sh PR #409 [OBS]) saw one, so
    switch ``series_master_in_delta`` adds it beside the occurrences."""
    world.sim.control.set_switches(series_master_in_delta=True)
    await series(world)
    items, _, _ = await world.delta_round(world.delta_url(ROOM, WS, WE))
    assert sorted(i["type"] for i in items) == ["occurrence"] * 3 + ["seriesMaster"]


async def test_deletion_comes_back_as_removed(world: World) -> None:
    """delta-query-overview.md / next-round fixture: {"@odata.type","id","@removed"}."""
    org = await world.book()
    room = await world.only_event(ROOM)
    _, link, _ = await world.delta_round(world.delta_url(ROOM, WS, WE))
    await world.graph.delete(f"/users/{ADELE}/events/{org['id']}")
    world.sim.control.run_rba()
    items, _, _ = await world.delta_round(link)
    assert items == [
        {
            "@odata.type": "#microsoft.graph.event",
            "id": room["id"],
            "@removed": {"reason": "deleted"},
        }
    ]
    sample = fixture("calendarview-delta-next-round-removed.json")
    assert not same_shape(items[0], sample["value"][0])


async def test_event_moved_out_of_the_window_is_removed_too(world: World) -> None:
    """event-delta.md Response: @removed also for events that left the range."""
    org = await world.book(room=None)
    _, link, _ = await world.delta_round(world.delta_url(ADELE, WS, WE))
    far = tomorrow_at(9, days=60)
    await world.graph.patch(
        f"/users/{ADELE}/events/{org['id']}",
        json={
            "start": {"dateTime": far.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
            "end": {
                "dateTime": (far + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S"),
                "timeZone": "UTC",
            },
        },
    )
    items, _, _ = await world.delta_round(link)
    assert removed(items) == {org["id"]}
    assert (await world.get(ADELE, org["id"])).status_code == 200  # not deleted: moved


async def test_change_outside_the_window_is_reported_as_removed(world: World) -> None:
    """[OBS] docs #6599: an event created outside the window arrives as @removed."""
    _, link, _ = await world.delta_round(world.delta_url(ADELE, WS, WE))
    outside = await world.book(start=tomorrow_at(9, days=90), room=None)
    items, _, _ = await world.delta_round(link)
    assert removed(items) == {outside["id"]}


async def test_updates_come_back_with_full_properties(world: World) -> None:
    """graph-behaviour.md 1.6, citing v1.0 event-delta.md ("the same properties
    you'd normally get from a GET /calendarView request") and the calendarview-delta-page2.json
    sample (concepts/delta-query-events.md): an updated single instance comes back whole."""
    org = await world.book()
    _, link, _ = await world.delta_round(world.delta_url(ROOM, WS, WE))
    await world.graph.patch(f"/users/{ADELE}/events/{org['id']}", json={"subject": "Renamed"})
    world.sim.control.run_rba()
    items, _, _ = await world.delta_round(link)
    assert len(items) == 1
    assert items[0]["iCalUId"] == org["iCalUId"]
    assert "subject" in items[0] and "organizer" in items[0]
    assert not same_shape(
        items[0], fixture("calendarview-delta-page2.json")["value"][0], subset=True
    )


async def test_cancelled_occurrence_is_removed_unless_switched_off(world: World) -> None:
    """graph-behaviour.md 1.4 "Deleted occurrences" [INF] (v1.0 event-delta.md: deleted events
    in the range come back as ``@removed``) and checklist 7.2: by default a cancelled occurrence
    is ``@removed`` with the occurrence id; switch ``report_deleted_occurrences`` reproduces the
    unmerged microsoft-graph-docs PR #4501 [OBS] ("No indication is given for a deleted
    occurrence")."""
    master = await series(world)
    before, link, _ = await world.delta_round(world.delta_url(ROOM, WS, WE))
    room_first = min(before, key=lambda i: i["start"]["dateTime"])
    r = await world.graph.get(
        f"/users/{ADELE}/events/{master['id']}/instances",
        params={"startDateTime": WS.isoformat(), "endDateTime": WE.isoformat()},
    )
    first = r.json()["value"][0]
    await world.graph.post(f"/users/{ADELE}/events/{first['id']}/cancel", json={})
    world.sim.control.run_rba()
    items, _, _ = await world.delta_round(link)
    assert removed(items) == {room_first["id"]}
    world.sim.control.set_switches(report_deleted_occurrences=False)
    items, _, _ = await world.delta_round(link)  # the same change, replayed with the switch off
    assert removed(items) == set()  # PR #4501 [OBS]: "No indication is given"


async def test_unsupported_query_options_are_refused(world: World) -> None:
    """graph-behaviour.md 1.1 and checklist 7.1, citing v1.0 event-delta.md: $select, $filter,
    $orderby and $search are not supported on calendarView delta (400); [OBS] docs #2270 /
    contrib #7929: $expand -> 500."""
    base = world.delta_url(ROOM, WS, WE)
    for option in (
        "$select=subject",
        "$filter=subject eq 'x'",
        "$orderby=start/dateTime",
        '$search="planning"',
    ):
        r = await world.graph.get(f"{base}&{option}")
        assert r.status_code == 400, option
        assert r.json()["error"]["code"] == "ErrorInvalidUrlQuery", option
        assert option.split("=")[0] in r.json()["error"]["message"], option
    r = await world.graph.get(f"{base}&$expand=singleValueExtendedProperties")
    assert r.status_code == 500
    assert not same_shape(r.json(), fixture("synthesized/error-500-calendarview-delta-expand.json"))


async def test_expired_token_is_410_sync_state_not_found(world: World) -> None:
    """[OBS] docs #2350: 410 with SyncStateNotFound, on demand (control) or by age."""
    _, link, _ = await world.delta_round(world.delta_url(ROOM, WS, WE))
    world.sim.control.expire_delta_tokens(ROOM)
    r = await world.graph.get(link)
    assert r.status_code == 410
    expected = fixture("synthesized/error-410-syncstatenotfound.json")
    assert r.json()["error"]["code"] == "SyncStateNotFound"
    assert r.json()["error"]["message"].startswith("The sync state generation is not found")
    assert not same_shape(r.json(), expected)
    world.sim.control.set_switches(delta_token_max_age_s=60)
    _, link, _ = await world.delta_round(world.delta_url(ROOM, WS, WE))
    world.sim.control.advance_clock(120)
    world.graph.headers["Authorization"] = f"Bearer {world.sim.control.token()}"
    assert (await world.graph.get(link)).status_code == 410


async def test_old_next_links_go_stale(world: World) -> None:
    """contrib #7975: earlier nextLinks go stale as a round pages forward."""
    for h in range(6):
        await world.book(start=tomorrow_at(8 + h), room=None)
    url = world.delta_url(ADELE, WS, WE)
    first = (await world.graph.get(url, headers={"Prefer": "odata.maxpagesize=1"})).json()
    nxt = first["@odata.nextLink"]
    for _ in range(4):
        nxt = (await world.graph.get(nxt, headers={"Prefer": "odata.maxpagesize=1"})).json()[
            "@odata.nextLink"
        ]
    stale = await world.graph.get(first["@odata.nextLink"])
    assert stale.status_code == 410
    assert "highest=" in stale.json()["error"]["message"]


async def test_window_is_frozen_in_the_token(world: World) -> None:
    """delta-query-events.md: the tokens encode startDateTime/endDateTime; new ones are ignored."""
    _, link, _ = await world.delta_round(world.delta_url(ADELE, WS, WS + timedelta(days=1)))
    later = await world.book(start=tomorrow_at(9, days=5), room=None)
    wider = (
        f"{link}&startDateTime={WS.isoformat()}&endDateTime={(WS + timedelta(days=30)).isoformat()}"
    )
    r = await world.graph.get(httpx.URL(wider))
    assert removed(r.json()["value"]) == {later["id"]}


async def test_empty_pages_duplicates_and_replays(world: World) -> None:
    """delta-query-overview.md: empty pages with nextLink, duplicates, replays are normal."""
    world.sim.control.set_switches(delta_empty_pages=2, delta_duplicates=True, delta_replay=True)
    org = await world.book(room=None)
    items, link, pages = await world.delta_round(world.delta_url(ADELE, WS, WE))
    assert pages >= 3
    assert [i["id"] for i in items] == [org["id"], org["id"]]
    again, _, _ = await world.delta_round(link)
    assert org["id"] in ids(again)


async def test_prefer_values_comma_joined_or_repeated(world: World) -> None:
    """graph-behaviour.md 1.1: several preferences in one header or repeated headers."""
    await world.book(room=None)
    url = world.delta_url(ADELE, WS, WE)
    joined = await world.graph.get(
        url, headers={"Prefer": 'outlook.timezone="Eastern Standard Time", odata.maxpagesize=1'}
    )
    repeated = await world.graph.get(
        url,
        headers=httpx.Headers(
            [
                ("Prefer", 'outlook.timezone="Eastern Standard Time"'),
                ("Prefer", "odata.maxpagesize=1"),
            ]
        ),
    )
    for r in (joined, repeated):
        assert r.json()["value"][0]["start"]["timeZone"] == "Eastern Standard Time"
        assert "odata.maxpagesize=1" in r.headers["Preference-Applied"]


async def test_calendar_view_lists_occurrences_with_full_properties(world: World) -> None:
    """user-list-calendarview.md: occurrences, exceptions and single instances in the window;
    the window's own offset decides (Prefer zone does not)."""
    await series(world)
    await world.book(start=tomorrow_at(8), room=None)
    found = await world.view(ADELE, WS, WE)
    assert sorted(i["type"] for i in found) == ["occurrence"] * 3 + ["singleInstance"]
    assert all("subject" in i for i in found)
    r = await world.graph.get(
        f"/users/{ADELE}/calendarView",
        params={
            "startDateTime": tomorrow_at(7).strftime("%Y-%m-%dT%H:%M:%S") + "-02:00",
            "endDateTime": WE.isoformat(),
        },
        headers={"Prefer": 'outlook.timezone="Tokyo Standard Time"'},
    )
    # 07:00-02:00 is 09:00 UTC: the 08:00 meeting is outside whatever zone answers are in
    assert sorted(i["type"] for i in r.json()["value"]) == ["occurrence"] * 3


async def test_v1_events_delta_is_not_supported(world: World) -> None:
    """[OBS] msgraph-metadata #608: /events/delta is beta-only."""
    r = await world.graph.get(f"/users/{ROOM}/calendar/events/delta")
    assert r.status_code == 400


async def test_exceptions_come_with_full_properties_beside_bare_occurrences(world: World) -> None:
    """graph-behaviour.md 7.2: occurrences bare, exceptions full (beta event-delta.md table)."""
    master = await series(world)
    r = await world.graph.get(
        f"/users/{ADELE}/events/{master['id']}/instances",
        params={"startDateTime": WS.isoformat(), "endDateTime": WE.isoformat()},
    )
    second = r.json()["value"][1]
    await world.graph.patch(f"/users/{ADELE}/events/{second['id']}", json={"subject": "Special"})
    items, _, _ = await world.delta_round(world.delta_url(ADELE, WS, WE))
    exception = next(i for i in items if i["type"] == "exception")
    assert exception["subject"] == "Special"
    assert exception["seriesMasterId"] == master["id"]
    assert sorted(i["type"] for i in items) == ["exception", "occurrence", "occurrence"]


async def test_replaying_an_older_delta_link_returns_every_change_since_it(world: World) -> None:
    """graph-behaviour.md 1.2 ("Replays ... can happen") and 1.7 (tokens bound to a generation;
    the last few generations stay valid) and 1.3 (delta-query-events.md: "These tokens are
    state tokens"): a token carries its own sync state, so a client
    that lost a response (crashed before saving the new deltaLink, or retried after a timeout)
    sees the change again when it replays the older, still-valid link."""
    _, link1, _ = await world.delta_round(world.delta_url(ADELE, WS, WE))
    org = await world.book(room=None)
    first, link2, _ = await world.delta_round(link1)
    assert ids(first) == {org["id"]}
    replay, _, _ = await world.delta_round(link1)  # the response to link1 was lost
    assert ids(replay) == {org["id"]}
    # the newer link, by contrast, has already seen it
    newer, _, _ = await world.delta_round(link2)
    assert newer == []


async def test_token_cache_is_bounded_per_mailbox(world: World) -> None:
    """graph-behaviour.md 1.7 ("Keep a bounded token cache per mailbox ... Return 410 plus the
    synthesized body for evicted or unknown tokens"), citing delta-query-overview.md "Token
    duration": "after the cache capacity is exceeded, the older delta tokens are deleted". A
    long-running simulator must not grow with every round."""
    world.sim.control.set_switches(delta_tokens_per_mailbox=5)
    _, other, _ = await world.delta_round(world.delta_url(ADELE, WS, WE))
    _, first, _ = await world.delta_round(world.delta_url(ROOM, WS, WE))
    link = first
    for _ in range(3):  # three fresh chains on top of the first one's rounds
        _, link, _ = await world.delta_round(world.delta_url(ROOM, WS, WE))
        for _ in range(4):
            _, link, _ = await world.delta_round(link)
    assert world.sim.delta.tokens_held(ROOM) == 5
    evicted = await world.graph.get(first)
    assert evicted.status_code == 410
    assert evicted.json()["error"]["code"] == "SyncStateNotFound"
    assert not same_shape(evicted.json(), fixture("synthesized/error-410-syncstatenotfound.json"))
    assert (await world.graph.get(link)).status_code == 200
    # another mailbox's cache is its own
    assert (await world.graph.get(other)).status_code == 200
