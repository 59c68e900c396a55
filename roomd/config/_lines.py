"""Find the line a TOML key is on, so a problem can say ``(line N)``.

``tomllib`` returns plain dicts without positions, so this scans the text: table headers,
``[[array]]`` headers (counted from 0 like the parsed array) and ``key = value`` lines, skipping
multi-line strings and arrays. It runs only on text ``tomllib`` already accepted, so it can be
lenient; when a key cannot be placed (inline tables, say) the nearest enclosing key is used.
"""

from __future__ import annotations

import tomllib

from roomd.config._problems import KeyPath

_QUOTES = "\"'"


def _unescape(quoted: str) -> str:
    """A basic-string key's value, escapes decoded the way tomllib decodes them."""
    try:
        return str(tomllib.loads(f"k = {quoted}")["k"])
    except tomllib.TOMLDecodeError:
        return quoted[1:-1]


def _split_key(text: str) -> list[str]:
    """Split a dotted TOML key (``a."b.c".d``) into its parts."""
    parts: list[str] = []
    current = ""
    quote = ""
    start = 0
    i = 0
    while i < len(text):
        char = text[i]
        if quote:
            if char == "\\" and quote == '"':
                i += 1
            elif char == quote:
                quoted = text[start : i + 1]
                current += _unescape(quoted) if quote == '"' else quoted[1:-1]
                quote = ""
        elif char in _QUOTES:
            quote, start = char, i
        elif char == ".":
            parts.append(current.strip())
            current = ""
        elif not char.isspace():
            current += char
        i += 1
    parts.append(current.strip())
    return parts


def _until(text: str, stops: str) -> int:
    """Index of the first character of ``stops`` outside quotes, or -1."""
    quote = ""
    for i, char in enumerate(text):
        if quote:
            if char == quote:
                quote = ""
        elif char in _QUOTES:
            quote = char
        elif char in stops:
            return i
    return -1


class _ValueScanner:
    """Tracks whether a value continues on later lines (open brackets, multi-line strings)."""

    def __init__(self) -> None:
        self.depth = 0
        self.multiline = ""  # the open '"""' or "'''"

    @property
    def open(self) -> bool:
        return self.depth > 0 or bool(self.multiline)

    def feed(self, text: str) -> None:
        i = 0
        while i < len(text):
            if self.multiline:
                end = text.find(self.multiline, i)
                if end < 0:
                    return
                i = end + 3
                self.multiline = ""
                continue
            char = text[i]
            if text.startswith('"""', i) or text.startswith("'''", i):
                self.multiline = text[i : i + 3]
                i += 3
            elif char == '"':
                i = self._skip_basic(text, i + 1)
            elif char == "'":
                end = text.find("'", i + 1)
                i = len(text) if end < 0 else end + 1
            elif char == "#":
                return
            else:
                if char in "[{":
                    self.depth += 1
                elif char in "]}":
                    self.depth -= 1
                i += 1

    @staticmethod
    def _skip_basic(text: str, i: int) -> int:
        while i < len(text):
            if text[i] == "\\":
                i += 2
            elif text[i] == '"':
                return i + 1
            else:
                i += 1
        return i


def key_lines(text: str) -> dict[KeyPath, int]:
    """Every key path defined in the document, mapped to its (1-based) line."""
    lines: dict[KeyPath, int] = {}
    table: KeyPath = ()
    arrays: dict[KeyPath, int] = {}  # array-of-tables path -> elements seen so far
    scanner = _ValueScanner()

    def resolve(parts: list[str]) -> KeyPath:
        path: KeyPath = ()
        for part in parts:
            path += (part,)
            if path in arrays:
                path += (arrays[path] - 1,)
        return path

    def record(path: KeyPath, number: int) -> None:
        for end in range(1, len(path) + 1):
            lines.setdefault(path[:end], number)

    for number, raw in enumerate(text.splitlines(), start=1):
        if scanner.open:
            scanner.feed(raw)
            continue
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[["):
            end = _until(line[2:], "]")
            parts = _split_key(line[2 : 2 + end] if end >= 0 else line[2:])
            path = (*resolve(parts[:-1]), parts[-1])
            arrays[path] = arrays.get(path, 0) + 1
            table = (*path, arrays[path] - 1)
            lines[table] = number
            lines.setdefault(path, number)
        elif line.startswith("["):
            end = _until(line[1:], "]")
            table = resolve(_split_key(line[1 : 1 + end] if end >= 0 else line[1:]))
            record(table, number)
        else:
            equals = _until(line, "=")
            if equals < 0:
                continue
            record(table + tuple(_split_key(line[:equals])), number)
            scanner.feed(line[equals + 1 :])
    return lines


def find_line(lines: dict[KeyPath, int], key: KeyPath) -> int | None:
    """The line of ``key``, else of its nearest enclosing key that has one."""
    for end in range(len(key), 0, -1):
        if key[:end] in lines:
            return lines[key[:end]]
    return None
