"""What the config file may contain: one strict pydantic model per TOML table.

Strict mode, because TOML already has types: ``poll_interval_seconds = "30"`` is a mistake worth
reporting, not a value to coerce. Every check here looks at one value; checks that need the file
system, the environment or two keys at once live in ``_resolve``.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo

from roomd.config._expand import syntax_problem
from roomd.config._settings import (
    DEFAULT_AUTHORITY_HOST,
    DEFAULT_GRAPH_BASE_URL,
    DEFAULT_HYBRID_SCOPE,
    DEFAULT_POLL_INTERVAL_SECONDS,
    Conflict,
    Direction,
    LogLevel,
)

_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DOMAIN = re.compile(rf"(?:{_LABEL}\.)+[A-Za-z]{{2,63}}")
# RFC 5322 dot-atom local part: what Exchange accepts for an SMTP address
_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_SLUG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def env_ref_name(value: str) -> str | None:
    """The variable name in a ``${NAME}`` reference, or None when the value is not one."""
    match = _ENV_REF.fullmatch(value)
    return match.group(1) if match else None


def _non_empty(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


def _guid(value: str) -> str:
    if not _GUID.fullmatch(value):
        raise ValueError(f"{value!r} is not a GUID (the form 00000000-0000-0000-0000-000000000000)")
    return value.lower()


def _tenant(value: str) -> str:
    """Microsoft identity platform accepts a tenant GUID or one of the tenant's domain names."""
    if _GUID.fullmatch(value) or _DOMAIN.fullmatch(value):
        return value.lower()
    if value.lower() in ("common", "organizations", "consumers"):
        raise ValueError(
            f"{value!r} cannot be used with app-only (client credentials) sign-in; "
            "give the tenant's GUID or a domain such as contoso.onmicrosoft.com"
        )
    raise ValueError(
        f"{value!r} is neither a tenant GUID nor a domain name such as contoso.onmicrosoft.com"
    )


def _email(value: str) -> str:
    local, at, domain = value.rpartition("@")
    if not at or not _LOCAL.fullmatch(local) or not _DOMAIN.fullmatch(domain):
        raise ValueError(f"{value!r} is not an email address")
    return value


def _https_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.username is not None or parts.password is not None:
        # never echo it: the part before '@' may be a password
        raise ValueError("must not carry a user name or password; roomd reads secrets from files")
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError(f"must be an https:// URL (found {value!r})")
    if parts.query or parts.fragment:
        raise ValueError(f"must be a URL without a query or fragment (found {value!r})")
    try:
        parts.port  # noqa: B018  (raises on a port that is not a number)
    except ValueError:
        raise ValueError(f"has an invalid port (found {value!r})") from None
    return value.rstrip("/")


def _https_host(value: str) -> str:
    """msal builds ``{authority_host}/{tenant}``, so a path here would double the tenant."""
    url = _https_url(value)
    if urlsplit(url).path:
        raise ValueError(
            f"must be the host only, such as {DEFAULT_AUTHORITY_HOST} "
            f"(the tenant comes from graph.tenant_id) (found {value!r})"
        )
    return url


def _ip_address(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError(
            f"{value!r} is not an IP address (use e.g. 127.0.0.1, ::1 or 0.0.0.0)"
        ) from None


def _slug(value: str) -> str:
    if not _SLUG.fullmatch(value):
        raise ValueError(
            f"{value!r} is not an organization slug (letters, digits, '.', '_' and '-')"
        )
    return value


def _time_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(
            f"{value!r} is not an IANA time zone name (such as Europe/London)"
        ) from None
    return value


def _path_text(value: str) -> str:
    if not value.strip() or "\0" in value:
        raise ValueError(f"{value!r} is not a file path")
    return value


def _file_path(value: str) -> str:
    """A ``*_file`` path may name environment variables; ``_expand`` says how."""
    problem = syntax_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def _env_ref(value: str, info: ValidationInfo) -> str:
    """Secrets never sit in the config file itself (design.md section 7)."""
    if env_ref_name(value) is None:
        key = info.field_name
        raise ValueError(
            f"a secret written into the config file is refused: put it in a file and set "
            f'{key}_file, or name an environment variable as {key} = "${{ENV_NAME}}"'
        )
    return value


NonEmpty = Annotated[str, AfterValidator(_non_empty)]
Guid = Annotated[str, AfterValidator(_guid)]
Tenant = Annotated[str, AfterValidator(_tenant)]
Email = Annotated[str, AfterValidator(_email)]
HttpsUrl = Annotated[str, AfterValidator(_https_url)]
HttpsHost = Annotated[str, AfterValidator(_https_host)]
IpAddress = Annotated[str, AfterValidator(_ip_address)]
Slug = Annotated[str, AfterValidator(_slug)]
TimeZoneName = Annotated[str, AfterValidator(_time_zone)]
PathText = Annotated[str, AfterValidator(_path_text)]
FilePath = Annotated[str, AfterValidator(_path_text), AfterValidator(_file_path)]
EnvRef = Annotated[str, AfterValidator(_env_ref)]


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class GraphTable(_Table):
    tenant_id: Tenant
    client_id: Guid
    client_secret_file: FilePath | None = None
    client_secret: EnvRef | None = None
    certificate_file: FilePath | None = None
    certificate_password_file: FilePath | None = None
    authority_host: HttpsHost = DEFAULT_AUTHORITY_HOST
    base_url: HttpsUrl = DEFAULT_GRAPH_BASE_URL
    ca_bundle: PathText | None = None
    service_mailbox: Email | None = None


class HybridTable(_Table):
    base_url: HttpsUrl
    org: Slug
    token_url: HttpsUrl
    client_id: NonEmpty
    client_secret_file: FilePath | None = None
    client_secret: EnvRef | None = None
    webhook_secret_file: FilePath | None = None
    webhook_secret: EnvRef | None = None
    scope: NonEmpty = DEFAULT_HYBRID_SCOPE
    ca_bundle: PathText | None = None
    fallback_member: Email | None = None


class SyncTable(_Table):
    poll_interval_seconds: float = Field(default=DEFAULT_POLL_INTERVAL_SECONDS, ge=1, le=3600)
    window_back_days: int = Field(default=90, ge=0, le=365)
    window_ahead_days: int = Field(default=365, ge=1, le=1825)
    conflict: Conflict = "outlook_wins"
    mass_delete_threshold: float = Field(default=0.5, gt=0, le=1)
    mass_delete_min: int = Field(default=5, ge=0)
    stale_after_seconds: float | None = Field(default=None, gt=0)
    shutdown_grace_seconds: float = Field(default=10, ge=0, le=300)
    audit_retention_days: int = Field(default=365, ge=7, le=3650)


class HttpTable(_Table):
    listen: IpAddress = "127.0.0.1"
    port: int = Field(default=9478, ge=0, le=65535)


class StateTable(_Table):
    path: PathText | None = None


class LogTable(_Table):
    level: LogLevel = "info"


class RoomTable(_Table):
    hybrid_id: NonEmpty
    mailbox: Email
    name: NonEmpty | None = None
    conflict: Conflict | None = None
    direction: Direction = "both"
    time_zone: TimeZoneName | None = None


SECTIONS: dict[str, type[_Table]] = {
    "graph": GraphTable,
    "hybrid": HybridTable,
    "sync": SyncTable,
    "http": HttpTable,
    "state": StateTable,
    "log": LogTable,
}
REQUIRED_SECTIONS = ("graph", "hybrid")
