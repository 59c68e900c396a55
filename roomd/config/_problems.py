"""Config problems as lines a person can act on: ``config PATH: KEY.PATH: what is wrong``.

pydantic's own error text is multi-line and names Python types; operators read TOML, so each
pydantic error is translated here into one line in TOML's words (table, array, integer).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic_core import ErrorDetails

KeyPath = tuple[str | int, ...]

_MAX_SHOWN = 60
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


class ConfigError(Exception):
    """The config file cannot be used; ``problems`` holds one printable line per problem."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems: list[str] = list(problems)
        super().__init__("\n".join(self.problems))


@dataclass(frozen=True)
class Problem:
    key: KeyPath
    message: str
    # False where the key is absent from the file (a "missing" key has no line to point at)
    locate: bool = True


def _bare(part: str) -> str:
    """A key part as TOML would write it: bare when it can be, else quoted (one line, always)."""
    if _BARE_KEY.fullmatch(part):
        return part
    return json.dumps(part, ensure_ascii=False).replace("\x7f", "\\u007f")


def key_text(key: KeyPath) -> str:
    """``("rooms", 2, "mailbox")`` -> ``rooms[2].mailbox``, the way TOML arrays count."""
    text = ""
    for part in key:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{_bare(part)}" if text else _bare(part)
    return text


def is_secret_key(key: KeyPath) -> bool:
    """Keys whose values must never be echoed, even when they are of the wrong type."""
    last = key[-1] if key else ""
    return (
        isinstance(last, str)
        and ("secret" in last or "password" in last)
        and not last.endswith("_file")
    )


def found(value: Any) -> str:
    """A short TOML-flavoured rendering of a value, for the ``(found ...)`` part of a line."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        shown = value if len(value) <= _MAX_SHOWN else value[: _MAX_SHOWN - 3] + "..."
        return repr(shown)
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return f"the date/time {value.isoformat()}"
    return type(value).__name__


def _bound(ctx: Mapping[str, Any], name: str) -> str:
    value = ctx.get(name)
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # "at least 5", as written in the docs, not "at least 5.0"
    return found(value) if value is not None else "?"


def _describe(error: ErrorDetails) -> tuple[str, bool]:
    """(what is wrong, whether to append the value found)."""
    kind = error["type"]
    ctx: Mapping[str, Any] = error.get("ctx") or {}
    if kind == "missing":
        return "missing", False
    if kind == "extra_forbidden":
        return "unknown key", False
    if kind == "value_error":
        return str(ctx.get("error", error["msg"])), False
    simple = {
        "string_type": "must be a string",
        "int_type": "must be an integer",
        "float_type": "must be a number",
        "bool_type": "must be true or false",
        "model_type": "must be a table",
        "model_attributes_type": "must be a table",
        "dict_type": "must be a table",
        "list_type": "must be an array",
        "tuple_type": "must be an array",
        "too_short": "must not be empty",
        "string_too_short": "must not be empty",
        "finite_number": "must be a finite number",
    }
    if kind in simple:
        return simple[kind], True
    if kind == "literal_error":
        return f"must be {ctx.get('expected', '?')}", True
    if kind == "greater_than_equal":
        return f"must be at least {_bound(ctx, 'ge')}", True
    if kind == "greater_than":
        return f"must be greater than {_bound(ctx, 'gt')}", True
    if kind == "less_than_equal":
        return f"must be at most {_bound(ctx, 'le')}", True
    if kind == "less_than":
        return f"must be less than {_bound(ctx, 'lt')}", True
    message = error["msg"]
    return message[:1].lower() + message[1:], True


def from_pydantic(prefix: KeyPath, errors: Sequence[ErrorDetails]) -> list[Problem]:
    """One Problem per pydantic error, keyed by the TOML key path, secrets never echoed."""
    problems = []
    for error in errors:
        key = prefix + tuple(error["loc"])
        message, show = _describe(error)
        if show and not is_secret_key(key):
            message = f"{message} (found {found(error['input'])})"
        problems.append(Problem(key, message, locate=error["type"] != "missing"))
    return problems


def render(source: str, problem: Problem, line: int | None) -> str:
    """The one line an operator sees."""
    where = f"{key_text(problem.key)}: " if problem.key else ""
    at = f" (line {line})" if line is not None else ""
    return f"config {source}: {where}{problem.message}{at}"
