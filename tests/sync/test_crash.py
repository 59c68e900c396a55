"""Crash safety end to end (issue "sync engine, part 1", scenario 15).

The crash test's random moves found that a booking moved back to a time roomd had already
written once did not follow on the other side: this is that bug's regression test.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from support.sync_world import SyncWorld, hybrid_time, utc_of, wait_for

PEOPLE = (
    "adelev@contoso.com",
    "alexw@contoso.com",
    "meganb@contoso.com",
    "lynner@contoso.com",
    "nestorw@contoso.com",
)


def test_a_booking_moved_away_and_back_follows_on_the_other_side(world: SyncWorld) -> None:
    """A booking moved back to a time roomd already wrote once follows on the other side, both
    ways. The crash test's random moves found that it did not: the write that follows a change is
    named after the state it writes (``hybrid.update:<link>:<fingerprint>``), so 10:00 → 11:00 →
    10:00 planned a write whose name was already done, and it was dropped. The other side kept
    11:00, and once its listing showed the booking again roomd took 11:00 for a change made there
    and moved the user's meeting back to 11:00."""
    world.start()
    base = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    nine, ten, eleven = (base + timedelta(days=1, hours=h) for h in (9, 10, 11))
    two, three, four = (base + timedelta(days=1, hours=h) for h in (14, 15, 16))
    meeting = world.book(PEOPLE[0], nine, subject="O01 Back and forth")
    made = world.hybrid_book(PEOPLE[1], two, summary="H01 Back and forth")
    uid = meeting["iCalUId"]
    booking = wait_for(
        lambda: next((b for b in world.bookings() if b.get("reference") == uid), None),
        "the meeting in Hybrid",
    )
    copy = wait_for(
        lambda: next(iter(world.live_events(PEOPLE[1])), None), "the booking in Outlook"
    )

    def hybrid_at(booking_id: str, when: datetime) -> bool:
        return hybrid_time(world.booking(booking_id)["start"]) == when

    def outlook_at(when: datetime) -> bool:
        found = world.copy_of(PEOPLE[1], copy["iCalUId"])
        return found is not None and utc_of(found["start"]) == when

    for when in (ten, eleven, ten):
        world.move(PEOPLE[0], meeting["id"], when)
        wait_for(lambda w=when: hybrid_at(booking["_id"], w), f"Hybrid at {when:%H:%M}")
    for when in (three, four, three):
        world.hybrid_call(
            lambda w=when: world.hybrid.update_booking(
                made["_id"], start=w, end=w + timedelta(hours=1)
            )
        )
        wait_for(lambda w=when: outlook_at(w), f"Outlook at {when:%H:%M}")
    time.sleep(3)  # and it stays there
    assert hybrid_at(booking["_id"], ten)
    assert outlook_at(three)
    assert utc_of(world.copy_of(PEOPLE[0], uid)["start"]) == ten  # type: ignore[index]
    assert hybrid_at(made["_id"], three)
