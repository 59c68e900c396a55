"""Settings of roomd's Hybrid client: what the lead maps roomd's validated Settings onto.

Kept apart from roomd's ``Settings`` so the client can be built and tested on its own; only the
default scope comes from ``roomd.config``, so that both ask for the same scopes. The client
secret is never part of the ``repr`` (design.md section 7: secrets never reach a log line).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from roomd.config import DEFAULT_HYBRID_SCOPE

__all__ = ["DEFAULT_SCOPE", "HybridClientConfig", "RetryPolicy", "Timeouts"]

# The scopes roomd asks for under OfficeRnD's fine-grained v2 scheme (developer.officernd.com;
# docs/hybrid-api.md). One default for the settings and for a client built without them: it lives
# in roomd.config, the innermost layer, which must not import this package.
DEFAULT_SCOPE = DEFAULT_HYBRID_SCOPE


@dataclass(frozen=True)
class Timeouts:
    """Seconds per phase of one HTTP request (httpx semantics)."""

    connect: float = 5.0
    read: float = 30.0
    write: float = 30.0
    pool: float = 5.0


@dataclass(frozen=True)
class RetryPolicy:
    """Capped, jittered exponential backoff for transient failures (429, 5xx, connection).

    ``retry_after_max`` caps how long a server's ``Retry-After`` may make roomd wait per attempt:
    honoured up to that bound so that one bad header cannot stall a sync round for an hour.
    """

    attempts: int = 5
    timeout: float = 60.0
    wait_initial: float = 0.5
    wait_max: float = 10.0
    wait_jitter: float = 0.5
    retry_after_max: float = 60.0


@dataclass(frozen=True)
class HybridClientConfig:
    """Where the Hybrid API is and how roomd authenticates (OAuth2 client credentials)."""

    base_url: str
    org: str
    token_url: str
    client_id: str
    client_secret: str = field(repr=False)
    scope: str = DEFAULT_SCOPE
    ca_bundle: Path | None = None
    timeouts: Timeouts = field(default_factory=Timeouts)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    max_connections: int = 8
    # Honour HTTP(S)_PROXY / NO_PROXY from the environment (a site behind an outbound proxy).
    # Off by default so that what roomd connects to is decided by its configuration alone.
    trust_env: bool = False
    token_refresh_margin_s: float = 120.0
    member_cache_ttl_s: float = 600.0
    member_cache_size: int = 2048

    def __post_init__(self) -> None:
        for name in ("base_url", "token_url"):
            value = getattr(self, name)
            parts = urlsplit(value)
            if parts.scheme != "https" or not parts.netloc:
                raise ValueError(f"hybrid.{name}: expected an https:// URL, found {value!r}")
        if not self.org or "/" in self.org:
            raise ValueError(f"hybrid.org: expected an organization slug, found {self.org!r}")
        if not self.client_id:
            raise ValueError("hybrid.client_id: must not be empty")
        if not self.client_secret:
            raise ValueError("hybrid.client_secret: must not be empty")

    @property
    def api_root(self) -> str:
        """``{base}/api/v2/organizations/{org}``, without a trailing slash."""
        return f"{self.base_url.rstrip('/')}/api/v2/organizations/{self.org}"
