"""A series split ("this and following") by the side the conflict rule does not pick, whose new
series is read only in a later round (issue 8, scenarios 3 and 12).

Both sides change one synced series between two rounds; the loser of the room's conflict rule
ends it early (the first half of its "this and following"), and its new series, the second
half, is read a round after the conflict was decided: a Hybrid member's app wrote the two
halves around a round, or the room's booking assistant answered the organizer's new series
after the round that read the series' new end. The winner changed the whole series (a retime)
or split it too. The rule picks the winner's series whole, so the loser's new series goes with
its split, as when both halves are read in one round (series.py ``_split_offs``): no day is
held twice on either side, none is lost.

Also a split that moves the series in the same edit (the first part and the new series at
another time of day): on one side only, both sides follow it; against a change of the whole
series on the other side, it is the loser's split like any other.

Through both simulators and roomd's engine (the series property test's world), about a second
each."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sync.test_properties_series import (
    LENGTH,
    PEOPLE,
    ROOM,
    SeriesMachine,
    SeriesWorld,
    local_day,
    replay,
    wall,
)

from roomd.sim.graph.events import occurrence_starts

DAYS = 12  # a daily series, 12 occurrences
WINNER_AT = 4  # the winner's split removes the 5th occurrence on
LOSER_AT = 6  # the loser's the 7th (its new series does not overlap the winner's original)


def _series(w: SeriesWorld) -> tuple[int, str, Any, Any]:
    """The band's original series on each side (the first: the winner may have split it)."""
    (band,) = w.lineages
    organizer, master = w.organizer_masters(band)[0]
    return band, organizer, master, w.hybrid_masters(band)[0]


async def end_in_outlook(w: SeriesWorld, at: int) -> dict[str, Any]:
    """The organizer ends the series before its ``at``-th occurrence (the first half of
    "this and following"); the room answers. What the second half will book."""
    band, organizer, master, _ = _series(w)
    starts = occurrence_starts(master, master.start + timedelta(days=400))
    recurrence = master.recurrence.as_graph()
    recurrence["range"] = {
        "type": "endDate",
        "startDate": f"{local_day(starts[0]):%Y-%m-%d}",
        "endDate": f"{local_day(starts[at - 1]):%Y-%m-%d}",
        "recurrenceTimeZone": recurrence["range"]["recurrenceTimeZone"],
    }
    r = await w.graph_call(
        "PATCH", f"/users/{organizer}/events/{master.id}", {"recurrence": recurrence}
    )
    assert r.status_code == 200, r.text
    w.graph.control.run_rba()
    w.edited(w.lineages[band], "outlook", f"{organizer} ends the series before {at}")
    return {
        "organizer": organizer,
        "start": wall(local_day(starts[at]), band, 30),
        "subject": master.subject,
        "count": len(starts) - at,
    }


async def begin_in_outlook(w: SeriesWorld, rest: dict[str, Any]) -> None:
    """The organizer's new series (the second half), answered by the room only now."""
    body = w.series_body(rest["start"], rest["subject"], True, rest["count"])
    r = await w.graph_call("POST", f"/users/{rest['organizer']}/events", body)
    assert r.status_code == 201, r.text
    band = next(iter(w.lineages))
    w.edited(w.lineages[band], "outlook", "the organizer's new series")


async def end_in_hybrid(w: SeriesWorld, at: int) -> dict[str, Any]:
    band, _, _, series = _series(w)
    originals = [iv.start for iv in w.hybrid.store.intervals(series, None, None)]
    rule = ";".join(p for p in series.rrule.split(";") if not p.startswith(("COUNT=", "UNTIL=")))
    until = originals[at] - timedelta(seconds=1)
    w.hybrid.control.update_booking(
        series.id,
        recurrence={"rrule": f"{rule};UNTIL={until.astimezone(UTC):%Y%m%dT%H%M%SZ}"},
    )
    w.edited(w.lineages[band], "hybrid", f"its member ends the series before {at}")
    return {
        "resource": series.resource_id,
        "member": series.member,
        "summary": series.summary,
        "start": wall(local_day(originals[at]), band, 30),
        "rrule": f"{rule};COUNT={len(originals) - at}",
    }


async def begin_in_hybrid(w: SeriesWorld, rest: dict[str, Any]) -> None:
    start = rest["start"]
    w.hybrid.control.create_booking(
        rest["resource"],
        start,
        start + LENGTH,
        member=rest["member"],
        summary=rest["summary"],
        rrule=rest["rrule"],
    )
    band = next(iter(w.lineages))
    w.edited(w.lineages[band], "hybrid", "its member's new series")


def days_of(occurrences: list[tuple[datetime, datetime, Any]]) -> list[Any]:
    return [local_day(start) for start, _, _ in occurrences]


async def each_day_once(w: SeriesWorld, days: list[Any], series: int) -> str:
    """The organizer, the room and Hybrid hold each of ``days`` once (none twice, none lost),
    in ``series`` live series on each side. The world's report, for further messages."""
    (band,) = w.lineages
    report = await w.report()
    for held in (w.outlook_view()[0][band], w.hybrid_view()[0][band], w.room_view()[0][band]):
        assert days_of(held) == days, report
    assert len(w.organizer_masters(band)) == series, report
    assert len(w.hybrid_masters(band)) == series, report
    return report


@pytest.mark.parametrize("winner", ["retime", "retitle", "split"])
@pytest.mark.parametrize("rule", ["outlook_wins", "hybrid_wins"])
def test_a_losing_split_whose_new_series_is_read_a_round_late_doubles_no_day(
    tmp_path: Path, rule: str, winner: str
) -> None:
    """The winner retimes the whole series to 08:00, retitles it, or splits it before its
    fifth day (its new series at 08:00); the loser ends it before its seventh day, and its new
    series (at 07:30) is read a round later."""
    winner_split = winner == "split"
    loser = "hybrid" if rule == "outlook_wins" else "outlook"
    ends: dict[str, Callable[[SeriesWorld, int], Any]] = {
        "outlook": end_in_outlook,
        "hybrid": end_in_hybrid,
    }
    begins = {"outlook": begin_in_outlook, "hybrid": begin_in_hybrid}
    rest: dict[str, Any] = {}

    def steps(m: SeriesMachine) -> None:
        m.outlook_create(organizer=PEOPLE[0], pick=0, daily=True, count=DAYS // 3, days=2, offset=0)
        m.settle()
        assert m.world is not None
        days = days_of(m.world.outlook_view()[0][next(iter(m.world.lineages))])
        assert len(days) == DAYS
        change = m.outlook_series if loser == "hybrid" else m.hybrid_series
        change(pick=0, what=winner, offset=60, at=WINNER_AT - 1)

        async def loser_ends(w: SeriesWorld) -> None:
            rest.update(await ends[loser](w, LOSER_AT))

        m.run(loser_ends)
        m.poll()  # the conflict is decided before the loser's new series is read

        async def loser_begins(w: SeriesWorld) -> None:
            await begins[loser](w, rest)

        m.run(loser_begins)
        m.settle()

        async def every_day_once(w: SeriesWorld) -> None:
            report = await each_day_once(w, days, 1 + winner_split)
            # the loser's new series is cancelled, kept as canceled in Hybrid, and audited
            assert w.store is not None
            trail = await w.store.audit_for(ROOM, limit=200)
            assert [a for a in trail if a.action == "conflict" and "split" in a.reason], report

        m.run(every_day_once)

        # that is one new series per split: another the same person books from that day on,
        # on purpose, later, is booked on the other side
        async def another(w: SeriesWorld) -> None:
            later = rest["start"] + timedelta(minutes=60)
            await begins[loser](
                w, {**rest, "start": later, "count": 2, "rrule": "FREQ=DAILY;COUNT=2"}
            )

        m.run(another)
        m.settle()

        async def booked(w: SeriesWorld) -> None:
            (band,) = w.lineages
            report = await w.report()
            assert len(w.organizer_masters(band)) == 2 + winner_split, report
            assert len(w.hybrid_masters(band)) == 2 + winner_split, report
            assert len(w.room_view()[0][band]) == DAYS + 2, report

        m.run(booked)

    replay(tmp_path, rule, steps)


# --- a split that also moves the series ("this and following" with a new time) ---------------


PARIS = ("Romance Standard Time", "Europe/Paris")  # (Windows, IANA): the room's zone
LONDON = ("GMT Standard Time", "Europe/London")


def in_zone(when: datetime, zone: tuple[str, str]) -> dict[str, str]:
    return {
        "dateTime": f"{when.astimezone(ZoneInfo(zone[1])):%Y-%m-%dT%H:%M:%S}",
        "timeZone": zone[0],
    }


async def split_moving(
    w: SeriesWorld, side: str, at: int, offset: int, zone: tuple[str, str] = PARIS
) -> None:
    """One side's "this and following" that also moves the series: the series ends before its
    ``at``-th occurrence and moves ``offset`` minutes into its band, and a new series at that
    time takes over from the ``at``-th day, in one edit (the room answers). ``zone``: the
    organizer's series and its new one run in it from then on, the same instants on the same
    days (Outlook only: Hybrid evaluates every rule in the room's zone)."""
    band, organizer, master, series = _series(w)
    if side == "outlook":
        starts = occurrence_starts(master, master.start + timedelta(days=400))
        recurrence = master.recurrence.as_graph()
        day = [f"{t.astimezone(ZoneInfo(zone[1])):%Y-%m-%d}" for t in starts]
        recurrence["range"] = {
            "type": "endDate",
            "startDate": day[0],
            "endDate": day[at - 1],
            "recurrenceTimeZone": zone[0],
        }
        start = wall(local_day(starts[0]), band, offset)
        body = {
            "start": in_zone(start, zone),
            "end": in_zone(start + LENGTH, zone),
            "recurrence": recurrence,
        }
        r = await w.graph_call("PATCH", f"/users/{organizer}/events/{master.id}", body)
        assert r.status_code == 200, r.text
        rest = wall(local_day(starts[at]), band, offset)
        body = w.series_body(rest, master.subject, True, len(starts) - at)
        body["start"], body["end"] = in_zone(rest, zone), in_zone(rest + LENGTH, zone)
        body["recurrence"]["range"].update(recurrenceTimeZone=zone[0], startDate=day[at])
        r = await w.graph_call("POST", f"/users/{organizer}/events", body)
        assert r.status_code == 201, r.text
        w.graph.control.run_rba()
    else:
        originals = [iv.start for iv in w.hybrid.store.intervals(series, None, None)]
        rule = ";".join(
            p for p in series.rrule.split(";") if not p.startswith(("COUNT=", "UNTIL="))
        )
        until = originals[at] - timedelta(seconds=1)
        start = wall(local_day(originals[0]), band, offset)
        w.hybrid.control.update_booking(
            series.id,
            start=start,
            end=start + LENGTH,
            recurrence={"rrule": f"{rule};UNTIL={until.astimezone(UTC):%Y%m%dT%H%M%SZ}"},
        )
        rest = wall(local_day(originals[at]), band, offset)
        w.hybrid.control.create_booking(
            series.resource_id,
            rest,
            rest + LENGTH,
            member=series.member,
            summary=series.summary,
            rrule=f"{rule};COUNT={len(originals) - at}",
        )
    w.edited(w.lineages[band], side, f"splits the series before {at}, moved by {offset} min")


@pytest.mark.parametrize("both", [False, True], ids=["one_side", "both_sides"])
@pytest.mark.parametrize(
    "rule,zone",
    [("outlook_wins", PARIS), ("hybrid_wins", PARIS), ("hybrid_wins", LONDON)],
    ids=["outlook_wins", "hybrid_wins", "hybrid_wins-to_london"],
)
def test_a_split_that_also_moves_the_series_doubles_and_loses_no_day(
    tmp_path: Path, rule: str, zone: tuple[str, str], both: bool
) -> None:
    """The splitting side (the rule's loser when both sides changed the series) also moves it:
    the first part and the new series at 07:30 instead of 07:00, and for an organizer maybe
    to London's zone (the same instants: 06:30 there; both change their clocks on the same
    day). The other side, when it changed the series too, retimed it whole to 08:00 and
    wins."""
    splitter = "hybrid" if rule == "outlook_wins" else "outlook"

    def steps(m: SeriesMachine) -> None:
        m.outlook_create(organizer=PEOPLE[0], pick=0, daily=True, count=DAYS // 3, days=2, offset=0)
        m.settle()
        assert m.world is not None
        days = days_of(m.world.outlook_view()[0][next(iter(m.world.lineages))])
        if both:
            change = m.outlook_series if splitter == "hybrid" else m.hybrid_series
            change(pick=0, what="retime", offset=60, at=0)

        async def split(w: SeriesWorld) -> None:
            await split_moving(w, splitter, LOSER_AT, 30, zone)

        m.run(split)
        m.settle()

        async def every_day_once(w: SeriesWorld) -> None:
            report = await each_day_once(w, days, 2 - both)
            (band,) = w.lineages
            if splitter == "outlook" and not both:  # the organizer's series in its new zone
                zones = {
                    master.recurrence.as_graph()["range"]["recurrenceTimeZone"]
                    for _, master in w.organizer_masters(band)
                }
                assert zones == {zone[0]}, report

        m.run(every_day_once)

    replay(tmp_path, rule, steps)
