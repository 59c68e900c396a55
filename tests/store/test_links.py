"""Links keep one identity per booking, meeting and occurrence in a room; a second claim on the
same thing is refused rather than silently creating a duplicate."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from roomd.store import Link, LinkConflict, Store

from .conftest import OTHER_ROOM, ROOM, T0, Clock

MONDAY = T0
NEXT_MONDAY = T0 + timedelta(days=7)


def series_occurrence(link_id: str, start: datetime | None) -> Link:
    """A link for a weekly Hybrid series, or (with ``start``) for one of its occurrences."""
    return Link(
        link_id,
        hybrid_id="h-series",
        hybrid_parent_id="h-series",
        original_start=start,
        ical_uid="uid-series",
        series_master_id="AAMk-master",
    )


async def test_a_link_is_found_by_each_identity(store: Store) -> None:
    link = Link(
        "l-1",
        hybrid_id="h-1",
        room_event_id="AAMk-room",
        organizer_mailbox="Adele@Contoso.com",
        organizer_event_id="AAMk-org",
        ical_uid="uid-1",
        hybrid_fingerprint="fp-h",
        outlook_fingerprint="fp-o",
        outlook_change_key="ck-1",
        hybrid_modified_at=T0,
    )
    async with store.write(ROOM) as tx:
        await tx.upsert_link(link)

    by_hybrid = await store.link_by_hybrid_id(ROOM, "h-1")
    assert by_hybrid == await store.link_by_room_event_id(ROOM, "AAMk-room")
    assert by_hybrid == await store.link_by_ical_uid(ROOM, "uid-1")
    assert by_hybrid == await store.get_link(ROOM, "l-1")
    assert by_hybrid is not None
    assert by_hybrid.organizer_mailbox == "adele@contoso.com"
    assert by_hybrid.hybrid_modified_at == T0
    assert replace(by_hybrid, created_at=None, updated_at=None) == replace(
        link, organizer_mailbox="adele@contoso.com"
    )
    assert await store.link_by_hybrid_id(OTHER_ROOM, "h-1") is None


async def test_occurrences_of_one_series_are_separate_links(store: Store) -> None:
    async with store.write(ROOM) as tx:
        await tx.upsert_link(series_occurrence("l-series", None))
        await tx.upsert_link(series_occurrence("l-mon-1", MONDAY))
        await tx.upsert_link(series_occurrence("l-mon-2", NEXT_MONDAY))

    second = await store.link_by_hybrid_id(ROOM, "h-series", NEXT_MONDAY)
    assert second is not None and second.link_id == "l-mon-2"
    whole = await store.link_by_ical_uid(ROOM, "uid-series")
    assert whole is not None and whole.link_id == "l-series"
    in_series = await store.links(ROOM, series_master_id="AAMk-master")
    assert [link.link_id for link in in_series] == ["l-series", "l-mon-1", "l-mon-2"]


@pytest.mark.parametrize(
    ("duplicate", "claim"),
    [
        (Link("l-2", hybrid_id="h-1"), "Hybrid booking h-1"),
        (Link("l-2", room_event_id="AAMk-room"), "room event AAMk-room"),
        (Link("l-2", ical_uid="uid-1"), "iCalUId uid-1"),
    ],
)
async def test_a_second_link_for_the_same_thing_is_refused(
    store: Store, duplicate: Link, claim: str
) -> None:
    async with store.write(ROOM) as tx:
        await tx.upsert_link(
            Link("l-1", hybrid_id="h-1", room_event_id="AAMk-room", ical_uid="uid-1")
        )

    expected = re.escape(f"link l-2 would claim {claim}, already linked by l-1")
    with pytest.raises(LinkConflict, match=expected):
        async with store.write(ROOM) as tx:
            await tx.audit("h-1", "hybrid", "link", "planned in the same round")
            await tx.upsert_link(duplicate)

    assert [link.link_id for link in await store.links(ROOM)] == ["l-1"]
    assert await store.audit_for(ROOM) == []  # the whole round rolled back


async def test_the_same_meeting_in_two_rooms_has_a_link_in_each(store: Store) -> None:
    async with store.write(ROOM) as tx:
        await tx.upsert_link(Link("l-a", ical_uid="uid-1", room_event_id="AAMk-a"))
    async with store.write(OTHER_ROOM) as tx:
        await tx.upsert_link(Link("l-b", ical_uid="uid-1", room_event_id="AAMk-b"))
    a = await store.link_by_ical_uid(ROOM, "uid-1")
    b = await store.link_by_ical_uid(OTHER_ROOM, "uid-1")
    assert (a and a.link_id, b and b.link_id) == ("l-a", "l-b")


async def test_links_are_read_many_at_once_each_in_its_own_room(store: Store) -> None:
    # the outbox drain reads its rows' links in one query (more ids than one query takes)
    async with store.write(ROOM) as tx:
        for n in range(600):
            await tx.upsert_link(Link(f"l-{n}", ical_uid=f"uid-{n}"))
    async with store.write(OTHER_ROOM) as tx:
        await tx.upsert_link(Link("l-other", ical_uid="uid-1"))
    found = await store.get_links(ROOM, [f"l-{n}" for n in range(600)] + ["l-other", "l-none"])
    assert sorted(found) == sorted(f"l-{n}" for n in range(600))
    assert found["l-599"] == await store.get_link(ROOM, "l-599")
    assert await store.get_links(ROOM, []) == {}


async def test_updating_a_link_keeps_when_it_was_created(store: Store, clock: Clock) -> None:
    async with store.write(ROOM) as tx:
        await tx.upsert_link(Link("l-1", hybrid_id="h-1", outlook_change_key="ck-1"))
    created = clock.now
    clock.advance(60)
    async with store.write(ROOM) as tx:
        link = await tx.get_link("l-1")
        assert link is not None
        await tx.upsert_link(replace(link, outlook_change_key="ck-2", state="canceled"))

    link = await store.get_link(ROOM, "l-1")
    assert link is not None
    assert (link.outlook_change_key, link.state) == ("ck-2", "canceled")
    assert (link.created_at, link.updated_at) == (created, clock.now)
    assert await store.links(ROOM, state="active") == []
    assert [lk.link_id for lk in await store.links(ROOM, state="canceled")] == ["l-1"]


async def test_a_link_given_up_on_can_be_removed(store: Store) -> None:
    async with store.write(ROOM) as tx:
        await tx.upsert_link(Link("l-1", hybrid_id="h-1"))
    async with store.write(ROOM) as tx:
        assert await tx.delete_link("l-1") is True
        assert await tx.delete_link("l-1") is False
        # The identity is free again: a later, correct link can claim it.
        await tx.upsert_link(Link("l-2", hybrid_id="h-1"))
    link = await store.link_by_hybrid_id(ROOM, "h-1")
    assert link is not None and link.link_id == "l-2"


async def test_the_room_of_a_hybrid_booking_is_found_across_rooms(
    store: Store, clock: Clock
) -> None:
    """A webhook may name only the booking: the store says which room's round should run."""
    assert await store.room_of_hybrid_booking("h-1") is None
    async with store.write(ROOM.upper()) as tx:
        await tx.upsert_link(Link("l-1", hybrid_id="h-1"))
    async with store.write(OTHER_ROOM) as tx:
        await tx.upsert_link(series_occurrence("l-mon", MONDAY))
    assert await store.room_of_hybrid_booking("h-1") == ROOM
    # an occurrence is found by its series' id too
    assert await store.room_of_hybrid_booking("h-series") == OTHER_ROOM
    assert await store.room_of_hybrid_booking("h-2") is None
    # a booking moved between rooms: the room where it is live wins over where it was canceled
    clock.advance(60)
    async with store.write(OTHER_ROOM) as tx:
        await tx.upsert_link(Link("l-2", hybrid_id="h-1"))
    clock.advance(60)
    async with store.write(ROOM) as tx:
        await tx.upsert_link(Link("l-1", hybrid_id="h-1", state="canceled"))
    assert await store.room_of_hybrid_booking("h-1") == OTHER_ROOM


async def test_links_written_many_at_once_still_refuse_a_second_claim_and_name_it(
    store: Store,
) -> None:
    """A round's links go in one statement; a conflict among them still names the link."""
    async with store.write(ROOM) as tx:
        await tx.upsert_links([Link("l-1", hybrid_id="h-1"), Link("l-2", hybrid_id="h-2")])
    assert [link.link_id for link in await store.links(ROOM)] == ["l-1", "l-2"]

    expected = re.escape("link l-4 would claim Hybrid booking h-1, already linked by l-1")
    with pytest.raises(LinkConflict, match=expected):
        async with store.write(ROOM) as tx:
            await tx.upsert_links([Link("l-3", hybrid_id="h-3"), Link("l-4", hybrid_id="h-1")])
    assert [link.link_id for link in await store.links(ROOM)] == ["l-1", "l-2"]
