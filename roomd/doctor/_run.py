"""Run every check, each side concurrently, and keep a fixed order for the report."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from roomd.config import Settings
from roomd.doctor._check import Check, failed
from roomd.doctor._clock import skew_check
from roomd.doctor._graph import graph_checks
from roomd.doctor._hybrid import hybrid_checks


async def _guarded(what: str, work: Awaitable[list[Check]]) -> list[Check]:
    """An unexpected error ends that side's checks with one line naming it, not a traceback.
    roomd's clients keep secrets and tokens out of their exception messages."""
    try:
        return await work
    except Exception as exc:  # the report must still come out
        return [failed(f"{what} checks", f"stopped: {type(exc).__name__}: {exc}")]


async def _one(check: Awaitable[Check]) -> list[Check]:
    return [await check]


async def run_checks(settings: Settings) -> list[Check]:
    """Graph's checks, then Hybrid's, each led by its clock; all talk to the services at once."""
    g, h = settings.graph, settings.hybrid
    parts = await asyncio.gather(
        _guarded("clock", _one(skew_check("Graph", g.base_url, g.ca_bundle))),
        _guarded("graph", graph_checks(settings)),
        _guarded("clock", _one(skew_check("Hybrid", h.base_url, h.ca_bundle))),
        _guarded("hybrid", hybrid_checks(settings)),
    )
    return [check for part in parts for check in part]


def exit_code(checks: list[Check]) -> int:
    """0 when nothing failed (warnings and unchecked items allowed), 1 otherwise."""
    return 1 if any(c.status == "fail" for c in checks) else 0
