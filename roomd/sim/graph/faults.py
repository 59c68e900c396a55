"""Throttling and injected faults, per mailbox or global.

Throttling follows contrib concepts/throttling-limits.md ("Limits per app ID and mailbox
combination": 10,000 requests per 10 minutes; 4 concurrent requests) and concepts/throttling.md
(429 with ``Retry-After`` in seconds; an older sample shows ``Retry-After: 2.128``). The
MailboxConcurrency body is the one reported in magodo/terraform-provider-outlook #21.
Injected 503/504 follow concepts/errors.md; dropped connections and slow answers simulate the
network (best-practices-concept.md: retry over a new connection). ``drop`` closes the connection
before the request is carried out; ``lose_answer`` carries it out, then closes the connection
without answering (the client cannot tell the two apart).
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from roomd.sim.graph.clock import SimClock

FAULT_KINDS = ("status", "slow", "drop", "lose_answer")
TARGETS = ("graph", "token", "any")
DEFAULT_ERRORS = {
    429: ("ApplicationThrottled", "Application is over its MailboxConcurrency limit."),
    500: ("InternalServerError", "An internal server error occurred."),
    502: ("BadGateway", "Bad gateway."),
    503: ("ServiceUnavailable", "The service is temporarily unavailable. Please retry later."),
    504: ("GatewayTimeout", "The gateway did not receive a response within the time limit."),
}
_ids = itertools.count(1)


@dataclass
class FaultRule:
    kind: str = "status"
    status: int = 503
    retry_after: str | None = None
    delay_s: float = 0.0
    mailbox: str | None = None  # lower-case address; None = every request
    count: int | None = 1  # requests it applies to; None = until cleared
    method: str | None = None
    path_contains: str | None = None
    target: str = "graph"
    code: str | None = None
    message: str | None = None
    id: int = field(default_factory=lambda: next(_ids))

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"fault kind must be one of {FAULT_KINDS}, got {self.kind!r}")
        if self.target not in TARGETS:
            raise ValueError(f"fault target must be one of {TARGETS}, got {self.target!r}")
        if self.kind == "status" and not 400 <= self.status <= 599:
            raise ValueError(f"fault status must be 400-599, got {self.status}")
        if self.count is not None and self.count < 1:
            raise ValueError(f"fault count must be positive or null, got {self.count}")
        if self.delay_s < 0:
            raise ValueError(f"fault delay_s must be >= 0, got {self.delay_s}")
        if self.retry_after is not None:
            try:
                float(self.retry_after)
            except ValueError as exc:
                raise ValueError(
                    f"fault retry_after must be seconds (e.g. '2.128'), got {self.retry_after!r}"
                ) from exc
        if self.mailbox is not None:
            self.mailbox = self.mailbox.lower()

    def matches(self, target: str, method: str, path: str, mailbox: str | None) -> bool:
        if self.target != "any" and self.target != target:
            return False
        if self.mailbox is not None and self.mailbox != mailbox:
            return False
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return not (self.path_contains is not None and self.path_contains not in path)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "status": self.status,
            "retry_after": self.retry_after,
            "delay_s": self.delay_s,
            "mailbox": self.mailbox,
            "count": self.count,
            "method": self.method,
            "path_contains": self.path_contains,
            "target": self.target,
        }


@dataclass
class Verdict:
    """What to do with a request before (or instead of) handling it."""

    status: int | None = None
    code: str = ""
    message: str = ""
    retry_after: str | None = None
    delay_s: float = 0.0
    drop: bool = False
    lose_answer: bool = False


class Faults:
    def __init__(self, clock: SimClock) -> None:
        self.clock = clock
        self.rules: list[FaultRule] = []
        self.concurrency_limit: int | None = 4
        self.concurrency_retry_after = "1"
        self.budget: int | None = 10_000
        self.budget_window = timedelta(minutes=10)
        self.inflight: dict[tuple[str, str], int] = {}
        self.history: dict[tuple[str, str], deque[datetime]] = {}
        self.throttled = 0

    def add(self, rule: FaultRule) -> FaultRule:
        self.rules.append(rule)
        return rule

    def clear(self) -> None:
        self.rules.clear()

    def injected(
        self, target: str, method: str, path: str, mailbox: str | None, allow_drop: bool = True
    ) -> Verdict | None:
        for rule in self.rules:
            if not rule.matches(target, method, path, mailbox):
                continue
            if rule.kind in ("drop", "lose_answer") and not allow_drop:
                continue
            if rule.count is not None:
                rule.count -= 1
                if rule.count <= 0:
                    self.rules.remove(rule)
            if rule.kind == "drop":
                return Verdict(drop=True)
            if rule.kind == "lose_answer":
                return Verdict(lose_answer=True)
            if rule.kind == "slow":
                return Verdict(delay_s=rule.delay_s)
            code, message = DEFAULT_ERRORS.get(rule.status, ("ServiceError", "Injected fault."))
            return Verdict(
                status=rule.status,
                code=rule.code or code,
                message=rule.message or message,
                retry_after=rule.retry_after,
                delay_s=rule.delay_s,
            )
        return None

    def admit(self, app: str, mailbox: str) -> Verdict | None:
        """Concurrency and 10-minute budget per (app, mailbox); None = go ahead."""
        key = (app, mailbox)
        if (
            self.concurrency_limit is not None
            and self.inflight.get(key, 0) >= self.concurrency_limit
        ):
            self.throttled += 1
            return Verdict(
                429,
                "ApplicationThrottled",
                "Application is over its MailboxConcurrency limit.",
                self.concurrency_retry_after,
            )
        if self.budget is not None:
            now = self.clock.now()
            hist = self.history.setdefault(key, deque())
            while hist and hist[0] <= now - self.budget_window:
                hist.popleft()
            if len(hist) >= self.budget:
                wait = (hist[0] + self.budget_window - now).total_seconds()
                self.throttled += 1
                return Verdict(
                    429,
                    "ApplicationThrottled",
                    "Application is over its MailboxRequests limit.",
                    f"{max(wait, 0.001):.3f}",
                )
            hist.append(now)
        return None

    def enter(self, app: str, mailbox: str) -> None:
        key = (app, mailbox)
        self.inflight[key] = self.inflight.get(key, 0) + 1

    def leave(self, app: str, mailbox: str) -> None:
        key = (app, mailbox)
        self.inflight[key] = max(0, self.inflight.get(key, 0) - 1)
