"""The Hybrid client's look-up caches forget what has expired even when nobody asks for it again:
at 10,000 rooms the initial sync's one look-up per meeting otherwise stayed for ever."""

from __future__ import annotations

from roomd.hybrid.ttlcache import TTLCache


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_expired_entries_nobody_reads_again_are_swept_out() -> None:
    clock = Clock()
    cache: TTLCache[str, int] = TTLCache(100_000, 60.0, clock=clock)
    for i in range(10_000):
        cache.put(f"meeting-{i}", i)
    assert len(cache) == 10_000 and cache.get("meeting-7") == 7

    clock.now = 61.0  # all expired; nobody asks for them again
    cache.prune()
    assert len(cache) == 0
    cache.put("later", 1)  # a put also sweeps, at most once per TTL
    assert cache.get("later") == 1 and len(cache) == 1


def test_sweeping_keeps_live_entries_and_the_size_bound() -> None:
    clock = Clock()
    cache: TTLCache[int, int] = TTLCache(3, 10.0, clock=clock)
    cache.put(1, 1)
    clock.now = 5.0
    cache.put(2, 2)
    clock.now = 12.0  # 1 expired, 2 not
    cache.prune()
    assert 1 not in cache and cache.get(2) == 2
    for key in (3, 4, 5):
        cache.put(key, key)
    assert len(cache) == 3 and 2 not in cache  # least recently used out
