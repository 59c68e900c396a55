"""What to do when Microsoft Entra ID refuses roomd's credentials, by its AADSTS number.

One table for both places an operator meets a refusal: the daemon's line in ``roomd status`` and
``/readyz`` (``roomd.graph.errors.CredentialsRefused``) and ``roomd doctor``'s token check.
Codes: Microsoft Entra authentication and authorization error codes (AADSTS7000215 bad secret,
7000222 expired secret, 700016 no such app, 90002/900023 no such tenant, 700027/700023/7000218
certificate, 700024 assertion outside its time).
"""

from __future__ import annotations

import re

RELOAD = ", then systemctl reload roomd"


def aadsts_code(description: str) -> int | None:
    """The ``AADSTSnnnn`` number in an identity-platform error description, if any."""
    m = re.search(r"AADSTS(\d+)", description)
    return int(m.group(1)) if m else None


def new_secret_fix(client_id: str) -> str:
    return (
        f"az ad app credential reset --id {client_id} --append --display-name roomd --years 1, "
        "put the new secret in graph.client_secret_file" + RELOAD
    )


def credential_fix(aadsts: int | None, client_id: str, *, certificate: bool = False) -> str | None:
    """The fix for a refusal with this AADSTS number; None when the number says nothing more
    than "check the tenant, client id and credential"."""
    if aadsts == 7000222:
        return new_secret_fix(client_id)
    if aadsts == 7000215:
        return (
            "put the secret's Value (not its Secret ID) in graph.client_secret_file, or "
            + new_secret_fix(client_id)
        )
    if aadsts == 700016:
        return (
            "set graph.client_id to the app registration's Application (client) ID and "
            "graph.tenant_id to its Directory (tenant) ID" + RELOAD
        )
    if aadsts in (90002, 900023):
        return "set graph.tenant_id to the app registration's Directory (tenant) ID" + RELOAD
    if aadsts in (700027, 700023) or (certificate and aadsts == 7000218):
        return (
            f"az ad app credential reset --id {client_id} --cert @graph-certificate.pem --append "
            "(the certificate graph.certificate_file names)" + RELOAD
        )
    if aadsts == 700024:
        return "set this host's clock right: timedatectl set-ntp true"
    return None
