"""Bad Graph settings are refused with the setting's name; secrets never show in a repr."""

from __future__ import annotations

from pathlib import Path

import pytest

from roomd.graph.config import CertificateCredential, GraphClientConfig


def test_needs_exactly_one_credential() -> None:
    with pytest.raises(ValueError, match="neither"):
        GraphClientConfig(tenant_id="t", client_id="c")
    cert = CertificateCredential("-----BEGIN PRIVATE KEY-----x", "-----BEGIN CERTIFICATE-----y")
    with pytest.raises(ValueError, match="both"):
        GraphClientConfig(tenant_id="t", client_id="c", client_secret="s", certificate=cert)


def test_refuses_plain_http_and_names_the_key() -> None:
    with pytest.raises(ValueError, match=r"graph\.base_url: 'http://x/v1.0' is not an https URL"):
        GraphClientConfig(tenant_id="t", client_id="c", client_secret="s", base_url="http://x/v1.0")


def test_missing_ca_bundle_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    with pytest.raises(ValueError, match=r"graph\.ca_bundle"):
        GraphClientConfig(tenant_id="t", client_id="c", client_secret="s", ca_bundle=missing)


def test_per_mailbox_limit_cannot_exceed_outlooks_four() -> None:
    with pytest.raises(ValueError, match="max_per_mailbox"):
        GraphClientConfig(tenant_id="t", client_id="c", client_secret="s", max_per_mailbox=5)


def test_secrets_are_not_in_repr() -> None:
    cert = CertificateCredential(
        "-----BEGIN PRIVATE KEY-----SEKRIT-KEY", "-----BEGIN CERTIFICATE-----y", passphrase="PW42"
    )
    for config in (
        GraphClientConfig(tenant_id="t", client_id="c", client_secret="hunter2-SECRET"),
        GraphClientConfig(tenant_id="t", client_id="c", certificate=cert),
    ):
        text = repr(config) + str(config)
        assert "hunter2-SECRET" not in text and "SEKRIT-KEY" not in text and "PW42" not in text
    assert "SEKRIT-KEY" not in repr(cert) and "PW42" not in repr(cert)
