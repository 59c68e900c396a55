"""roomd's Microsoft Graph client: msal tokens, one httpx client, per-mailbox limits, retries,
calendarView delta rounds, ``$batch`` and event operations.

Nothing here imports the simulators (``roomd.sim``); tests talk to them over real sockets.
"""

from roomd.graph.batch import BatchAnswer, BatchItem, run_batch, send_batch
from roomd.graph.client import GraphClient
from roomd.graph.config import CertificateCredential, GraphClientConfig
from roomd.graph.delta import DeltaPage, DeltaReader, DeltaResult
from roomd.graph.errors import (
    AccessDenied,
    AuthError,
    BadRequest,
    FailedDependency,
    GraphConnectionError,
    GraphError,
    GraphProtocolError,
    NotFound,
    PreconditionFailed,
    ServiceUnavailable,
    SyncStateExpired,
    Throttled,
)
from roomd.graph.events import ROOMD_TAG_PROPERTY_ID, EventOps, tag_value, transaction_id_for
from roomd.graph.http import GraphHttp

__all__ = [
    "ROOMD_TAG_PROPERTY_ID",
    "AccessDenied",
    "AuthError",
    "BadRequest",
    "BatchAnswer",
    "BatchItem",
    "CertificateCredential",
    "DeltaPage",
    "DeltaReader",
    "DeltaResult",
    "EventOps",
    "FailedDependency",
    "GraphClient",
    "GraphClientConfig",
    "GraphConnectionError",
    "GraphError",
    "GraphHttp",
    "GraphProtocolError",
    "NotFound",
    "PreconditionFailed",
    "ServiceUnavailable",
    "SyncStateExpired",
    "Throttled",
    "run_batch",
    "send_batch",
    "tag_value",
    "transaction_id_for",
]
