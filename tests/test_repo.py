"""The repository stands alone: nothing it ships or tests names a file outside it.

The Graph samples, the Hybrid booking schema and the briefs the code cites live in the repository
(tests/fixtures/, docs/). A path to a machine's shared folder works on one machine only, so a
citation or a fixture path that leaves the repository fails here rather than on someone else's
checkout.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHECKED = ("roomd/", "tests/", "bench/", "docs/", "config/", "systemd/", "README.md")
# Spelled in two pieces so that this file does not name them itself.
OUTSIDE = ("/" + "work/", "../" + "shared")
GRAPH_FIXTURES = ROOT / "tests" / "fixtures" / "graph"
# A fixture opened by name: fixture(<name>) or _fixture(<name>) with a string literal
OPENED = re.compile(r"\b_?fixture\(\s*[\"']([^\"']+)[\"']")
# An in-repo path named in prose or code: under tests/fixtures/ or docs/<name>.md
NAMED = re.compile(r"(?<![\w/.-])((?:tests/fixtures|docs)/[\w./-]*[\w])")


def _files() -> list[Path]:
    """Tracked files (and new ones git does not ignore) under the checked paths."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z", "--", *CHECKED],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    paths = {ROOT / name for name in listed.split("\0") if name}
    return sorted(p for p in paths if p.is_file())


def _texts() -> dict[str, str]:
    texts = {}
    for path in _files():
        data = path.read_bytes()
        if b"\0" in data:
            continue
        try:
            texts[path.relative_to(ROOT).as_posix()] = data.decode()
        except UnicodeDecodeError:
            continue
    return texts


def test_no_file_names_a_path_outside_the_repository() -> None:
    found = [
        f"{name}:{number}: {line.strip()}"
        for name, text in _texts().items()
        for number, line in enumerate(text.splitlines(), 1)
        if any(outside in line for outside in OUTSIDE)
    ]
    assert found == [], "copy the file into the repository and cite that copy:\n" + "\n".join(found)


def test_every_graph_fixture_the_tests_open_exists() -> None:
    opened = {
        (name, fixture)
        for name, text in _texts().items()
        if name.startswith("tests/") and name.endswith(".py")
        for fixture in OPENED.findall(text)
    }
    assert opened, "no fixture(...) call found: has the loader been renamed?"
    missing = sorted(
        f"{name}: {fixture}" for name, fixture in opened if not (GRAPH_FIXTURES / fixture).is_file()
    )
    assert missing == []


def test_every_fixture_and_doc_path_named_exists() -> None:
    missing = sorted(
        f"{name}: {path}"
        for name, text in _texts().items()
        for path in NAMED.findall(text)
        if not (ROOT / path.rstrip("/.")).exists()
    )
    assert missing == []


def test_fixture_sources_are_recorded() -> None:
    """Each fixture folder says where its files come from, and every file is in its table."""
    for folder in ("graph", "hybrid"):
        readme = (GRAPH_FIXTURES.parent / folder / "README.md").read_text()
        for path in sorted((GRAPH_FIXTURES.parent / folder).rglob("*.json")):
            assert path.name in readme, f"tests/fixtures/{folder}/README.md: no row for {path.name}"
