"""One default Hybrid scope: the settings, a client built without them, the contract suite and
the docs ask for the same scopes, and they cover every call roomd's client makes."""

from __future__ import annotations

import re
from pathlib import Path

import roomd.config
import roomd.hybrid.config
from roomd.config import HybridSettings
from roomd.hybrid import HybridClientConfig

DOCS = Path(__file__).resolve().parents[2] / "docs" / "hybrid-api.md"
CONTRACT = Path(__file__).resolve().parents[1] / "contract" / "conftest.py"


def test_the_default_scope_is_defined_once() -> None:
    assert roomd.hybrid.config.DEFAULT_SCOPE is roomd.config.DEFAULT_HYBRID_SCOPE
    # and no other module spells it out again (the contract suite imports it)
    assert "flex.space.bookings.read" not in Path(roomd.hybrid.config.__file__).read_text()
    assert "flex.space.bookings.read" not in CONTRACT.read_text()


def test_settings_and_a_bare_client_ask_for_the_same_scopes() -> None:
    client = HybridClientConfig(
        base_url="https://hybrid.example.com",
        org="acme",
        token_url="https://hybrid.example.com/oauth/token",
        client_id="roomd",
        client_secret="s",
    )
    assert client.scope == HybridSettings.model_fields["scope"].default


def test_the_default_scope_covers_every_call_and_matches_the_docs() -> None:
    scopes = set(roomd.config.DEFAULT_HYBRID_SCOPE.split())
    assert {
        "flex.space.bookings.read",
        "flex.space.bookings.create",
        "flex.space.bookings.update",
        "flex.space.bookings.cancel",
        "flex.space.resources.read",
        "flex.community.members.read",
        "flex.settings.webhooks.create",  # register_webhook
    } <= scopes
    documented = re.search(r"Scopes roomd requests: (.*?)\.\n\n", DOCS.read_text(), re.DOTALL)
    assert documented, "docs/hybrid-api.md no longer lists the scopes roomd requests"
    assert set(re.findall(r"`([\w.]+)`", documented.group(1))) == scopes
