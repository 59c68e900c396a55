"""From validated tables to ``Settings``: read secrets, load certificates, resolve paths.

Everything here touches the outside world (files, environment) or compares two keys, and reports
every problem it finds rather than stopping at the first. Relative paths resolve against the
config file's directory, so ``client_secret_file = "graph.secret"`` next to the file just works;
``*_file`` paths first expand ``${NAME}`` and ``${NAME:-default}`` (``_expand``).
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from roomd.config._certificate import CertificateProblem, load_certificate
from roomd.config._expand import Unexpandable, expand
from roomd.config._problems import KeyPath, Problem
from roomd.config._schema import (
    GraphTable,
    HybridTable,
    RoomTable,
    StateTable,
    SyncTable,
    env_ref_name,
)
from roomd.config._secret import Secret
from roomd.config._settings import (
    DEFAULT_STATE_PATH,
    STALE_AFTER_POLLS,
    STATE_FILE_NAME,
    Conflict,
    GraphCertificate,
    GraphSettings,
    HybridSettings,
    RoomSettings,
    StateSettings,
    SyncSettings,
)

_MAX_SECRET_BYTES = 64 * 1024
_MAX_PEM_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Written:
    """Which keys the table had in the file, and whether all of them were valid.

    An incomplete table still gets its file and credential checks (on its valid keys), but no
    settings are built from it; ``keys`` lets "give exactly one credential" count a credential
    that was written but invalid, instead of reporting it missing as well.
    """

    keys: frozenset[str]
    complete: bool


def _reason(exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, IsADirectoryError):
        return "is a directory"
    if isinstance(exc, NotADirectoryError):
        return "a parent is not a directory"
    return (exc.strerror or type(exc).__name__).lower()


class Resolver:
    """Collects problems while turning file values into runtime values."""

    def __init__(self, base_dir: Path, env: Mapping[str, str]) -> None:
        self.base_dir = base_dir
        self.env = env
        self.problems: list[Problem] = []

    def add(self, key: KeyPath, message: str) -> None:
        self.problems.append(Problem(key, message))

    def path(self, text: str) -> Path:
        path = Path(text)
        return path if path.is_absolute() else self.base_dir / path

    def file_path(self, key: KeyPath, text: str) -> Path | None:
        """A ``*_file`` key's path, its environment variables expanded; None (and a problem)."""
        try:
            expanded = expand(text, self.env)
        except Unexpandable as exc:
            self.add(key, str(exc))
            return None
        if not expanded.strip():
            self.add(key, f"{text!r} expands to an empty path")
            return None
        return self.path(expanded)

    def read_file(self, key: KeyPath, path: Path, limit: int) -> bytes | None:
        try:
            with path.open("rb") as handle:
                data = handle.read(limit + 1)
        except OSError as exc:
            self.add(key, f"cannot read {path} ({_reason(exc)})")
            return None
        if len(data) > limit:
            self.add(key, f"{path} is larger than {limit // 1024} KiB; is it the right file?")
            return None
        return data

    def secret(
        self, section: str, name: str, file_text: str | None, env_text: str | None
    ) -> Secret | None:
        """The secret from ``NAME_file`` or ``NAME = "${ENV}"``; None (and a problem) if unusable.

        One trailing newline is dropped: ``echo secret > file`` and systemd credentials end so.
        """
        if file_text is not None:
            key: KeyPath = (section, f"{name}_file")
            path = self.file_path(key, file_text)
            data = None if path is None else self.read_file(key, path, _MAX_SECRET_BYTES)
            if data is None:
                return None
            try:
                value = data.decode("utf-8")
            except UnicodeDecodeError:
                self.add(key, f"{path} is not UTF-8 text")
                return None
            value = value.removesuffix("\n").removesuffix("\r")
            if not value:
                self.add(key, f"{path} is empty")
                return None
            return Secret(value)
        if env_text is not None:
            variable = env_ref_name(env_text)
            assert variable is not None  # the schema only lets ${NAME} through
            from_env = self.env.get(variable)
            if from_env is None:
                self.add((section, name), f"environment variable {variable} is not set")
                return None
            if not from_env:
                self.add((section, name), f"environment variable {variable} is empty")
                return None
            return Secret(from_env)
        return None

    def ca_bundle(self, section: str, text: str | None) -> Path | None:
        """A CA bundle must be a PEM file ``ssl`` can load (a private CA or the simulator's)."""
        if text is None:
            return None
        key: KeyPath = (section, "ca_bundle")
        path = self.path(text)
        if self.read_file(key, path, _MAX_PEM_BYTES) is None:
            return None
        try:
            ssl.create_default_context(cafile=str(path))
        except (ssl.SSLError, ValueError):
            self.add(key, f"{path} holds no PEM CA certificate")
            return None
        return path


def _exactly_one(
    resolver: Resolver, section: str, written: Written, names: tuple[str, ...], required: bool
) -> bool:
    given = [name for name in names if name in written.keys]
    if len(given) > 1:
        wanted = "exactly one credential" if required else "only one of " + " or ".join(names)
        resolver.add((section,), f"give {wanted} (found " + " and ".join(given) + ")")
        return False
    if not given and required:
        shown = [f'{n} = "${{ENV_NAME}}"' if n.endswith("secret") else n for n in names]
        choices = ", ".join(shown[:-1]) + " or " + shown[-1]
        resolver.problems.append(Problem((section,), f"no credential: set {choices}", locate=True))
        return False
    return True


def graph(resolver: Resolver, table: GraphTable, written: Written) -> GraphSettings | None:
    """Graph settings; with an incomplete table (bad keys), only its checks run."""
    section = "graph"
    if table.certificate_password_file is not None and table.certificate_file is None:
        resolver.add((section, "certificate_password_file"), "is set, but certificate_file is not")
    ca_bundle = resolver.ca_bundle(section, table.ca_bundle)
    names = ("client_secret_file", "client_secret", "certificate_file")
    if not _exactly_one(resolver, section, written, names, required=True):
        return None
    client_secret = resolver.secret(
        section, "client_secret", table.client_secret_file, table.client_secret
    )
    certificate = None
    if table.certificate_file is not None:
        certificate = _certificate(
            resolver, table.certificate_file, table.certificate_password_file
        )
        if certificate is None:
            return None
    elif client_secret is None:
        return None
    if not written.complete:
        return None
    return GraphSettings(
        tenant_id=table.tenant_id,
        client_id=table.client_id,
        client_secret=client_secret,
        certificate=certificate,
        authority_host=table.authority_host,
        base_url=table.base_url,
        ca_bundle=ca_bundle,
        service_mailbox=table.service_mailbox.lower() if table.service_mailbox else None,
    )


def _certificate(
    resolver: Resolver, file_text: str, password_text: str | None
) -> GraphCertificate | None:
    password = None
    if password_text is not None:
        password = resolver.secret("graph", "certificate_password", password_text, None)
    key: KeyPath = ("graph", "certificate_file")
    path = resolver.file_path(key, file_text)
    pem = None if path is None else resolver.read_file(key, path, _MAX_PEM_BYTES)
    if path is None or pem is None or (password_text is not None and password is None):
        return None
    password_bytes = password.reveal().encode() if password is not None else None
    try:
        loaded = load_certificate(pem, password_bytes, str(path))
    except CertificateProblem as problem:
        resolver.add(("graph", problem.key), problem.message)
        return None
    return GraphCertificate(
        private_key_pem=Secret(loaded.private_key_pem),
        certificate_pem=loaded.certificate_pem,
        thumbprint=loaded.thumbprint,
        password=password,
    )


def hybrid(resolver: Resolver, table: HybridTable, written: Written) -> HybridSettings | None:
    """Hybrid settings; with an incomplete table (bad keys), only its checks run."""
    section = "hybrid"
    ca_bundle = resolver.ca_bundle(section, table.ca_bundle)
    client_secret = webhook_secret = None
    if _exactly_one(resolver, section, written, ("client_secret_file", "client_secret"), True):
        client_secret = resolver.secret(
            section, "client_secret", table.client_secret_file, table.client_secret
        )
    webhook_names = ("webhook_secret_file", "webhook_secret")
    webhook_ok = _exactly_one(resolver, section, written, webhook_names, required=False)
    if webhook_ok:
        webhook_secret = resolver.secret(
            section, "webhook_secret", table.webhook_secret_file, table.webhook_secret
        )
        webhook_ok = webhook_secret is not None or (
            table.webhook_secret_file is None and table.webhook_secret is None
        )
    if client_secret is None or not webhook_ok or not written.complete:
        return None
    return HybridSettings(
        base_url=table.base_url,
        org=table.org,
        token_url=table.token_url,
        client_id=table.client_id,
        client_secret=client_secret,
        webhook_secret=webhook_secret,
        scope=table.scope,
        ca_bundle=ca_bundle,
        fallback_member=table.fallback_member,
    )


def sync(resolver: Resolver, table: SyncTable, written: Written) -> SyncSettings | None:
    """Sync settings with the staleness bound resolved; nothing to compare in a broken table."""
    if not written.complete:
        return None
    poll = table.poll_interval_seconds
    stale = table.stale_after_seconds
    if stale is None:
        stale = STALE_AFTER_POLLS * poll
    elif stale <= poll:
        resolver.add(
            ("sync", "stale_after_seconds"),
            f"must be greater than sync.poll_interval_seconds ({poll:g}), or a room is stale "
            f"between two rounds (found {stale:g})",
        )
        return None
    return SyncSettings(**{**table.model_dump(), "stale_after_seconds": stale})


def state(resolver: Resolver, table: StateTable, written: Written) -> StateSettings | None:
    """Default: systemd's ``$STATE_DIRECTORY`` (the first one when several are listed)."""
    if not written.complete:
        return None
    if table.path is not None:
        path = resolver.path(table.path)
    else:
        directory = resolver.env.get("STATE_DIRECTORY", "").split(":")[0]
        path = Path(directory) / STATE_FILE_NAME if directory else DEFAULT_STATE_PATH
    if path.is_dir():
        resolver.add(("state", "path"), f"{path} is a directory; give the database file's path")
        return None
    return StateSettings(path=path)


def duplicate_rooms(rooms: list[Any]) -> list[Problem]:
    """A mailbox (case-insensitively) or Hybrid room mapped twice; checked on the raw tables."""
    problems = []
    seen: dict[tuple[str, str], int] = {}
    for index, room in enumerate(rooms):
        if not isinstance(room, dict):
            continue
        for key in ("mailbox", "hybrid_id"):
            value = room.get(key)
            if not isinstance(value, str):
                continue
            marker = (key, value.lower() if key == "mailbox" else value)
            if marker in seen:
                problems.append(
                    Problem(
                        ("rooms", index, key),
                        f"{value!r} is already mapped by rooms[{seen[marker]}]",
                    )
                )
            else:
                seen[marker] = index
    return problems


def room(table: RoomTable, default_conflict: Conflict) -> RoomSettings:
    return RoomSettings(
        hybrid_id=table.hybrid_id,
        mailbox=table.mailbox,
        name=table.name if table.name is not None else table.mailbox.lower(),
        conflict=table.conflict or default_conflict,
        direction=table.direction,
        time_zone=table.time_zone,
    )
