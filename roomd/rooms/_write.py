"""``roomd rooms --write``: add the proposed ``[[rooms]]`` blocks to the config file.

The file is the operator's: its comments, spacing and key order are theirs. So nothing in it is
re-serialised: the new blocks go after its last byte (an array of tables may continue anywhere
in a TOML document), and the old text stays a byte-for-byte prefix of the new. The result is
checked as ``roomd config check`` checks it, next to the original (relative secret paths resolve
the same way), and replaces the original atomically only when it is valid, keeping its mode.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

import tomlkit
from tomlkit.exceptions import TOMLKitError

from roomd.config import check_config


class WriteRefused(Exception):
    """The file was left as it was; ``lines`` say why (one problem each)."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("; ".join(lines))
        self.lines = lines


def appended(text: str, blocks: str) -> str:
    """``text`` with ``blocks`` after it, one blank line between."""
    if not blocks:
        return text
    if text and not text.endswith("\n"):
        text += "\n"
    return f"{text}\n{blocks}" if text else blocks


def write_rooms(path: Path, blocks: str) -> None:
    """Append ``blocks`` to the config at ``path``, or raise :class:`WriteRefused`."""
    target = path.resolve()
    try:
        raw = target.read_bytes()
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise WriteRefused([f"config {path}: cannot read ({exc})"]) from None
    new = appended(text, blocks)
    try:
        tomlkit.parse(new)
    except TOMLKitError as exc:
        raise WriteRefused([f"config {path}: the rooms cannot be added: {exc}"]) from None
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(new.encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, stat.S_IMODE(target.stat().st_mode))
        problems = [p.replace(str(tmp), str(path)) for p in check_config(tmp)]
        if problems:
            raise WriteRefused(
                [*problems, f"config {path}: not changed (the result would not be valid)"]
            )
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
