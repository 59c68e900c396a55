"""Parsing Hybrid payloads: what roomd reads from OfficeRnD-shaped bookings, and clear errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from roomd.hybrid.errors import BookingParseError
from roomd.hybrid.model import booking_payload, format_datetime, parse_booking, parse_datetime

BOOKING = {
    "_id": "65a000000000000000000001",
    "resourceId": "64f0a1b2c3d4e5f6a7b8c901",
    "start": {"dateTime": "2026-11-26T09:00:00.000Z"},
    "end": {"dateTime": "2026-11-26T10:00:00.000Z"},
    "timezone": "Europe/London",
    "summary": "Planning",
    "member": "64f0a1b2c3d4e5f6a7b8d001",
    "members": ["64f0a1b2c3d4e5f6a7b8d002"],
    "visitors": [],
    "recurrence": {
        "rrule": "FREQ=WEEKLY;BYDAY=TH;UNTIL=20261231T000000Z",
        "exdates": ["2026-12-03T09:00:00.000Z"],
    },
    "canceled": False,
    "tentative": True,
    "reference": "040000008200E00074C5B7101A82E008",
    "source": "roomd",
    "createdAt": "2026-11-25T08:00:00.000Z",
    "modifiedAt": "2026-11-25T08:00:00.123Z",
    "humanizedRecurrence": "Weekly on Thursday",
}


def test_a_booking_in_officernd_shape_is_read_with_utc_times() -> None:
    b = parse_booking(BOOKING)
    assert b.id == "65a000000000000000000001"
    assert b.start == datetime(2026, 11, 26, 9, tzinfo=UTC)
    assert b.end - b.start == timedelta(hours=1)
    assert b.tentative and not b.canceled
    assert b.recurrence is not None and b.recurrence.rrule.startswith("FREQ=WEEKLY")
    assert b.recurrence.exdates == (datetime(2026, 12, 3, 9, tzinfo=UTC),)
    assert b.modified_at == datetime(2026, 11, 25, 8, 0, 0, 123000, tzinfo=UTC)
    assert b.raw["humanizedRecurrence"] == "Weekly on Thursday"  # nothing the server sent is lost


def test_offsets_are_converted_to_utc() -> None:
    b = parse_booking({**BOOKING, "start": {"dateTime": "2026-11-26T10:00:00+01:00"}})
    assert b.start == datetime(2026, 11, 26, 9, tzinfo=UTC)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"start": {"dateTime": "2026-13-40T09:00:00Z"}}, "start.dateTime"),
        ({"end": None}, ".end"),
        ({"canceled": "yes"}, ".canceled"),
        ({"members": ["a", 7]}, ".members[1]"),
        ({"resourceId": ""}, ".resourceId"),
        ({"recurrence": {"rrule": "FREQ=DAILY", "exdates": ["soon"]}}, "recurrence.exdates[0]"),
    ],
)
def test_a_bad_field_is_named_in_the_error(change: dict[str, object], named: str) -> None:
    with pytest.raises(BookingParseError) as info:
        parse_booking({**BOOKING, **change})
    assert named in str(info.value)
    assert "65a000000000000000000001" in str(info.value)  # which booking


def test_a_no_show_is_told_apart_from_a_person_cancelling() -> None:
    no_show = parse_booking({**BOOKING, "canceled": True, "cancelReason": "no-show"})
    person = parse_booking({**BOOKING, "canceled": True})
    assert no_show.no_show and not person.no_show


@given(st.datetimes(timezones=st.just(UTC), min_value=datetime(1971, 1, 1)))
def test_times_survive_the_wire_to_the_millisecond(when: datetime) -> None:
    text = format_datetime(when)
    assert text.endswith("Z")
    back = parse_datetime(text, "x")
    assert back == when.replace(microsecond=when.microsecond // 1000 * 1000)


@given(st.integers(min_value=-12 * 60, max_value=14 * 60))
def test_payload_times_are_sent_in_utc_whatever_the_input_zone(offset_min: int) -> None:
    zone = timezone(timedelta(minutes=offset_min))
    start = datetime(2026, 11, 26, 9, tzinfo=UTC).astimezone(zone)
    body = booking_payload(resource_id="r", start=start, end=start + timedelta(hours=1))
    assert body["start"] == {"dateTime": "2026-11-26T09:00:00.000Z"}
    assert body["end"] == {"dateTime": "2026-11-26T10:00:00.000Z"}


def test_payload_refuses_an_end_before_its_start() -> None:
    start = datetime(2026, 11, 26, 9, tzinfo=UTC)
    with pytest.raises(ValueError, match="not after start"):
        booking_payload(resource_id="r", start=start, end=start)
