"""The sync engine: a pure decision table (``decide``) between two thin shells that read Graph
and Hybrid (``inbound``, ``outbound``), an outbox executor (``outbox``) and one room's round
(``runner``). What happens in any situation is one row of ``decide.DECISIONS``."""

from roomd.sync.decide import DECISIONS, Action, Seen
from roomd.sync.ports import GraphAdapter, GraphPort, HybridAdapter, HybridPort
from roomd.sync.runner import RoomSync, RoundFailed, RoundRunner, RoundStats, sync_window

__all__ = [
    "DECISIONS",
    "Action",
    "GraphAdapter",
    "GraphPort",
    "HybridAdapter",
    "HybridPort",
    "RoomSync",
    "RoundFailed",
    "RoundRunner",
    "RoundStats",
    "Seen",
    "sync_window",
]
