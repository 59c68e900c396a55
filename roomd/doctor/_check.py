"""One check's outcome: what was checked, how it went, what was found and how to fix it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    """``skip`` is "not checked" (no meetings to compare, no token to ask with): neither a pass
    nor a failure, and said so rather than passed off as healthy."""

    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "check": self.name,
            "status": str(self.status),
            "detail": self.detail,
            "fix": self.fix,
        }


def passed(name: str, detail: str) -> Check:
    return Check(name, Status.PASS, detail)


def warned(name: str, detail: str, fix: str | None = None) -> Check:
    return Check(name, Status.WARN, detail, fix)


def failed(name: str, detail: str, fix: str | None = None) -> Check:
    return Check(name, Status.FAIL, detail, fix)


def skipped(name: str, detail: str, fix: str | None = None) -> Check:
    return Check(name, Status.SKIP, detail, fix)
