"""Graph error bodies become typed exceptions carrying Graph's code (concepts/errors.md)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from roomd.graph.errors import (
    AccessDenied,
    BadRequest,
    NotFound,
    PreconditionFailed,
    SyncStateExpired,
    Throttled,
    error_from_parts,
    parse_retry_after,
)

# Microsoft's samples, copied into the repository (tests/fixtures/README.md)
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "graph"


def _fixture(name: str) -> object:
    return json.loads((FIXTURES / name).read_text())


def test_expired_delta_token_is_reported_as_sync_state_expired() -> None:
    body = _fixture("synthesized/error-410-syncstatenotfound.json")
    err = error_from_parts(410, {}, body, method="GET", path="/users/r@x/calendarView/delta")
    assert isinstance(err, SyncStateExpired)
    assert err.code == "SyncStateNotFound"
    assert err.request_id == "00000000-0000-0000-0000-000000000410"
    assert "SyncStateNotFound" in str(err)


def test_sync_state_codes_match_case_insensitively_and_in_inner_errors() -> None:
    inner = {"code": "resyncRequired"}
    body = {"error": {"code": "badRequest", "message": "m", "innerError": inner}}
    err = error_from_parts(400, {}, body)
    assert isinstance(err, SyncStateExpired)
    assert err.code == "resyncRequired"  # the most detailed code wins
    assert err.has_code("RESYNCREQUIRED") and err.has_code("badrequest")


def test_any_410_means_resync_even_without_a_body() -> None:
    assert isinstance(error_from_parts(410, {}, b""), SyncStateExpired)


def test_throttle_answer_carries_fractional_retry_after() -> None:
    body = _fixture("throttling-429.json")
    err = error_from_parts(429, {"Retry-After": "2.128"}, body)
    assert isinstance(err, Throttled)
    assert err.retry_after == 2.128
    assert err.code == "TooManyRequests"


def test_mailbox_concurrency_429_keeps_outlook_code() -> None:
    body = _fixture("synthesized/error-429-mailbox-concurrency.json")
    err = error_from_parts(429, {"retry-after": "1"}, body)
    assert isinstance(err, Throttled) and err.code == "ApplicationThrottled"


def test_status_classes() -> None:
    assert isinstance(error_from_parts(412, {}, {}), PreconditionFailed)
    assert isinstance(error_from_parts(404, {}, {}), NotFound)
    assert isinstance(error_from_parts(400, {}, {}), BadRequest)
    denied = error_from_parts(403, {}, _fixture("error-403-application-access-policy.json"))
    assert isinstance(denied, AccessDenied) and denied.code == "ErrorAccessDenied"


def test_non_json_error_body_still_gives_a_readable_error() -> None:
    err = error_from_parts(502, {}, b"<html>bad gateway</html>", method="GET", path="/users/a")
    assert err.status == 502 and "HTTP 502" in str(err) and "GET /users/a" in str(err)


def test_retry_after_as_http_date() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    value = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(value, now=now.timestamp()) == 30.0


@given(st.floats(min_value=0, max_value=1e6, allow_nan=False))
def test_retry_after_seconds_round_trip(seconds: float) -> None:
    assert parse_retry_after(repr(seconds)) == seconds


@given(st.text())
def test_retry_after_never_raises_and_is_never_negative(value: str) -> None:
    parsed = parse_retry_after(value)
    assert parsed is None or parsed >= 0
