"""`roomd demo` is the README's first promise: the story runs to the end, every step verified on
the other side, and the demo is an end-to-end check that fails when the sync does."""

from __future__ import annotations

import io
import os
import queue
import re
import signal
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from roomd.config import check_config
from roomd.demo import Stage, run_demo
from roomd.demo._report import Report

STEPS = 13


def _env(tmp: Path) -> dict[str, str]:
    """The demo's temporary directory goes under ``tmp``, where a test can see it removed."""
    tmp.mkdir()
    return {**os.environ, "TMPDIR": str(tmp)}


def _summary(stdout: str) -> dict[int, str]:
    """Summary table rows: step number -> result."""
    table = stdout.split(" #  STEP", 1)[1]
    return {
        int(m.group(1)): m.group(2)
        for m in re.finditer(r"^\s*(\d+)\s+.*\s(ok|FAILED|not run)$", table, re.M)
    }


def test_the_story_runs_every_step_verified_in_plain_lines_and_cleans_up(tmp_path: Path) -> None:
    tmp = tmp_path / "tmp"
    started = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-m", "roomd", "demo"],
        capture_output=True,
        text=True,
        timeout=90,
        env=_env(tmp),
    )
    took = time.monotonic() - started
    assert out.returncode == 0, out.stdout + out.stderr
    assert took < 60, f"the demo took {took:.0f} s"
    assert _summary(out.stdout) == dict.fromkeys(range(1, STEPS + 1), "ok"), out.stdout
    assert f"All {STEPS} steps verified" in out.stdout
    # piped: plain lines, no status line redrawn in place, no colour
    assert "\r" not in out.stdout and "\x1b" not in out.stdout
    # the timeline says what happened where, and how long it took to reach the other side
    assert re.search(r"^\s+Hybrid\s+\+\d+\.\d\d s  booking \"Budget review\"", out.stdout, re.M)
    assert re.search(r"^\s+Outlook\s+\+\d+\.\d\d s  Room 4A's own copy reads", out.stdout, re.M)
    assert "Hybrid refused the booking (409)" in out.stdout
    assert list(tmp.iterdir()) == [], "the temporary directory was not removed"


def _lines(proc: subprocess.Popen[str]) -> queue.Queue[str]:
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def test_keep_running_serves_the_urls_it_prints_until_sigterm(tmp_path: Path) -> None:
    tmp = tmp_path / "tmp"
    proc = subprocess.Popen(
        [sys.executable, "-m", "roomd", "demo", "--keep-running"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(tmp),
    )
    try:
        lines, seen = _lines(proc), []
        deadline = time.monotonic() + 90
        while not seen or "Waiting for Ctrl-C or SIGTERM" not in seen[-1]:
            assert time.monotonic() < deadline and proc.poll() is None, "".join(seen)
            try:
                seen.append(lines.get(timeout=1))
            except queue.Empty:
                continue
        text = "".join(seen)
        url = {
            m.group(1): m.group(2)
            for m in re.finditer(r"^  (roomd \w+|\w+ simulator)\s+(\S+)$", text, re.M)
        }
        control = re.findall(r"its control\s+(\S+)", text)
        ca = re.search(r"simulators' CA\s+(\S+)", text)
        assert ca is not None and len(control) == 2, text
        ready = httpx.get(url["roomd readiness"], timeout=10)
        assert ready.status_code == 200 and ready.json()["ready"] is True, ready.text
        metrics = httpx.get(url["roomd metrics"], timeout=10)
        assert metrics.status_code == 200 and "roomd_rounds_total" in metrics.text
        trust = ssl.create_default_context(cafile=ca.group(1))
        bookings = httpx.get(control[1], verify=trust, timeout=10)
        assert bookings.status_code == 200 and bookings.json()["results"], bookings.text
        state = httpx.get(control[0], verify=trust, timeout=10)
        assert state.status_code == 200 and state.json()["base_url"] == url["Graph simulator"]
        assert "client_secret_file" in text and "webhook_secret_file" in text
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, proc.stderr.read() if proc.stderr else ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert list(tmp.iterdir()) == [], "the temporary directory was not removed"


def test_a_step_the_other_side_does_not_confirm_fails_the_demo_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Graph refuses every meeting roomd creates in Megan's calendar (503): her Hybrid booking
    never shows in Outlook, and the demo says which step failed and why, and exits 1."""

    def break_megans_calendar(stage: Stage) -> None:
        stage.graph.control.inject_fault(
            kind="status",
            status=503,
            mailbox="meganb@contoso.com",
            method="POST",
            path_contains="/events",
            count=None,
        )

    out = io.StringIO()
    kept = tmp_path / "kept"
    code = run_demo(kept, out=out, before_story=break_megans_calendar, step_timeout=2)
    assert code == 1, out.getvalue()
    rows = _summary(out.getvalue())
    assert rows[1] == "ok" and rows[2] == "FAILED", out.getvalue()
    assert all(rows[n] == "not run" for n in range(3, STEPS + 1)), out.getvalue()
    err = capsys.readouterr().err
    assert "roomd: demo: step 2 (A Hybrid booking reaches every calendar) failed" in err, err
    assert "no meeting 'Design review' in Megan Bowen's calendar" in err, err
    # --keep leaves a config `roomd config check` accepts
    assert check_config(kept / "roomd.toml") == []


def test_on_a_terminal_the_step_waited_for_is_a_status_line_redrawn_in_place() -> None:
    tty, pipe = io.StringIO(), io.StringIO()
    for stream, live in ((tty, True), (pipe, False)):
        report = Report(stream, live=live)
        report.waiting("Hybrid", "waiting for the booking", 0.2)
        report.waiting("Hybrid", "waiting for the booking", 0.4)
        report.seen("Hybrid", 0.5, "booking seen")
    assert tty.getvalue().count("\r") >= 3 and "+0.40 s" in tty.getvalue()
    assert tty.getvalue().endswith("\r\x1b[K    Hybrid    +0.50 s  booking seen\n")
    assert pipe.getvalue() == "    Hybrid    +0.50 s  booking seen\n"
