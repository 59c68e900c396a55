from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.sync_world import SyncWorld, sync_world


@pytest.fixture
def world(tmp_path: Path) -> Iterator[SyncWorld]:
    """Both simulators and (once ``world.start()`` is called) a real roomd daemon."""
    with sync_world(tmp_path) as w:
        yield w
