"""Which rooms of a group due their poll can be read together, and what the reads found.

The daemon polls rooms in groups (the rooms due in one slice of the poll interval). An idle room
costs one calendarView delta GET, and twenty of those fit in one JSON ``$batch`` request
(json-batching.md), while the Hybrid side of every room is read by one organization-wide listing
per poll interval (``modifiedAt[$gte]`` without ``resourceId``). Only a room that shows something
(a delta change, a Hybrid change, owed writes, a meeting awaiting the room's answer, an operator
flag, a new window, a 410) goes on to a whole round of its own (``RoomSync.run_round``).

This module decides, without I/O, which rooms of a group may take the batched read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from roomd.store import DeltaState

FULL_FLAGS = frozenset({"force", "full"})
"""Operator flags that a whole round acts on (``roomd sync --force`` / ``--full``)."""


@dataclass(frozen=True)
class PollPlan:
    """``batch``: room key -> stored delta link, read through ``$batch``; ``whole``: room keys
    that need a whole round (no stored link, another window, an operator flag, owed work)."""

    batch: dict[str, str] = field(default_factory=dict)
    whole: set[str] = field(default_factory=set)


@dataclass
class PollResult:
    """What a group poll found: ``idle`` room keys read with nothing new (their new delta
    links deferred, ``Store.defer_delta``), ``whole`` room keys that need a whole round."""

    idle: list[str] = field(default_factory=list)
    whole: set[str] = field(default_factory=set)


def plan_poll(
    rooms: Iterable[str],
    window: tuple[datetime, datetime],
    deltas: Mapping[str, DeltaState],
    flags: Mapping[str, Mapping[str, str]],
    with_work: set[str],
) -> PollPlan:
    """Split a group of room keys: a room reads through the batch only when a plain next delta
    round is all its whole round would do first (a stored link for today's window, no flag
    asking for more, no owed writes or awaited answers)."""
    out = PollPlan()
    for key in rooms:
        stored = deltas.get(key)
        if (
            stored is None
            or not stored.complete
            or (stored.window_start, stored.window_end) != window
            or key in with_work
            or FULL_FLAGS & set(flags.get(key, {}))
        ):
            out.whole.add(key)
        else:
            out.batch[key] = stored.delta_link
    return out
