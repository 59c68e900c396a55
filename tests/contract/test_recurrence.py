"""Recurring bookings: one series with an RFC 5545 rule, its exdates and its exception children.

A series is ``start``/``end`` of the first occurrence plus ``recurrence.rrule`` (RFC 5545,
evaluated in the room's time zone so 09:00 stays 09:00 across DST) and ``recurrence.exdates``
(UTC starts of removed occurrences). An exception is a booking of its own with ``parent`` (the
series id) and ``originalStart`` (the UTC start of the occurrence it replaces). roomd relies on
all three to keep an Outlook series a series (design.md, invariant 6).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from .conftest import Api, iso, parse

HOUR = timedelta(hours=1)


async def room_zone(api: Api) -> ZoneInfo:
    room = (await api.get(f"/resources/{api.room_id}")).json()
    return ZoneInfo(room["timezone"])


def weekly(first: datetime, zone: ZoneInfo, count: int) -> list[datetime]:
    """UTC starts of a weekly series at the same local wall-clock time as ``first``."""
    local = first.astimezone(zone)
    starts = []
    for week in range(count):
        wall = (local.replace(tzinfo=None) + timedelta(weeks=week)).replace(tzinfo=zone)
        starts.append(wall.astimezone(UTC))
    return starts


async def series(api: Api, first: datetime, rule: str, **extra: Any) -> dict[str, Any]:
    recurrence = {"rrule": rule, "exdates": extra.pop("exdates", [])}
    return await api.book(first, first + HOUR, recurrence=recurrence, **extra)


async def clash(api: Api, start: datetime, end: datetime) -> int:
    answer = await api.post("/bookings", json=api.booking_body(start, end))
    if answer.status_code == 201:
        api.remember(answer.json()["_id"])
    return answer.status_code


async def test_series_reads_back_with_its_rule_and_exdates(api: Api) -> None:
    """A series is one booking: ``recurrence.rrule`` and ``recurrence.exdates`` read back."""
    zone = await room_zone(api)
    starts = weekly(api.day().replace(hour=9), zone, 4)
    made = await series(api, starts[0], "FREQ=WEEKLY;COUNT=4", exdates=[iso(starts[2])])
    got = (await api.get(f"/bookings/{made['_id']}")).json()
    assert "FREQ=WEEKLY" in got["recurrence"]["rrule"]
    assert [parse(d) for d in got["recurrence"]["exdates"]] == [starts[2]]
    assert parse(got["start"]["dateTime"]) == starts[0]


async def test_every_occurrence_of_a_series_holds_the_room(api: Api) -> None:
    """A one-off overlapping any occurrence of a series in the same room is a double booking
    (409); the same time on a day between occurrences is free."""
    zone = await room_zone(api)
    starts = weekly(api.day().replace(hour=9), zone, 4)
    await series(api, starts[0], "FREQ=WEEKLY;COUNT=4")
    assert await clash(api, starts[2] + timedelta(minutes=30), starts[2] + 2 * HOUR) == 409
    assert await clash(api, starts[3], starts[3] + HOUR) == 409
    assert (
        await clash(api, starts[1] + timedelta(days=1), starts[1] + timedelta(days=1) + HOUR) == 201
    )
    assert (
        await clash(api, starts[3] + timedelta(weeks=1), starts[3] + timedelta(weeks=1) + HOUR)
        == 201
    )


async def test_a_new_series_over_an_existing_booking_is_409(api: Api) -> None:
    """Creating a series whose third occurrence overlaps an existing one-off is refused."""
    zone = await room_zone(api)
    starts = weekly(api.day().replace(hour=9), zone, 4)
    await api.book(starts[2], starts[2] + HOUR)
    body = api.booking_body(
        starts[0], starts[0] + HOUR, recurrence={"rrule": "FREQ=WEEKLY;COUNT=4", "exdates": []}
    )
    assert (await api.post("/bookings", json=body)).status_code == 409


async def test_exdates_free_their_occurrence(api: Api) -> None:
    """An occurrence listed in ``exdates`` no longer holds the room, at creation or when added
    later by ``PATCH``; the other occurrences still do."""
    zone = await room_zone(api)
    starts = weekly(api.day().replace(hour=9), zone, 4)
    made = await series(api, starts[0], "FREQ=WEEKLY;COUNT=4", exdates=[iso(starts[1])])
    assert await clash(api, starts[1], starts[1] + HOUR) == 201
    patched = await api.patch(
        f"/bookings/{made['_id']}",
        json={
            "recurrence": {
                "rrule": "FREQ=WEEKLY;COUNT=4",
                "exdates": [iso(starts[1]), iso(starts[3])],
            }
        },
    )
    assert patched.status_code == 200
    assert await clash(api, starts[3], starts[3] + HOUR) == 201
    assert await clash(api, starts[2], starts[2] + HOUR) == 409


async def test_exception_child_moves_one_occurrence(api: Api) -> None:
    """A booking with ``parent`` and ``originalStart`` replaces that one occurrence: it reads
    back with both fields, its new time holds the room and the original slot is free."""
    zone = await room_zone(api)
    starts = weekly(api.day().replace(hour=9), zone, 4)
    parent = await series(api, starts[0], "FREQ=WEEKLY;COUNT=4")
    moved_to = starts[1] + 5 * HOUR
    child = await api.book(
        moved_to, moved_to + HOUR, parent=parent["_id"], originalStart=iso(starts[1])
    )
    got = (await api.get(f"/bookings/{child['_id']}")).json()
    assert got["parent"] == parent["_id"]
    assert parse(got["originalStart"]) == starts[1]
    assert await clash(api, starts[1], starts[1] + HOUR) == 201
    assert await clash(api, moved_to, moved_to + HOUR) == 409
    children = (await api.get("/bookings", params={"parent": parent["_id"]})).json()
    assert [b["_id"] for b in children["results"]] == [child["_id"]]


async def test_canceled_exception_cancels_one_occurrence_only(api: Api) -> None:
    """Canceling an exception child frees that occurrence; the series and its other
    occurrences stay booked."""
    zone = await room_zone(api)
    starts = weekly(api.day().replace(hour=9), zone, 3)
    parent = await series(api, starts[0], "FREQ=WEEKLY;COUNT=3")
    child = await api.book(
        starts[1], starts[1] + HOUR, parent=parent["_id"], originalStart=iso(starts[1])
    )
    assert (await api.post(f"/bookings/{child['_id']}/cancel")).status_code == 200
    assert await clash(api, starts[1], starts[1] + HOUR) == 201
    assert await clash(api, starts[2], starts[2] + HOUR) == 409
    assert (await api.get(f"/bookings/{parent['_id']}")).json()["canceled"] is False


async def test_exception_must_name_a_real_occurrence_once(api: Api) -> None:
    """``originalStart`` that is not an occurrence of the series is a 422; a second exception
    for the same occurrence is a 409; a ``parent`` that is not a series is a 422."""
    zone = await room_zone(api)
    starts = weekly(api.day().replace(hour=9), zone, 3)
    parent = await series(api, starts[0], "FREQ=WEEKLY;COUNT=3")
    off = starts[1] + timedelta(hours=2)
    wrong = api.booking_body(off, off + HOUR, parent=parent["_id"], originalStart=iso(off))
    assert (await api.post("/bookings", json=wrong)).status_code == 422
    await api.book(
        starts[1] + 3 * HOUR,
        starts[1] + 4 * HOUR,
        parent=parent["_id"],
        originalStart=iso(starts[1]),
    )
    twice = api.booking_body(
        starts[1] + 6 * HOUR,
        starts[1] + 7 * HOUR,
        parent=parent["_id"],
        originalStart=iso(starts[1]),
    )
    assert (await api.post("/bookings", json=twice)).status_code == 409
    one_off = await api.book(starts[0] + timedelta(days=1), starts[0] + timedelta(days=1) + HOUR)
    orphan = api.booking_body(
        starts[2] + 8 * HOUR,
        starts[2] + 9 * HOUR,
        parent=one_off["_id"],
        originalStart=one_off["start"]["dateTime"],
    )
    assert (await api.post("/bookings", json=orphan)).status_code == 422


async def test_invalid_rule_is_422_naming_the_field(api: Api) -> None:
    """A recurrence rule that is not RFC 5545 is refused with 422 naming ``recurrence.rrule``."""
    day = api.day()
    for rule in ("EVERY MONDAY", "FREQ=SOMETIMES", "FREQ=WEEKLY;UNTIL=notadate"):
        body = api.booking_body(
            day.replace(hour=9), day.replace(hour=10), recurrence={"rrule": rule, "exdates": []}
        )
        answer = await api.post("/bookings", json=body)
        assert answer.status_code == 422, rule
        assert "recurrence" in answer.json()["message"]


async def test_series_must_start_on_its_first_occurrence(api: Api) -> None:
    """A series whose ``start`` is not produced by its own rule (a Tuesday start for a Mondays
    rule) is refused with 422: RFC 5545 leaves such a series undefined."""
    zone = await room_zone(api)
    start = api.day().replace(hour=9)
    weekday = start.astimezone(zone).weekday()
    other_day = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"][(weekday + 1) % 7]
    body = api.booking_body(
        start, start + HOUR, recurrence={"rrule": f"FREQ=WEEKLY;BYDAY={other_day};COUNT=3"}
    )
    answer = await api.post("/bookings", json=body)
    assert answer.status_code == 422
    assert "start" in answer.json()["message"]


async def test_series_keeps_local_time_across_daylight_saving(api: Api) -> None:
    """A weekly 09:00 series in a room whose zone changes to summer time keeps 09:00 local, so
    its UTC start moves by an hour after the change (RFC 5545 DTSTART with a time zone)."""
    zone = await room_zone(api)
    if zone.utcoffset(datetime(2031, 3, 1)) == zone.utcoffset(datetime(2031, 4, 15)):
        return  # a room without daylight saving cannot show this
    first = datetime(2031, 3, 10, 9, tzinfo=zone).astimezone(UTC)
    starts = weekly(first, zone, 6)
    assert starts[5] - starts[0] != timedelta(weeks=5)  # the UTC hour really moves
    await series(api, first, "FREQ=WEEKLY;COUNT=6")
    assert await clash(api, starts[5], starts[5] + HOUR) == 409
    same_utc_hour = starts[0] + timedelta(weeks=5)  # where a UTC-only expansion would put it
    assert await clash(api, same_utc_hour, same_utc_hour + HOUR) == 201
