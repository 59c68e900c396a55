"""Listing bookings: the change feed roomd's safety-net poll reads.

OfficeRnD "Querying data" (developer.officernd.com/docs/building-queries): envelope
``{results, cursorNext, cursorPrev, rangeStart, rangeEnd}``, ``$limit`` default and maximum 50
(larger values are capped), ``$cursorNext`` for the following page. roomd filters with
``modifiedAt[$gte]`` and walks every page.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from .conftest import Api, iso, parse


async def walk(api: Api, params: dict[str, str], *, between: Any = None) -> list[dict[str, Any]]:
    """All results of a listing, page by page; ``between(page_number)`` runs between pages."""
    seen: list[dict[str, Any]] = []
    cursor: str | None = None
    pages = 0
    while True:
        query = dict(params)
        if cursor:
            query["$cursorNext"] = cursor
        answer = await api.get("/bookings", params=query)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        seen.extend(body["results"])
        pages += 1
        cursor = body["cursorNext"]
        if not cursor:
            return seen
        if between is not None:
            await between(pages)
        assert pages < 100


async def book_hours(api: Api, day: datetime, hours: range, **extra: Any) -> list[dict[str, Any]]:
    return [
        await api.book(day + timedelta(hours=h), day + timedelta(hours=h, minutes=30), **extra)
        for h in hours
    ]


async def test_paging_with_a_small_limit_visits_every_booking_once(api: Api) -> None:
    """With ``$limit=2`` a walk over 7 bookings returns 2, 2, 2, 1 and each booking once, and
    ``rangeStart``/``rangeEnd`` count 1-based positions."""
    since = iso(datetime.now().astimezone() - timedelta(minutes=5))
    made = await book_hours(api, api.day(), range(7), reference="paging-small")
    first = (await api.get("/bookings", params={"$limit": "2", "reference": "paging-small"})).json()
    assert len(first["results"]) == 2
    assert (first["rangeStart"], first["rangeEnd"]) == (1, 2)
    assert first["cursorNext"]
    seen = await walk(api, {"$limit": "2", "reference": "paging-small", "modifiedAt[$gte]": since})
    ids = [b["_id"] for b in seen]
    assert sorted(ids) == sorted(b["_id"] for b in made)


async def test_cursor_prev_returns_to_the_previous_page(api: Api) -> None:
    """``$cursorPrev`` from the second page gives back the first page."""
    await book_hours(api, api.day(), range(5), reference="paging-back")
    query = {"$limit": "2", "reference": "paging-back"}
    first = (await api.get("/bookings", params=query)).json()
    second = (
        await api.get("/bookings", params={**query, "$cursorNext": first["cursorNext"]})
    ).json()
    assert second["cursorPrev"]
    back = (
        await api.get("/bookings", params={**query, "$cursorPrev": second["cursorPrev"]})
    ).json()
    assert [b["_id"] for b in back["results"]] == [b["_id"] for b in first["results"]]
    assert not set(b["_id"] for b in second["results"]) & set(b["_id"] for b in first["results"])


async def test_limit_above_50_is_capped_at_50(api: Api) -> None:
    """``$limit`` above the maximum gives at most 50 results per page (OfficeRnD caps it)."""
    await book_hours(api, api.day(), range(24), reference="paging-cap")
    await book_hours(api, api.day(), range(24), reference="paging-cap")
    await book_hours(api, api.day(), range(5), reference="paging-cap")
    page = (await api.get("/bookings", params={"$limit": "500", "reference": "paging-cap"})).json()
    assert len(page["results"]) == 50
    assert page["cursorNext"]
    rest = await api.get(
        "/bookings",
        params={"$limit": "500", "reference": "paging-cap", "$cursorNext": page["cursorNext"]},
    )
    assert len(rest.json()["results"]) == 3


async def test_modified_since_filter_returns_only_later_changes(api: Api) -> None:
    """``modifiedAt[$gte]=T`` returns bookings whose ``modifiedAt`` is at or after T, including
    ones canceled since (a cancellation is a change roomd must see)."""
    day = api.day()
    old, kept, gone = await book_hours(api, day, range(3), reference="since-filter")
    mark = (await api.patch(f"/bookings/{kept['_id']}", json={"summary": "edited"})).json()
    await api.post(f"/bookings/{gone['_id']}/cancel")
    changed = await walk(api, {"reference": "since-filter", "modifiedAt[$gte]": mark["modifiedAt"]})
    by_id = {b["_id"]: b for b in changed}
    assert set(by_id) == {kept["_id"], gone["_id"]}
    assert by_id[gone["_id"]]["canceled"] is True
    assert old["_id"] not in by_id


async def test_modified_at_only_moves_forward(api: Api) -> None:
    """Each write gives the booking a ``modifiedAt`` later than its previous one, so a client
    that stores the newest value it saw (minus an overlap) never misses a change."""
    day = api.day()
    made = await api.book(day.replace(hour=9), day.replace(hour=10))
    stamps = [parse(made["modifiedAt"])]
    for n in range(3):
        answer = await api.patch(f"/bookings/{made['_id']}", json={"summary": f"v{n}"})
        stamps.append(parse(answer.json()["modifiedAt"]))
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)


async def test_a_walk_misses_no_booking_changed_while_paging(api: Api) -> None:
    """Bookings edited between two page requests must not be skipped by the walk: a client
    paging by ``modifiedAt`` sees every booking at least once (possibly twice)."""
    day = api.day()
    made = await book_hours(api, day, range(6), reference="paging-moving")
    since = made[0]["modifiedAt"]

    async def edit(page: int) -> None:
        if page == 1:  # change one already listed and one not yet listed
            for booking in (made[0], made[5]):
                await api.patch(f"/bookings/{booking['_id']}", json={"summary": "moved on"})

    seen = await walk(
        api,
        {"$limit": "2", "reference": "paging-moving", "modifiedAt[$gte]": since},
        between=edit,
    )
    assert {b["_id"] for b in made} <= {b["_id"] for b in seen}
    newest = {b["_id"]: b for b in seen}  # later entries overwrite earlier ones
    assert newest[made[0]["_id"]]["summary"] == "moved on"


async def test_filter_by_room(api: Api) -> None:
    """``resourceId=`` narrows the listing to one room."""
    day = api.day()
    here = await api.book(day.replace(hour=9), day.replace(hour=10), reference="by-room")
    there = await api.book(
        day.replace(hour=9),
        day.replace(hour=10),
        reference="by-room",
        resourceId=api.other_room_id,
    )
    listed = await walk(api, {"reference": "by-room", "resourceId": api.other_room_id})
    assert [b["_id"] for b in listed] == [there["_id"]]
    assert here["_id"] not in {b["_id"] for b in listed}


async def test_time_window_finds_a_series_that_began_before_it(api: Api) -> None:
    """``start[$lt]=<window end>&end[$gt]=<window start>`` lists bookings that touch the window,
    including a series whose first occurrence is long before it (for a series ``end`` is that of
    its last occurrence; an unbounded series always qualifies), so roomd's full sync finds it."""
    day = api.day()
    old_series = await api.book(
        day.replace(hour=9),
        day.replace(hour=10),
        reference="window",
        recurrence={"rrule": "FREQ=WEEKLY", "exdates": []},
    )
    ended = await api.book(
        day.replace(hour=11),
        day.replace(hour=12),
        reference="window",
        recurrence={"rrule": "FREQ=DAILY;COUNT=2", "exdates": []},
    )
    window_start = day + timedelta(days=21)
    inside = await api.book(
        window_start.replace(hour=14), window_start.replace(hour=15), reference="window"
    )
    listed = await walk(
        api,
        {
            "reference": "window",
            "start[$lt]": iso(window_start + timedelta(days=1)),
            "end[$gt]": iso(window_start),
        },
    )
    ids = {b["_id"] for b in listed}
    assert ids == {old_series["_id"], inside["_id"]}
    assert ended["_id"] not in ids


async def test_bad_paging_parameters_are_400(api: Api) -> None:
    """A ``$limit`` that is not a positive number, a cursor the server did not issue, or a
    malformed ``modifiedAt`` bound is a 400 with a message naming the parameter."""
    for params, name in (
        ({"$limit": "ten"}, "$limit"),
        ({"$limit": "0"}, "$limit"),
        ({"$cursorNext": "not-a-cursor!"}, "$cursorNext"),
        ({"modifiedAt[$gte]": "yesterday"}, "modifiedAt"),
    ):
        answer = await api.get("/bookings", params=params)
        assert answer.status_code == 400, params
        assert name in answer.json()["message"]
