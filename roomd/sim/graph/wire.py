"""Graph's wire formats: error bodies, timestamps, ``Prefer`` headers and the request/response
objects that the routes, ``$batch`` and the aiohttp adapter all share.

Error shape: ``{"error": {"code", "message", "innerError": {"date", "request-id",
"client-request-id"}}}`` (contrib: concepts/errors.md). Times: ``dateTimeTimeZone`` values carry
seven fractional digits and no offset (contrib: resources/event.md; delta samples).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

JSON = dict[str, Any]

NULL_TIME = "0001-01-01T00:00:00Z"  # responseStatus.time before anyone answered (event.md sample)


def canonical_enum(value: object, allowed: tuple[str, ...]) -> str | None:
    """``value`` in Graph's canonical casing, or None if it is not one of ``allowed``.

    Graph reads enum values case-insensitively (a Microsoft maintainer in
    microsoftgraph/msgraph-sdk-android PR #68: "Graph is case-insensitive for enums"; Microsoft's
    own singlevaluelegacyextendedproperty-post-singlevalueextendedproperties.md sample sends
    ``"type": "Required"``) and always answers in the casing of its metadata."""
    if not isinstance(value, str):
        return None
    low = value.lower()
    return next((a for a in allowed if a.lower() == low), None)


@dataclass
class GraphRequest:
    """One Graph call, whether it came over the socket or inside a ``$batch``."""

    method: str
    path: str  # below /v1.0, e.g. "/users/x/events"
    query: list[tuple[str, str]]
    headers: dict[str, str]  # lower-case names
    body: Any = None
    raw_query: str = ""
    app_id: str = ""
    roles: frozenset[str] = frozenset()
    in_batch: bool = False

    def q(self, name: str) -> str | None:
        """A query parameter, matched case-insensitively as OData system options are."""
        low = name.lower()
        for key, value in self.query:
            if key.lower() == low:
                return value
        return None

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass
class GraphResponse:
    status: int
    body: Any = None  # JSON-able, or None for no body
    headers: dict[str, str] = field(default_factory=dict)
    drop_connection: bool = False
    delay_s: float = 0.0


class GraphError(Exception):
    """Raised by a route to answer with Graph's error body."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
        inner: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.inner = inner or {}  # extra innerError members (e.g. TooManyRequests' code/status)


def forbidden() -> GraphError:
    """403 for a token without the needed application permission (concepts/errors.md)."""
    return GraphError(
        403, "ErrorAccessDenied", "Access is denied. Check credentials and try again."
    )


def error_body(
    code: str,
    message: str,
    request_id: str,
    client_request_id: str | None,
    now: datetime,
    extra: dict[str, str] | None = None,
) -> JSON:
    inner: JSON = {
        **(extra or {}),
        "date": now.strftime("%Y-%m-%dT%H:%M:%S"),
        "request-id": request_id,
    }
    if client_request_id:
        inner["client-request-id"] = client_request_id
    return {"error": {"code": code, "message": message, "innerError": inner}}


def new_request_id() -> str:
    return str(uuid.uuid4())


def fmt_dtz(dt: datetime) -> str:
    """``2016-12-09T20:30:00.0000000``: seven fractional digits, no offset (event.md)."""
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond:06d}0"


def fmt_instant(dt: datetime) -> str:
    """``2017-04-15T03:00:50.7579581Z`` as in createdDateTime / lastModifiedDateTime."""
    return fmt_dtz(dt.astimezone(UTC)) + "Z"


def fmt_response_time(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def fmt_original_start(dt: datetime) -> str:
    """``originalStart``: "expressed in ISO 8601 format and is always in UTC. For example,
    midnight UTC on Jan 1, 2014 is 2014-01-01T00:00:00Z" (contrib: resources/event.md)."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_local(value: str) -> datetime:
    """Parse a ``dateTime`` (naive; up to 7 fractional digits). An offset/``Z``, if present, is
    kept (aware result)."""
    text = value.strip()
    if text.endswith("Z") or text.endswith("z"):
        text = text[:-1] + "+00:00"
    head, sep, frac = text.partition(".")
    if sep:
        digits = ""
        rest = ""
        for i, ch in enumerate(frac):
            if not ch.isdigit():
                rest = frac[i:]
                break
            digits += ch
        text = f"{head}.{(digits + '000000')[:6]}{rest}"
    return datetime.fromisoformat(text)


def parse_prefer(values: list[str]) -> dict[str, str]:
    """All ``Prefer`` preferences, from repeated headers and/or comma-joined values (RFC 7240).

    Keys are lower-cased; quotes are removed from values: ``outlook.timezone="UTC",
    IdType="ImmutableId", odata.maxpagesize=250`` -> {"outlook.timezone": "UTC", ...}.
    """
    prefs: dict[str, str] = {}
    for value in values:
        for part in _split_outside_quotes(value):
            name, _, val = part.partition("=")
            name = name.strip().lower()
            if name:
                prefs[name] = val.strip().strip('"')
    return prefs


def _split_outside_quotes(text: str) -> list[str]:
    parts: list[str] = []
    current = ""
    quoted = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return [p for p in (s.strip() for s in parts) if p]


def parse_query(raw: str) -> list[tuple[str, str]]:
    return parse_qsl(raw, keep_blank_values=True)


def dumps(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()
