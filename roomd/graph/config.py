"""The Graph client's own settings: what roomd's Settings are mapped to by the composition root.

Secrets (the client secret, the certificate's private key) are kept out of ``repr`` so that a
settings object printed in a log line or a traceback never shows them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
"""``.default`` asks for every application permission the app was granted (auth-v2-service.md)."""


@dataclass(frozen=True)
class CertificateCredential:
    """An app certificate for the client-credentials flow (msal 1.39 ``client_credential`` dict).

    ``thumbprint`` is the legacy SHA-1 hex thumbprint; leave it ``None`` and msal (>= 1.35) computes
    the SHA-256 thumbprint from ``public_certificate_pem`` instead, which is what msal's own docs
    recommend (graph-behaviour.md 3.3).
    """

    private_key_pem: str = field(repr=False)
    public_certificate_pem: str
    thumbprint: str | None = None
    passphrase: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if "PRIVATE KEY" not in self.private_key_pem:
            raise ValueError("graph certificate: private_key_pem is not a PEM private key")
        if "BEGIN CERTIFICATE" not in self.public_certificate_pem:
            raise ValueError("graph certificate: public_certificate_pem is not a PEM certificate")


@dataclass(frozen=True)
class GraphClientConfig:
    """Everything the Graph client needs; defaults point at Microsoft's public cloud.

    Concurrency: Outlook serves at most 4 concurrent requests per app and mailbox (throttling.md),
    and the newer throttling-limits.md reads that limit per app across mailboxes; so both a
    per-mailbox cap (``max_per_mailbox``) and an overall cap (``max_concurrent``) apply.
    """

    tenant_id: str
    client_id: str
    authority_host: str = "https://login.microsoftonline.com"
    base_url: str = "https://graph.microsoft.com/v1.0"
    ca_bundle: Path | None = None
    client_secret: str | None = field(default=None, repr=False)
    certificate: CertificateCredential | None = field(default=None, repr=False)
    scope: str = GRAPH_SCOPE
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    pool_timeout: float = 60.0
    max_connections: int = 64
    max_per_mailbox: int = 4
    max_concurrent: int = 4
    retry_attempts: int = 6
    retry_timeout: float = 120.0
    retry_wait_initial: float = 0.5
    retry_wait_max: float = 30.0
    retry_wait_jitter: float = 1.0
    max_retry_after: float = 120.0
    """A ``Retry-After`` longer than this is not slept through: ``Throttled`` reaches the caller,
    which can reschedule the work instead of holding a request open."""

    def __post_init__(self) -> None:
        for name in ("tenant_id", "client_id"):
            if not str(getattr(self, name)).strip():
                raise ValueError(f"graph.{name}: must not be empty")
        for name in ("authority_host", "base_url"):
            value = getattr(self, name)
            parts = urlsplit(value)
            if parts.scheme != "https" or not parts.hostname:
                raise ValueError(
                    f"graph.{name}: {value!r} is not an https URL (msal and Graph require TLS)"
                )
        if (self.client_secret is None) == (self.certificate is None):
            raise ValueError(
                "graph: exactly one of client_secret and certificate must be set, found "
                + ("both" if self.client_secret is not None else "neither")
            )
        if self.client_secret is not None and not self.client_secret.strip():
            raise ValueError("graph.client_secret: must not be empty")
        if self.ca_bundle is not None and not self.ca_bundle.is_file():
            raise ValueError(f"graph.ca_bundle: {str(self.ca_bundle)!r} is not a readable file")
        if not 1 <= self.max_per_mailbox <= 4:
            raise ValueError(
                f"graph.max_per_mailbox: {self.max_per_mailbox} is outside 1..4 "
                "(Outlook allows 4 concurrent requests per mailbox)"
            )
        if self.max_concurrent < 1:
            raise ValueError(f"graph.max_concurrent: {self.max_concurrent} must be at least 1")
        if self.retry_attempts < 1:
            raise ValueError(f"graph.retry_attempts: {self.retry_attempts} must be at least 1")

    @property
    def authority(self) -> str:
        """The msal authority URL, ``{authority_host}/{tenant_id}``."""
        return f"{self.authority_host.rstrip('/')}/{self.tenant_id}"
