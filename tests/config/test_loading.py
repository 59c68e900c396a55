"""What a valid file turns into: defaults, resolved paths, the state location, room lookups."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pydantic
import pytest

from roomd.config import (
    DEFAULT_HYBRID_SCOPE,
    RoomSettings,
    Secret,
    Settings,
    load_config,
)

Write = Callable[[str], Path]
Edit = Callable[..., str]


def test_defaults(write: Write, valid_text: str, env: dict[str, str]) -> None:
    settings = load_config(write(valid_text), env)
    assert settings.graph.authority_host == "https://login.microsoftonline.com"
    assert settings.graph.base_url == "https://graph.microsoft.com/v1.0"
    assert settings.graph.authority == "https://login.microsoftonline.com/contoso.onmicrosoft.com"
    assert settings.graph.ca_bundle is None and settings.graph.certificate is None
    assert settings.hybrid.scope == DEFAULT_HYBRID_SCOPE
    assert settings.hybrid.webhook_secret is None
    sync = settings.sync
    assert (sync.poll_interval_seconds, sync.window_back_days, sync.window_ahead_days) == (
        30,
        90,
        365,
    )
    assert (sync.conflict, sync.mass_delete_threshold, sync.mass_delete_min) == (
        "outlook_wins",
        0.5,
        5,
    )
    assert (sync.stale_after_seconds, sync.shutdown_grace_seconds) == (150, 10)
    assert (settings.http.listen, settings.http.port) == ("127.0.0.1", 9478)
    assert settings.log.level == "info"
    assert settings.rooms[1] == RoomSettings(
        hybrid_id="r2",
        mailbox="room-2@contoso.com",
        name="room-2@contoso.com",
        conflict="outlook_wins",
        direction="both",
        time_zone=None,
    )


def test_secrets_are_read_from_env_and_files(
    write: Write, valid_text: str, env: dict[str, str]
) -> None:
    settings = load_config(write(valid_text), env)
    assert settings.graph.client_secret == Secret(env["GRAPH_SECRET"])
    assert settings.hybrid.client_secret.reveal() == "hybrid-secret-Pw4!nB7"  # newline dropped


@pytest.mark.parametrize(
    ("content", "expected"),
    [("s\n", "s"), ("s\r\n", "s"), ("s\n\n", "s\n"), ("s", "s"), (" s \n", " s ")],
)
def test_exactly_one_trailing_newline_is_dropped(
    write: Write,
    valid_text: str,
    env: dict[str, str],
    config_dir: Path,
    content: str,
    expected: str,
) -> None:
    (config_dir / "hybrid.secret").write_bytes(content.encode())
    assert load_config(write(valid_text), env).hybrid.client_secret.reveal() == expected


def test_stale_after_follows_the_poll_interval(
    write: Write, edit: Edit, env: dict[str, str]
) -> None:
    settings = load_config(write(edit(append="[sync]\npoll_interval_seconds = 60\n")), env)
    assert settings.sync.stale_after_seconds == 300


def test_room_settings_resolve_against_sync(write: Write, edit: Edit, env: dict[str, str]) -> None:
    text = edit(
        (
            'mailbox = "room-1@contoso.com"\n',
            'mailbox = "Room-1@Contoso.com"\nname = "Aurora"\nconflict = "outlook_wins"\n'
            'direction = "outlook_to_hybrid"\ntime_zone = "Europe/London"\n',
        ),
        append='[sync]\nconflict = "hybrid_wins"\n',
    )
    first, second = load_config(write(text), env).rooms
    assert (first.mailbox, first.name, first.conflict) == (
        "room-1@contoso.com",
        "Aurora",
        "outlook_wins",
    )
    assert (first.direction, first.time_zone) == ("outlook_to_hybrid", "Europe/London")
    assert second.conflict == "hybrid_wins"  # inherited from [sync]


def test_room_lookups(write: Write, valid_text: str, env: dict[str, str]) -> None:
    settings = load_config(write(valid_text), env)
    room = settings.room_by_mailbox("ROOM-2@contoso.COM")
    assert room is not None and room.hybrid_id == "r2"
    assert settings.room_by_hybrid_id("r1") is settings.rooms[0]
    assert settings.room_by_mailbox("room-3@contoso.com") is None
    assert settings.room_by_hybrid_id("R1") is None  # Hybrid ids are compared exactly


def test_settings_are_frozen(write: Write, valid_text: str, env: dict[str, str]) -> None:
    settings = load_config(write(valid_text), env)
    with pytest.raises(pydantic.ValidationError):
        settings.sync.poll_interval_seconds = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("state_directory", "expected"),
    [
        (None, Path("/var/lib/roomd/roomd.sqlite3")),
        ("", Path("/var/lib/roomd/roomd.sqlite3")),
        ("/var/lib/roomd", Path("/var/lib/roomd/roomd.sqlite3")),
        ("/srv/state/roomd:/srv/other", Path("/srv/state/roomd/roomd.sqlite3")),
    ],
)
def test_state_path_default(
    write: Write,
    valid_text: str,
    env: dict[str, str],
    state_directory: str | None,
    expected: Path,
) -> None:
    if state_directory is not None:
        env["STATE_DIRECTORY"] = state_directory
    assert load_config(write(valid_text), env).state.path == expected


def test_explicit_state_path_wins_over_state_directory(
    write: Write, edit: Edit, env: dict[str, str], config_dir: Path
) -> None:
    env["STATE_DIRECTORY"] = "/var/lib/roomd"
    settings = load_config(write(edit(append='[state]\npath = "db/roomd.db"\n')), env)
    assert settings.state.path == config_dir / "db" / "roomd.db"


def test_state_path_that_is_a_directory(write: Write, edit: Edit, env: dict[str, str]) -> None:
    from roomd.config import check_config

    path = write(edit(append='[state]\npath = "."\n'))
    [problem] = check_config(path, env)
    assert problem.endswith(
        f": state.path: {path.parent} is a directory; give the database file's path (line 21)"
    )


def test_relative_paths_resolve_against_the_config_directory(
    edit: Edit,
    env: dict[str, str],
    config_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import trustme

    trustme.CA().cert_pem.write_to_path(str(config_dir / "ca.pem"))
    sub = config_dir / "etc"
    sub.mkdir()
    (sub / "hybrid.secret").write_text("nested\n")
    (sub / "roomd.toml").write_text(
        edit(
            ('"hybrid.secret"', '"hybrid.secret"\nca_bundle = "../ca.pem"'),
            append='[state]\npath = "state.sqlite3"\n',
        )
    )
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    settings = load_config(sub / "roomd.toml", env)
    assert settings.hybrid.client_secret.reveal() == "nested"
    assert settings.hybrid.ca_bundle == sub / "../ca.pem"
    assert settings.state.path == sub / "state.sqlite3"
    # a relative path to the config file itself works the same way
    monkeypatch.chdir(config_dir)
    relative = load_config("etc/roomd.toml", env)
    assert relative.state.path.is_absolute()
    assert relative.state.path.resolve() == (sub / "state.sqlite3").resolve()


def test_environment_defaults_to_the_process_environment(
    write: Write, valid_text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRAPH_SECRET", "from-os-environ")
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    assert load_config(write(valid_text)).graph.client_secret == Secret("from-os-environ")


def test_settings_built_directly_keep_the_same_rules() -> None:
    """Other modules' tests build Settings by hand; a room mapped twice is still refused."""
    graph = {"tenant_id": "t", "client_id": "c", "client_secret": Secret("x")}
    hybrid = {
        "base_url": "https://h",
        "org": "o",
        "token_url": "https://h/t",
        "client_id": "c",
        "client_secret": Secret("y"),
    }
    rooms = [
        {"hybrid_id": "a", "mailbox": "x@contoso.com"},
        {"hybrid_id": "b", "mailbox": "X@CONTOSO.COM"},
    ]
    with pytest.raises(pydantic.ValidationError, match="mapped twice"):
        Settings(graph=graph, hybrid=hybrid, state={"path": "/tmp/x"}, rooms=rooms)
    fast = Settings(
        graph=graph,
        hybrid=hybrid,
        state={"path": "/tmp/x"},
        sync={"poll_interval_seconds": 0.2},
        rooms=rooms[:1],
    )
    assert fast.sync.stale_after_seconds == pytest.approx(1.0)
