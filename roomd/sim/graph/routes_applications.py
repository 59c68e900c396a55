"""App registrations: ``GET /applications(appId='{appId}')`` and ``GET /applications/{id}``
(contrib api-reference/v1.0/api/application-get.md), enough for an app to read its own credentials'
expiry: ``passwordCredentials`` (resources/passwordcredential.md: ``keyId``, ``displayName``,
``hint`` = the first three characters, ``startDateTime``, ``endDateTime``; ``secretText`` is only
ever returned by addPassword, so null here) and ``keyCredentials`` (resources/keycredential.md;
``key`` only when ``$select``ed, application-get.md).

Permissions: application-get.md lists ``Application.Read.All`` as the least privileged application
permission, but "a service principal can retrieve its own application and service principal
details without being granted any application permissions" (serviceprincipal-get.md): an app
reading itself needs no role; reading another app without one of those roles is 403
``Authorization_RequestDenied``.
"""

from __future__ import annotations

import base64
import re
import uuid
from datetime import datetime
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from roomd.sim.graph.auth import App, IdentityPlatform
from roomd.sim.graph.wire import JSON, GraphError, GraphRequest, GraphResponse, fmt_response_time

if TYPE_CHECKING:
    from roomd.sim.graph.api import GraphApi

READ_ROLES = {
    "Application.Read.All",
    "Application.ReadWrite.All",
    "Application.ReadWrite.OwnedBy",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
}


def object_id(app: App) -> str:
    """The application object's ``id`` (not its ``appId``), stable per app."""
    return str(uuid.uuid5(uuid.NAMESPACE_OID, app.client_id))


class ApplicationRoutes:
    def __init__(self, api: GraphApi, identity: IdentityPlatform) -> None:
        self.api = api
        self.identity = identity

    def register(self) -> None:
        r = self.api.route
        r("GET", r"/applications\(appId='(?P<app_id>[^']+)'\)", self.get_application)
        r("GET", r"/applications/(?P<object_id>[^/(]+)", self.get_application)

    def _find(self, m: re.Match[str]) -> App | None:
        groups = m.groupdict()
        if groups.get("app_id"):
            return self.identity.apps.get(groups["app_id"])
        wanted = (groups.get("object_id") or "").lower()
        return next((a for a in self.identity.apps.values() if object_id(a) == wanted), None)

    async def get_application(self, req: GraphRequest, m: re.Match[str]) -> GraphResponse:
        app = self._find(m)
        own = app is not None and app.client_id == req.app_id
        if not own and not req.roles & READ_ROLES:
            raise GraphError(
                403,
                "Authorization_RequestDenied",
                "Insufficient privileges to complete the operation.",
            )
        if app is None:
            raise GraphError(
                404,
                "Request_ResourceNotFound",
                f"Resource '{m.group(0).split('/', 2)[-1]}' does not exist or one of its queried "
                "reference-property objects are not present.",
            )
        select = {s.strip() for s in (req.q("$select") or "").split(",") if s.strip()}
        body = self._application(app, with_key="keyCredentials" in select)
        if select:
            body = {k: v for k, v in body.items() if k in select or k == "id"}
        ctx = f"{self.api.base_url}/$metadata#applications/$entity"
        return GraphResponse(200, {"@odata.context": ctx, **body})

    @staticmethod
    def _application(app: App, *, with_key: bool) -> JSON:
        def when(value: datetime | None) -> str | None:
            return fmt_response_time(value) if value is not None else None

        passwords = [
            {
                "customKeyIdentifier": None,
                "displayName": s.display_name,
                "endDateTime": when(s.expires_at),
                "hint": s.value[:3],
                "keyId": s.key_id,
                "secretText": None,
                "startDateTime": when(s.starts_at),
            }
            for s in app.secrets
        ]
        keys = [
            {
                "customKeyIdentifier": c.sha1.hex().upper(),
                "displayName": f"CN={app.display_name}",
                "endDateTime": when(c.cert.not_valid_after_utc),
                "key": _key(c.cert) if with_key else None,
                "keyId": str(uuid.uuid5(uuid.NAMESPACE_OID, c.sha256.hex())),
                "startDateTime": when(c.cert.not_valid_before_utc),
                "type": "AsymmetricX509Cert",
                "usage": "Verify",
            }
            for c in app.certs
        ]
        return {
            "id": object_id(app),
            "appId": app.client_id,
            "displayName": app.display_name,
            "signInAudience": "AzureADMyOrg",
            "passwordCredentials": passwords,
            "keyCredentials": keys,
        }


def _key(cert: x509.Certificate) -> str:
    """keyCredential.key: the certificate's DER bytes, base64 (resources/keycredential.md)."""
    return base64.b64encode(cert.public_bytes(Encoding.DER)).decode()
