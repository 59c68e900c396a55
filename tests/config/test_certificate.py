"""Certificate credentials: what msal will need is checked when the config is loaded."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from roomd.config import check_config, load_config

Write = Callable[[str], Path]
Edit = Callable[..., str]
Key = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

NOW = dt.datetime.now(dt.UTC)


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def certificate(key: Key, *, days: tuple[int, int] = (-1, 365)) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "roomd")])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW + dt.timedelta(days=days[0]))
        .not_valid_after(NOW + dt.timedelta(days=days[1]))
        .sign(key, hashes.SHA256())
    )


def key_pem(key: Key, password: bytes | None = None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture
def with_certificate(edit: Edit, write: Write) -> Callable[..., Path]:
    """A config whose Graph credential is certificate_file (and maybe a password file)."""

    def make(pem: bytes, password: str | None = None) -> Path:
        lines = 'certificate_file = "graph.pem"\n'
        if password is not None:
            lines += 'certificate_password_file = "graph.pass"\n'
        path = write(edit(('client_secret = "${GRAPH_SECRET}"\n', lines)))
        (path.parent / "graph.pem").write_bytes(pem)
        if password is not None:
            (path.parent / "graph.pass").write_text(password + "\n")
        return path

    return make


def test_certificate_gives_msal_what_it_needs(
    rsa_key: rsa.RSAPrivateKey, with_certificate: Callable[..., Path], env: dict[str, str]
) -> None:
    cert = certificate(rsa_key)
    settings = load_config(with_certificate(key_pem(rsa_key) + cert_pem(cert)), env)
    loaded = settings.graph.certificate
    assert loaded is not None and settings.graph.client_secret is None
    der = cert.public_bytes(serialization.Encoding.DER)
    assert loaded.thumbprint == hashlib.sha1(der).hexdigest().upper()
    assert x509.load_pem_x509_certificate(loaded.certificate_pem.encode()) == cert
    key = serialization.load_pem_private_key(loaded.private_key_pem.reveal().encode(), None)
    assert key.public_key() == rsa_key.public_key()
    assert loaded.msal_credential() == {
        "private_key": loaded.private_key_pem.reveal(),
        "thumbprint": loaded.thumbprint,
    }


def test_encrypted_key_with_its_password(
    rsa_key: rsa.RSAPrivateKey, with_certificate: Callable[..., Path], env: dict[str, str]
) -> None:
    pem = cert_pem(certificate(rsa_key)) + key_pem(rsa_key, b"pa55-word")
    loaded = load_config(with_certificate(pem, password="pa55-word"), env).graph.certificate
    assert loaded is not None and loaded.password is not None
    assert loaded.msal_credential()["passphrase"] == "pa55-word"
    assert "pa55-word" not in repr(loaded)


def test_wrong_password_is_blamed_on_the_password_file(
    rsa_key: rsa.RSAPrivateKey, with_certificate: Callable[..., Path], env: dict[str, str]
) -> None:
    pem = key_pem(rsa_key, b"right-one") + cert_pem(certificate(rsa_key))
    path = with_certificate(pem, password="wrong-one")
    [problem] = check_config(path, env)
    assert problem.endswith(
        f": graph.certificate_password_file: does not decrypt the private key in "
        f"{path.parent / 'graph.pem'} (line 5)"
    )
    assert "wrong-one" not in problem and "right-one" not in problem


def test_encrypted_key_without_a_password_file(
    rsa_key: rsa.RSAPrivateKey, with_certificate: Callable[..., Path], env: dict[str, str]
) -> None:
    path = with_certificate(key_pem(rsa_key, b"secret") + cert_pem(certificate(rsa_key)))
    [problem] = check_config(path, env)
    assert problem.endswith(
        f": graph.certificate_file: the private key in {path.parent / 'graph.pem'} is encrypted; "
        "set certificate_password_file (line 4)"
    )


def test_certificate_of_another_key(
    rsa_key: rsa.RSAPrivateKey, with_certificate: Callable[..., Path], env: dict[str, str]
) -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    [problem] = check_config(with_certificate(key_pem(rsa_key) + cert_pem(certificate(other))), env)
    assert "graph.certificate_file: no certificate in" in problem
    assert problem.endswith("matches its private key (line 4)")


def test_expired_certificate(
    rsa_key: rsa.RSAPrivateKey, with_certificate: Callable[..., Path], env: dict[str, str]
) -> None:
    expired = certificate(rsa_key, days=(-30, -1))
    [problem] = check_config(with_certificate(key_pem(rsa_key) + cert_pem(expired)), env)
    assert "graph.certificate_file: the certificate in" in problem
    assert f"expired on {expired.not_valid_after_utc:%Y-%m-%d}" in problem
    assert "(subject CN=roomd)" in problem


def test_non_rsa_key_is_refused(with_certificate: Callable[..., Path], env: dict[str, str]) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    [problem] = check_config(with_certificate(key_pem(key) + cert_pem(certificate(key))), env)
    assert "is not RSA; Microsoft Entra ID app certificates must use RSA keys" in problem


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "must hold exactly one PEM private key (found none)"),
        (b"not pem at all", "must hold exactly one PEM private key (found none)"),
    ],
)
def test_file_without_key(
    with_certificate: Callable[..., Path], env: dict[str, str], content: bytes, expected: str
) -> None:
    [problem] = check_config(with_certificate(content), env)
    assert "graph.certificate_file: " in problem and expected in problem


def test_key_without_certificate(
    rsa_key: rsa.RSAPrivateKey, with_certificate: Callable[..., Path], env: dict[str, str]
) -> None:
    [problem] = check_config(with_certificate(key_pem(rsa_key)), env)
    assert problem.endswith("graph.pem holds no PEM certificate (line 4)")
    assert "BEGIN" not in problem


def test_unreadable_password_and_certificate_files_are_both_reported(
    edit: Edit, write: Write, env: dict[str, str]
) -> None:
    text = edit(
        (
            'client_secret = "${GRAPH_SECRET}"\n',
            'certificate_file = "absent.pem"\ncertificate_password_file = "absent.pass"\n',
        )
    )
    path = write(text)
    assert [p.split(": ", 1)[1] for p in check_config(path, env)] == [
        f"graph.certificate_file: cannot read {path.parent / 'absent.pem'} (no such file) (line 4)",
        f"graph.certificate_password_file: cannot read {path.parent / 'absent.pass'} "
        "(no such file) (line 5)",
    ]


def test_a_daemon_with_a_client_secret_never_imports_cryptography(
    write: Write, valid_text: str, env: dict[str, str]
) -> None:
    """cryptography maps its own OpenSSL build (~10 MB of RSS, bench/README.md section 1): only a
    certificate credential needs it, and then it is imported when the certificate is read."""
    path = write(valid_text)
    script = (
        "import sys\n"
        "from roomd.compose import build_daemon\n"
        "from roomd.config import load_config\n"
        f"build_daemon(load_config({str(path)!r}), config_path={str(path)!r})\n"
        "print(sorted(m for m in sys.modules if m.startswith('cryptography')))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    assert run.stdout.strip() == "[]"
