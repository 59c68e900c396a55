"""``roomd rooms``: map the meeting rooms, the setup step between a working config and a sync.

Lists the tenant's room mailboxes (Graph places and room lists) beside Hybrid's resources,
proposes which is which (``_match``: pure, by name, then building and capacity, never guessing),
prints the table, JSON or the ``[[rooms]]`` blocks to paste (``_render``), and appends them to
the config file without touching a byte of what is there (``_write``).
"""

from roomd.rooms._listing import Inventory, RoomsError, read_inventory
from roomd.rooms._match import (
    HybridRoom,
    Kind,
    Mapping,
    OutlookRoom,
    Result,
    Row,
    match_rooms,
    normalise,
)
from roomd.rooms._render import as_json, hints, summary, table, toml_blocks
from roomd.rooms._write import WriteRefused, appended, write_rooms

__all__ = [
    "HybridRoom",
    "Inventory",
    "Kind",
    "Mapping",
    "OutlookRoom",
    "Result",
    "RoomsError",
    "Row",
    "WriteRefused",
    "appended",
    "as_json",
    "hints",
    "match_rooms",
    "normalise",
    "read_inventory",
    "summary",
    "table",
    "toml_blocks",
    "write_rooms",
]
