"""Fixtures for the config tests: a valid config in a temp directory, secrets in env and files."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

GRAPH_SECRET = "graph-secret-Zq8~vK2"
HYBRID_SECRET = "hybrid-secret-Pw4!nB7"
WEBHOOK_SECRET = "webhook-secret-Lm3#xR9"
SECRETS = (GRAPH_SECRET, HYBRID_SECRET, WEBHOOK_SECRET)

VALID = """\
[graph]
tenant_id = "contoso.onmicrosoft.com"
client_id = "11111111-2222-3333-4444-555555555555"
client_secret = "${GRAPH_SECRET}"

[hybrid]
base_url = "https://hybrid.example"
org = "contoso"
token_url = "https://identity.hybrid.example/oauth/token"
client_id = "roomd"
client_secret_file = "hybrid.secret"

[[rooms]]
hybrid_id = "r1"
mailbox = "room-1@contoso.com"

[[rooms]]
hybrid_id = "r2"
mailbox = "room-2@contoso.com"
"""


def toml_value(value: Any) -> str:
    """A TOML rendering of a value (enough for tests; tomli_w is not a dependency)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, Mapping):
        items = ", ".join(f"{toml_value(k)} = {toml_value(v)}" for k, v in value.items())
        return "{" + items + "}"
    raise TypeError(type(value))


def to_toml(document: Mapping[str, Any]) -> str:
    """Top-level tables as [name], lists of tables as [[name]], anything else inline."""
    head, body = [], []
    for name, value in document.items():
        key = toml_value(name)
        if isinstance(value, Mapping):
            body.append(f"[{key}]")
            body.extend(f"{toml_value(k)} = {toml_value(v)}" for k, v in value.items())
        elif isinstance(value, list) and value and all(isinstance(item, Mapping) for item in value):
            for item in value:
                body.append(f"[[{key}]]")
                body.extend(f"{toml_value(k)} = {toml_value(v)}" for k, v in item.items())
        else:
            head.append(f"{key} = {toml_value(value)}")
    return "\n".join([*head, *body]) + "\n"


@pytest.fixture
def serialize() -> Callable[[Mapping[str, Any]], str]:
    """Turn a document (dict) into TOML text."""
    return to_toml


@pytest.fixture
def valid_document() -> dict[str, Any]:
    import tomllib

    return tomllib.loads(VALID)


@pytest.fixture
def env() -> dict[str, str]:
    return {"GRAPH_SECRET": GRAPH_SECRET, "WEBHOOK_SECRET": WEBHOOK_SECRET}


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    (tmp_path / "hybrid.secret").write_text(HYBRID_SECRET + "\n")
    return tmp_path


@pytest.fixture
def write(config_dir: Path) -> Callable[[str], Path]:
    """Write TOML text as roomd.toml next to the secret files; return its path."""

    def write(text: str) -> Path:
        path = config_dir / "roomd.toml"
        path.write_text(text)
        return path

    return write


@pytest.fixture
def valid_text() -> str:
    return VALID


@pytest.fixture
def check(write: Callable[[str], Path], env: dict[str, str]) -> Callable[[str], list[str]]:
    """The problems check_config reports for this TOML text."""
    from roomd.config import check_config

    return lambda text: check_config(write(text), env)


@pytest.fixture
def edit() -> Callable[..., str]:
    """VALID with replacements applied; each old text must be present, so edits cannot no-op."""

    def edit(*pairs: tuple[str, str], append: str = "") -> str:
        text = VALID
        for old, new in pairs:
            assert old in text, old
            text = text.replace(old, new, 1)
        return text + append

    return edit
