"""Conflicts, the delta window, expired tokens, throttling and bad data, end to end (issue
"sync engine, part 1", scenarios 10, 11, 13, 14 and 17)."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import httpx
import pytest
from support.sync_world import (
    ADELE,
    ALEX,
    MEGAN,
    ROOM,
    SyncWorld,
    at,
    hybrid_time,
    utc_of,
    wait_for,
)


@pytest.mark.parametrize("rule", ["outlook_wins", "hybrid_wins"])
def test_both_sides_edited_between_two_rounds_the_conflict_rule_decides(
    world: SyncWorld, rule: str
) -> None:
    daemon = world.start(sync=f'conflict = "{rule}"')
    meeting = world.book(ADELE, at(9), subject="Contested")
    booking = wait_for(lambda: world.live_bookings(), "the Hybrid booking")[0]
    world.pause()
    world.move(ADELE, meeting["id"], at(11))
    world.hybrid_call(lambda: world.hybrid.update_booking(booking["_id"], start=at(15), end=at(16)))
    daemon = world.resume()
    winner = at(11) if rule == "outlook_wins" else at(15)
    wait_for(
        lambda: (
            hybrid_time(world.booking(booking["_id"])["start"]) == winner
            and utc_of(world.copy_of(ADELE, meeting["iCalUId"])["start"]) == winner
        ),  # type: ignore[index]
        f"both sides at the {rule} time",
    )
    time.sleep(2)  # and it stays there: the loser is overwritten, not merged
    assert hybrid_time(world.booking(booking["_id"])["start"]) == winner
    assert utc_of(world.copy_of(ADELE, meeting["iCalUId"])["start"]) == winner  # type: ignore[index]
    assert any(line.startswith("conflict:") for line in world.audit(f"o:{meeting['iCalUId']}"))
    metrics = httpx.get(daemon.url("/metrics")).text
    assert f'roomd_conflicts_total{{room="{ROOM}"}} 1.0' in metrics


def test_a_meeting_that_leaves_the_window_is_not_cancelled(world: SyncWorld) -> None:
    world.start(sync="window_ahead_days = 30")
    meeting = world.book(ADELE, at(9))
    booking = wait_for(lambda: world.live_bookings(), "the Hybrid booking")[0]
    # past roomd's window (delta reports it @removed) but inside the room's booking window
    # (180 days by default, so the room keeps it)
    far = at(9, days=60)
    mark = world.daemon.mark()  # type: ignore[union-attr]
    world.move(ADELE, meeting["id"], far)
    world.daemon.wait_log(  # type: ignore[union-attr]
        lambda x: x.get("event") == "room_round" and x.get("room") == ROOM and x["inbound"] > 0,
        since=mark,
    )
    time.sleep(2)
    assert world.copy_of(ROOM, meeting["iCalUId"]) is not None  # the room still has it
    assert not world.booking(booking["_id"])["canceled"]


def test_expired_delta_tokens_rebaseline_without_duplicates_or_lost_changes(
    world: SyncWorld,
) -> None:
    world.start()
    first = world.book(ADELE, at(9), subject="Before")
    booking = wait_for(lambda: world.live_bookings(), "the Hybrid booking")[0]
    world.pause()
    world.sims.call(lambda: world.sims.graph.control.expire_delta_tokens(ROOM))
    world.move(ADELE, first["id"], at(10))
    world.book(ALEX, at(13), subject="During")
    world.resume()
    wait_for(lambda: len(world.live_bookings()) == 2, "the new booking")
    wait_for(lambda: hybrid_time(world.booking(booking["_id"])["start"]) == at(10), "the move")
    # a 410 in the middle of a round: the round re-baselines and still sees the change
    world.sims.call(
        lambda: world.sims.graph.control.inject_fault(
            kind="status",
            status=410,
            code="SyncStateNotFound",
            message="The sync state is not found",
            path_contains="calendarView/delta",
            mailbox=ROOM,
            count=1,
        )
    )
    world.book(ALEX, at(16), subject="After")
    wait_for(lambda: len(world.live_bookings()) == 3, "the third booking")
    time.sleep(3)
    assert sorted(b["summary"] for b in world.bookings()) == ["After", "Before", "During"]


def test_a_throttling_storm_and_hybrid_5xx_slow_sync_but_lose_and_double_nothing(
    world: SyncWorld,
) -> None:
    world.start()
    world.book(ADELE, at(9), subject="Calm")
    wait_for(lambda: world.live_bookings(), "the first booking")
    for mailbox, count in ((ROOM, 25), (ADELE, 15)):  # roomd's reads and writes, not the users'
        world.sims.call(
            lambda m=mailbox, c=count: world.sims.graph.control.inject_fault(
                kind="status", status=429, retry_after="1", count=c, mailbox=m
            )
        )
    world.hybrid_call(lambda: world.hybrid.set_faults(api_5xx=15, api_429=5))
    meetings = [world.book(ALEX, at(11 + i), subject=f"Storm {i}") for i in range(3)]
    bookings = [
        world.hybrid_book(ADELE, at(17, 15 * i), minutes=10, summary=f"H{i}") for i in range(3)
    ]
    wait_for(lambda: len(world.live_bookings()) == 7, "every Outlook meeting in Hybrid", 90)
    wait_for(lambda: len(world.live_events(ADELE)) == 4, "every Hybrid booking in Outlook", 90)
    time.sleep(3)
    assert len(world.bookings()) == 7
    assert sorted(e["subject"] for e in world.live_events(ADELE)) == [
        "Calm",
        "H0",
        "H1",
        "H2",
    ]
    assert {m["iCalUId"] for m in meetings} <= {e["iCalUId"] for e in world.live_events(ROOM)}
    assert len(bookings) == 3


def test_bad_data_is_skipped_with_a_reason_and_the_rest_syncs(world: SyncWorld) -> None:
    """Payloads the services should never send, made by editing the simulators' stores
    directly: an attendee address that is not an address in the room's copy, and a Hybrid
    booking that ends before it starts."""
    bad = world.book(ADELE, at(9), subject="Bad guest", attendees=(ALEX,))
    time.sleep(1)
    world.corrupt_room_copy(bad["iCalUId"], lambda ev: _break_attendee(ev.attendees, ALEX))
    odd = world.hybrid_book(ADELE, at(14), summary="Backwards")
    world.corrupt_booking(odd["_id"], lambda b: setattr(b, "end", b.start - timedelta(hours=1)))
    good = world.book(MEGAN, at(11), subject="Fine")
    fine = world.hybrid_book(ALEX, at(16), summary="Also fine")
    daemon = world.start()
    wait_for(lambda: len(world.live_bookings()) == 3, "the good meeting in Hybrid")
    wait_for(lambda: world.live_events(ALEX), "the good booking in Outlook")
    time.sleep(2)
    assert sorted(b["summary"] for b in world.live_bookings()) == ["Also fine", "Backwards", "Fine"]
    assert [e["subject"] for e in world.live_events(ALEX) if e["subject"] == "Also fine"]
    assert not [e for e in world.live_events(ADELE) if e["subject"] == "Backwards"]
    assert any(
        "not-an-address" in line and line.startswith("skipped")
        for line in world.audit(f"o:{bad['iCalUId']}")
    )
    assert any(
        "before it starts" in line and line.startswith("skipped")
        for line in world.audit(f"h:{odd['_id']}")
    )
    assert good["iCalUId"] and fine["_id"]
    detail = httpx.get(daemon.url("/readyz")).json()
    assert detail["rooms"][ROOM]["problem"]


def _break_attendee(attendees: list[dict[str, Any]], who: str) -> None:
    for attendee in attendees:
        email = attendee.get("emailAddress") or {}
        if str(email.get("address", "")).lower() == who:
            email["address"] = "not-an-address"
