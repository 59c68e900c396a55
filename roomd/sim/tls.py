"""A throw-away local certificate authority for the simulators' HTTPS endpoints.

Real msal and real httpx refuse plain HTTP authorities and unknown issuers, exactly as they would
against Microsoft; so the simulators serve HTTPS with a certificate from a CA generated at start-up
(trustme: no hand-rolled crypto), and roomd trusts that CA through its ``ca_bundle`` setting.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path

import trustme


@dataclass
class LocalCA:
    """One CA per simulator process; a server certificate for loopback names."""

    _ca: trustme.CA = field(default_factory=trustme.CA)

    def __post_init__(self) -> None:
        self._leaf = self._ca.issue_cert("127.0.0.1", "localhost", "::1")

    @property
    def cert_pem(self) -> bytes:
        """The CA certificate (PEM), to be trusted by clients."""
        return bytes(self._ca.cert_pem.bytes())

    def write_ca_bundle(self, path: Path) -> Path:
        """Write the CA certificate where a roomd config's ``ca_bundle`` can point."""
        path.write_bytes(self.cert_pem)
        return path

    def server_context(self) -> ssl.SSLContext:
        """An SSL context for an aiohttp/asyncio server presenting the loopback certificate."""
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._leaf.configure_cert(ctx)
        return ctx

    def client_context(self) -> ssl.SSLContext:
        """An SSL context that trusts this CA (for test code that is not roomd itself)."""
        ctx = ssl.create_default_context()
        self._ca.configure_trust(ctx)
        return ctx
