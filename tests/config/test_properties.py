"""Invariants that hold for every input, checked with hypothesis."""

from __future__ import annotations

import copy
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from roomd.config import ConfigError, Settings, check_config, load_config

Serialize = Callable[[Mapping[str, Any]], str]

# the fixtures used here are read-only, so sharing them across examples is safe
SHARED = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=20)
toml_values = st.recursive(
    st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats()
    | _text
    | st.datetimes()
    | st.dates()
    | st.times(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=6,
)
KEYS = {
    "graph": ["tenant_id", "client_id", "client_secret", "client_secret_file", "certificate_file",
              "certificate_password_file", "authority_host", "base_url", "ca_bundle"],
    "hybrid": ["base_url", "org", "token_url", "client_id", "client_secret", "client_secret_file",
               "webhook_secret", "webhook_secret_file", "scope", "ca_bundle"],
    "sync": ["poll_interval_seconds", "window_back_days", "window_ahead_days", "conflict",
             "mass_delete_threshold", "mass_delete_min", "stale_after_seconds",
             "shutdown_grace_seconds"],
    "http": ["listen", "port"],
    "state": ["path"],
    "log": ["level"],
    "rooms": ["hybrid_id", "mailbox", "name", "conflict", "direction", "time_zone"],
}  # fmt: skip


def _check(text: str, env: Mapping[str, str]) -> tuple[Path, list[str], Settings | None]:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "roomd.toml"
        path.write_text(text, encoding="utf-8")
        (Path(directory) / "hybrid.secret").write_text("s3cret\n")
        problems = check_config(path, env)
        try:
            loaded: Settings | None = load_config(path, env)
        except ConfigError as error:
            assert error.problems == problems
            loaded = None
    return path, problems, loaded


@SHARED
@given(
    locals_=st.lists(st.from_regex(r"[a-z0-9]{1,12}", fullmatch=True), min_size=2, max_size=6,
                     unique=True),
    data=st.data(),
)  # fmt: skip
def test_a_mailbox_mapped_twice_in_any_case_is_reported(
    serialize: Serialize,
    valid_document: dict[str, Any],
    env: dict[str, str],
    locals_: list[str],
    data: st.DataObject,
) -> None:
    rooms = [
        {"hybrid_id": f"r{i}", "mailbox": f"{local}@contoso.com"} for i, local in enumerate(locals_)
    ]
    first = data.draw(st.integers(0, len(rooms) - 2), label="first")
    second = data.draw(st.integers(first + 1, len(rooms) - 1), label="second")
    upper = data.draw(st.lists(st.booleans(), min_size=40, max_size=40), label="upper")
    mailbox = "".join(
        c.upper() if flip else c for c, flip in zip(rooms[first]["mailbox"], upper, strict=False)
    )
    rooms[second]["mailbox"] = mailbox
    document = {**valid_document, "rooms": rooms}
    path, problems, loaded = _check(serialize(document), env)
    assert loaded is None
    assert problems == [
        f"config {path}: rooms[{second}].mailbox: {mailbox!r} is already mapped by rooms[{first}] "
        f"(line {problems[0].rsplit('(line ', 1)[1]}"
    ]


@SHARED
@given(
    section=st.sampled_from(sorted(KEYS)),
    key_choice=st.data(),
    junk=toml_values,
    whole_section=st.booleans(),
)
def test_junk_values_only_ever_give_config_problems(
    serialize: Serialize,
    valid_document: dict[str, Any],
    env: dict[str, str],
    section: str,
    key_choice: st.DataObject,
    junk: Any,
    whole_section: bool,
) -> None:
    document = copy.deepcopy(valid_document)
    if whole_section:
        document[section] = junk
    else:
        key = key_choice.draw(st.sampled_from(KEYS[section]) | _text, label="key")
        target = document["rooms"][0] if section == "rooms" else document.setdefault(section, {})
        target[key] = junk
    path, problems, loaded = _check(serialize(document), env)
    assert (loaded is None) == bool(problems)
    for problem in problems:
        assert problem.startswith(f"config {path}: ")
        assert "\n" not in problem
        assert "Traceback" not in problem and "pydantic" not in problem
        assert env["GRAPH_SECRET"] not in problem and "s3cret" not in problem


@settings(max_examples=100, deadline=None)
@given(content=st.binary(max_size=300))
def test_any_bytes_give_problems_not_exceptions(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "roomd.toml"
        path.write_bytes(content)
        problems = check_config(path, env={})
    assert problems
    assert all(p.startswith(f"config {path}: ") and "\n" not in p for p in problems)
