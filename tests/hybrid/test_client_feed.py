"""The change feed against the simulator: whatever happens between two reads, each change to a
booking is reported once, per room or for the whole organization."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from roomd.hybrid import HybridClient
from roomd.hybrid.client import PAGE_LIMIT
from roomd.sim.hybrid import HybridSimulator

from .conftest import HARBOUR, NOW, ROOM_4A, DropProxy, make_config

START = NOW.replace(hour=9) + timedelta(days=2)


async def test_changes_since_reports_new_changes_once(
    sim: HybridSimulator, hybrid: HybridClient
) -> None:
    a = sim.control.create_booking(
        ROOM_4A, START, START + timedelta(hours=1), member="adelev@contoso.com"
    )
    changes, cursor = await hybrid.changes_since(None)
    assert [b.id for b in changes] == [a["_id"]]
    # the newest modifiedAt seen, but no later than the server's clock (its Date, whole seconds)
    # when the listing began; the frozen simulator stamps writes a millisecond apart from NOW on
    assert cursor == min(changes[0].modified_at, NOW)  # type: ignore[type-var]
    hybrid.confirm_changes()
    again, same = await hybrid.changes_since(cursor)
    assert again == [] and same == cursor  # the overlap re-reads, nothing is repeated
    hybrid.confirm_changes()
    sim.control.update_booking(a["_id"], summary="Renamed")
    changes, cursor = await hybrid.changes_since(cursor)
    assert [(b.id, b.summary) for b in changes] == [(a["_id"], "Renamed")]


async def test_changes_since_can_follow_one_room(
    sim: HybridSimulator, hybrid: HybridClient
) -> None:
    sim.control.create_booking(
        ROOM_4A, START, START + timedelta(hours=1), member="adelev@contoso.com"
    )
    h = sim.control.create_booking(
        HARBOUR, START, START + timedelta(hours=1), member="adelev@contoso.com"
    )
    changes, _ = await hybrid.changes_since(None, resource_id=HARBOUR)
    assert [b.id for b in changes] == [h["_id"]]


async def test_a_room_listing_remembers_what_it_delivered_apart_from_the_organizations(
    sim: HybridSimulator, hybrid: HybridClient
) -> None:
    """The daemon lists the whole organization once per interval and sends a room to a round
    of its own only for a version its own listing has not delivered yet."""
    assert hybrid.first_walk_start is None
    a = sim.control.create_booking(
        ROOM_4A, START, START + timedelta(hours=1), member="adelev@contoso.com"
    )
    mine, _ = await hybrid.changes_since(None, resource_id=ROOM_4A)
    assert hybrid.first_walk_start is not None and hybrid.first_walk_start <= NOW
    assert not hybrid.delivered(mine[0], ROOM_4A)  # reported, not yet confirmed
    hybrid.confirm_changes(ROOM_4A)
    # the room's listing delivered it: the organization's listing moves past it without
    # returning it (nobody needs it again, and a first organization listing after a start
    # would otherwise hold every booking the initial sync wrote)
    everywhere, cursor = await hybrid.changes_since(None)
    assert everywhere == [] and cursor is not None
    hybrid.confirm_changes()
    sim.control.update_booking(a["_id"], summary="Renamed")
    everywhere, _ = await hybrid.changes_since(cursor)
    assert [b.id for b in everywhere] == [a["_id"]]
    assert not hybrid.delivered(everywhere[0], ROOM_4A)  # a new version: the room must read it
    assert not hybrid.delivered(everywhere[0])  # the organization's feed was not confirmed


async def test_a_change_on_a_page_already_read_during_a_long_walk_is_not_skipped(
    sim: HybridSimulator, ca_bundle: Path, drop_proxy: DropProxy
) -> None:
    """A listing in creation order (OfficeRnD promises none): the first booking changes after
    its page was read, and the last one a minute later, before its page is read. The cursor must
    not jump to that minute, or the first change would be more than the overlap behind it."""
    sim.control.set_faults(unsorted_listing=1)
    made = [
        sim.control.create_booking(
            ROOM_4A,
            START + timedelta(hours=i),
            START + timedelta(hours=i, minutes=30),
            member="adelev@contoso.com",
        )
        for i in range(PAGE_LIMIT + 1)
    ]
    first, last = made[0]["_id"], made[-1]["_id"]
    async with HybridClient(make_config(sim, ca_bundle, base_url=drop_proxy.url)) as hybrid:
        _, cursor = await hybrid.changes_since(None)
        hybrid.confirm_changes()
        sim.control.advance_clock(60)
        walk_began = sim.control.now()
        pages: list[list[str]] = []

        def during_the_walk(page: Any) -> Any:
            pages.append([b["_id"] for b in page["results"]])
            if len(pages) == 1:
                sim.control.update_booking(first, summary="changed on a page already read")
                sim.control.advance_clock(60)
                sim.control.update_booking(last, summary="changed a minute later")
            return page

        drop_proxy.rewrite = during_the_walk
        changes, cursor = await hybrid.changes_since(cursor)
        hybrid.confirm_changes()
        drop_proxy.rewrite = None
        assert first in pages[0] and last in pages[-1] and len(pages) == 2
        assert [(b.id, b.summary) for b in changes] == [(last, "changed a minute later")]
        assert cursor == walk_began  # not the minute later
        changes, _ = await hybrid.changes_since(cursor)
    assert [(b.id, b.summary) for b in changes] == [(first, "changed on a page already read")]


STEP = st.one_of(
    st.tuples(st.just("create"), st.integers(0, 5)),
    st.tuples(st.just("update"), st.integers(0, 5)),
    st.tuples(st.just("cancel"), st.integers(0, 5)),
    st.tuples(st.just("tick"), st.integers(0, 3)),
    st.tuples(st.just("read"), st.just(0)),
)


@pytest.mark.parametrize("coarse", [0, 1], ids=["ms-timestamps", "coarse-repeating-timestamps"])
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(steps=st.lists(STEP, max_size=14))
async def test_every_change_is_seen_whatever_the_interleaving(
    sim: HybridSimulator, hybrid: HybridClient, coarse: int, steps: list[tuple[str, int]]
) -> None:
    # Coarse: whole-second modifiedAt that repeats between writes, as real systems stamp them.
    sim.control.set_faults(coarse_timestamps=coarse)
    # Each example works in its own week of the calendar and its own feed position.
    sim.control.advance_clock(7 * 24 * 3600)
    base = sim.control.now().replace(hour=9, minute=0, second=0, microsecond=0)
    _, cursor = await hybrid.changes_since(None)
    hybrid.confirm_changes()
    mine: dict[int, str] = {}
    latest: dict[str, tuple[Any, ...]] = {}
    delivered: dict[str, tuple[Any, ...]] = {}
    reported: list[tuple[Any, ...]] = []

    def version(b: dict[str, Any]) -> tuple[Any, ...]:
        return (b["_id"], b["modifiedAt"], b["summary"], b["canceled"])

    async def read(cursor: datetime | None) -> datetime | None:
        changes, cursor = await hybrid.changes_since(cursor)
        hybrid.confirm_changes()
        for b in changes:
            v = (b.id, b.raw["modifiedAt"], b.summary, b.canceled)
            reported.append(v)
            delivered[b.id] = v
        assert delivered == latest
        return cursor

    for kind, slot in [*steps, ("read", 0)]:
        if kind == "create" and slot not in mine:
            start = base + timedelta(days=1, hours=slot)
            made = sim.control.create_booking(
                ROOM_4A, start, start + timedelta(minutes=30), member="adelev@contoso.com"
            )
            mine[slot] = made["_id"]
            latest[made["_id"]] = version(made)
        elif kind == "update" and slot in mine:
            current = sim.control.booking(mine[slot])
            if not current["canceled"]:
                changed = sim.control.update_booking(mine[slot], summary=f"v{len(reported)}")
                latest[changed["_id"]] = version(changed)
        elif kind == "cancel" and slot in mine:
            canceled = sim.control.cancel_booking(mine[slot])
            latest[canceled["_id"]] = version(canceled)
        elif kind == "tick":
            sim.control.advance_clock(slot)
        elif kind == "read":
            cursor = await read(cursor)
    assert len(reported) == len(set(reported))
