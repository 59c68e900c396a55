"""``${NAME}`` and ``${NAME:-default}`` in ``*_file`` paths: one config for the unit and the shell.

systemd's ``LoadCredential=`` hands the service its secrets under ``$CREDENTIALS_DIRECTORY``
(``/run/credentials/roomd.service``), which does not exist when an operator runs ``roomd sync`` or
``roomd doctor`` by hand. ``"${CREDENTIALS_DIRECTORY:-/etc/roomd/credentials}/graph-client-secret"``
reads the service's copy under the unit and the source file by hand.

The two forms mean what they mean in a POSIX shell (``:-``: the default when the variable is unset
or empty), and nothing else is expanded. Every ``$`` in such a path must start one of them, so that
``$NAME`` or ``${NAME:default}`` is a config error rather than a file name that is never found. A
variable without a default that is unset or empty is an error too: a path silently rooted at ``/``
would only fail later, further from the cause.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_REFERENCE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}$]*))?\}")
FORMS = "${NAME} or ${NAME:-default}"


class Unexpandable(ValueError):
    """A reference to a variable that is unset or empty and has no default."""


def syntax_problem(text: str) -> str | None:
    """What is wrong with the ``$`` references in ``text``, or None; needs no environment."""
    position = 0
    while (dollar := text.find("$", position)) >= 0:
        match = _REFERENCE.match(text, dollar)
        if match is None:
            return f"a '$' must start {FORMS} (found {text!r})"
        position = match.end()
    return None


def expand(text: str, env: Mapping[str, str]) -> str:
    """``text`` with its references replaced; raise Unexpandable naming the variable."""

    def value(match: re.Match[str]) -> str:
        name, default = match.group("name"), match.group("default")
        found = env.get(name)
        if found:
            return found
        if default is not None:
            return default
        state = "is not set" if found is None else "is empty"
        raise Unexpandable(
            f"environment variable {name} {state}; set it, or give a default as "
            f"${{{name}:-default}}"
        )

    return _REFERENCE.sub(value, text)
