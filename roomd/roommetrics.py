"""Per-room Prometheus counters and gauges kept in plain dicts, exposed at scrape time.

Why not ``prometheus_client.Counter(..., ["room"])``: it keeps one child object per label set,
each with its own lock and value object (a histogram one per bucket too), about 700 bytes a
room and metric; at 10,000 rooms roomd's per-room metrics took 65 MB of its RSS (bench/README.md,
section 1). Here a family is one dict from label values to a float, about 100 bytes a series,
and a :class:`prometheus_client.registry.Collector` turns it into the same exposition at scrape
time: the same names, labels, HELP and TYPE lines an operator's queries and alerts read.

The call sites keep ``prometheus_client``'s shape, ``FAMILY.labels(room=..., ...).inc()`` or
``.set(v)``: ``labels`` returns a throw-away handle. One lock per family (not per series) makes
each update atomic, so a worker thread may update a family while the event loop scrapes it.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Final

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

Key = str | tuple[str, ...]
"""A series' label values in ``labelnames`` order; the bare value when there is one label."""


class _Family(Collector):
    """One metric family with a ``room`` label: its series in one dict, under one lock."""

    kind: str = ""

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str],
        registry: CollectorRegistry,
    ) -> None:
        if "room" not in labelnames:
            raise ValueError(f"{name}: a per-room family needs a room label")
        self.name: Final = name
        self.documentation: Final = documentation
        self.labelnames: Final = tuple(labelnames)
        self._room_at = self.labelnames.index("room")
        self._values: dict[Key, float] = {}
        self._lock = threading.Lock()
        registry.register(self)

    def labels(self, **labels: str) -> _Series:
        """The series of these label values (every label of the family, by name)."""
        if labels.keys() != set(self.labelnames):
            raise ValueError(f"{self.name}: labels {sorted(labels)} != {list(self.labelnames)}")
        if len(self.labelnames) == 1:
            return _Series(self, labels[self.labelnames[0]])
        return _Series(self, tuple(labels[n] for n in self.labelnames))

    def value(self, **labels: str) -> float | None:
        """The series' current value, None when it has none (tests and benchmarks read it)."""
        key = self.labels(**labels).key
        with self._lock:
            return self._values.get(key)

    def forget(self, room: str) -> None:
        """Drop every series of ``room`` (a room removed from the config)."""
        with self._lock:
            gone = [k for k in self._values if self._room_of(k) == room]
            for key in gone:
                del self._values[key]

    def __len__(self) -> int:
        return len(self._values)

    def _room_of(self, key: Key) -> str:
        return key if isinstance(key, str) else key[self._room_at]

    def _add(self, key: Key, amount: float) -> None:
        with self._lock:
            old = self._values.get(key)
            self._values[_interned(key) if old is None else key] = (old or 0.0) + amount

    def _set(self, key: Key, value: float) -> None:
        with self._lock:
            if key in self._values:
                self._values[key] = float(value)
            else:
                self._values[_interned(key)] = float(value)

    def _empty(self) -> CounterMetricFamily | GaugeMetricFamily:
        raise NotImplementedError

    def describe(self) -> Iterable[Metric]:
        return [self._empty()]

    def collect(self) -> Iterable[Metric]:
        return list(self.collect_parts(len(self._values) or 1))[:1]

    def collect_parts(self, size: int) -> Iterator[Metric]:
        """The family's series ``size`` at a time, each part a family of the same name (one
        snapshot, taken at once): a scrape of 10,000 rooms need not hold every sample object
        of a family at the same time. At least one part, empty when the family is."""
        with self._lock:
            series = list(self._values.items())
        for start in range(0, max(len(series), 1), size):
            family = self._empty()
            for key, value in series[start : start + size]:
                family.add_metric([key] if isinstance(key, str) else list(key), value)
            yield family


class RoomCounter(_Family):
    """A counter per room (and other labels): only ever goes up."""

    kind = "counter"

    def _empty(self) -> CounterMetricFamily:
        return CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)


class RoomGauge(_Family):
    """A gauge per room (and other labels): its last set value."""

    kind = "gauge"

    def _empty(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(self.name, self.documentation, labels=self.labelnames)


class _Series:
    """One series of a family, as ``labels()`` hands it out: made per update, never kept."""

    __slots__ = ("family", "key")

    def __init__(self, family: _Family, key: Key) -> None:
        self.family = family
        self.key = key

    def inc(self, amount: float = 1.0) -> None:
        """Counters only go up; a gauge may be increased too."""
        if amount < 0 and isinstance(self.family, RoomCounter):
            raise ValueError(f"{self.family.name}: counters can only be increased")
        self.family._add(self.key, amount)

    def set(self, value: float) -> None:
        if isinstance(self.family, RoomCounter):
            raise TypeError(f"{self.family.name}: a counter cannot be set")
        self.family._set(self.key, value)


def _interned(key: Key) -> Key:
    """One copy of a room's name across families (the store hands out a new str per row)."""
    if isinstance(key, str):
        return sys.intern(key)
    return tuple(sys.intern(v) for v in key)
