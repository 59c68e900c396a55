"""roomd's state store: SQLite (WAL) with one serialised writer and one room per transaction.

Tables (design.md section 2), every one keyed by room mailbox address (lower-cased):
``rooms`` (round status), ``delta_state`` (calendarView delta link per room and window),
``hybrid_cursor`` (Hybrid ``modifiedAt`` listing position), ``links`` (booking ⇄ meeting identity),
``outbox`` (planned remote writes, idempotent by ``intent_id``) and ``audit`` (every write and
why). Times are stored as fixed-width UTC ISO-8601 text ending in ``Z``; the API takes and returns
timezone-aware ``datetime`` objects.

Typical use in a sync round::

    store = await open_store(Path("/var/lib/roomd/state.db"))
    async with store.write("room-4a@contoso.com") as tx:
        for change in page:
            await tx.enqueue(intent_id_for(change), "hybrid.update", payload_for(change))
        await tx.save_delta(window_start, window_end, page.delta_link)  # same transaction
    # network writes happen here, outside the transaction, then:
    async with store.write("room-4a@contoso.com") as tx:
        await tx.mark_outbox(intent_id, state="done")

The schema's migrations (``roomd.store.migrations``) are applied by ``open_store``; they are not
part of this surface.
"""

from .errors import LinkConflict, SchemaTooNew, StoreError, UnknownIntent
from .roomtx import Enqueued, RoomTx
from .rows import (
    AuditEntry,
    DeltaState,
    HybridCursor,
    Link,
    LinkState,
    OutboxItem,
    OutboxState,
    RoomStatus,
    room_key,
)
from .store import Store, open_store

__all__ = [
    "AuditEntry",
    "DeltaState",
    "Enqueued",
    "HybridCursor",
    "Link",
    "LinkConflict",
    "LinkState",
    "OutboxItem",
    "OutboxState",
    "RoomStatus",
    "RoomTx",
    "SchemaTooNew",
    "Store",
    "StoreError",
    "UnknownIntent",
    "open_store",
    "room_key",
]
