"""A refused credential is not offered again faster than a capped backoff, whatever asks.

With a revoked Hybrid secret, a daemon with 5 rooms polling every second made ~100 token requests
in 30 s: every room's round asked the token endpoint again. An identity provider counts those as
failed sign-ins (Entra ID may lock the app out or throttle the tenant), and none of them can
succeed until someone fixes the credential. So after a refusal (an answer from the token endpoint
such as ``invalid_client``; not a network error or a 5xx, which the retry policy in
``hybrid/transport.py`` and ``graph/http.py`` handles) the credential is held back: 5 s, then 10,
20, ... up to 5 min between attempts. Every token request in between fails at once with the
refusal that started the hold. A success ends it, and so does a config reload (SIGHUP), which may
bring a new secret or follow a fix made in Entra ID or Hybrid.

One gate per token source, and the daemon has one source per service, so the schedule holds
across rooms. Pure state and arithmetic: the clock is injected, nothing here does I/O.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["FIRST_HOLD_S", "MAX_HOLD_S", "Hold", "RefusalGate", "forgive_all"]

FIRST_HOLD_S = 5.0
MAX_HOLD_S = 300.0

_reloads = 0

R = TypeVar("R")


def forgive_all() -> None:
    """A config reload: every gate may try its credential again at once."""
    global _reloads
    _reloads += 1


@dataclass(frozen=True)
class Hold(Generic[R]):
    """The refusal in force (what the endpoint answered), and how long until the next attempt."""

    refusal: R
    retry_in_s: float


class RefusalGate(Generic[R]):
    """Spaces the attempts of one credential after a refusal: a doubling, capped hold."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        first_s: float = FIRST_HOLD_S,
        max_s: float = MAX_HOLD_S,
    ) -> None:
        self._clock = clock
        self._first = first_s
        self._max = max_s
        self._refusal: R | None = None
        self._hold_s = 0.0
        self._until = 0.0
        self._reloads = _reloads

    def held(self) -> Hold[R] | None:
        """The refusal still in force, or None when the credential may be tried now."""
        if self._reloads != _reloads:
            self.succeeded()
        if self._refusal is None:
            return None
        left = self._until - self._clock()
        return Hold(self._refusal, left) if left > 0 else None

    def refused(self, refusal: R) -> Hold[R]:
        """The endpoint refused the credential: hold it back, longer each time in a row."""
        self._hold_s = self._first if not self._hold_s else min(self._hold_s * 2, self._max)
        self._refusal = refusal
        self._until = self._clock() + self._hold_s
        self._reloads = _reloads
        return Hold(refusal, self._hold_s)

    def succeeded(self) -> None:
        """A token came back (or the config was reloaded): no hold, the schedule starts over."""
        self._refusal = None
        self._hold_s = 0.0
        self._until = 0.0
        self._reloads = _reloads
