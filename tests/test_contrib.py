"""contrib/: the Prometheus alerts and the Grafana dashboard an operator installs beside roomd.

They promise to watch roomd's real metrics, so every ``roomd_*`` name and label they use is checked
against the metric objects in ``roomd.observe`` (what ``/metrics`` serves). promtool checks the
rules and runs their unit tests; the dashboard is loaded through Grafana Labs' own dashboard model
(grafana-foundation-sdk, generated from Grafana 11.6's schema), since no Grafana server runs here.
The metrics the alerts rely on and that roomd derives from its database (the bound, the breaker,
the last success after a restart) are checked on a real daemon against the simulators.
"""

from __future__ import annotations

import enum
import inspect
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import typing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from grafana_foundation_sdk.cog import encoder, plugins
from grafana_foundation_sdk.cog import runtime as cogruntime
from grafana_foundation_sdk.models import dashboard as grafana
from support.daemon import DaemonProcess
from support.sims import SimWorld, sim_world

from roomd import observe

ROOT = Path(__file__).resolve().parent.parent
ALERTS = ROOT / "contrib" / "prometheus" / "alerts.yml"
ALERT_TESTS = ROOT / "contrib" / "prometheus" / "alerts.test.yml"
DASHBOARD = ROOT / "contrib" / "grafana" / "roomd.json"
RUNBOOK = ROOT / "contrib" / "README.md"

# A metric name and, when it has one, its label matchers: roomd_rounds_total{room=~"$room"}
SELECTOR = re.compile(r"\b(roomd_[a-z0-9_]+)\b(?:\{([^}]*)\})?")
MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)\s*\"")
GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
# Labels Prometheus adds to every scraped series.
TARGET_LABELS = {"instance", "job"}


def exported() -> dict[str, set[str]]:
    """Every series name roomd's registry can serve, with its labels (histograms' ``le`` too)."""
    registered = {family.name for family in observe.REGISTRY.collect()}
    names: dict[str, set[str]] = {}
    for metric in observe.exported():
        assert metric.name.removesuffix("_total") in registered, f"{metric.name} not registered"
        labels = set(metric.labels)
        if metric.type == "histogram":
            for suffix in ("_sum", "_count"):
                names[metric.name + suffix] = labels
            names[metric.name + "_bucket"] = labels | {"le"}
        else:
            names[metric.name] = labels
    return names


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def dashboard_json() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def panels() -> list[dict[str, Any]]:
    return [p for p in dashboard_json()["panels"] if p["type"] != "row"]


def dashboard_queries() -> list[tuple[str, str]]:
    """(where, PromQL) for every panel target and every query variable."""
    found = [
        (f"panel {p['title']!r} target {t['refId']}", t["expr"])
        for p in panels()
        for t in p["targets"]
    ]
    for variable in dashboard_json()["templating"]["list"]:
        if variable["type"] == "query":
            found.append((f"variable ${variable['name']}", variable["query"]["query"]))
    return found


def problems_with_names(where: str, expr: str, known: dict[str, set[str]]) -> list[str]:
    """Metric names roomd does not export, and labels those metrics do not carry."""
    problems = []
    used: set[str] = set()
    for name, matchers in SELECTOR.findall(expr):
        if name not in known:
            problems.append(f"{where}: {name} is not a metric roomd exports")
            continue
        used |= known[name]
        for label in MATCHER.findall(matchers):
            if label not in known[name] | TARGET_LABELS | {"__name__"}:
                problems.append(f"{where}: {name} has no label {label!r}")
    for grouping in GROUPING.findall(expr):
        for label in filter(None, (x.strip() for x in grouping.split(","))):
            if label not in used | TARGET_LABELS:
                problems.append(f"{where}: no metric in the query has the label {label!r}")
    return problems


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("CI"):
            raise AssertionError("promtool missing in CI (.ci/run installs Debian's prometheus)")
        pytest.skip("promtool not installed (Debian package prometheus)")
    return found


# --- Prometheus alerts ---------------------------------------------------------------------------
def test_alert_rules_pass_promtool_check() -> None:
    done = subprocess.run(
        [promtool(), "check", "rules", str(ALERTS)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in done.stdout


def test_every_alert_fires_in_its_unit_test_and_none_fires_on_a_healthy_daemon() -> None:
    done = subprocess.run(
        [promtool(), "test", "rules", ALERT_TESTS.name],
        cwd=ALERT_TESTS.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    names = {rule["alert"] for rule in alert_rules()}
    cases = yaml.safe_load(ALERT_TESTS.read_text())["tests"]
    fired = {
        check["alertname"]
        for case in cases
        for check in case["alert_rule_test"]
        if check["exp_alerts"]
    }
    assert fired == names, f"alerts no test case fires: {sorted(names - fired)}"
    # each fires only after its `for:` (a check before it expects silence), and a healthy daemon
    # is checked against every alert at once
    silent_first = {
        case["alert_rule_test"][0]["alertname"]
        for case in cases
        if not case["alert_rule_test"][0]["exp_alerts"]
    }
    assert names <= silent_first
    healthy = [case for case in cases if "healthy" in case["name"]]
    assert len(healthy) == 1
    assert {c["alertname"] for c in healthy[0]["alert_rule_test"] if not c["exp_alerts"]} == names


def test_every_alert_says_how_bad_what_and_where_to_read_more() -> None:
    runbook = RUNBOOK.read_text()
    headings = {h.lower() for h in re.findall(r"^### (Roomd\w+)", runbook, re.M)}
    known = exported()
    fired_labels = {
        check["alertname"]: alert["exp_labels"]
        for case in yaml.safe_load(ALERT_TESTS.read_text())["tests"]
        for check in case["alert_rule_test"]
        for alert in check["exp_alerts"]
    }
    for rule in alert_rules():
        name = rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning"}, name
        assert rule.get("for"), f"{name}: no `for:`; one bad scrape would page"
        notes = rule["annotations"]
        assert notes["summary"] and notes["description"], name
        assert notes["runbook"] == f"contrib/README.md#{name.lower()}", name
        assert name.lower() in headings, f"contrib/README.md has no '### {name}' section"
        # an alert over per-room metrics says which room, in its labels and its summary
        metrics = {metric for metric, _ in SELECTOR.findall(rule["expr"])}
        if metrics and all("room" in known[m] for m in metrics):
            assert "room" in fired_labels[name], f"{name}: the alert loses the room label"
        if "room" in fired_labels[name]:
            assert "{{ $labels.room }}" in notes["summary"], f"{name}: the summary names no room"


def test_alerts_use_only_metrics_and_labels_roomd_exports() -> None:
    known = exported()
    problems = [
        p
        for rule in alert_rules()
        for p in problems_with_names(f"alert {rule['alert']}", rule["expr"], known)
    ]
    assert problems == []
    # and the unit tests feed the rules series roomd really has
    series = [
        s["series"]
        for case in yaml.safe_load(ALERT_TESTS.read_text())["tests"]
        for s in case["input_series"]
    ]
    assert [p for s in series for p in problems_with_names("alerts.test.yml", s, known)] == []


def test_the_name_check_catches_a_misspelt_metric_and_label() -> None:
    known = exported()
    expr = 'sum by (rooms) (rate(roomd_round_total{room="a"}[5m])) + roomd_outbox_depth{rom="a"}'
    assert problems_with_names("x", expr, known) == [
        "x: roomd_round_total is not a metric roomd exports",
        "x: roomd_outbox_depth has no label 'rom'",
        "x: no metric in the query has the label 'rooms'",
    ]


# --- Grafana dashboard ----------------------------------------------------------------------------
def _hints(model: type) -> dict[str, Any]:
    return typing.get_type_hints(model, vars(sys.modules[model.__module__]))


def schema_problems(value: Any, hint: Any, path: str) -> list[str]:
    """What in a decoded dashboard does not have the type Grafana's schema gives it.

    The SDK's ``from_json`` copies values as they come; its classes carry the schema's types
    (enums, literals, optional numbers) as annotations, which this walks."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is typing.Any or hint is object:
        # panel options and field config are typed per panel plugin: decoded by its model
        model = type(value)
        return schema_problems(value, model, path) if hasattr(model, "from_json") else []
    if origin is typing.Union:
        results = [schema_problems(value, arm, path) for arm in args]
        if any(not r for r in results):
            return []
        # the arm the value has the shape of tells what is wrong deeper inside it
        deeper = [r for r in results if all(p.split(":")[0] != path for p in r)]
        return deeper[0] if deeper else [f"{path}: {value!r} is not a {hint}"]
    if value is None:
        return []  # an optional field left out
    if origin is typing.Literal:
        return [] if value in args else [f"{path}: {value!r} is not one of {args}"]
    if origin is list:
        if not isinstance(value, list):
            return [f"{path}: {value!r} is not a list"]
        return [p for i, v in enumerate(value) for p in schema_problems(v, args[0], f"{path}[{i}]")]
    if origin is dict:
        if not isinstance(value, dict):
            return [f"{path}: {value!r} is not an object"]
        return [p for k, v in value.items() for p in schema_problems(v, args[1], f"{path}.{k}")]
    if inspect.isclass(hint) and issubclass(hint, enum.Enum):
        if isinstance(value, hint) or value in {m.value for m in hint}:
            return []
        return [f"{path}: {value!r} is not one of {[m.value for m in hint]}"]
    if hint is bool or hint is str:
        return [] if isinstance(value, hint) else [f"{path}: {value!r} is not a {hint.__name__}"]
    if hint is int or hint is float:
        number = (int,) if hint is int else (int, float)
        if isinstance(value, number) and not isinstance(value, bool):
            return []
        return [f"{path}: {value!r} is not a {hint.__name__}"]
    if inspect.isclass(hint):
        if not isinstance(value, hint):
            return [f"{path}: {value!r} is not a {hint.__name__}"]
        if not hasattr(value, "to_json"):
            return []
        return [
            p
            for name, sub in _hints(type(value)).items()
            for p in schema_problems(getattr(value, name, None), sub, f"{path}.{name}")
        ]
    return []


def dropped(ours: Any, theirs: Any, path: str = "$") -> list[str]:
    """Keys of our JSON that Grafana's model does not know (it drops them), and changed values."""
    if isinstance(ours, dict):
        if not isinstance(theirs, dict):
            return [f"{path}: became {theirs!r}"]
        return [
            p
            for key, value in ours.items()
            for p in (
                dropped(value, theirs[key], f"{path}.{key}")
                if key in theirs
                else [f"{path}.{key}: not in Grafana's dashboard schema"]
            )
        ]
    if isinstance(ours, list):
        if not isinstance(theirs, list) or len(ours) != len(theirs):
            return [f"{path}: became {theirs!r}"]
        return [
            p
            for i, pair in enumerate(zip(ours, theirs, strict=True))
            for p in dropped(*pair, f"{path}[{i}]")
        ]
    return [] if ours == theirs else [f"{path}: {ours!r} became {theirs!r}"]


def load_in_grafana_schema(data: dict[str, Any]) -> list[str]:
    plugins.register_default_plugins()
    model = grafana.Dashboard.from_json(data)
    back = json.loads(json.dumps(model, cls=encoder.JSONEncoder))
    problems = dropped(data, back) + schema_problems(model, grafana.Dashboard, "$")
    known_panels = cogruntime.Runtime().panelcfg_variants
    for panel in model.panels or []:
        if isinstance(panel, grafana.RowPanel):
            continue
        if panel.type_val not in known_panels:
            problems.append(f"panel {panel.title!r}: no panel plugin {panel.type_val!r}")
        if isinstance(panel.options, dict):
            problems.append(f"panel {panel.title!r}: options not decoded by the panel's model")
        for target in panel.targets or []:
            if isinstance(target, cogruntime.UnknownDataquery):
                problems.append(f"panel {panel.title!r}: a target of no known data source type")
    return problems


def test_dashboard_loads_in_grafanas_dashboard_schema() -> None:
    data = dashboard_json()
    assert load_in_grafana_schema(data) == []
    assert data["uid"] == "roomd" and data["title"] and data["schemaVersion"] >= 39


def test_the_schema_check_catches_unknown_keys_wrong_types_and_enum_values() -> None:
    data = dashboard_json()
    panel = next(p for p in data["panels"] if p["type"] == "timeseries")
    panel["gridPos"]["h"] = "8"
    panel["options"]["legend"]["displayMode"] = "sideways"
    panel["fieldConfig"]["defaults"]["custom"]["lineWidht"] = 2
    panel["targets"][0]["exp"] = panel["targets"][0].pop("expr")
    data["graphTooltip"] = 7
    problems = load_in_grafana_schema(data)
    assert any(p.endswith("grid_pos.h: '8' is not a int") for p in problems), problems
    assert any("display_mode: 'sideways' is not one of" in p for p in problems), problems
    assert any(p.endswith("custom.lineWidht: not in Grafana's dashboard schema") for p in problems)
    assert any(p.endswith("targets[0].exp: not in Grafana's dashboard schema") for p in problems)
    assert any(p.startswith("$.graph_tooltip: 7") for p in problems), problems


def test_dashboard_queries_use_only_metrics_and_labels_roomd_exports() -> None:
    known = exported()
    queries = dashboard_queries()
    assert [p for where, expr in queries for p in problems_with_names(where, expr, known)] == []
    # what an operator opens it for is there
    text = " ".join(expr for _, expr in queries)
    for wanted in (
        "roomd_rounds_total",
        "roomd_round_duration_seconds_bucket",
        "roomd_round_last_duration_seconds",
        "roomd_propagation_lag_seconds_bucket",
        "roomd_changes_total",
        "roomd_conflicts_total",
        "roomd_outbox_depth",
        "roomd_outbox_oldest_age_seconds",
        "roomd_breaker_trips_total",
        "roomd_graph_requests_total",
        "roomd_graph_throttled_total",
        "roomd_hybrid_requests_total",
        "roomd_last_success_timestamp_seconds",
    ):
        assert wanted in text, f"no panel shows {wanted}"
    for quantile in ("0.5", "0.95", "0.99"):
        assert f"histogram_quantile({quantile}, sum by (direction, le)" in text


def test_dashboard_queries_are_promql_prometheus_accepts(tmp_path: Path) -> None:
    """Each query, with Grafana's variables filled in as Grafana would, as a recording rule for
    promtool, which parses it with Prometheus's own parser."""
    filled = {"$__rate_interval": "5m", '"$instance"': '".*"', '"$room"': '".*"'}
    rules = []
    for n, (_, expr) in enumerate(q for q in dashboard_queries() if "label_values" not in q[1]):
        for variable, value in filled.items():
            expr = expr.replace(variable, value)
        assert "$" not in expr, f"a variable promtool cannot stand in for: {expr}"
        rules.append({"record": f"roomd_dashboard:query{n}", "expr": expr})
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    done = subprocess.run(
        [promtool(), "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_dashboard_queries_follow_the_data_source_instance_and_room_pickers() -> None:
    data = dashboard_json()
    variables = {v["name"]: v for v in data["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert {"instance", "room"} <= variables.keys()
    known = exported()
    source = {"type": "prometheus", "uid": "${datasource}"}
    for where, expr in dashboard_queries():
        for name, matchers in SELECTOR.findall(expr):
            if where == "variable $instance":
                continue
            assert 'instance=~"$instance"' in matchers, f"{where}: {name} ignores $instance"
            if "room" in known[name] and where != "variable $room":
                assert 'room=~"$room"' in matchers, f"{where}: {name} ignores $room"
    for variable in variables.values():
        if variable["type"] == "query":
            assert variable["datasource"] == source, variable["name"]
    for panel in panels():
        assert panel["datasource"] == source, panel["title"]
        assert all(t["datasource"] == source for t in panel["targets"]), panel["title"]
        assert panel.get("description"), f"panel {panel['title']!r} says nothing about itself"


def test_dashboard_panels_tile_the_grid_without_overlapping() -> None:
    taken: dict[tuple[int, int], str] = {}
    ids = [p["id"] for p in dashboard_json()["panels"]]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    for panel in dashboard_json()["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in taken, f"{panel['title']!r} overlaps {taken[(x, y)]!r}"
                taken[(x, y)] = panel["title"]


# --- the metrics the alerts stand on, on a real daemon --------------------------------------------
@pytest.fixture
def world() -> Iterator[SimWorld]:
    with sim_world() as w:
        yield w


def scrape(daemon: DaemonProcess) -> dict[str, float]:
    """``/metrics`` as {'name{labels in alphabetical order}': value}."""
    samples = {}
    for line in httpx.get(daemon.url("/metrics"), timeout=10).text.splitlines():
        if line and not line.startswith("#"):
            series, value = line.rsplit(" ", 1)
            name, _, labels = series.partition("{")
            if labels:
                pairs = sorted(labels.rstrip("}").split('",'))
                series = name + "{" + '",'.join(p.rstrip('"') for p in pairs) + '"}'
            samples[series] = float(value)
    return samples


def wait_metrics(
    daemon: DaemonProcess, probe: Callable[[dict[str, float]], bool], what: str
) -> dict[str, float]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        samples = scrape(daemon)
        if probe(samples):
            return samples
        time.sleep(0.2)
    raise AssertionError(f"not seen within 30 s: {what}\n{samples}")


def test_a_room_that_fails_after_a_restart_is_still_seen_as_stale(
    tmp_path: Path, world: SimWorld
) -> None:
    """The alert on the last success needs the series to outlive a restart, the bound to be the
    config's, and a refused Hybrid secret to be counted."""
    config = world.write_config(tmp_path)
    config.write_text(config.read_text().replace("[sync]\n", "[sync]\nstale_after_seconds = 42\n"))
    room = f'room="{world.tenant.rooms[0].email}"'
    last = f"roomd_last_success_timestamp_seconds{{{room}}}"
    daemon = DaemonProcess(config).start()
    try:
        synced = wait_metrics(
            daemon,
            lambda s: last in s and f"roomd_breaker_tripped{{{room}}}" in s,
            "a successful round and the gauges from the database",
        )
        assert synced["roomd_stale_after_seconds"] == 42
        assert synced[f"roomd_breaker_tripped{{{room}}}"] == 0
        assert synced['roomd_hybrid_token_refreshes_total{outcome="ok"}'] >= 1
        daemon.signal(signal.SIGTERM)
        assert daemon.wait_exit() == 0
        stopped_at = time.time()
        (tmp_path / "hybrid-client-secret").write_text("revoked\n")
        daemon = DaemonProcess(config).start()
        failing = wait_metrics(
            daemon,
            lambda s: (
                s.get('roomd_hybrid_token_refreshes_total{outcome="error"}', 0) >= 2
                and f'roomd_rounds_total{{outcome="error",{room}}}' in s
                and last in s
            ),
            "refused Hybrid token requests, failed rounds, and the stored last success",
        )
        assert failing[last] <= stopped_at  # the stored success, not a new one
        assert failing[last] >= synced[last] - 1
        assert f'roomd_rounds_total{{outcome="ok",{room}}}' not in failing
        assert "revoked" not in httpx.get(daemon.url("/metrics"), timeout=10).text
    finally:
        daemon.stop()
