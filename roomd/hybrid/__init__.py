"""roomd's side of the Hybrid (OfficeRnD-compatible) booking system: client and webhook receiver.

``HybridClient`` talks to the API (design.md section 5); ``hybrid_webhook_routes`` is the aiohttp
receiver the daemon mounts at ``POST /hooks/hybrid``. Nothing here imports the simulators.
"""

from roomd.hybrid.client import HybridClient, WebhookSubscription
from roomd.hybrid.config import HybridClientConfig, RetryPolicy, Timeouts
from roomd.hybrid.errors import (
    AuthError,
    BookingParseError,
    Conflict,
    CredentialsRefused,
    DoubleBooking,
    HybridError,
    NotFound,
    ValidationError,
)
from roomd.hybrid.feed import ChangeFeed
from roomd.hybrid.model import (
    HybridBooking,
    HybridMember,
    HybridResource,
    Recurrence,
    booking_payload,
    parse_booking,
)
from roomd.hybrid.webhooks import WebhookEvent, hybrid_webhook_routes

__all__ = [
    "AuthError",
    "BookingParseError",
    "ChangeFeed",
    "Conflict",
    "CredentialsRefused",
    "DoubleBooking",
    "HybridBooking",
    "HybridClient",
    "HybridClientConfig",
    "HybridError",
    "HybridMember",
    "HybridResource",
    "NotFound",
    "Recurrence",
    "RetryPolicy",
    "Timeouts",
    "ValidationError",
    "WebhookEvent",
    "WebhookSubscription",
    "booking_payload",
    "hybrid_webhook_routes",
    "parse_booking",
]
