"""What the demo prints: a timeline as the story goes, then a summary table.

Piped (or redirected), every line is plain text written once, so a log or a test reads it as it
is. On a terminal the step being waited for shows as a status line redrawn in place (``\\r``),
replaced by the line of what was seen once it shows up on the other side.
"""

from __future__ import annotations

import os
import shutil
import textwrap
from dataclasses import dataclass
from typing import TextIO

SIDE_WIDTH = 8  # "Outlook ", "Hybrid  ", "roomd   "
SPINNER = "|/-\\"
WIDTH = 100  # timeline lines wrap here


@dataclass
class Row:
    """One line of the summary table."""

    number: int
    title: str
    direction: str
    took: float | None = None  # seconds from the action to the last thing verified
    result: str = "not run"  # ok | FAILED | stopped | not run


class Report:
    def __init__(self, out: TextIO, *, live: bool | None = None) -> None:
        self._out = out
        self.live = out.isatty() if live is None else live
        self._color = self.live and "NO_COLOR" not in os.environ
        self._status_shown = False
        self._spin = 0

    # --- plain lines ---------------------------------------------------------------------------
    def line(self, text: str = "") -> None:
        self._clear_status()
        self._out.write(text + "\n")
        self._out.flush()

    def step(self, number: int, title: str, direction: str) -> None:
        self.line()
        self.line(self._bold(f"{number:>2}. {title}") + f"  ({direction})")

    def acted(self, side: str, text: str) -> None:
        """Someone did something on one side; the clock of the step starts here."""
        self._event(side, "now", text)

    def seen(self, side: str, elapsed: float, text: str) -> None:
        """What showed up where, and how long after the action."""
        self._event(side, _took(elapsed, sign="+"), text)

    def note(self, text: str) -> None:
        self._event("", "", text)

    def failed(self, side: str, elapsed: float, text: str) -> None:
        self._event(side, _took(elapsed, sign="+"), "FAILED: " + text, red=True)

    def _event(self, side: str, when: str, text: str, *, red: bool = False) -> None:
        """``side  when  text``, the text wrapped under itself."""
        lead = f"    {side:<{SIDE_WIDTH}} {when:>8}  "
        lines = textwrap.wrap(text, WIDTH - len(lead), break_on_hyphens=False) or [""]
        for i, chunk in enumerate(lines):
            self.line((lead if i == 0 else " " * len(lead)) + (self._red(chunk) if red else chunk))

    # --- the status line (a terminal only) -----------------------------------------------------
    def waiting(self, side: str, what: str, elapsed: float) -> None:
        if not self.live:
            return
        self._spin = (self._spin + 1) % len(SPINNER)
        text = (
            f"    {side:<{SIDE_WIDTH}} {_took(elapsed, sign='+'):>8}  {SPINNER[self._spin]} {what}"
        )
        self._out.write("\r" + text[: _width() - 1] + "\x1b[K")
        self._out.flush()
        self._status_shown = True

    def _clear_status(self) -> None:
        if self._status_shown:
            self._out.write("\r\x1b[K")
            self._status_shown = False

    # --- the table -----------------------------------------------------------------------------
    def summary(self, rows: list[Row]) -> None:
        title = max(len(r.title) for r in rows)
        way = max(len(r.direction) for r in rows)
        self.line()
        self.line(f" #  {'STEP':<{title}}  {'DIRECTION':<{way}}  {'TOOK':>7}  RESULT")
        for r in rows:
            took = _took(r.took) if r.took is not None else "-"
            result = {"ok": self._green, "FAILED": self._red}.get(r.result, str)(r.result)
            self.line(
                f"{r.number:>2}  {r.title:<{title}}  {r.direction:<{way}}  {took:>7}  {result}"
            )

    # --- decoration, on a terminal only --------------------------------------------------------
    def _bold(self, text: str) -> str:
        return f"\x1b[1m{text}\x1b[0m" if self._color else text

    def _green(self, text: str) -> str:
        return f"\x1b[32m{text}\x1b[0m" if self._color else text

    def _red(self, text: str) -> str:
        return f"\x1b[31m{text}\x1b[0m" if self._color else text


def _took(seconds: float, sign: str = "") -> str:
    return f"{sign}{seconds:.2f} s"


def _width() -> int:
    return shutil.get_terminal_size((WIDTH, 24)).columns
