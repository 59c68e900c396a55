"""``roomd demo`` from start to end: set the stage, tell the story, report, clean up."""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from roomd import observe
from roomd.demo._report import Report
from roomd.demo._stage import POLL_INTERVAL_S, DaemonStopped, Stage
from roomd.demo._story import HYBRID_TO_OUTLOOK, OUTLOOK_TO_HYBRID, STEP_TIMEOUT_S, Story
from roomd.sim.tenant import Room

BeforeStory = Callable[[Stage], None]


def run_demo(
    keep: Path | None = None,
    *,
    keep_running: bool = False,
    out: TextIO | None = None,
    before_story: BeforeStory | None = None,
    step_timeout: float = STEP_TIMEOUT_S,
) -> int:
    """Entry point of ``roomd demo``; the exit code: 0 when every step was verified.

    ``keep``: put the config and database there and leave them (default: a temporary
    directory, removed at the end). ``keep_running``: after the story, leave everything up and
    print where, until SIGINT or SIGTERM. ``before_story`` is called with the running stage once
    roomd is ready (tests break a step through the simulators' control surface with it).
    """
    out = out if out is not None else sys.stdout
    # The daemon's own log lines would drown the story: warnings only, on stderr.
    observe.configure_logging("warning", stream=sys.stderr)
    report = Report(out)

    def go(directory: Path, temporary: bool) -> int:
        main = _main(directory, report, before_story, step_timeout, keep_running, temporary)
        return asyncio.run(main)

    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        if (keep / "roomd.sqlite3").exists():
            print(
                f"roomd: demo: --keep {keep}: holds a database from an earlier demo; "
                "give an empty or new directory",
                file=sys.stderr,
            )
            return 2
        return go(keep.resolve(), temporary=False)
    with tempfile.TemporaryDirectory(prefix="roomd-demo-") as tmp:
        return go(Path(tmp), temporary=True)


async def _main(
    directory: Path,
    report: Report,
    before_story: BeforeStory | None,
    step_timeout: float,
    keep_running: bool,
    temporary: bool,
) -> int:
    """The demo in ``directory``; with ``keep_running``, stay up after the story until
    SIGINT/SIGTERM, then stop (the directory is removed afterwards if ``temporary``)."""
    started = time.monotonic()
    stage = await Stage.open(directory)
    ok, failure = False, "roomd stopped"
    try:
        ready = await stage.wait_ready()
        _introduce(report, stage, ready)
        if before_story is not None:
            before_story(stage)
        story = Story(stage, report, step_timeout)
        try:
            ok = await story.run()
            failure = story.failure or ""
        except DaemonStopped as exc:
            failure = str(exc)
        report.summary(story.rows)
        report.line()
        if ok:
            _conclude(report, story, time.monotonic() - started)
        if keep_running and stage.running:
            _show_where(report, stage, temporary)
            await stage.until_stopped()
    except (DaemonStopped, TimeoutError) as exc:
        ok, failure = False, str(exc)
    finally:
        code = await stage.close()
    if ok and code != 0:
        ok, failure = False, f"roomd exited {code}"
    if not ok:
        print(f"roomd: demo: {failure}", file=sys.stderr)
        return 1
    return 0


def _introduce(report: Report, stage: Stage, ready: float) -> None:
    def room(r: Room) -> str:
        why = [
            "needs approval" if r.requires_approval else "",
            "needs check-in" if r.requires_checkin else "",
            r.time_zone if not r.time_zone.startswith("Europe/") else "",
        ]
        extra = ", ".join(w for w in why if w)
        return f"{r.display_name} ({extra})" if extra else r.display_name

    people = [
        p.display_name + ("" if p.has_mailbox else " (no mailbox)") for p in stage.tenant.people
    ]
    report.line("roomd demo: a real roomd between simulated Microsoft 365 and Hybrid, on loopback")
    report.line(f"  rooms   {', '.join(room(r) for r in stage.tenant.rooms)}")
    report.line(f"  people  {', '.join(people)}")
    report.line(
        f"  roomd   polls Outlook every {POLL_INTERVAL_S} s (30 s by default); "
        "Hybrid changes arrive by webhook"
    )
    report.line(f"  ready   every room synced once, in {ready:.2f} s")
    report.line()
    report.line("Each step: someone acts on one side ('now'), then the other side is watched until")
    report.line("the change shows up there, and checked; '+s' is how long that took.")


def _conclude(report: Report, story: Story, total: float) -> None:
    took = {way: [r.took or 0.0 for r in story.rows if r.direction == way] for way in _WAYS}
    report.line(f"All {len(story.rows)} steps verified; the demo took {total:.1f} s.")
    for way, label in _WAYS.items():
        if took[way]:
            report.line(
                f"  {label}: median {statistics.median(took[way]):.2f} s, "
                f"slowest {max(took[way]):.2f} s"
            )
    report.line("Why a booking looks as it does: roomd explain ID -c CONFIG (roomd demo")
    report.line("--keep-running leaves all of this up to poke at, and prints where).")


_WAYS = {
    OUTLOOK_TO_HYBRID: f"{OUTLOOK_TO_HYBRID} (roomd's poll)",
    HYBRID_TO_OUTLOOK: f"{HYBRID_TO_OUTLOOK} (webhook)",
}


def _show_where(report: Report, stage: Stage, temporary: bool) -> None:
    urls = stage.urls
    config = stage.config_path
    ca = config.parent / "ca.pem"
    report.line()
    fate = "removed" if temporary else "kept"
    report.line(f"Everything stays up until Ctrl-C or SIGTERM; then {config.parent} is {fate}.")
    report.line(f"  roomd metrics      {urls.roomd}/metrics")
    report.line(f"  roomd readiness    {urls.roomd}/readyz")
    report.line(f"  roomd health       {urls.roomd}/healthz")
    report.line(f"  Hybrid webhooks    {urls.roomd}/hooks/hybrid")
    report.line(f"  Graph simulator    {urls.graph}")
    report.line(f"    its control      {urls.graph_control}")
    report.line(f"  Hybrid simulator   {urls.hybrid}")
    report.line(f"    its control      {urls.hybrid_control}")
    report.line(f"  simulators' CA     {ca}")
    report.line(f"                     (e.g. curl --cacert {ca} {urls.hybrid_control})")
    report.line(f"  roomd status       roomd status -c {config}")
    report.line(f"  config             {config} (secrets in the files beside it):")
    for text in config.read_text().splitlines():
        report.line(f"    {text}".rstrip())
    report.line()
    report.line("Waiting for Ctrl-C or SIGTERM...")
