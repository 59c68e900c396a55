"""config/roomd.example.toml is valid and documents every key roomd accepts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from roomd.config import check_config, load_config
from roomd.config._schema import SECTIONS, RoomTable

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "roomd.example.toml"
CREDENTIALS = {
    "graph-client-secret": "g",
    "hybrid-client-secret": "h",
    "hybrid-webhook-secret": "w",
}


def test_example_loads_under_the_unit(tmp_path: Path) -> None:
    """systemd's LoadCredential= sets CREDENTIALS_DIRECTORY; the example reads its secrets there."""
    for name, value in CREDENTIALS.items():
        (tmp_path / name).write_text(value + "\n")
    settings = load_config(EXAMPLE, {"CREDENTIALS_DIRECTORY": str(tmp_path)})
    assert settings.graph.client_secret is not None
    assert settings.graph.client_secret.reveal() == "g"
    assert settings.hybrid.webhook_secret is not None
    assert settings.hybrid.webhook_secret.reveal() == "w"
    assert [room.mailbox for room in settings.rooms] == [
        "room-4a@contoso.com",
        "room-4b@contoso.com",
    ]
    assert settings.state.path == Path("/var/lib/roomd/roomd.sqlite3")


@pytest.mark.skipif(Path("/etc/roomd/credentials").exists(), reason="roomd is installed here")
def test_example_run_by_hand_reads_the_credentials_source_directory() -> None:
    """Without CREDENTIALS_DIRECTORY (roomd sync as root) the default /etc/roomd/credentials is
    read: the problems name those paths, and nothing else is wrong."""
    problems = check_config(EXAMPLE, {})
    assert [problem.split(": ", 1)[1] for problem in problems] == [
        f"{key}: cannot read /etc/roomd/credentials/{name} (no such file) (line {line})"
        for key, name, line in _secret_lines()
    ]


def _secret_lines() -> list[tuple[str, str, int]]:
    lines = EXAMPLE.read_text().splitlines()
    found = []
    section = ""
    for number, line in enumerate(lines, 1):
        if line.startswith("[") and not line.startswith("[["):
            section = line.strip("[]")
        match = re.fullmatch(r'(\w+_file) = "\$\{CREDENTIALS_DIRECTORY:-[^}]*\}/([\w.-]+)"', line)
        if match:
            found.append((f"{section}.{match.group(1)}", match.group(2), number))
    assert len(found) == 3, found
    return found


def _sections(text: str) -> dict[str, str]:
    """The example's text under each table header (the first [[rooms]] block for rooms)."""
    chunks: dict[str, str] = {}
    name = ""
    for line in text.splitlines():
        header = re.fullmatch(r"\[\[?(\w+)\]\]?", line.strip())
        if header:
            name = header.group(1)
            chunks.setdefault(name, "")
            if name == "rooms" and chunks[name]:
                name = "rooms-more"
            continue
        chunks[name] = chunks.get(name, "") + line + "\n"
    return chunks


@pytest.mark.parametrize(
    ("section", "keys"),
    [(name, list(model.model_fields)) for name, model in SECTIONS.items()]
    + [("rooms", list(RoomTable.model_fields))],
)
def test_example_documents_every_key(section: str, keys: list[str]) -> None:
    chunk = _sections(EXAMPLE.read_text())[section]
    for key in keys:
        # set, or shown commented out, and in either case explained by a comment nearby
        match = re.search(rf"^(# )?{key} = .*$", chunk, re.MULTILINE)
        assert match, f"[{section}] {key} is not in the example"
        before = chunk[: match.start()].splitlines()[-1:]
        after = chunk[match.end() :].splitlines()[1:2]
        assert any(line.startswith("#") for line in before + after), f"{key} has no comment"
