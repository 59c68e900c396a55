"""Smoke test of the memory benchmark (issue 10): it runs on a tiny size in its own processes,
prints roomd's RSS stage by stage and the target, and exits 0. No figure is asserted."""

from __future__ import annotations

from support.bench import run_bench


def test_memory_prints_each_stage_and_the_target() -> None:
    out = run_bench("memory", "--rooms", "3", "--idle-rounds", "1")
    for stage in ("imports", "config", "daemon", "metrics", "sync round 1", "idle round 1"):
        assert f"  {stage} " in out, stage
    assert "scrape_bytes" in out
    assert "peak RSS" in out and "target < 150 MB at 10,000 rooms" in out
