"""roomd's webhook receiver on its own: signatures, staleness, bad bodies, duplicates, speed.

Deliveries here are signed by the test, in both forms a sender may use; the simulator's own
deliveries are in test_webhooks_sim.py.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from roomd.hybrid.webhooks import sign, verify_signature

SECRET = "whsec-test-0123456789"

BOOKING = {
    "_id": "65a000000000000000000001",
    "resourceId": "64f0a1b2c3d4e5f6a7b8c901",
    "start": {"dateTime": "2026-11-26T09:00:00.000Z"},
    "end": {"dateTime": "2026-11-26T10:00:00.000Z"},
    "modifiedAt": "2026-11-25T08:00:00.123Z",
}


def body(event_type: str = "booking.created", **changes: Any) -> bytes:
    return json.dumps(
        {"eventType": event_type, "data": {"object": {**BOOKING, **changes}}}
    ).encode()


def community_sign(secret: str, raw: bytes, t: int) -> str:
    digest = hmac.new(secret.encode(), str(t).encode() + b"." + raw, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


async def post(url: str, raw: bytes, header: str | None) -> httpx.Response:
    headers = {"content-type": "application/json"}
    if header is not None:
        headers["officernd-signature"] = header
    async with httpx.AsyncClient(trust_env=False) as http:
        return await http.post(url, content=raw, headers=headers)


async def test_a_signed_event_is_queued_and_answered_at_once(receiver_factory: Any) -> None:
    rx = await receiver_factory(SECRET)
    raw = body()
    before = rx.count("accepted")
    resp = await post(rx.url, raw, sign(SECRET, raw, int(time.time())))
    assert resp.status_code == 202
    event = await rx.next_event()
    assert event.event_type == "booking.created"
    assert event.booking_id == BOOKING["_id"]
    assert rx.count("accepted") == before + 1


async def test_the_community_signature_form_is_accepted_too(receiver_factory: Any) -> None:
    rx = await receiver_factory(SECRET)
    raw = body("booking.updated")
    resp = await post(rx.url, raw, community_sign(SECRET, raw, int(time.time())))
    assert resp.status_code == 202
    assert (await rx.next_event()).event_type == "booking.updated"


async def test_any_of_several_signatures_may_match(receiver_factory: Any) -> None:
    rx = await receiver_factory(SECRET)
    raw = body()
    t = int(time.time())
    good = sign(SECRET, raw, t).split(",v1=")[1]
    resp = await post(rx.url, raw, f"t={t},v1={'0' * 64},v1={good}")
    assert resp.status_code == 202


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "garbage",
        "t=abc,v1=00",
        "v1=" + "0" * 64,
        "t={t},v1=" + "0" * 64,
        "WRONG_SECRET",
    ],
)
async def test_an_unsigned_or_wrongly_signed_event_is_refused_and_counted(
    receiver_factory: Any, header: str | None
) -> None:
    rx = await receiver_factory(SECRET)
    raw = body()
    t = int(time.time())
    if header == "WRONG_SECRET":
        header = sign("another-secret", raw, t)
    elif header is not None:
        header = header.replace("{t}", str(t))
    before = rx.count("bad_signature")
    resp = await post(rx.url, raw, header)
    assert resp.status_code == 401
    assert rx.count("bad_signature") == before + 1
    assert rx.queue.empty()
    assert SECRET not in resp.text


async def test_a_tampered_body_is_refused(receiver_factory: Any) -> None:
    rx = await receiver_factory(SECRET)
    raw = body()
    header = sign(SECRET, raw, int(time.time()))
    resp = await post(rx.url, raw.replace(b"09:00", b"08:00"), header)
    assert resp.status_code == 401
    assert rx.queue.empty()


# 302, not 301: the signature carries whole seconds, so "now + 301" truncated can land at
# 300.x seconds ahead of the receiver's clock, inside the tolerance
@pytest.mark.parametrize("skew", [-302, 302, -3600])
async def test_a_stale_or_future_timestamp_is_refused(receiver_factory: Any, skew: int) -> None:
    rx = await receiver_factory(SECRET)
    raw = body()
    before = rx.count("stale")
    resp = await post(rx.url, raw, sign(SECRET, raw, int(time.time()) + skew))
    assert resp.status_code == 401
    assert rx.count("stale") == before + 1
    assert rx.queue.empty()


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"[1, 2]",
        b'{"eventType": 7}',
        b'{"eventType": "booking.created", "data": {}}',
        b'{"eventType": "booking.removed", "data": {"object": "65a000000000000000000001"}}',
        json.dumps({"eventType": "booking.updated", "data": {"object": {"summary": "x"}}}).encode(),
        json.dumps({"eventType": "booking.removed", "data": {"object": {"_id": 7}}}).encode(),
        b"\xff\xfe",
    ],
)
async def test_a_signed_body_that_is_not_json_or_names_no_booking_is_refused_and_counted(
    receiver_factory: Any, raw: bytes
) -> None:
    rx = await receiver_factory(SECRET)
    before = rx.count("bad_body")
    resp = await post(rx.url, raw, sign(SECRET, raw, int(time.time())))
    assert resp.status_code == 400
    assert rx.count("bad_body") == before + 1
    assert rx.queue.empty()


@pytest.mark.parametrize(
    ("event_type", "obj"),
    [
        ("booking.removed", {"_id": BOOKING["_id"]}),
        ("booking.updated", {"_id": BOOKING["_id"], "resourceId": BOOKING["resourceId"]}),
        ("booking.created", {"resourceId": BOOKING["resourceId"]}),
        ("booking.removed", {"_id": BOOKING["_id"], "start": "not a time", "modifiedAt": "bad"}),
    ],
)
async def test_a_signed_partial_booking_is_accepted_as_a_hint(
    receiver_factory: Any, event_type: str, obj: dict[str, Any]
) -> None:
    """A removal may carry only the booking's id; refusing it would make the sender retry and,
    after enough refusals, disable the webhook."""
    rx = await receiver_factory(SECRET)
    raw = json.dumps({"eventType": event_type, "data": {"object": obj}}).encode()
    before = (rx.count("accepted"), rx.count("bad_body"))
    resp = await post(rx.url, raw, sign(SECRET, raw, int(time.time())))
    assert resp.status_code == 202, resp.text
    event = await rx.next_event()
    assert event.event_type == event_type
    assert (event.booking_id, event.resource_id) == (obj.get("_id"), obj.get("resourceId"))
    assert event.booking is None and event.modified_at is None
    assert (rx.count("accepted"), rx.count("bad_body")) == (before[0] + 1, before[1])


async def test_a_partial_booking_still_needs_a_signature(receiver_factory: Any) -> None:
    rx = await receiver_factory(SECRET)
    raw = json.dumps({"eventType": "booking.removed", "data": {"object": {"_id": "x"}}}).encode()
    assert (await post(rx.url, raw, None)).status_code == 401
    assert (
        await post(rx.url, raw, sign("another-secret", raw, int(time.time())))
    ).status_code == 401
    assert rx.queue.empty()


async def test_a_complete_booking_arrives_parsed_with_its_version(receiver_factory: Any) -> None:
    rx = await receiver_factory(SECRET)
    raw = body("booking.updated", summary="Board")
    assert (await post(rx.url, raw, sign(SECRET, raw, int(time.time())))).status_code == 202
    event = await rx.next_event()
    assert event.booking is not None and event.booking.summary == "Board"
    assert (event.booking_id, event.resource_id) == (BOOKING["_id"], BOOKING["resourceId"])
    assert event.modified_at is not None
    assert event.modified_at.isoformat() == "2026-11-25T08:00:00.123000+00:00"


async def test_a_redelivered_partial_event_is_queued_once(receiver_factory: Any) -> None:
    rx = await receiver_factory(SECRET)
    removed = {"_id": BOOKING["_id"], "modifiedAt": "2026-11-25T09:00:00.000Z"}
    raw = json.dumps({"eventType": "booking.removed", "data": {"object": removed}}).encode()
    before = rx.count("duplicate")
    first = await post(rx.url, raw, sign(SECRET, raw, int(time.time())))
    again = await post(rx.url, raw, sign(SECRET, raw, int(time.time()) + 1))
    assert (first.status_code, again.status_code) == (202, 200)
    assert rx.count("duplicate") == before + 1
    event = await rx.next_event()
    assert event.modified_at is not None and event.modified_at.hour == 9
    # without a version, only the identical body is the same delivery
    bare = json.dumps({"eventType": "booking.removed", "data": {"object": {"_id": "b-2"}}})
    other = json.dumps({"eventType": "booking.removed", "data": {"object": {"_id": "b-3"}}})
    for text in (bare, bare, other):
        await post(rx.url, text.encode(), sign(SECRET, text.encode(), int(time.time())))
    assert rx.queue.qsize() == 2


async def test_a_redelivered_event_is_queued_once(receiver_factory: Any) -> None:
    rx = await receiver_factory(SECRET)
    raw = body("booking.updated")
    before = rx.count("duplicate")
    first = await post(rx.url, raw, sign(SECRET, raw, int(time.time())))
    again = await post(rx.url, raw, sign(SECRET, raw, int(time.time()) + 1))
    assert (first.status_code, again.status_code) == (202, 200)
    assert rx.queue.qsize() == 1
    assert rx.count("duplicate") == before + 1
    # A later change of the same booking is a new event.
    newer = body("booking.updated", modifiedAt="2026-11-25T08:05:00.000Z")
    assert (await post(rx.url, newer, sign(SECRET, newer, int(time.time())))).status_code == 202
    assert rx.queue.qsize() == 2


async def test_other_event_types_are_acknowledged_and_ignored(receiver_factory: Any) -> None:
    rx = await receiver_factory(SECRET)
    raw = json.dumps({"eventType": "member.created", "data": {"object": {"_id": "m"}}}).encode()
    resp = await post(rx.url, raw, sign(SECRET, raw, int(time.time())))
    assert resp.status_code == 202
    assert rx.queue.empty()


async def test_a_full_queue_asks_the_sender_to_retry(receiver_factory: Any) -> None:
    rx = await receiver_factory(SECRET, maxsize=1)
    first = body()
    second = body("booking.updated")
    assert (await post(rx.url, first, sign(SECRET, first, int(time.time())))).status_code == 202
    resp = await post(rx.url, second, sign(SECRET, second, int(time.time())))
    assert resp.status_code == 503
    rx.queue.get_nowait()
    # Not remembered as seen: the retried delivery is accepted.
    assert (await post(rx.url, second, sign(SECRET, second, int(time.time())))).status_code == 202


async def test_a_secret_object_is_revealed_only_to_verify(receiver_factory: Any) -> None:
    class Secret:
        def reveal(self) -> str:
            return SECRET

        def __repr__(self) -> str:
            return "Secret(***)"

    rx = await receiver_factory(Secret())
    raw = body()
    assert (await post(rx.url, raw, sign(SECRET, raw, int(time.time())))).status_code == 202


@given(st.binary(max_size=256), st.integers(0, 2**33), st.text(min_size=1, max_size=40))
def test_verification_accepts_exactly_the_right_secret(raw: bytes, t: int, secret: str) -> None:
    header = sign(secret, raw, t)
    assert verify_signature(secret, raw, header) == t
    assert verify_signature(secret + "x", raw, header) is None
    assert verify_signature(secret, raw + b" ", header) is None


async def test_a_body_sent_in_pieces_is_read_whole(receiver_factory: Any) -> None:
    import asyncio

    rx = await receiver_factory(SECRET)
    raw = body(summary="x" * 20000)
    header = sign(SECRET, raw, int(time.time()))

    async def pieces() -> Any:
        for i in range(0, len(raw), 4096):
            yield raw[i : i + 4096]
            await asyncio.sleep(0.01)

    async with httpx.AsyncClient(trust_env=False) as http:
        resp = await http.post(rx.url, content=pieces(), headers={"officernd-signature": header})
    assert resp.status_code == 202
    event = await rx.next_event()
    assert event.booking is not None and event.booking.summary == "x" * 20000


async def test_an_oversized_body_is_refused_unread(receiver_factory: Any) -> None:
    rx = await receiver_factory(SECRET, max_body=4096)
    raw = body(summary="x" * 5000)
    resp = await post(rx.url, raw, sign(SECRET, raw, int(time.time())))
    assert resp.status_code == 413
    assert rx.queue.empty()


async def test_an_oversized_body_without_a_length_is_refused(receiver_factory: Any) -> None:
    rx = await receiver_factory(SECRET, max_body=4096)
    raw = body(summary="x" * 5000)

    async def pieces() -> Any:
        for i in range(0, len(raw), 1024):
            yield raw[i : i + 1024]

    header = sign(SECRET, raw, int(time.time()))
    async with httpx.AsyncClient(trust_env=False) as http:
        resp = await http.post(rx.url, content=pieces(), headers={"officernd-signature": header})
    assert resp.status_code == 413
    assert rx.queue.empty()


async def test_without_modified_at_only_identical_deliveries_are_duplicates(
    receiver_factory: Any,
) -> None:
    rx = await receiver_factory(SECRET)
    first = body("booking.updated", modifiedAt=None, summary="one")
    second = body("booking.updated", modifiedAt=None, summary="two")
    for raw in (first, first, second):
        await post(rx.url, raw, sign(SECRET, raw, int(time.time())))
    assert rx.queue.qsize() == 2


async def test_nothing_is_accepted_before_the_secret_is_known(receiver_factory: Any) -> None:
    class NotYet:
        def reveal(self) -> str:
            return ""

    rx = await receiver_factory(NotYet())
    raw = body()
    resp = await post(rx.url, raw, sign("", raw, int(time.time())))  # signed with the empty key
    assert resp.status_code == 503
    assert rx.queue.empty()
