"""The layers of design.md section 2 hold: every module imports only layers inside its own.

config → store → clients (graph, hybrid) → sync engine → daemon → composition root → operator
commands → CLI. The simulators (``roomd.sim``) share no code with roomd's clients and engine,
either way: two independent implementations catch each other's mistakes, shared code agrees
with itself by construction. The engine's decisions (``sync/decide.py``, ``sync/model.py``)
import no I/O at all.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "roomd"

RANK = {
    "roomd": 0,  # the package root: __version__
    "roomd.utc": 0,
    "roomd.observe": 0,
    "roomd.roommetrics": -1,  # observe's per-room metric families: imports nothing of roomd
    "roomd.refusals": 0,  # one hold on a refused credential, used by both clients
    "roomd.aiotransport": 0,  # httpx's API over aiohttp's pool, used by both clients
    "roomd.entra": 0,  # what to do about a refused credential: the daemon and doctor
    "roomd.heap": 0,  # gives the C heap's free pages back (malloc_trim): the daemon
    "roomd.config": 1,
    "roomd.store": 2,
    "roomd.graph": 3,
    "roomd.hybrid": 3,
    "roomd.sync": 4,
    "roomd.sdnotify": 5,
    "roomd.web": 5,
    "roomd.ticks": 5,  # which rooms the daemon polls together (pure)
    "roomd.daemon": 6,
    "roomd.compose": 7,
    "roomd.manual": 8,
    "roomd.doctor": 8,
    "roomd.demo": 8,
    "roomd.rooms": 8,  # `roomd rooms`: map room mailboxes to Hybrid resources
    "roomd.cli": 9,
    "roomd.__main__": 10,
}
SIM = "roomd.sim"
MAY_RUN_SIMULATORS = {"roomd.demo", "roomd.cli"}  # `roomd demo` and `roomd sim` start them
PURE = (
    "sync/decide.py",
    "sync/model.py",
    "sync/rule_shift.py",
    "doctor/_decide.py",
    "rooms/_match.py",
)
NOT_IN_PURE = (
    "asyncio",
    "httpx",
    "aiohttp",
    "aiosqlite",
    "msal",
    "time",
    "roomd.graph",
    "roomd.hybrid",
)


def _layer(module: str) -> str:
    parts = module.split(".")
    return "roomd" if len(parts) == 1 else ".".join(parts[:2])


def _imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "roomd":  # `from roomd import utc`; `__version__` is the root's
                found += [
                    "roomd" if alias.name.startswith("__") else f"roomd.{alias.name}"
                    for alias in node.names
                ]
            else:
                found.append(node.module)
        elif isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
    return found


def _modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        out.append((".".join(p for p in parts if p != "__init__"), path))
    return out


def test_every_package_has_a_layer() -> None:
    missing = {_layer(m) for m, _ in _modules()} - set(RANK) - {SIM}
    assert not missing, f"give these a layer in tests/test_layers.py: {sorted(missing)}"


def test_each_layer_imports_only_inner_layers() -> None:
    wrong = []
    for module, path in _modules():
        source = _layer(module)
        for target in (_layer(t) for t in _imports(path) if t.split(".")[0] == "roomd"):
            if target == source:
                continue
            if SIM in (source, target):
                if source == SIM or source not in MAY_RUN_SIMULATORS:
                    wrong.append(f"{module} imports {target}: the simulators share no code")
                continue
            if RANK[target] >= RANK[source]:
                wrong.append(f"{module} (layer {RANK[source]}) imports {target} ({RANK[target]})")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("relative", PURE)
def test_the_decision_table_does_no_io(relative: str) -> None:
    imported = _imports(ROOT / relative)
    bad = [m for m in imported if m.startswith(NOT_IN_PURE)]
    assert not bad, f"{relative} imports {bad}: decisions stay pure (no I/O, no clock)"
    assert "datetime.now" not in (ROOT / relative).read_text()


def test_the_rule_catches_an_upward_import(tmp_path: Path) -> None:
    """The check itself can fail: a store module importing the daemon is reported."""
    bad = tmp_path / "bad.py"
    bad.write_text("from roomd.daemon import Daemon\n")
    source, target = "roomd.store", _layer(_imports(bad)[0])
    assert RANK[target] >= RANK[source]
