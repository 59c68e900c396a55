"""The settings roomd runs with: typed, frozen, secrets already read and wrapped in ``Secret``.

These models are what the rest of roomd imports. They check only what every caller relies on (one
Graph credential, no room mapped twice); the operator-facing rules (ranges, email syntax, readable
files) live in ``_schema`` and ``_resolve`` and apply to the config file. That split lets tests
build ``Settings`` directly with, say, a 0.2 s poll interval the file would refuse.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator
from pydantic.dataclasses import dataclass
from pydantic_core import ArgsKwargs

from roomd.config._secret import Secret

Conflict = Literal["outlook_wins", "hybrid_wins"]
Direction = Literal["both", "outlook_to_hybrid", "hybrid_to_outlook"]
LogLevel = Literal["debug", "info", "warning", "error"]

DEFAULT_AUTHORITY_HOST = "https://login.microsoftonline.com"
DEFAULT_GRAPH_BASE_URL = "https://graph.microsoft.com/v1.0"
DEFAULT_HYBRID_SCOPE = (
    "flex.space.bookings.read flex.space.bookings.create flex.space.bookings.update "
    "flex.space.bookings.cancel flex.space.resources.read flex.community.members.read "
    "flex.settings.webhooks.create"
)
DEFAULT_STATE_PATH = Path("/var/lib/roomd/roomd.sqlite3")
STATE_FILE_NAME = "roomd.sqlite3"
DEFAULT_POLL_INTERVAL_SECONDS = 30.0
STALE_AFTER_POLLS = 5


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GraphCertificate(_Frozen):
    """An app certificate in the legacy PEM form msal's ``client_credential`` dict takes.

    msal (``ConfidentialClientApplication``) wants ``{"private_key": PEM, "thumbprint": SHA-1 hex,
    "passphrase": ..., "public_certificate": PEM}``; the fields here map one to one.
    """

    private_key_pem: Secret
    certificate_pem: str
    thumbprint: str
    password: Secret | None = None

    def msal_credential(self) -> dict[str, str]:
        """The ``client_credential`` dict for msal. Contains the key: never log it.

        Without ``public_certificate``: with it msal also sends the ``x5c`` header, which only
        Subject Name/Issuer authentication wants.
        """
        credential = {
            "private_key": self.private_key_pem.reveal(),
            "thumbprint": self.thumbprint,
        }
        if self.password is not None:
            credential["passphrase"] = self.password.reveal()
        return credential


class GraphSettings(_Frozen):
    tenant_id: str
    client_id: str
    client_secret: Secret | None = None
    certificate: GraphCertificate | None = None
    authority_host: str = DEFAULT_AUTHORITY_HOST
    base_url: str = DEFAULT_GRAPH_BASE_URL
    ca_bundle: Path | None = None
    service_mailbox: str | None = None  # organizes meetings for members without a mailbox

    @model_validator(mode="after")
    def _one_credential(self) -> GraphSettings:
        if (self.client_secret is None) == (self.certificate is None):
            raise ValueError("give exactly one of client_secret and certificate")
        return self

    @property
    def authority(self) -> str:
        """The msal authority URL: authority host plus tenant (Microsoft identity platform)."""
        return f"{self.authority_host}/{self.tenant_id}"


class HybridSettings(_Frozen):
    base_url: str
    org: str
    token_url: str
    client_id: str
    client_secret: Secret
    webhook_secret: Secret | None = None
    scope: str = DEFAULT_HYBRID_SCOPE
    ca_bundle: Path | None = None
    fallback_member: str | None = None  # books for Outlook organizers who are not members


class SyncSettings(_Frozen):
    poll_interval_seconds: float = Field(default=DEFAULT_POLL_INTERVAL_SECONDS, gt=0)
    window_back_days: int = Field(default=90, ge=0)
    window_ahead_days: int = Field(default=365, ge=1)
    conflict: Conflict = "outlook_wins"
    mass_delete_threshold: float = Field(default=0.5, gt=0, le=1)
    mass_delete_min: int = Field(default=5, ge=0)
    stale_after_seconds: float = Field(
        default=STALE_AFTER_POLLS * DEFAULT_POLL_INTERVAL_SECONDS, gt=0
    )
    shutdown_grace_seconds: float = Field(default=10.0, ge=0)
    audit_retention_days: int = Field(default=365, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _stale_follows_poll(cls, data: Any) -> Any:
        """Unset ``stale_after_seconds`` means five poll intervals, whatever the interval is."""
        if isinstance(data, dict) and "stale_after_seconds" not in data:
            poll = data.get("poll_interval_seconds", DEFAULT_POLL_INTERVAL_SECONDS)
            if isinstance(poll, int | float) and not isinstance(poll, bool):
                return {**data, "stale_after_seconds": STALE_AFTER_POLLS * poll}
        return data

    @model_validator(mode="after")
    def _stale_after_poll(self) -> SyncSettings:
        if self.stale_after_seconds <= self.poll_interval_seconds:
            raise ValueError("stale_after_seconds must be greater than poll_interval_seconds")
        return self


class HttpSettings(_Frozen):
    listen: str = "127.0.0.1"
    port: int = Field(default=9478, ge=0, le=65535)


class StateSettings(_Frozen):
    path: Path


class LogSettings(_Frozen):
    level: LogLevel = "info"


@dataclass(frozen=True, slots=True, config=ConfigDict(extra="forbid"))
class RoomSettings:
    """One Hybrid room mapped to one Exchange room mailbox.

    ``mailbox`` is kept lower-case: SMTP addresses are case-insensitive in Exchange, and a stable
    spelling keeps state keys and metric labels from changing when someone re-cases the file.
    ``conflict`` is already resolved (the room's own setting, else ``sync.conflict``).

    A slotted pydantic dataclass, not a ``BaseModel``: roomd keeps one per configured room for
    its whole life, and a model instance (its ``__dict__`` and fields-set) took ~1.3 KB where
    this takes ~0.3 KB with its strings (10 MB less at 10,000 rooms: bench/README.md, RSS).
    It validates the same fields the same way (pydantic checks them on construction).
    """

    hybrid_id: str = Field(min_length=1)
    mailbox: str = Field(min_length=3)
    name: str = ""  # left out or None: the mailbox (``_defaults``)
    conflict: Conflict = "outlook_wins"
    direction: Direction = "both"
    time_zone: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        if isinstance(data, ArgsKwargs):  # called as RoomSettings(...): its keyword arguments
            if data.kwargs is None:
                return data
            return ArgsKwargs(data.args, _room_defaults(data.kwargs))
        return _room_defaults(data)


def _room_defaults(data: Any) -> Any:
    """The mailbox lower-cased; no name (or None): the mailbox."""
    if isinstance(data, dict) and isinstance(data.get("mailbox"), str):
        data = {**data, "mailbox": data["mailbox"].lower()}
        if data.get("name") is None:
            data["name"] = data["mailbox"]
    return data


class Settings(_Frozen):
    graph: GraphSettings
    hybrid: HybridSettings
    sync: SyncSettings = SyncSettings()
    http: HttpSettings = HttpSettings()
    state: StateSettings
    log: LogSettings = LogSettings()
    rooms: tuple[RoomSettings, ...] = Field(min_length=1)

    _by_mailbox: dict[str, RoomSettings] = PrivateAttr(default_factory=dict)
    _by_hybrid_id: dict[str, RoomSettings] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _rooms_unique(self) -> Settings:
        for room in self.rooms:
            if room.mailbox in self._by_mailbox:
                raise ValueError(f"room mailbox {room.mailbox!r} is mapped twice")
            if room.hybrid_id in self._by_hybrid_id:
                raise ValueError(f"Hybrid room {room.hybrid_id!r} is mapped twice")
            self._by_mailbox[room.mailbox] = room
            self._by_hybrid_id[room.hybrid_id] = room
        return self

    def room_by_mailbox(self, mailbox: str) -> RoomSettings | None:
        """The room for a mailbox address, compared case-insensitively as Exchange does."""
        return self._by_mailbox.get(mailbox.lower())

    def room_by_hybrid_id(self, hybrid_id: str) -> RoomSettings | None:
        return self._by_hybrid_id.get(hybrid_id)
