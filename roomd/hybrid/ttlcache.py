"""A small bounded LRU map with per-entry expiry, for member look-ups and webhook de-duplication.

Bounded both ways (size and age) so that a flood of distinct keys can never grow roomd's memory.
Expired entries are swept out (``prune``, at most once per ``ttl``, also on ``put``), not only
dropped when their key is read again: at 10,000 rooms the initial sync's look-ups otherwise
stayed until the LRU bound pushed them out, i.e. for ever (bench/README.md, RSS).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["TTLCache"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TTLCache(Generic[K, V]):
    """LRU eviction beyond ``maxsize``; entries older than ``ttl`` seconds vanish."""

    def __init__(
        self, maxsize: int, ttl: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if maxsize < 1:
            raise ValueError(f"TTLCache: maxsize must be at least 1, found {maxsize}")
        if ttl <= 0:
            raise ValueError(f"TTLCache: ttl must be positive, found {ttl}")
        self._data: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._maxsize = maxsize
        self._ttl = ttl
        self._clock = clock
        self._next_prune = clock() + ttl

    def get(self, key: K) -> V | None:
        """The live value for ``key``, or None (expired entries are dropped on the way)."""
        item = self._data.get(key)
        if item is None:
            return None
        expires, value = item
        if expires <= self._clock():
            del self._data[key]
            return None
        self._data.move_to_end(key)
        return value

    def __contains__(self, key: K) -> bool:
        return self.get(key) is not None

    def prune(self) -> None:
        """Drop every expired entry; does nothing when it already did within the last ``ttl``,
        so an entry outlives its expiry by at most ``ttl`` while the cache is used."""
        now = self._clock()
        if now < self._next_prune:
            return
        self._next_prune = now + self._ttl
        stale = [key for key, (expires, _) in self._data.items() if expires <= now]
        for key in stale:
            del self._data[key]

    def put(self, key: K, value: V) -> None:
        """Store ``value``; evict the least recently used entry when full."""
        self.prune()
        self._data[key] = (self._clock() + self._ttl, value)
        self._data.move_to_end(key)
        while len(self._data) > self._maxsize:
            self._data.popitem(last=False)

    def discard(self, key: K) -> None:
        """Forget ``key`` if present."""
        self._data.pop(key, None)

    def clear(self) -> None:
        """Forget everything."""
        self._data.clear()

    def __len__(self) -> int:
        return len(self._data)
