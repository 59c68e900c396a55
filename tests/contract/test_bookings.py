"""Creating, reading, changing and canceling one-off bookings, and the errors a client must see.

Booking shape: OfficeRnD's booking object (tests/fixtures/hybrid/booking.schema.json, read from
the live API): ``_id``, ``resourceId``, ``start``/``end`` ``{"dateTime"}`` in UTC, ``timezone``
(the room's, read-only), ``summary``, ``member``, ``canceled`` (read-only), ``reference``,
``modifiedAt``.
"""

from __future__ import annotations

from .conftest import Api, iso, parse


async def test_created_booking_reads_back_with_the_rooms_time_zone(api: Api) -> None:
    """``POST bookings`` answers 201 with the booking; ``GET bookings/{id}`` returns the same
    times in UTC, the room's ``timezone``, ``canceled: false`` and the ``reference`` roomd set."""
    day = api.day()
    made = await api.book(day.replace(hour=9), day.replace(hour=10), reference="ical-uid-1")
    got = (await api.get(f"/bookings/{made['_id']}")).json()
    assert parse(got["start"]["dateTime"]) == day.replace(hour=9)
    assert parse(got["end"]["dateTime"]) == day.replace(hour=10)
    assert got["resourceId"] == api.room_id
    assert got["member"] == api.member_id
    assert got["reference"] == "ical-uid-1"
    assert got["canceled"] is False
    room = (await api.get(f"/resources/{api.room_id}")).json()
    assert got["timezone"] == room["timezone"]
    assert parse(got["modifiedAt"]) >= parse(got["createdAt"])


async def test_booking_is_found_by_reference(api: Api) -> None:
    """``GET bookings?reference=`` finds the booking roomd created for a meeting, so that a
    create retried after a lost answer can look first and never book twice."""
    day = api.day()
    made = await api.book(day.replace(hour=9), day.replace(hour=10), reference="uid-lookup-7")
    found = (await api.get("/bookings", params={"reference": "uid-lookup-7"})).json()
    assert [b["_id"] for b in found["results"]] == [made["_id"]]
    none = (await api.get("/bookings", params={"reference": "uid-never-used"})).json()
    assert none["results"] == []


async def test_double_booking_a_room_is_409_with_a_clear_message(api: Api) -> None:
    """An overlapping booking in the same room must be refused with 409 and a JSON ``message``;
    the same time in another room, and a booking that starts when the first ends, are fine."""
    day = api.day()
    first = await api.book(day.replace(hour=9), day.replace(hour=10))
    clash = await api.post(
        "/bookings", json=api.booking_body(day.replace(hour=9, minute=30), day.replace(hour=11))
    )
    assert clash.status_code == 409
    assert clash.json()["message"]
    elsewhere = api.booking_body(
        day.replace(hour=9), day.replace(hour=10), resourceId=api.other_room_id
    )
    other_room = await api.post("/bookings", json=elsewhere)
    assert other_room.status_code == 201
    api.remember(other_room.json()["_id"])
    await api.book(day.replace(hour=10), day.replace(hour=11))
    assert (await api.get(f"/bookings/{first['_id']}")).json()["canceled"] is False


async def test_end_not_after_start_is_422(api: Api) -> None:
    """``end`` equal to or before ``start`` is a validation error (422) naming the field."""
    day = api.day()
    for end in (day.replace(hour=9), day.replace(hour=8)):
        answer = await api.post("/bookings", json=api.booking_body(day.replace(hour=9), end))
        assert answer.status_code == 422
        assert "end" in answer.json()["message"]


async def test_unknown_room_or_member_is_422(api: Api) -> None:
    """A booking for a room or member that does not exist is refused with 422."""
    day = api.day()
    start, end = day.replace(hour=9), day.replace(hour=10)
    no_room = api.booking_body(start, end, resourceId="000000000000000000000000")
    assert (await api.post("/bookings", json=no_room)).status_code == 422
    no_member = api.booking_body(start, end, member="000000000000000000000000")
    assert (await api.post("/bookings", json=no_member)).status_code == 422


async def test_malformed_json_is_400(api: Api) -> None:
    """A body that is not JSON is a 400 with a JSON ``message``, and creates nothing."""
    answer = await api.post(
        "/bookings", content=b'{"resourceId": ', headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 400
    assert answer.json()["message"]


async def test_time_without_zone_is_refused(api: Api) -> None:
    """``dateTime`` must carry a zone (UTC ``Z``); a naive time is refused (422), not guessed."""
    day = api.day()
    body = api.booking_body(day.replace(hour=9), day.replace(hour=10))
    body["start"] = {"dateTime": iso(day.replace(hour=9)).rstrip("Z")}
    assert (await api.post("/bookings", json=body)).status_code == 422


async def test_unknown_and_server_set_fields_are_refused(api: Api) -> None:
    """A field the booking does not have, or one the server sets (``timezone``, ``tentative``),
    is a 422 naming it: a silently dropped field would hide a client's mistake."""
    day = api.day()
    start, end = day.replace(hour=9), day.replace(hour=10)
    for extra, name in (
        ({"colour": "blue"}, "colour"),
        ({"timezone": "Asia/Tokyo"}, "timezone"),
        ({"tentative": False}, "tentative"),
    ):
        answer = await api.post("/bookings", json=api.booking_body(start, end, **extra))
        assert answer.status_code == 422, extra
        assert name in answer.json()["message"]


async def test_canceled_is_read_only(api: Api) -> None:
    """``canceled`` is set only by ``POST bookings/{id}/cancel``: sending it is an error (422)."""
    day = api.day()
    made = await api.book(day.replace(hour=9), day.replace(hour=10))
    answer = await api.patch(f"/bookings/{made['_id']}", json={"canceled": True})
    assert answer.status_code == 422
    assert (await api.get(f"/bookings/{made['_id']}")).json()["canceled"] is False


async def test_patch_moves_a_booking_and_advances_modified_at(api: Api) -> None:
    """``PATCH bookings/{id}`` changes only the fields sent; ``modifiedAt`` moves forward."""
    day = api.day()
    made = await api.book(day.replace(hour=9), day.replace(hour=10), summary="Planning")
    answer = await api.patch(
        f"/bookings/{made['_id']}",
        json={
            "start": {"dateTime": iso(day.replace(hour=13))},
            "end": {"dateTime": iso(day.replace(hour=14))},
        },
    )
    assert answer.status_code == 200
    moved = answer.json()
    assert parse(moved["start"]["dateTime"]) == day.replace(hour=13)
    assert moved["summary"] == "Planning"
    assert parse(moved["modifiedAt"]) > parse(made["modifiedAt"])
    # the old slot is free again
    await api.book(day.replace(hour=9), day.replace(hour=10))


async def test_patch_into_another_booking_is_409(api: Api) -> None:
    """Moving a booking onto another one in the same room is refused (409) and changes nothing."""
    day = api.day()
    await api.book(day.replace(hour=9), day.replace(hour=10))
    second = await api.book(day.replace(hour=11), day.replace(hour=12))
    answer = await api.patch(
        f"/bookings/{second['_id']}",
        json={"start": {"dateTime": iso(day.replace(hour=9, minute=30))}},
    )
    assert answer.status_code == 409
    again = (await api.get(f"/bookings/{second['_id']}")).json()
    assert parse(again["start"]["dateTime"]) == day.replace(hour=11)


async def test_cancel_keeps_the_booking_marked_canceled_and_frees_the_room(api: Api) -> None:
    """``POST bookings/{id}/cancel`` answers with ``canceled: true``; the booking can still be
    read (never deleted), a second cancel succeeds without change, and the slot is free."""
    day = api.day()
    made = await api.book(day.replace(hour=9), day.replace(hour=10))
    answer = await api.post(f"/bookings/{made['_id']}/cancel")
    assert answer.status_code == 200
    assert answer.json()["canceled"] is True
    again = await api.post(f"/bookings/{made['_id']}/cancel")
    assert again.status_code == 200
    assert again.json()["modifiedAt"] == answer.json()["modifiedAt"]
    assert (await api.get(f"/bookings/{made['_id']}")).json()["canceled"] is True
    await api.book(day.replace(hour=9), day.replace(hour=10))


async def test_cancel_through_the_api_is_not_a_no_show(api: Api) -> None:
    """A cancellation made by a person (through the API) must not carry the no-show reason:
    roomd handles the two differently (no-show releases only the room's copy)."""
    day = api.day()
    made = await api.book(day.replace(hour=9), day.replace(hour=10))
    canceled = (await api.post(f"/bookings/{made['_id']}/cancel")).json()
    assert canceled.get("cancelReason") != "no_show"


async def test_canceled_booking_cannot_be_changed(api: Api) -> None:
    """A canceled booking is final: a PATCH is refused (409)."""
    day = api.day()
    made = await api.book(day.replace(hour=9), day.replace(hour=10))
    await api.post(f"/bookings/{made['_id']}/cancel")
    answer = await api.patch(f"/bookings/{made['_id']}", json={"summary": "late edit"})
    assert answer.status_code == 409


async def test_unknown_booking_is_404_for_get_patch_and_cancel(api: Api) -> None:
    """Reading, changing or canceling a booking id that does not exist is a 404."""
    ghost = "/bookings/000000000000000000000000"
    assert (await api.get(ghost)).status_code == 404
    assert (await api.patch(ghost, json={"summary": "x"})).status_code == 404
    assert (await api.post(f"{ghost}/cancel")).status_code == 404


async def test_booking_times_round_trip_to_the_millisecond(api: Api) -> None:
    """Times come back as sent, in UTC, to the millisecond (an offset such as ``+01:00`` is
    converted), so roomd's fingerprints of the two sides compare equal."""
    day = api.day()
    body = api.booking_body(day.replace(hour=9), day.replace(hour=10))
    body["start"] = {"dateTime": iso(day.replace(hour=9)).replace("Z", ".250Z")}
    body["end"] = {"dateTime": iso(day.replace(hour=11)).replace("Z", "+01:00")}
    answer = await api.post("/bookings", json=body)
    assert answer.status_code == 201
    api.remember(answer.json()["_id"])
    got = (await api.get(f"/bookings/{answer.json()['_id']}")).json()
    assert parse(got["start"]["dateTime"]) == day.replace(hour=9, microsecond=250_000)
    assert parse(got["end"]["dateTime"]) == day.replace(hour=10)
    assert got["end"]["dateTime"].endswith("Z")
