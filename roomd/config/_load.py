"""Read the config file and turn it into ``Settings`` or a complete list of problems.

The only place in roomd that reads the config file. Everything is checked in one pass, so an
operator fixing a file sees every problem at once rather than one per run.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from roomd.config import _resolve
from roomd.config._lines import find_line, key_lines
from roomd.config._problems import ConfigError, Problem, found, from_pydantic, render
from roomd.config._schema import REQUIRED_SECTIONS, SECTIONS, RoomTable
from roomd.config._settings import HttpSettings, LogSettings, Settings

T = TypeVar("T")

_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column \d+\)|\s*\(at end of document\)")


def load_config(
    path: Path | str, env: Mapping[str, str] | None = None, *, rooms_required: bool = True
) -> Settings:
    """The settings in the file at ``path``; raise ConfigError listing every problem.

    ``env`` (default ``os.environ``) answers ``${NAME}`` secret references and
    ``STATE_DIRECTORY``; tests pass their own. ``rooms_required=False`` accepts a file that maps
    no room yet (``rooms`` then is empty): ``roomd rooms`` maps the first ones.
    """
    settings, problems = _load(path, os.environ if env is None else env, rooms_required)
    if settings is None:
        raise ConfigError(problems)
    return settings


def check_config(path: Path | str, env: Mapping[str, str] | None = None) -> list[str]:
    """Every problem with the file, one printable line each; ``[]`` when it is usable."""
    return _load(path, os.environ if env is None else env)[1]


def _load(
    path: Path | str, env: Mapping[str, str], rooms_required: bool = True
) -> tuple[Settings | None, list[str]]:
    source = str(path)
    file = Path(path)
    try:
        data = file.read_bytes()
    except IsADirectoryError:
        return None, [f"config {source}: is a directory, not a config file"]
    except OSError as exc:
        return None, [f"config {source}: cannot read ({_resolve._reason(exc)})"]
    try:
        text = data.decode("utf-8")
        document = tomllib.loads(text)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        return None, [f"config {source}: not valid TOML: not UTF-8 text (line {line})"]
    except tomllib.TOMLDecodeError as exc:
        return None, [f"config {source}: not valid TOML: {_toml_error(exc)}"]
    resolver = _resolve.Resolver(Path(os.path.abspath(file)).parent, env)
    if not rooms_required and not document.get("rooms"):
        document = {k: v for k, v in document.items() if k != "rooms"}
    settings = _settings(document, resolver, rooms_required)
    if not resolver.problems and settings is not None:
        return settings, []
    lines = key_lines(text)
    # top to bottom, as the operator will fix them; a missing key sorts with its table
    problems = sorted(resolver.problems, key=lambda problem: find_line(lines, problem.key) or 0)
    rendered = [
        render(source, problem, find_line(lines, problem.key) if problem.locate else None)
        for problem in problems
    ]
    return None, rendered


def _toml_error(exc: tomllib.TOMLDecodeError) -> str:
    """tomllib's message with its position as ``(line N)``, the form every other line uses."""
    message = str(exc)
    match = _TOML_POSITION.search(message)
    if match is None:
        return message
    stripped = _TOML_POSITION.sub("", message)
    return f"{stripped} (line {match.group(1)})" if match.group(1) else f"{stripped} (at the end)"


def _table(
    resolver: _resolve.Resolver, name: str, raw: Any, model: type[BaseModel]
) -> tuple[Any, _resolve.Written]:
    """Validate one table, recording its problems: (table, whether it is complete).

    A table with bad keys still comes back, built from its good keys only, so that the checks
    on those (secret files, credentials) run too and the operator sees every problem at once.
    """
    if not isinstance(raw, dict):
        resolver.add((name,), f"must be a table ([{name}]) (found {found(raw)})")
        return None, _resolve.Written(frozenset(), complete=False)
    written = frozenset(raw)
    try:
        return model.model_validate(raw), _resolve.Written(written, complete=True)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        resolver.problems.extend(from_pydantic((name,), errors))
        bad = {error["loc"][0] for error in errors if error["loc"]}
        good = {k: v for k, v in raw.items() if k in model.model_fields and k not in bad}
        return model.model_construct(**good), _resolve.Written(written, complete=False)


def _settings(
    document: dict[str, Any], resolver: _resolve.Resolver, rooms_required: bool = True
) -> Settings | None:
    for name in document:
        if name not in SECTIONS and name != "rooms":
            resolver.add((name,), "unknown key")
    tables: dict[str, tuple[Any, _resolve.Written]] = {}
    for name, model in SECTIONS.items():
        if name in document:
            tables[name] = _table(resolver, name, document[name], model)
        elif name in REQUIRED_SECTIONS:
            resolver.problems.append(Problem((name,), f"missing (add a [{name}] table)", False))
            tables[name] = (None, _resolve.Written(frozenset(), complete=False))
        else:
            tables[name] = (model(), _resolve.Written(frozenset(), complete=True))
    rooms = _rooms(resolver, document.get("rooms")) if "rooms" in document or rooms_required else []

    def resolved(
        name: str, resolve: Callable[[_resolve.Resolver, Any, _resolve.Written], T]
    ) -> T | None:
        table, written = tables[name]
        return None if table is None else resolve(resolver, table, written)

    graph = resolved("graph", _resolve.graph)
    hybrid = resolved("hybrid", _resolve.hybrid)
    sync = resolved("sync", _resolve.sync)
    state = resolved("state", _resolve.state)
    if resolver.problems or not (graph and hybrid and sync and state) or rooms is None:
        return None
    build = Settings if rooms else Settings.model_construct  # no rooms: rooms_required=False
    return build(
        graph=graph,
        hybrid=hybrid,
        sync=sync,
        http=HttpSettings(**tables["http"][0].model_dump()),
        state=state,
        log=LogSettings(**tables["log"][0].model_dump()),
        rooms=tuple(_resolve.room(room, sync.conflict) for room in rooms),
    )


def _rooms(resolver: _resolve.Resolver, raw: Any) -> list[RoomTable] | None:
    if raw is None:
        resolver.problems.append(
            Problem(("rooms",), "missing: map at least one room with a [[rooms]] table", False)
        )
        return None
    if not isinstance(raw, list):
        resolver.add(("rooms",), f"must be an array of tables ([[rooms]]) (found {found(raw)})")
        return None
    if not raw:
        resolver.add(("rooms",), "is empty: map at least one room with a [[rooms]] table")
        return None
    rooms = []
    for index, item in enumerate(raw):
        key = ("rooms", index)
        if not isinstance(item, dict):
            resolver.add(key, f"must be a table ([[rooms]]) (found {found(item)})")
            continue
        try:
            rooms.append(RoomTable.model_validate(item))
        except ValidationError as exc:
            resolver.problems.extend(from_pydantic(key, exc.errors(include_url=False)))
    resolver.problems.extend(_resolve.duplicate_rooms(raw))
    return rooms if len(rooms) == len(raw) else None
