"""The Microsoft identity platform, as far as a daemon sees it: OpenID discovery, the v2.0 token
endpoint (client credentials with a secret or a certificate assertion), signed access tokens, and
the bearer check Graph does on every call.

Sources: contrib concepts/auth-v2-service.md (token request and response), Microsoft identity
platform "certificate credentials" (client assertion: ``x5t``/``x5t#S256`` header, ``aud`` = the
token endpoint, ``iss`` = ``sub`` = client id), msal 1.39 ``authority.py`` (discovery at
``{authority}/v2.0/.well-known/openid-configuration``), and AADSTS error responses
(``{"error", "error_description", "error_codes", ...}``).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from roomd.sim.graph.clock import SimClock

GRAPH_RESOURCE = "https://graph.microsoft.com"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
DEFAULT_ROLES = ("Calendars.ReadWrite", "Place.Read.All", "User.Read.All")
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@lru_cache(maxsize=1)
def _signing_key() -> rsa.RSAPrivateKey:
    """One RSA key per process signs the simulator's access tokens (generated once: speed)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@lru_cache(maxsize=1)
def _public_key() -> rsa.RSAPublicKey:
    return _signing_key().public_key()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class ClientSecret:
    """A client secret and the metadata Graph shows of it (resources/passwordcredential.md:
    ``keyId``, ``displayName``, ``hint`` = its first three characters, ``startDateTime``,
    ``endDateTime``); ``expires_at`` is ``endDateTime``."""

    value: str
    expires_at: datetime | None = None
    key_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    display_name: str = "roomd"
    starts_at: datetime | None = None

    def __repr__(self) -> str:  # never show the secret
        return f"ClientSecret(expires_at={self.expires_at!r})"


@dataclass
class RegisteredCert:
    cert: x509.Certificate
    sha1: bytes
    sha256: bytes


@dataclass
class App:
    """An app registration with admin-consented application permissions (``roles``)."""

    client_id: str
    display_name: str
    roles: tuple[str, ...] = DEFAULT_ROLES
    secrets: list[ClientSecret] = field(default_factory=list)
    certs: list[RegisteredCert] = field(default_factory=list)
    allowed_mailboxes: set[str] | None = None  # ApplicationAccessPolicy RestrictAccess; None=all


@dataclass
class Identity:
    """Who a valid bearer token says is calling."""

    app_id: str
    roles: frozenset[str]


class TokenError(Exception):
    """An AADSTS-style refusal at the token endpoint."""

    def __init__(self, status: int, error: str, aadsts: int, description: str) -> None:
        super().__init__(f"{error}: AADSTS{aadsts}")
        self.status = status
        self.error = error
        self.aadsts = aadsts
        self.description = description

    def body(self, now: datetime) -> dict[str, Any]:
        trace = str(uuid.uuid4())
        return {
            "error": self.error,
            "error_description": f"AADSTS{self.aadsts}: {self.description}\r\nTrace ID: {trace}"
            f"\r\nCorrelation ID: {uuid.uuid4()}\r\nTimestamp: {now:%Y-%m-%d %H:%M:%SZ}",
            "error_codes": [self.aadsts],
            "timestamp": f"{now:%Y-%m-%d %H:%M:%SZ}",
            "trace_id": trace,
            "correlation_id": str(uuid.uuid4()),
            "error_uri": f"https://login.microsoftonline.com/error?code={self.aadsts}",
        }


class AuthFailure(Exception):
    """The bearer check failed; Graph answers 401 InvalidAuthenticationToken."""


class IdentityPlatform:
    """App registrations of one tenant, the token endpoint and the bearer check."""

    def __init__(self, tenant_id: str, domain: str, clock: SimClock) -> None:
        self.tenant_id = tenant_id
        self.domain = domain
        self.clock = clock
        self.apps: dict[str, App] = {}
        self.token_lifetime = timedelta(seconds=3599)  # auth-v2-service.md sample: 3599
        self.revoked_below = 0  # tokens with a lower issue number are revoked
        self.tokens_issued = 0
        self.token_requests = 0  # answered or refused: what a client's retry storm would cost
        self._verified: dict[str, dict[str, Any]] = {}  # signature checks are costly: once each

    # -- registration -----------------------------------------------------------------------
    def register_secret_app(
        self, display_name: str = "roomd", roles: tuple[str, ...] = DEFAULT_ROLES
    ) -> tuple[str, str]:
        client_id = str(uuid.uuid4())
        secret = secrets.token_urlsafe(30)
        # application-addpassword.md: endDateTime defaults to "startDateTime + 2 years"
        now = self.clock.now()
        stored = ClientSecret(secret, now + timedelta(days=730), starts_at=now)
        self.apps[client_id] = App(client_id, display_name, roles, [stored])
        return client_id, secret

    def register_certificate_app(
        self, display_name: str = "roomd-cert", roles: tuple[str, ...] = DEFAULT_ROLES
    ) -> tuple[str, str, str, str]:
        """A new app with a self-signed certificate credential.

        Returns (client_id, private_key_pem, cert_pem, sha1_thumbprint_hex); msal accepts
        ``{"private_key": key, "public_certificate": cert}`` (SHA-256 thumbprint, PS256) or
        ``{"private_key": key, "thumbprint": sha1}`` (legacy RS256).
        """
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, display_name)])
        now = datetime.now(UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=365))
            .sign(key, hashes.SHA256())
        )
        client_id = str(uuid.uuid4())
        registered = RegisteredCert(
            cert,
            cert.fingerprint(hashes.SHA1()),
            cert.fingerprint(hashes.SHA256()),
        )
        self.apps[client_id] = App(client_id, display_name, roles, certs=[registered])
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
        return client_id, key_pem, cert_pem, registered.sha1.hex().upper()

    # -- discovery --------------------------------------------------------------------------
    def openid_configuration(self, authority_host: str) -> dict[str, Any]:
        """The v2.0 discovery document (login.microsoftonline.com/{tenant}/v2.0/.well-known/...)."""
        base = f"{authority_host}/{self.tenant_id}"
        return {
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": [
                "client_secret_post",
                "private_key_jwt",
                "client_secret_basic",
            ],
            "jwks_uri": f"{authority_host}/{self.tenant_id}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"{base}/v2.0",
            "request_uri_parameter_supported": False,
            "userinfo_endpoint": f"{authority_host}/oidc/userinfo",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "tid", "ver"],
            "kerberos_endpoint": f"{base}/kerberos",
            "tenant_region_scope": "EU",
            "cloud_instance_name": "microsoftonline.com",
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": "graph.microsoft.com",
            "rbac_url": "https://pas.windows.net",
        }

    def jwks(self) -> dict[str, Any]:
        pub = _signing_key().public_key().public_numbers()
        n = pub.n.to_bytes((pub.n.bit_length() + 7) // 8, "big")
        e = pub.e.to_bytes((pub.e.bit_length() + 7) // 8, "big")
        return {
            "keys": [
                {"kty": "RSA", "use": "sig", "kid": self._kid(), "n": _b64url(n), "e": _b64url(e)}
            ]
        }

    def _kid(self) -> str:
        der = (
            _signing_key()
            .public_key()
            .public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        return _b64url(hashlib.sha1(der).digest())

    # -- token endpoint ---------------------------------------------------------------------
    def issue_token(self, tenant: str, form: dict[str, str], token_endpoint: str) -> dict[str, Any]:
        """Answer ``POST /{tenant}/oauth2/v2.0/token``; raises ``TokenError`` on refusal."""
        self.token_requests += 1
        if tenant.lower() not in (self.tenant_id.lower(), self.domain.lower()):
            raise TokenError(
                400,
                "invalid_request",
                90002,
                f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID "
                "and are signing into the correct cloud.",
            )
        grant = form.get("grant_type", "")
        if grant != "client_credentials":
            raise TokenError(
                400,
                "unsupported_grant_type",
                70003,
                f"The app requested an unsupported grant type '{grant}'.",
            )
        client_id = form.get("client_id", "")
        app = self.apps.get(client_id)
        if app is None:
            raise TokenError(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory "
                f"'{self.domain}'.",
            )
        scope = form.get("scope", "")
        if scope.strip() not in (f"{GRAPH_RESOURCE}/.default", f"{GRAPH_APP_ID}/.default"):
            raise TokenError(
                400,
                "invalid_scope",
                1002012,
                f"The provided value for scope {scope} is not valid. Client credential flows "
                "must have a scope value with /.default suffixed to the resource identifier "
                "(application ID URI).",
            )
        if "client_assertion" in form:
            self._check_assertion(app, form, token_endpoint)
        elif "client_secret" in form:
            self._check_secret(app, form["client_secret"])
        else:
            raise TokenError(
                401,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or "
                "'client_secret'.",
            )
        return self._access_token(app)

    def _check_secret(self, app: App, presented: str) -> None:
        now = self.clock.now()
        for stored in app.secrets:
            if secrets.compare_digest(stored.value, presented):
                if stored.expires_at is not None and stored.expires_at <= now:
                    raise TokenError(
                        401,
                        "invalid_client",
                        7000222,
                        f"The provided client secret keys for app '{app.client_id}' are expired.",
                    )
                return
        raise TokenError(
            401,
            "invalid_client",
            7000215,
            "Invalid client secret provided. Ensure the secret being sent in the request is the "
            f"client secret value, not the client secret ID, for a secret added to app "
            f"'{app.client_id}'.",
        )

    def _check_assertion(self, app: App, form: dict[str, str], token_endpoint: str) -> None:
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            raise TokenError(
                400,
                "invalid_request",
                50027,
                "client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:"
                "jwt-bearer.",
            )
        assertion = form["client_assertion"]
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError as exc:
            raise TokenError(
                401, "invalid_client", 50027, "Invalid JWT token. Token format not valid."
            ) from exc
        cert = self._cert_for(app, header)
        try:
            claims = jwt.decode(
                assertion,
                cert.public_key(),  # type: ignore[arg-type]
                algorithms=["RS256", "PS256"],
                audience=token_endpoint,
                options={"require": ["exp", "aud", "iss", "sub"]},
                leeway=300,
            )
        except jwt.InvalidAudienceError as exc:
            raise TokenError(
                401,
                "invalid_client",
                700212,
                f"No matching federated identity record found for presented assertion audience "
                f"'{exc}'. The audience must be the token endpoint {token_endpoint}.",
            ) from exc
        except jwt.ExpiredSignatureError as exc:
            raise TokenError(
                401,
                "invalid_client",
                700024,
                "Client assertion is not within its valid time range.",
            ) from exc
        except jwt.PyJWTError as exc:
            raise TokenError(
                401,
                "invalid_client",
                700027,
                "Client assertion failed signature validation.",
            ) from exc
        if claims.get("iss") != app.client_id or claims.get("sub") != app.client_id:
            raise TokenError(
                401,
                "invalid_client",
                700023,
                "Client assertion iss and sub claims must both be the client id.",
            )

    def _cert_for(self, app: App, header: dict[str, Any]) -> x509.Certificate:
        # msal pads the base64url thumbprint ("="); RFC 7515 does not: accept both
        s256 = str(header.get("x5t#S256") or "").rstrip("=")
        s1 = str(header.get("x5t") or "").rstrip("=")
        for reg in app.certs:
            if s256 and s256 == _b64url(reg.sha256):
                return reg.cert
            if s1 and s1 == _b64url(reg.sha1):
                return reg.cert
        raise TokenError(
            401,
            "invalid_client",
            700027,
            f"The certificate with identifier used to sign the client assertion is not "
            f"registered on application {app.client_id}.",
        )

    def _access_token(self, app: App) -> dict[str, Any]:
        now = self.clock.now()
        exp = now + self.token_lifetime
        claims = {
            "aud": GRAPH_RESOURCE,
            "iss": f"https://sts.windows.net/{self.tenant_id}/",
            "iat": int(now.timestamp()),
            "nbf": int(now.timestamp()),
            "exp": int(exp.timestamp()),
            "app_displayname": app.display_name,
            "appid": app.client_id,
            "idtyp": "app",
            "oid": str(uuid.uuid5(uuid.NAMESPACE_URL, app.client_id)),
            "roles": list(app.roles),
            "sub": str(uuid.uuid5(uuid.NAMESPACE_URL, app.client_id)),
            "tid": self.tenant_id,
            "uti": secrets.token_urlsafe(16),
            "xms_sim_n": self.tokens_issued + 1,  # issue number, for revocation
            "ver": "1.0",
        }
        token = jwt.encode(
            claims,
            _signing_key(),
            algorithm="RS256",
            headers={"x5t": self._kid(), "kid": self._kid()},
        )
        self.tokens_issued += 1
        return {
            "token_type": "Bearer",
            "expires_in": int(self.token_lifetime.total_seconds()),
            "ext_expires_in": int(self.token_lifetime.total_seconds()),
            "access_token": token,
        }

    def token_for(self, client_id: str) -> str:
        """An access token for a registered app without the HTTP dance (control surface)."""
        app = self.apps.get(client_id)
        if app is None:
            raise KeyError(f"no app registration with client id {client_id!r}")
        return str(self._access_token(app)["access_token"])

    # -- bearer check -----------------------------------------------------------------------
    def authenticate(self, authorization: str | None) -> Identity:
        """Validate ``Authorization: Bearer ...``; raises ``AuthFailure`` with Graph's message."""
        if not authorization or not authorization.strip():
            raise AuthFailure("Access token is empty.")
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthFailure("Access token is empty.")
        claims = self._verified.get(token.strip())
        if claims is None:
            claims = self._verify(token.strip())
            if len(self._verified) > 2000:
                self._verified.clear()
            self._verified[token.strip()] = claims
        now = self.clock.now()
        if claims.get("tid") != self.tenant_id:
            raise AuthFailure("Access token validation failure. Invalid audience.")
        if int(claims["exp"]) <= now.timestamp():
            raise AuthFailure("Lifetime validation failed, the token is expired.")
        if int(claims.get("xms_sim_n", 0)) <= self.revoked_below:
            raise AuthFailure("Lifetime validation failed, the token is expired.")
        app = self.apps.get(str(claims.get("appid")))
        if app is None:
            raise AuthFailure("Access token validation failure.")
        return Identity(app.client_id, frozenset(claims.get("roles", [])))

    def _verify(self, token: str) -> dict[str, Any]:
        """Signature and audience of a bearer token (lifetime is checked on every call)."""
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                _public_key(),
                algorithms=["RS256"],
                audience=[GRAPH_RESOURCE, GRAPH_APP_ID],
                options={"verify_exp": False, "verify_nbf": False, "verify_iat": False},
            )
        except jwt.InvalidAudienceError as exc:
            raise AuthFailure("Access token validation failure. Invalid audience.") from exc
        except jwt.PyJWTError as exc:
            raise AuthFailure(
                "IDX14100: JWT is not well formed, there are no dots (.).\nThe token needs to be "
                "in JWS or JWE Compact Serialization Format."
                if token.count(".") != 2
                else "Access token validation failure."
            ) from exc
        return claims
