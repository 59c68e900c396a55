"""The README's quick start is the contract with a new user; CI must run what it promises."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def quick_start_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Quick start", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block is not None, "no ```sh block under ## Quick start"
    return [line.strip() for line in block.group(1).splitlines() if line.strip()]


def test_quick_start_is_exactly_two_commands_install_and_demo_then_tests() -> None:
    first, second = quick_start_commands()
    assert "pip install" in first and first.endswith("roomd demo")
    assert "[dev]" in second and "pytest" in second


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    second = quick_start_commands()[1]
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert second in ci_lines, f".ci/run does not run the README's test command: {second}"


def test_ci_runs_the_readme_test_command_with_nothing_installed_outside_the_clone() -> None:
    """A roomd on the developer's or runner's PATH (pip install --user, /usr/local) would hide a
    test that only passes with it there; CI runs the README's command under the system's own
    directories only, after checking that no roomd is found there."""
    second = quick_start_commands()[1]
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    run_at = ci_lines.index(second)
    opened = max((i for i, line in enumerate(ci_lines[:run_at]) if line == "("), default=None)
    assert opened is not None, f".ci/run does not run {second} in a subshell with its own PATH"
    block = ci_lines[opened:run_at]
    paths = [line.removeprefix("export PATH=") for line in block if line.startswith("export PATH=")]
    assert len(paths) == 1, f".ci/run does not set PATH in the block that runs: {second}"
    assert set(paths[0].split(":")) <= {"/usr/bin", "/bin", "/usr/sbin", "/sbin"}, paths[0]
    assert any("command -v roomd" in line for line in block), "no check for a stray roomd"
    assert ci_lines[run_at + 1] == ")", "the README's command must end the restricted block"


def test_readme_documents_every_metric_the_daemon_exports() -> None:
    from roomd import observe

    text = (ROOT / "README.md").read_text()
    for metric in observe.REGISTRY.collect():
        name = metric.name + ("_total" if metric.type == "counter" else "")
        assert name in text, f"README does not mention {name}"


def _metrics_list() -> str:
    text = (ROOT / "README.md").read_text()
    return text.split("Metrics (all `roomd_*`):", 1)[1].split("\n\n", 1)[0]


def test_readme_metrics_list_gives_each_metric_with_its_labels() -> None:
    """An operator writes queries from this list: every label roomd exports, none it does not."""
    from roomd import observe

    listed = dict(re.findall(r"`(roomd_\w+)(?:\{([\w,]*)\})?`", _metrics_list()))
    metrics = observe.exported()
    assert len(metrics) == len(list(observe.REGISTRY.collect()))
    for metric in metrics:
        assert metric.name in listed, f"README's metrics list lacks {metric.name}"
        assert set(filter(None, listed[metric.name].split(","))) == metric.labels, metric.name


def test_readme_commands_table_has_a_row_per_command() -> None:
    import argparse

    from roomd.cli import build_parser

    text = (ROOT / "README.md").read_text()
    table = text.split("\n## Commands", 1)[1].split("\n## ", 1)[0]
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name in sub.choices:
        assert f"| `roomd {name}" in table, f"README's Commands table has no row for {name}"


def test_readme_asks_for_exactly_the_graph_permissions_roomd_uses() -> None:
    """Least privilege: the permission table and Going live list what doctor checks for."""
    from roomd.doctor._decide import OPTIONAL_ROLES, REQUIRED_ROLES

    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Permissions in Microsoft 365", 1)[1].split("\n## ", 1)[0]
    rows = set(re.findall(r"^\| `([\w.]+)` \|", section, re.MULTILINE))
    assert rows == set(REQUIRED_ROLES) | set(OPTIONAL_ROLES)
    step_one = text.split("1. **Register the Entra application.**", 1)[1].split("\n2. ", 1)[0]
    assert "User.Read.All" not in step_one
