"""Smoke tests of the idle-polling and growth benchmarks (issue 10) and their rig: each runs on
a tiny size in its own process, prints its figures and exits 0. No timing is asserted: the
figures are the benchmark's business (``python -m bench NAME``), not the suite's."""

from __future__ import annotations

from pathlib import Path

from support.bench import run_bench


def test_idle_prints_roomd_beside_the_bare_loop_and_the_targets() -> None:
    out = run_bench("idle", "--rooms", "3", "--runs", "1")
    assert "3 rooms x 1 meetings" in out
    assert "roomd idle round: wall" in out and "per 1,000 room polls" in out
    assert "bare httpx loop:" in out
    assert "target CPU ratio at 3 rooms" in out
    assert "target idle SQLite writes at 3 rooms" in out
    # roomd's requests are counted (a Graph $batch at least): 0 meant the count missed them
    assert "roomd requests per idle round: 0 " not in out


def test_growth_prints_both_sweeps_with_slopes_and_plots(tmp_path: Path) -> None:
    png = tmp_path / "growth.png"
    out = run_bench(
        "growth",
        "--rooms",
        "2,3",
        "--bookings",
        "1,2",
        "--rooms-at",
        "2",
        "--runs",
        "1",
        "--plot",
        str(png),
    )
    assert "log-log slope against rooms" in out
    assert "log-log slope against meetings" in out
    assert "| rooms | meetings/room |" in out
    assert png.stat().st_size > 0


def test_bench_lists_idle_and_growth_but_not_the_rig() -> None:
    out = run_bench()
    assert "idle" in out and "growth" in out
    assert "rig " not in out
