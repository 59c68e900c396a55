"""Logging set-up and every Prometheus metric roomd exports: one place to look for both.

Metric names follow Prometheus conventions (``roomd_`` prefix, counters end in ``_total``,
durations in ``_seconds``). Labels are bounded: a room label takes values from the config file,
never a booking or event id.

Per-room metrics are :mod:`roomd.roommetrics` families (a dict entry per series, not
``prometheus_client``'s locked child objects: 65 MB at 10,000 rooms before), and none is a
histogram: a room's round duration is a gauge of its last round, beside one histogram over all
rooms. The rest, bounded by a handful of label values, are ``prometheus_client``'s own.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TextIO

import structlog
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.metrics_core import Metric

from roomd.roommetrics import RoomCounter, RoomGauge

# ``*_created`` series double every counter and say nothing an operator asks about.
disable_created_metrics()  # type: ignore[no-untyped-call]

REGISTRY = CollectorRegistry(auto_describe=True)

# --- daemon and rounds -------------------------------------------------------------------------
ROUNDS = RoomCounter(
    "roomd_rounds_total",
    "Sync rounds run, by room and outcome.",
    ["room", "outcome"],
    registry=REGISTRY,
)
# One histogram over every room's rounds (quantiles of the whole fleet), and per room only the
# last round's duration: a per-room histogram was 13 series a room, 39 MB at 10,000 rooms.
ROUND_DURATION = Histogram(
    "roomd_round_duration_seconds",
    "Duration of a sync round, over all rooms (roomd_round_last_duration_seconds per room).",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
    registry=REGISTRY,
)
ROUND_LAST_DURATION = RoomGauge(
    "roomd_round_last_duration_seconds",
    "Duration of the room's last sync round.",
    ["room"],
    registry=REGISTRY,
)
LAST_SUCCESS = RoomGauge(
    "roomd_last_success_timestamp_seconds",
    "Unix time of the room's last successful round.",
    ["room"],
    registry=REGISTRY,
)
ROOMS_CONFIGURED = Gauge("roomd_rooms", "Rooms in the running configuration.", registry=REGISTRY)
# The running config's bound, so an alert on the last-success gauge fires when /readyz turns 503
# and follows the config instead of repeating its number.
STALE_AFTER = Gauge(
    "roomd_stale_after_seconds",
    "sync.stale_after_seconds: a room with no successful round for longer is stale.",
    registry=REGISTRY,
)
CONFIG_RELOADS = Counter(
    "roomd_config_reloads_total",
    "Configuration reloads (SIGHUP), by outcome.",
    ["outcome"],
    registry=REGISTRY,
)
CHANGES = RoomCounter(
    "roomd_changes_total",
    "Booking changes synced, by room, direction and outcome (created, updated, canceled, "
    "released, linked, skipped, not_expressible: a series one side cannot hold in its zone).",
    ["room", "direction", "outcome"],
    registry=REGISTRY,
)
WRITES = RoomCounter(
    "roomd_writes_total",
    "Writes roomd attempted, by room, the side written (hybrid, outlook) and outcome: done, "
    "retry (failed, tried again later) or dead (given up; roomd status shows it).",
    ["room", "side", "outcome"],
    registry=REGISTRY,
)
CONFLICTS = RoomCounter(
    "roomd_conflicts_total",
    "Bookings changed on both sides since the last sync.",
    ["room"],
    registry=REGISTRY,
)
BREAKER_TRIPS = RoomCounter(
    "roomd_breaker_trips_total",
    "Rounds stopped by the mass-delete breaker.",
    ["room"],
    registry=REGISTRY,
)
BREAKER_TRIPPED = RoomGauge(
    "roomd_breaker_tripped",
    "1 while the mass-delete breaker holds the room's cancellations back (until sync --force).",
    ["room"],
    registry=REGISTRY,
)
OUTBOX_DEPTH = RoomGauge(
    "roomd_outbox_depth", "Planned writes not yet applied.", ["room"], registry=REGISTRY
)
OUTBOX_OLDEST_AGE = RoomGauge(
    "roomd_outbox_oldest_age_seconds",
    "Age of the oldest planned write not yet applied.",
    ["room"],
    registry=REGISTRY,
)
PROPAGATION_LAG = Histogram(
    "roomd_propagation_lag_seconds",
    "Time from a change on one side to its write on the other.",
    ["direction"],
    buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900),
    registry=REGISTRY,
)

# --- Graph client ------------------------------------------------------------------------------
GRAPH_REQUESTS = Counter(
    "roomd_graph_requests_total",
    "Requests sent to Microsoft Graph, by HTTP status.",
    ["status"],
    registry=REGISTRY,
)
GRAPH_THROTTLED = Counter(
    "roomd_graph_throttled_total", "Graph answers of 429 (throttled).", registry=REGISTRY
)
GRAPH_RETRIES = Counter(
    "roomd_graph_retries_total",
    "Graph requests retried, by reason.",
    ["reason"],
    registry=REGISTRY,
)
GRAPH_TOKEN_REFRESHES = Counter(
    "roomd_graph_token_refreshes_total",
    "Graph access tokens asked of the identity platform, by outcome: ok, error, or held "
    "(a refused credential not asked again before its backoff ends).",
    ["outcome"],
    registry=REGISTRY,
)

# --- Hybrid client and webhooks ----------------------------------------------------------------
HYBRID_REQUESTS = Counter(
    "roomd_hybrid_requests_total",
    "Requests sent to the Hybrid API, by HTTP status.",
    ["status"],
    registry=REGISTRY,
)
HYBRID_RETRIES = Counter(
    "roomd_hybrid_retries_total",
    "Hybrid requests retried, by reason.",
    ["reason"],
    registry=REGISTRY,
)
HYBRID_TOKEN_REFRESHES = Counter(
    "roomd_hybrid_token_refreshes_total",
    "Access tokens requested from the Hybrid token endpoint, by outcome: ok, error, or held "
    "(a refused credential not asked again before its backoff ends).",
    ["outcome"],
    registry=REGISTRY,
)
WEBHOOKS = Counter(
    "roomd_webhooks_total",
    "Webhook deliveries received, by source and outcome (accepted, duplicate, ignored, "
    "bad_signature, stale, bad_body, overloaded, not_ready).",
    ["source", "outcome"],
    registry=REGISTRY,
)


_PER_ROOM = (
    ROUNDS,
    ROUND_LAST_DURATION,
    LAST_SUCCESS,
    CHANGES,
    WRITES,
    CONFLICTS,
    BREAKER_TRIPS,
    BREAKER_TRIPPED,
    OUTBOX_DEPTH,
    OUTBOX_OLDEST_AGE,
)


def forget_room(room: str) -> None:
    """Drop a removed room's series: a frozen last-success gauge would fire staleness alerts
    for a room that no longer exists."""
    for metric in _PER_ROOM:
        metric.forget(room)


def round_done(room: str, outcome: str, duration: float) -> None:
    """A room's round ended: counted by outcome, its duration in the fleet's histogram and in
    the room's last-duration gauge."""
    ROUNDS.labels(room=room, outcome=outcome).inc()
    ROUND_DURATION.observe(duration)
    ROUND_LAST_DURATION.labels(room=room).set(duration)


class _OneFamily:
    """A registry of one collected family, for ``generate_latest``."""

    def __init__(self, family: Metric) -> None:
        self._family = family

    def collect(self) -> Iterator[Metric]:
        yield self._family


SCRAPE_PART = 1000
"""Series of a per-room family formatted at a time by :func:`exposition`."""


def exposition() -> Iterator[bytes]:
    """``/metrics`` in Prometheus' text format, in parts.

    The same bytes as ``generate_latest(REGISTRY)`` (its own formatting), but never all at
    once: at 10,000 rooms a scrape is 4.3 MB of text, and building it whole (a sample object
    and a line per series, then their join, then its encoding) raised roomd's peak RSS by
    19 MB. A per-room family goes out ``SCRAPE_PART`` series at a time, its HELP and TYPE
    lines once."""
    for metric in globals().values():
        if isinstance(metric, RoomCounter | RoomGauge):
            header = b""
            for part in metric.collect_parts(SCRAPE_PART):
                text = generate_latest(_OneFamily(part))
                if not header:
                    header = generate_latest(_OneFamily(metric._empty()))
                    yield text
                else:
                    yield text.removeprefix(header)
        elif isinstance(metric, MetricWrapperBase):
            yield generate_latest(metric)


@dataclass(frozen=True)
class Exported:
    """One metric family as ``/metrics`` serves it: what README and contrib/ are checked against."""

    name: str  # as scraped: counters end in _total; a histogram's series add _bucket/_sum/_count
    type: str  # counter, gauge, histogram
    labels: frozenset[str]  # without a histogram's le


def exported() -> list[Exported]:
    """Every metric family defined here, in definition order."""
    found = []
    for metric in globals().values():
        if isinstance(metric, RoomCounter | RoomGauge):
            found.append(Exported(metric.name, metric.kind, frozenset(metric.labelnames)))
        elif isinstance(metric, MetricWrapperBase):
            kind = str(metric._type)
            name = metric._name + ("_total" if kind == "counter" else "")
            found.append(Exported(name, kind, frozenset(metric._labelnames)))
    return found


def configure_logging(level: str = "info", stream: TextIO | None = None) -> None:
    """JSON lines on stdout for journald; a readable console format when stdout is a terminal.

    Libraries that log through the standard library (APScheduler, aiohttp, asyncio) go through
    the same renderer, so every line on stdout has one format; they are kept at WARNING and up.
    """
    out = stream if stream is not None else sys.stdout
    numeric = logging.getLevelNamesMapping()[level.upper()]
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any
    if out.isatty():
        renderer = structlog.dev.ConsoleRenderer()
    else:
        renderer = structlog.processors.JSONRenderer()
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(max(numeric, logging.WARNING))


def get_logger(**bound: Any) -> Any:
    """A structlog logger with ``bound`` context (``component=``, ``room=``).

    It stays lazy: the configuration is read when a line is logged, not when the logger is made,
    so module-level loggers created at import follow ``configure_logging`` called later (a
    ``.bind()`` here would freeze whatever configuration was current at import time).
    """
    return structlog.get_logger("roomd", **bound)
