"""Found by the series property search (ROOMD_PROPERTY_SEARCH=1, 150 examples, seed
60910328181463162964249053092429731821, outlook_wins, 11:25 Paris time), fixed: an organizer
who cancelled one occurrence of a synced series retimes the series and then retimes it back.
Outlook drops a rescheduled series' exceptions, cancelled occurrences too (Outlook warns that
changes to individual occurrences will be lost; series.py ``_rescheduled_away`` and the Graph
simulator have it so), but Hybrid kept its exdate: the outbox wrote Outlook's new rule keeping
every exdate the series had (outbox ``_hybrid_update``), so the exdate made for the old time
outlived the first retime and cancelled the occurrence again once the series was back at that
time.

* no round between the two retimes: the series reads unchanged, the occurrence reads
  "regular" again in Outlook and cancelled in Hybrid; roomd wrote nothing, recorded both sides
  as regular, and the room held that day in Outlook while Hybrid showed it free, for good. Now
  an occurrence last synced cancelled that Outlook holds again has its exdate lifted (series.py
  ``_lift_exdate``, outbox ``_lift_exdate``);
* a round between them: the second round read Hybrid's stale exdate as a member's cancellation
  and cancelled the organizer's occurrence, which Outlook had given back. Now the update that
  writes Outlook's reschedule lifts the exdates it dropped (series.py ``_dropped_exdates``,
  payload ``lift``), keeping Outlook's cancelled occurrences, those a member added since the
  last sync and the final ones.

Minimal replay of the falsifying example (a weekly series instead of its split one). The
search that found it (ROOMD_PROPERTY_SEARCH=1 ROOMD_PROPERTY_EXAMPLES=150
--hypothesis-seed=60910328181463162964249053092429731821 -k every_series) still fails on
3f35ccc with this example and passes with the fix."""

from __future__ import annotations

from pathlib import Path

import pytest
from sync.test_properties_series import PEOPLE, SeriesMachine, replay


@pytest.mark.parametrize("round_between", [False, True], ids=["at_once", "round_between"])
def test_a_series_retimed_and_back_keeps_the_occurrence_its_reschedule_gave_back(
    tmp_path: Path, round_between: bool
) -> None:
    def steps(m: SeriesMachine) -> None:
        m.outlook_create(organizer=PEOPLE[0], pick=0, daily=False, count=5, days=2, offset=30)
        m.settle()
        m.outlook_occurrence(pick=0, which=2, what="cancel", offset=0)
        m.settle()
        m.outlook_series(pick=0, what="retime", offset=90, at=0)
        if round_between:
            m.settle()
        m.outlook_series(pick=0, what="retime", offset=30, at=0)

    replay(tmp_path, "outlook_wins", steps)
