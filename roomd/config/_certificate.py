"""Read a Graph app certificate (PEM: private key + certificate) the way msal will use it.

Microsoft Entra ID signs client assertions with RS256/PS256, so only RSA keys work; msal takes the
legacy PEM form ``{"private_key", "thumbprint" (SHA-1 hex), "passphrase"}`` (msal
``ConfidentialClientApplication`` docs). Checking all of it at load time turns a failed token
request at 3 a.m. into a ``roomd config check`` line.

cryptography is imported only when a certificate is read: with a client secret nothing else in a
running daemon needs it (msal imports it only to sign a certificate's assertions), and importing
it maps its OpenSSL build, ~10 MB of the daemon's RSS (bench/README.md section 1).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import rsa

_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----.*?-----END \1-----", re.DOTALL)
_KEY_LABELS = {b"PRIVATE KEY", b"RSA PRIVATE KEY", b"ENCRYPTED PRIVATE KEY", b"EC PRIVATE KEY"}


class CertificateProblem(Exception):
    """What is wrong with the certificate, and which key (file or password file) to blame."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key
        self.message = message


@dataclass(frozen=True)
class LoadedCertificate:
    private_key_pem: str
    certificate_pem: str
    thumbprint: str


def _public_der(key: rsa.RSAPublicKey | rsa.RSAPrivateKey) -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    public = key.public_key() if isinstance(key, rsa.RSAPrivateKey) else key
    return public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_certificate(
    pem: bytes, password: bytes | None, source: str, now: dt.datetime | None = None
) -> LoadedCertificate:
    """Parse and cross-check; raise CertificateProblem. Messages never contain key material."""
    # here, not at the top: see the module's docstring (a daemon with a client secret never
    # imports cryptography)
    from cryptography import x509
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    file_key, password_key = "certificate_file", "certificate_password_file"
    blocks = [(m.group(1), m.group(0)) for m in _BLOCK.finditer(pem)]
    keys = [block for label, block in blocks if label in _KEY_LABELS]
    certs = [block for label, block in blocks if label == b"CERTIFICATE"]
    if len(keys) != 1:
        found = "none" if not keys else f"{len(keys)}"
        raise CertificateProblem(
            file_key, f"{source} must hold exactly one PEM private key (found {found})"
        )
    if not certs:
        raise CertificateProblem(file_key, f"{source} holds no PEM certificate")
    try:
        private_key = serialization.load_pem_private_key(keys[0], password=password)
    except TypeError:
        if password is None:
            raise CertificateProblem(
                file_key,
                f"the private key in {source} is encrypted; set certificate_password_file",
            ) from None
        raise CertificateProblem(
            password_key, f"is set, but the private key in {source} is not encrypted"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        if password is not None:
            raise CertificateProblem(
                password_key, f"does not decrypt the private key in {source}"
            ) from None
        raise CertificateProblem(file_key, f"the private key in {source} cannot be read") from None
    if not isinstance(private_key, rsa.RSAPrivateKey):
        raise CertificateProblem(
            file_key,
            f"the private key in {source} is not RSA; Microsoft Entra ID app certificates "
            "must use RSA keys",
        )
    wanted = _public_der(private_key)
    leaf: x509.Certificate | None = None
    leaf_pem = b""
    for block in certs:
        try:
            cert = x509.load_pem_x509_certificate(block)
        except ValueError:
            raise CertificateProblem(
                file_key, f"{source} holds an unreadable certificate"
            ) from None
        public = cert.public_key()
        if isinstance(public, rsa.RSAPublicKey) and _public_der(public) == wanted:
            leaf, leaf_pem = cert, block
            break
    if leaf is None:
        raise CertificateProblem(file_key, f"no certificate in {source} matches its private key")
    now = now or dt.datetime.now(dt.UTC)
    if leaf.not_valid_after_utc <= now:
        raise CertificateProblem(
            file_key,
            f"the certificate in {source} expired on {leaf.not_valid_after_utc:%Y-%m-%d %H:%M} "
            f"UTC (subject {leaf.subject.rfc4514_string()}); upload a new one to the app "
            "registration",
        )
    if leaf.not_valid_before_utc > now:
        raise CertificateProblem(
            file_key,
            f"the certificate in {source} is not valid before "
            f"{leaf.not_valid_before_utc:%Y-%m-%d %H:%M} UTC",
        )
    chain = [leaf_pem] + [block for block in certs if block != leaf_pem]
    return LoadedCertificate(
        private_key_pem=keys[0].decode("ascii", "replace") + "\n",
        certificate_pem="\n".join(block.decode("ascii", "replace") for block in chain) + "\n",
        thumbprint=leaf.fingerprint(hashes.SHA1()).hex().upper(),  # SHA-1: what msal wants
    )
