"""roomd's per-room metric families (roomd.roommetrics) serve what prometheus_client's own
Counter and Gauge would: an operator's queries, alerts and dashboard cannot tell them apart."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from roomd import observe
from roomd.roommetrics import RoomCounter, RoomGauge


def _both(kind: str) -> tuple[str, str]:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    if kind == "counter":
        mine: RoomCounter | RoomGauge = RoomCounter(
            "x_changes_total", "Changes.", ["room", "outcome"], registry=ours
        )
        ref: Counter | Gauge = Counter(
            "x_changes_total", "Changes.", ["room", "outcome"], registry=theirs
        )
        for m in (mine, ref):
            m.labels(room="a@x", outcome="created").inc()
            m.labels(room="a@x", outcome="created").inc(2)
            m.labels(room='b"\\@x', outcome="skipped").inc(0.5)
    else:
        mine = RoomGauge("x_depth", "Depth.", ["room"], registry=ours)
        ref = Gauge("x_depth", "Depth.", ["room"], registry=theirs)
        for m in (mine, ref):
            m.labels(room="a@x").set(3)
            m.labels(room="a@x").set(1)
            m.labels(room="b@x").set(0)
    return generate_latest(ours).decode(), generate_latest(theirs).decode()


@pytest.mark.parametrize("kind", ["counter", "gauge"])
def test_exposition_is_prometheus_clients_own(kind: str) -> None:
    ours, theirs = _both(kind)
    assert ours == theirs


def test_a_removed_room_leaves_no_series_and_counters_only_go_up() -> None:
    registry = CollectorRegistry()
    rounds = RoomCounter("x_rounds_total", "Rounds.", ["room", "outcome"], registry=registry)
    rounds.labels(room="a@x", outcome="ok").inc()
    rounds.labels(room="b@x", outcome="ok").inc()
    rounds.forget("a@x")
    text = generate_latest(registry).decode()
    assert 'room="a@x"' not in text and 'x_rounds_total{outcome="ok",room="b@x"} 1.0' in text
    with pytest.raises(ValueError):
        rounds.labels(room="b@x", outcome="ok").inc(-1)
    with pytest.raises(ValueError):
        rounds.labels(room="b@x")


def test_a_round_is_counted_timed_for_the_fleet_and_kept_as_the_rooms_last() -> None:
    room = "roommetrics-test@contoso.com"
    count = observe.REGISTRY.get_sample_value("roomd_round_duration_seconds_count") or 0.0
    observe.round_done(room, "ok", 2.0)
    observe.round_done(room, "ok", 0.25)
    assert (
        observe.REGISTRY.get_sample_value("roomd_rounds_total", {"room": room, "outcome": "ok"})
        == 2.0
    )
    assert observe.REGISTRY.get_sample_value("roomd_round_duration_seconds_count") == count + 2
    last = observe.REGISTRY.get_sample_value("roomd_round_last_duration_seconds", {"room": room})
    assert last == 0.25
    observe.forget_room(room)
    assert observe.ROUND_LAST_DURATION.value(room=room) is None


def test_metrics_served_in_parts_are_prometheus_clients_whole_text(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rooms = [f"exposition-{i}@contoso.com" for i in range(5)]
    for room in rooms:
        observe.round_done(room, "ok", 1.5)
    observe.GRAPH_REQUESTS.labels(status="200").inc()
    monkeypatch.setattr(observe, "SCRAPE_PART", 2)
    text = b"".join(observe.exposition())
    assert text == generate_latest(observe.REGISTRY)
    assert text.count(b"# TYPE roomd_rounds_total counter") == 1
    for room in rooms:
        observe.forget_room(room)
