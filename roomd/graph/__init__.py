"""roomd's Microsoft Graph client: msal tokens, one httpx client, per-mailbox limits, retries,
calendarView delta rounds, ``$batch`` and event operations.

The public surface is what other layers and the CLI use: the client and its configuration, the
typed errors, a delta round's result and the tag roomd puts on the events it writes. The
machinery behind ``GraphClient`` (``roomd.graph.http``, ``.batch``, ``.delta``, ``.events``) is
reached through the client; tests that exercise it import those modules directly.

Nothing here imports the simulators (``roomd.sim``); tests talk to them over real sockets.
"""

from roomd.graph.client import GraphClient
from roomd.graph.config import CertificateCredential, GraphClientConfig
from roomd.graph.delta import DeltaResult
from roomd.graph.errors import (
    AccessDenied,
    AuthError,
    BadRequest,
    CredentialsRefused,
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
from roomd.graph.events import ROOMD_TAG_PROPERTY_ID, tag_value, transaction_id_for
from roomd.graph.places import GraphRoom, GraphRoomList

__all__ = [
    "ROOMD_TAG_PROPERTY_ID",
    "AccessDenied",
    "AuthError",
    "BadRequest",
    "CertificateCredential",
    "CredentialsRefused",
    "DeltaResult",
    "FailedDependency",
    "GraphClient",
    "GraphClientConfig",
    "GraphConnectionError",
    "GraphError",
    "GraphProtocolError",
    "GraphRoom",
    "GraphRoomList",
    "NotFound",
    "PreconditionFailed",
    "ServiceUnavailable",
    "SyncStateExpired",
    "Throttled",
    "tag_value",
    "transaction_id_for",
]
