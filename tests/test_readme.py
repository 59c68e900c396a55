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


def test_readme_documents_every_metric_the_daemon_exports() -> None:
    from roomd import observe

    text = (ROOT / "README.md").read_text()
    for metric in observe.REGISTRY.collect():
        name = metric.name + ("_total" if metric.type == "counter" else "")
        assert name in text, f"README does not mention {name}"
