"""The report: one line per check (status, name, what was found, the fix), or JSON."""

from __future__ import annotations

import json
from collections import Counter

from roomd.doctor._check import Check, Status

LABELS = {Status.PASS: "PASS", Status.WARN: "WARN", Status.FAIL: "FAIL", Status.SKIP: "SKIP"}
NAME_WIDTH = 44


def render_text(checks: list[Check]) -> list[str]:
    width = min(NAME_WIDTH, max((len(c.name) for c in checks), default=0))
    lines = []
    for c in checks:
        fix = f" — fix: {c.fix}" if c.fix and c.status != Status.PASS else ""
        lines.append(f"{LABELS[c.status]}  {c.name.ljust(width)}  {c.detail}{fix}")
    counts = Counter(c.status for c in checks)
    lines.append(
        f"roomd doctor: {counts[Status.PASS]} passed, "
        f"{counts[Status.WARN]} warning{'' if counts[Status.WARN] == 1 else 's'}, "
        f"{counts[Status.FAIL]} failed, {counts[Status.SKIP]} not checked"
    )
    return lines


def render_json(checks: list[Check]) -> str:
    return json.dumps(
        {
            "ok": not any(c.status == Status.FAIL for c in checks),
            "checks": [c.as_json() for c in checks],
        },
        indent=2,
        ensure_ascii=False,
    )
