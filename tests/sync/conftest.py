from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.sims import sim_world
from support.sync_world import SyncWorld


@pytest.fixture
def world(tmp_path: Path) -> Iterator[SyncWorld]:
    """Both simulators and (once ``world.start()`` is called) a real roomd daemon."""
    with sim_world() as sims:
        w = SyncWorld(sims, tmp_path)
        try:
            yield w
        finally:
            w.stop()
