"""Stored times are UTC text whose text order is time order, whatever zone they came in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from roomd.store.times import from_db, to_db

ZONES = st.builds(
    timezone, st.integers(min_value=-23 * 60, max_value=23 * 60).map(lambda m: timedelta(minutes=m))
)
MOMENTS = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=ZONES
)


@given(MOMENTS)
def test_a_stored_time_reads_back_as_the_same_instant_in_utc(moment: datetime) -> None:
    back = from_db(to_db(moment, "t"))
    assert back == moment
    assert back.tzinfo is UTC


@given(MOMENTS, MOMENTS)
def test_text_order_is_time_order(a: datetime, b: datetime) -> None:
    assert (to_db(a, "t") < to_db(b, "t")) == (a < b)


def test_a_naive_time_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="next_at: datetime 2026-11-25T09:00:00 has no time zone"):
        to_db(datetime(2026, 11, 25, 9), "next_at")
