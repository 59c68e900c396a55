"""config/roomd.example.toml is valid and documents every key roomd accepts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from roomd.config import load_config
from roomd.config._schema import SECTIONS, RoomTable

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "roomd.example.toml"
ENV = {
    "ROOMD_GRAPH_CLIENT_SECRET": "g",
    "ROOMD_HYBRID_CLIENT_SECRET": "h",
    "ROOMD_HYBRID_WEBHOOK_SECRET": "w",
}


def test_example_loads() -> None:
    settings = load_config(EXAMPLE, ENV)
    assert settings.graph.client_secret is not None
    assert settings.hybrid.webhook_secret is not None
    assert [room.mailbox for room in settings.rooms] == [
        "room-4a@contoso.com",
        "room-4b@contoso.com",
    ]
    assert settings.state.path == Path("/var/lib/roomd/roomd.sqlite3")


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
