"""Smoke tests of the initial-sync, propagation-lag and SDK benchmarks (issue 10): each runs on
a tiny size in its own process and prints its figures. No timing is asserted: the figures are
the benchmark's business (``python -m bench NAME``), not the suite's."""

from __future__ import annotations

from support.bench import run_bench


def test_sdk_benchmark_pages_the_same_delta_with_both_clients() -> None:
    out = run_bench("sdk", "--rooms", "1", "--meetings", "12", "--page-size", "5", "--runs", "1",
                    "--rounds", "1")  # fmt: skip
    assert "CPU per page (ms)" in out
    assert "peak RSS (MiB)" in out
    assert "each process: 1 rounds x 1 rooms = 3 pages, 12 events" in out
    assert "warning" not in out


def test_initial_sync_benchmark_books_every_meeting_in_hybrid() -> None:
    out = run_bench("initial_sync", "--rooms", "2", "--meetings", "5", "--runs", "1")
    assert "10 Hybrid bookings (2 series) of 10" in out
    assert "roomd's own throughput" in out
    assert "warning" not in out


def test_lag_benchmark_measures_both_directions() -> None:
    out = run_bench("lag", "--rooms", "3", "--minutes", "0.3", "--compress", "1200",
                    "--poll-interval", "2", "--seed", "1")  # fmt: skip
    assert "Outlook -> Hybrid: n=" in out
    assert "Hybrid -> Outlook: n=" in out
    assert "warning" not in out
