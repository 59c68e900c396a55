"""roomd's Hybrid client against the Hybrid simulator over HTTPS: auth, paging, retries, errors,
idempotent creates, bookings, rooms and members."""

from __future__ import annotations

import asyncio
import socket
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from roomd.hybrid import (
    AuthError,
    Conflict,
    DoubleBooking,
    HybridClient,
    HybridError,
    NotFound,
    ValidationError,
    booking_payload,
)
from roomd.hybrid.model import format_datetime
from roomd.observe import HYBRID_REQUESTS, HYBRID_RETRIES
from roomd.sim.hybrid import HybridSimulator

from .conftest import BOARDROOM, HARBOUR, NOW, ROOM_4A, ROOM_4B, DropProxy, make_config

TOMORROW_9 = NOW.replace(hour=9) + timedelta(days=1)
ICAL_UID = "040000008200E00074C5B7101A82E00800000000D0F1B2C3"


def retries(reason: str) -> float:
    return float(HYBRID_RETRIES.labels(reason=reason)._value.get())


def requests_total() -> float:
    return sum(
        s.value for m in HYBRID_REQUESTS.collect() for s in m.samples if s.name.endswith("_total")
    )


def payload(
    sim: HybridSimulator, room: str = ROOM_4A, hours: int = 0, **kw: object
) -> dict[str, Any]:
    start = TOMORROW_9 + timedelta(hours=hours)
    return booking_payload(
        resource_id=room,
        start=start,
        end=start + timedelta(minutes=30),
        summary="Planning",
        member=sim.control.member_id("adelev@contoso.com"),
        **kw,  # type: ignore[arg-type]
    )


# --- authentication ---------------------------------------------------------------------------


async def test_a_wrong_secret_is_an_auth_error_that_never_shows_the_secret(
    sim: HybridSimulator, ca_bundle: Path
) -> None:
    wrong = "not-the-secret-9b1c7e"
    config = make_config(sim, ca_bundle, client_secret=wrong)
    assert wrong not in repr(config)
    async with HybridClient(config) as client:
        with pytest.raises(AuthError) as info:
            await client.list_resources()
    assert info.value.status == 401
    assert "invalid_client" in str(info.value)  # the server's own words
    assert wrong not in str(info.value) and wrong not in repr(info.value)
    assert sim.client_secret not in str(info.value)


async def test_a_revoked_token_is_replaced_once_and_the_request_succeeds(
    sim: HybridSimulator, hybrid: HybridClient
) -> None:
    await hybrid.list_resources()
    sim.control.revoke_tokens()
    before = retries("401")
    assert len(await hybrid.list_resources()) == 4
    assert retries("401") == before + 1


async def test_an_expired_token_is_refreshed_after_an_hour(
    sim: HybridSimulator, hybrid: HybridClient
) -> None:
    await hybrid.list_resources()
    sim.control.advance_clock(3600)
    assert len(await hybrid.list_resources()) == 4


async def test_the_token_is_reused_between_requests(hybrid: HybridClient) -> None:
    await hybrid.list_resources()  # fetches the token
    before = requests_total()
    await hybrid.list_resources()
    assert requests_total() == before + 1  # one API request, no token request


async def test_a_token_about_to_expire_is_replaced_before_use(
    sim: HybridSimulator, ca_bundle: Path
) -> None:
    now = [1000.0]
    async with HybridClient(make_config(sim, ca_bundle), clock=lambda: now[0]) as client:
        await client.list_resources()
        before, refused = requests_total(), retries("401")
        now[0] += 3600 - 60  # inside the refresh margin (120 s by default)
        await client.list_resources()
        assert requests_total() == before + 2  # one token request, one API request
        assert retries("401") == refused  # nothing was sent with the old token


async def test_concurrent_requests_share_one_token_refresh(
    sim: HybridSimulator, hybrid: HybridClient
) -> None:
    await hybrid.list_resources()
    sim.control.revoke_tokens()
    before = requests_total()
    await asyncio.gather(*(hybrid.list_resources() for _ in range(10)))
    assert requests_total() == before + 10 + 1 + 10  # ten 401s, one token, ten answers


async def test_a_token_endpoint_outage_is_retried(
    sim: HybridSimulator, hybrid: HybridClient
) -> None:
    sim.control.set_faults(token_5xx=2)
    assert len(await hybrid.list_resources()) == 4


async def test_missing_scope_is_an_auth_error_naming_it(
    sim: HybridSimulator, ca_bundle: Path
) -> None:
    config = make_config(sim, ca_bundle, scope="flex.space.resources.read")
    async with HybridClient(config) as client:
        assert len(await client.list_resources()) == 4
        with pytest.raises(AuthError) as info:
            await client.get_booking("65a000000000000000000001")
    assert info.value.status == 403
    assert "flex.space.bookings.read" in info.value.message


# --- retries --------------------------------------------------------------------------------


async def test_a_429_is_retried_after_the_servers_retry_after(
    sim: HybridSimulator, hybrid: HybridClient
) -> None:
    sim.control.set_faults(api_429=1, retry_after_seconds=1)
    before = retries("429")
    started = time.monotonic()
    assert len(await hybrid.list_resources()) == 4
    assert time.monotonic() - started >= 0.95
    assert retries("429") == before + 1


async def test_server_errors_are_retried_with_backoff(
    sim: HybridSimulator, hybrid: HybridClient
) -> None:
    sim.control.set_faults(api_5xx=2, api_5xx_status=502)
    before = retries("5xx")
    assert len(await hybrid.list_resources()) == 4
    assert retries("5xx") == before + 2


async def test_a_persistent_outage_ends_in_an_error_with_the_servers_message(
    sim: HybridSimulator, hybrid: HybridClient
) -> None:
    sim.control.set_faults(api_5xx=50)
    with pytest.raises(HybridError) as info:
        await hybrid.list_resources()
    assert info.value.status == 503
    assert "temporarily unavailable" in info.value.message


async def test_an_unreachable_server_is_an_error_after_a_few_tries(
    sim: HybridSimulator, ca_bundle: Path
) -> None:
    before = retries("connection")
    unanswered = HYBRID_REQUESTS.labels(status="error")._value.get()
    # A loopback port held (bound, never listening) for the test, so connecting is refused.
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        port = holder.getsockname()[1]
        config = make_config(sim, ca_bundle, base_url=f"https://127.0.0.1:{port}")
        async with HybridClient(config) as client:
            with pytest.raises(HybridError) as info:
                await client.get_booking("65a000000000000000000001")
    assert info.value.status == 0
    assert "cannot reach" in str(info.value)
    assert retries("connection") == before + 3  # FAST_RETRY: 4 attempts
    assert HYBRID_REQUESTS.labels(status="error")._value.get() == unanswered + 4


async def test_a_slow_server_is_timed_out_and_retried(
    sim: HybridSimulator, ca_bundle: Path
) -> None:
    from roomd.hybrid import Timeouts

    sim.control.set_faults(api_slow=1, api_slow_seconds=1.0)
    config = make_config(sim, ca_bundle, timeouts=Timeouts(read=0.3))
    before = retries("timeout")
    async with HybridClient(config) as client:
        assert len(await client.list_resources()) == 4
    assert retries("timeout") >= before + 1  # more only if this machine is very busy


# --- typed errors -----------------------------------------------------------------------------


async def test_a_double_booking_is_refused_with_the_servers_reason(
    sim: HybridSimulator, hybrid: HybridClient
) -> None:
    await hybrid.create_booking(payload(sim), reference="first")
    with pytest.raises(DoubleBooking) as info:
        await hybrid.create_booking(payload(sim), reference="second")
    assert info.value.status == 409
    assert info.value.message
    assert len(sim.control.bookings(ROOM_4A)) == 1


async def test_changing_a_cancelled_booking_is_a_conflict_not_a_double_booking(
    sim: HybridSimulator, hybrid: HybridClient
) -> None:
    booking = await hybrid.create_booking(payload(sim), reference=ICAL_UID)
    await hybrid.cancel_booking(booking.id)
    with pytest.raises(Conflict) as info:
        await hybrid.patch_booking(booking.id, {"summary": "Too late"})
    assert not isinstance(info.value, DoubleBooking)
    assert info.value.code == "booking_canceled"
    assert "canceled" in info.value.message


async def test_an_end_before_start_is_a_validation_error(
    sim: HybridSimulator, hybrid: HybridClient
) -> None:
    body = payload(sim)
    body["start"], body["end"] = body["end"], body["start"]
    with pytest.raises(ValidationError) as info:
        await hybrid.create_booking(body, reference="backwards")
    assert info.value.status == 422
    assert "end" in info.value.message


async def test_an_unknown_room_is_a_validation_error(
    sim: HybridSimulator, hybrid: HybridClient
) -> None:
    with pytest.raises(ValidationError) as info:
        await hybrid.create_booking(payload(sim, room="000000000000000000000000"), reference="x")
    assert "resourceId" in info.value.message or "resource" in info.value.message


async def test_an_unknown_booking_is_not_found(hybrid: HybridClient) -> None:
    with pytest.raises(NotFound):
        await hybrid.get_booking("65a0000000000000000000ff")


# --- idempotent create ------------------------------------------------------------------------


async def test_creating_twice_with_one_reference_makes_one_booking(
    sim: HybridSimulator, hybrid: HybridClient
) -> None:
    first = await hybrid.create_booking(payload(sim), reference=ICAL_UID)
    again = await hybrid.create_booking(payload(sim), reference=ICAL_UID)
    assert again.id == first.id
    assert first.reference == ICAL_UID
    assert len(sim.control.bookings()) == 1


async def test_a_create_right_after_a_look_up_that_found_nothing_sends_only_its_post(
    sim: HybridSimulator, hybrid: HybridClient
) -> None:
    """The round's own look-up (for a lost link) stands in for the create's first one."""
    assert await hybrid.find_by_reference(ICAL_UID) is None
    before = requests_total()
    booking = await hybrid.create_booking(payload(sim), reference=ICAL_UID)
    assert requests_total() == before + 1
    assert [b["_id"] for b in sim.control.bookings()] == [booking.id]
    # the answer is used once: a second create looks again and finds the booking
    assert (await hybrid.create_booking(payload(sim), reference=ICAL_UID)).id == booking.id
    assert len(sim.control.bookings()) == 1


async def test_a_look_up_that_overlapped_a_create_does_not_vouch_for_the_next_one(
    sim: HybridSimulator, hybrid: HybridClient
) -> None:
    absent, first = await asyncio.gather(
        hybrid.find_by_reference(ICAL_UID),
        hybrid.create_booking(payload(sim), reference=ICAL_UID),
    )
    assert absent is None  # read before the create landed
    again = await hybrid.create_booking(payload(sim), reference=ICAL_UID)
    assert again.id == first.id
    assert len(sim.control.bookings()) == 1


async def test_after_a_rooms_whole_listing_its_creates_send_only_their_posts(
    sim: HybridSimulator, hybrid: HybridClient
) -> None:
    """An initial sync lists each room once; that listing answers every lost-link look-up of
    the room, so each new booking costs Hybrid one request."""
    other = await hybrid.create_booking(payload(sim, hours=5), reference="listed-uid")
    await hybrid.changes_since(None, resource_id=ROOM_4A)
    before = requests_total()
    assert await hybrid.find_by_reference(ICAL_UID, resource_id=ROOM_4A) is None
    booking = await hybrid.create_booking(payload(sim), reference=ICAL_UID)
    series = await hybrid.create_booking(
        payload(sim, hours=2, rrule="FREQ=WEEKLY;COUNT=3"), reference="series-uid"
    )
    assert requests_total() == before + 2
    # a reference the listing holds is looked up, and found
    found = await hybrid.find_by_reference("listed-uid", resource_id=ROOM_4A)
    assert found is not None and found.id == other.id
    assert requests_total() == before + 3
    # once created, a reference is looked up again: a second create makes nothing new
    assert (await hybrid.create_booking(payload(sim), reference=ICAL_UID)).id == booking.id
    assert (
        await hybrid.create_booking(
            payload(sim, hours=2, rrule="FREQ=WEEKLY;COUNT=3"), reference="series-uid"
        )
    ).id == series.id
    assert len(sim.control.bookings()) == 3


async def test_a_listing_overlapping_a_create_of_the_reference_vouches_for_nothing(
    sim: HybridSimulator, hybrid: HybridClient
) -> None:
    _, first = await asyncio.gather(
        hybrid.changes_since(None, resource_id=ROOM_4A),
        hybrid.create_booking(payload(sim), reference=ICAL_UID),
    )
    assert (await hybrid.find_by_reference(ICAL_UID, resource_id=ROOM_4A)) == first
    assert (await hybrid.create_booking(payload(sim), reference=ICAL_UID)).id == first.id
    assert len(sim.control.bookings()) == 1


async def test_a_meeting_in_two_rooms_gets_a_booking_in_each(
    sim: HybridSimulator, hybrid: HybridClient
) -> None:
    in_4a = await hybrid.create_booking(payload(sim, room=ROOM_4A), reference=ICAL_UID)
    in_4b = await hybrid.create_booking(payload(sim, room=ROOM_4B), reference=ICAL_UID)
    assert in_4a.id != in_4b.id and in_4b.resource_id == ROOM_4B
    assert (await hybrid.find_by_reference(ICAL_UID, resource_id=ROOM_4B)) == in_4b
    # and each is made once
    assert (await hybrid.create_booking(payload(sim, room=ROOM_4B), reference=ICAL_UID)) == in_4b
    assert len(sim.control.bookings()) == 2


async def test_a_vouched_create_whose_answer_is_lost_is_retried_into_one_booking(
    sim: HybridSimulator, ca_bundle: Path, drop_proxy: DropProxy
) -> None:
    drop_proxy.drops = 1
    config = make_config(sim, ca_bundle, base_url=drop_proxy.url)
    async with HybridClient(config) as client:
        assert await client.find_by_reference(ICAL_UID) is None
        booking = await client.create_booking(payload(sim), reference=ICAL_UID)
    assert drop_proxy.dropped == 1
    assert [b["_id"] for b in sim.control.bookings()] == [booking.id]


async def test_a_create_whose_answer_is_lost_is_retried_into_one_booking(
    sim: HybridSimulator, ca_bundle: Path, drop_proxy: DropProxy
) -> None:
    drop_proxy.drops = 1
    config = make_config(sim, ca_bundle, base_url=drop_proxy.url)
    before = retries("create_unsure")
    async with HybridClient(config) as client:
        booking = await client.create_booking(payload(sim), reference=ICAL_UID)
    assert drop_proxy.dropped == 1  # the first answer really was lost
    assert retries("create_unsure") == before + 1
    stored = sim.control.bookings()
    assert [b["_id"] for b in stored] == [booking.id]
    assert stored[0]["reference"] == ICAL_UID


async def test_a_create_answered_429_waits_as_told_and_makes_one_booking(
    sim: HybridSimulator, ca_bundle: Path, drop_proxy: DropProxy
) -> None:
    drop_proxy.refusals, drop_proxy.retry_after = 1, 1
    config = make_config(sim, ca_bundle, base_url=drop_proxy.url)
    started = time.monotonic()
    async with HybridClient(config) as client:
        booking = await client.create_booking(payload(sim), reference=ICAL_UID)
    assert time.monotonic() - started >= 0.95
    assert [b["_id"] for b in sim.control.bookings()] == [booking.id]


async def test_one_unreadable_booking_does_not_hide_the_others(
    sim: HybridSimulator, ca_bundle: Path, drop_proxy: DropProxy
) -> None:
    for hours in (0, 2):
        start = TOMORROW_9 + timedelta(hours=hours)
        sim.control.create_booking(
            ROOM_4A, start, start + timedelta(minutes=30), member="adelev@contoso.com"
        )

    def break_first(page: Any) -> Any:
        if isinstance(page, dict) and page.get("results"):
            page["results"][0]["start"] = {"dateTime": "yesterday"}
        return page

    drop_proxy.rewrite = break_first
    config = make_config(sim, ca_bundle, base_url=drop_proxy.url)
    with capture_logs() as logs:
        async with HybridClient(config) as client:
            changes, _ = await client.changes_since(None)
    assert len(changes) == 1
    problems = [e for e in logs if e["event"] == "hybrid_booking_unreadable"]
    assert len(problems) == 1 and "start.dateTime" in problems[0]["problem"]


async def test_a_create_refused_by_a_5xx_is_retried_into_one_booking(
    sim: HybridSimulator, hybrid: HybridClient
) -> None:
    sim.control.set_faults(api_5xx=1, api_path_contains="/bookings")
    booking = await hybrid.create_booking(payload(sim), reference=ICAL_UID)
    assert [b["_id"] for b in sim.control.bookings()] == [booking.id]


async def test_a_cancelled_booking_does_not_answer_a_new_create(
    sim: HybridSimulator, hybrid: HybridClient
) -> None:
    old = await hybrid.create_booking(payload(sim), reference=ICAL_UID)
    await hybrid.cancel_booking(old.id)
    new = await hybrid.create_booking(payload(sim, hours=2), reference=ICAL_UID)
    assert new.id != old.id and not new.canceled


async def test_an_exception_is_not_mistaken_for_its_series(
    sim: HybridSimulator, hybrid: HybridClient
) -> None:
    series = await hybrid.create_booking(
        payload(sim, rrule="FREQ=DAILY;COUNT=5"), reference=ICAL_UID
    )
    moved_from = series.start + timedelta(days=1)
    child_body = booking_payload(
        resource_id=ROOM_4A,
        start=moved_from + timedelta(hours=3),
        end=moved_from + timedelta(hours=3, minutes=30),
        member=series.member,
    )
    child_body["parent"] = series.id
    child_body["originalStart"] = format_datetime(moved_from)
    child = await hybrid.create_booking(child_body, reference=ICAL_UID)
    assert child.id != series.id
    assert child.parent == series.id and child.original_start == moved_from
    assert await hybrid.find_by_reference(ICAL_UID) == series
    # a second exception of the same series is its own booking, not the first one again
    second_from = series.start + timedelta(days=2)
    second_body = {
        **child_body,
        "start": {"dateTime": format_datetime(second_from + timedelta(hours=3))},
        "end": {"dateTime": format_datetime(second_from + timedelta(hours=3, minutes=30))},
        "originalStart": format_datetime(second_from),
    }
    second = await hybrid.create_booking(second_body, reference=ICAL_UID)
    assert second.id not in (series.id, child.id)
    assert second.original_start == second_from
    # and retrying either create finds the booking it made
    assert (await hybrid.create_booking(second_body, reference=ICAL_UID)).id == second.id
    assert (await hybrid.create_booking(child_body, reference=ICAL_UID)).id == child.id


# --- bookings ---------------------------------------------------------------------------------


async def test_listing_pages_through_every_booking(
    sim: HybridSimulator, hybrid: HybridClient
) -> None:
    for i in range(120):
        start = TOMORROW_9 + timedelta(hours=i)
        sim.control.create_booking(
            HARBOUR, start, start + timedelta(minutes=30), member="adelev@contoso.com"
        )
    ids = [b.id async for b in hybrid.iter_bookings(resourceId=HARBOUR)]
    assert len(ids) == len(set(ids)) == 120


async def test_a_booking_is_patched_and_cancelled(
    sim: HybridSimulator, hybrid: HybridClient
) -> None:
    booking = await hybrid.create_booking(payload(sim), reference=ICAL_UID)
    patched = await hybrid.patch_booking(booking.id, {"summary": "Retro"})
    assert patched.summary == "Retro" and patched.modified_at > booking.modified_at  # type: ignore[operator]
    canceled = await hybrid.cancel_booking(booking.id)
    assert canceled.canceled and not canceled.no_show
    assert (await hybrid.cancel_booking(booking.id)).canceled  # cancelling again is harmless
    assert sim.control.booking(booking.id)["canceled"] is True


async def test_a_booking_on_an_approval_room_is_tentative(
    sim: HybridSimulator, hybrid: HybridClient
) -> None:
    booking = await hybrid.create_booking(payload(sim, room=ROOM_4B), reference=ICAL_UID)
    assert booking.tentative
    sim.control.approve(booking.id)
    assert not (await hybrid.get_booking(booking.id)).tentative


async def test_a_no_show_is_visible_as_such(sim: HybridSimulator, hybrid: HybridClient) -> None:
    start = NOW + timedelta(minutes=30)
    made = sim.control.create_booking(
        BOARDROOM, start, start + timedelta(hours=1), member="adelev@contoso.com"
    )
    sim.control.advance_clock(3600)
    sim.control.run_noshow_sweep()
    booking = await hybrid.get_booking(made["_id"])
    assert booking.canceled and booking.no_show


# --- rooms and members ------------------------------------------------------------------------


async def test_rooms_come_with_their_time_zone_and_policy(hybrid: HybridClient) -> None:
    rooms = {r.id: r for r in await hybrid.list_resources()}
    assert rooms[HARBOUR].timezone == "America/New_York"
    assert rooms[ROOM_4B].requires_approval is True
    assert rooms[BOARDROOM].requires_checkin is True
    assert rooms[ROOM_4A].requires_approval is False


async def test_a_member_is_found_by_email_in_any_case_and_by_id(
    sim: HybridSimulator, hybrid: HybridClient
) -> None:
    member = await hybrid.member_by_email("AdeleV@Contoso.COM")
    assert member is not None
    assert member.id == sim.control.member_id("adelev@contoso.com")
    assert (await hybrid.member_by_id(member.id)).email == member.email
    assert await hybrid.member_by_email("nobody@contoso.com") is None
    with pytest.raises(NotFound):
        await hybrid.member_by_id("0000000000000000000000ff")


async def test_member_lookups_are_cached(hybrid: HybridClient) -> None:
    member = await hybrid.member_by_email("meganb@contoso.com")
    assert member is not None
    before = requests_total()
    assert await hybrid.member_by_email("MeganB@contoso.com") == member
    assert await hybrid.member_by_id(member.id) == member
    assert requests_total() == before


async def test_an_unreadable_ca_bundle_is_named_in_the_error(
    sim: HybridSimulator, tmp_path: Path
) -> None:
    missing = tmp_path / "nope.pem"
    with pytest.raises(ValueError, match=r"hybrid.ca_bundle: cannot use .*nope.pem"):
        HybridClient(make_config(sim, missing))


def test_a_plain_http_api_url_is_refused(sim: HybridSimulator, ca_bundle: Path) -> None:
    with pytest.raises(ValueError, match=r"hybrid\.base_url: expected an https:// URL"):
        make_config(sim, ca_bundle, base_url="http://127.0.0.1:8080")


async def test_a_window_query_finds_a_series_that_began_long_before(
    sim: HybridSimulator, hybrid: HybridClient
) -> None:
    old_start = NOW - timedelta(days=200)
    series = sim.control.create_booking(
        ROOM_4A,
        old_start,
        old_start + timedelta(hours=1),
        member="adelev@contoso.com",
        rrule="FREQ=WEEKLY",
    )
    ended = sim.control.create_booking(
        ROOM_4A,
        old_start + timedelta(hours=3),
        old_start + timedelta(hours=4),
        member="adelev@contoso.com",
    )
    inside = sim.control.create_booking(
        HARBOUR, TOMORROW_9, TOMORROW_9 + timedelta(hours=1), member="adelev@contoso.com"
    )
    window = await hybrid.bookings_between(NOW, NOW + timedelta(days=30))
    ids = {b.id for b in window}
    assert series["_id"] in ids and inside["_id"] in ids
    assert ended["_id"] not in ids
    only_4a = await hybrid.bookings_between(NOW, NOW + timedelta(days=30), resource_id=ROOM_4A)
    assert [b.id for b in only_4a] == [series["_id"]]
