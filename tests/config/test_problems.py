"""Every kind of config mistake gives one line naming the key, what is wrong and what was found."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from roomd.config import ConfigError, check_config, load_config

Check = Callable[[str], list[str]]
Edit = Callable[..., str]


def only(problems: list[str]) -> str:
    assert len(problems) == 1, problems
    return problems[0]


def test_valid_config_has_no_problems(check: Check, valid_text: str) -> None:
    assert check(valid_text) == []


def test_unknown_key_is_named_with_its_line(
    check: Check, edit: Edit, write: Callable[..., Path]
) -> None:
    text = edit(append="\n[sync]\npoll_interval_seconds = 30\npolll_interval_seconds = 12\n")
    line = text.splitlines().index("polll_interval_seconds = 12") + 1
    path = write(text)
    assert only(check(text)) == (
        f"config {path}: sync.polll_interval_seconds: unknown key (line {line})"
    )


def test_unknown_table_is_reported(check: Check, edit: Edit) -> None:
    problem = only(check(edit(append="\n[grpah]\nx = 1\n")))
    assert ": grpah: unknown key (line 21)" in problem


def test_missing_key_names_the_key_without_a_line(check: Check, edit: Edit) -> None:
    problem = only(check(edit(('client_id = "11111111-2222-3333-4444-555555555555"\n', ""))))
    assert problem.endswith(": graph.client_id: missing")


def test_missing_table_says_which(check: Check, valid_text: str) -> None:
    text = valid_text.split("[hybrid]")[0] + "[[rooms]]" + valid_text.split("[[rooms]]", 1)[1]
    assert only(check(text)).endswith(": hybrid: missing (add a [hybrid] table)")


def test_wrong_type_names_type_and_value(check: Check, edit: Edit) -> None:
    problems = check(edit(append='[sync]\npoll_interval_seconds = "30"\n[http]\nport = true\n'))
    assert [p.split(": ", 1)[1] for p in problems] == [
        "sync.poll_interval_seconds: must be a number (found '30') (line 21)",
        "http.port: must be an integer (found true) (line 23)",
    ]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("poll_interval_seconds = true", "must be a number (found true)"),
        ("window_back_days = 1.5", "must be an integer (found 1.5)"),
        ("shutdown_grace_seconds = nan", "must be a finite number (found nan)"),
        ("stale_after_seconds = inf", "must be a finite number (found inf)"),
    ],
)
def test_numbers_of_the_wrong_kind(check: Check, edit: Edit, line: str, expected: str) -> None:
    key = line.split(" = ")[0]
    assert only(check(edit(append=f"[sync]\n{line}\n"))).endswith(
        f": sync.{key}: {expected} (line 21)"
    )


def test_section_that_is_not_a_table(check: Check, edit: Edit) -> None:
    text = 'log = "debug"\n' + edit()
    assert only(check(text)).endswith(": log: must be a table ([log]) (found 'debug') (line 1)")


def test_bad_email(check: Check, edit: Edit) -> None:
    problem = only(check(edit(('"room-2@contoso.com"', '"room-4a@contoso"'))))
    assert problem.endswith(
        ": rooms[1].mailbox: 'room-4a@contoso' is not an email address (line 19)"
    )


def test_mailbox_mapped_twice_in_another_case(check: Check, edit: Edit) -> None:
    text = edit(append='\n[[rooms]]\nhybrid_id = "r3"\nmailbox = "ROOM-1@Contoso.com"\n')
    assert only(check(text)).endswith(
        ": rooms[2].mailbox: 'ROOM-1@Contoso.com' is already mapped by rooms[0] (line 23)"
    )


def test_hybrid_room_mapped_twice(check: Check, edit: Edit) -> None:
    problem = only(check(edit(('hybrid_id = "r2"', 'hybrid_id = "r1"'))))
    assert problem.endswith(": rooms[1].hybrid_id: 'r1' is already mapped by rooms[0] (line 18)")


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda d: d / "absent.secret", "no such file"),
        (lambda d: d, "is a directory"),
        (lambda d: d / "hybrid.secret" / "x", "a parent is not a directory"),
    ],
)
def test_unreadable_secret_file(
    check: Check, edit: Edit, config_dir: Path, make: Callable[[Path], Path], reason: str
) -> None:
    target = make(config_dir)
    problem = only(check(edit(('"hybrid.secret"', f'"{target}"'))))
    assert problem.endswith(
        f": hybrid.client_secret_file: cannot read {target} ({reason}) (line 11)"
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_secret_file_without_permission(check: Check, config_dir: Path, valid_text: str) -> None:
    (config_dir / "hybrid.secret").chmod(0)
    assert only(check(valid_text)).endswith(
        f": hybrid.client_secret_file: cannot read {config_dir / 'hybrid.secret'} "
        "(permission denied) (line 11)"
    )


def test_empty_secret_file(check: Check, config_dir: Path, valid_text: str) -> None:
    (config_dir / "hybrid.secret").write_text("\n")
    assert only(check(valid_text)).endswith(
        f": hybrid.client_secret_file: {config_dir / 'hybrid.secret'} is empty (line 11)"
    )


def test_unset_environment_variable_is_named(write: Callable[[str], Path], valid_text: str) -> None:
    problems = check_config(write(valid_text), env={"GRAPH_SECRET_X": "not this one"})
    assert only(problems).endswith(
        ": graph.client_secret: environment variable GRAPH_SECRET is not set (line 4)"
    )


def test_empty_environment_variable(write: Callable[[str], Path], valid_text: str) -> None:
    problems = check_config(write(valid_text), env={"GRAPH_SECRET": ""})
    assert only(problems).endswith(": environment variable GRAPH_SECRET is empty (line 4)")


def test_inline_secret_is_refused_and_not_echoed(check: Check, edit: Edit) -> None:
    problem = only(check(edit(('"${GRAPH_SECRET}"', '"s3cr3t-literal"'))))
    assert ": graph.client_secret: a secret written into the config file is refused" in problem
    assert "client_secret_file" in problem and "${ENV_NAME}" in problem
    assert "s3cr3t-literal" not in problem


def test_unknown_time_zone(check: Check, edit: Edit) -> None:
    text = edit(
        (
            'mailbox = "room-2@contoso.com"\n',
            'mailbox = "room-2@contoso.com"\ntime_zone = "Europe/Londn"\n',
        )
    )
    assert only(check(text)).endswith(
        ": rooms[1].time_zone: 'Europe/Londn' is not an IANA time zone name "
        "(such as Europe/London) (line 20)"
    )


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "poll_interval_seconds = 0.5",
            "sync.poll_interval_seconds: must be at least 1 (found 0.5)",
        ),
        (
            "poll_interval_seconds = 3601",
            "sync.poll_interval_seconds: must be at most 3600 (found 3601)",
        ),
        ("window_back_days = -1", "sync.window_back_days: must be at least 0 (found -1)"),
        ("window_back_days = 366", "sync.window_back_days: must be at most 365 (found 366)"),
        ("window_ahead_days = 0", "sync.window_ahead_days: must be at least 1 (found 0)"),
        ("window_ahead_days = 1826", "sync.window_ahead_days: must be at most 1825 (found 1826)"),
        (
            "mass_delete_threshold = 0",
            "sync.mass_delete_threshold: must be greater than 0 (found 0)",
        ),
        (
            "mass_delete_threshold = 1.5",
            "sync.mass_delete_threshold: must be at most 1 (found 1.5)",
        ),
        ("mass_delete_min = -1", "sync.mass_delete_min: must be at least 0 (found -1)"),
        (
            "shutdown_grace_seconds = -1",
            "sync.shutdown_grace_seconds: must be at least 0 (found -1)",
        ),
        (
            "conflict = 'outlook'",
            "sync.conflict: must be 'outlook_wins' or 'hybrid_wins' (found 'outlook')",
        ),
        (
            "stale_after_seconds = 30",
            "sync.stale_after_seconds: must be greater than sync.poll_interval_seconds (30), "
            "or a room is stale between two rounds (found 30)",
        ),
    ],
)
def test_sync_values_that_make_no_sense(check: Check, edit: Edit, line: str, expected: str) -> None:
    problem = only(check(edit(append=f"\n[sync]\n{line}\n")))
    assert problem.endswith(f": {expected} (line 22)")


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            '"contoso.onmicrosoft.com"',
            '"not a tenant"',
            "graph.tenant_id: 'not a tenant' is neither a tenant GUID nor a domain name",
        ),
        ('"contoso.onmicrosoft.com"', '"common"', "graph.tenant_id: 'common' cannot be used"),
        (
            '"11111111-2222-3333-4444-555555555555"',
            '"my-app"',
            "graph.client_id: 'my-app' is not a GUID",
        ),
        (
            '"https://hybrid.example"',
            '"http://hybrid.example"',
            "hybrid.base_url: must be an https:// URL (found 'http://hybrid.example')",
        ),
        ('"contoso"', '"con/toso"', "hybrid.org: 'con/toso' is not an organization slug"),
        ('client_id = "roomd"', 'client_id = ""', "hybrid.client_id: must not be empty"),
    ],
)
def test_identity_values(check: Check, edit: Edit, old: str, new: str, expected: str) -> None:
    assert expected in only(check(edit((old, new))))


def test_authority_host_must_not_carry_the_tenant(check: Check, edit: Edit) -> None:
    text = edit(
        append="",
    )
    text = text.replace(
        'client_secret = "${GRAPH_SECRET}"\n',
        'client_secret = "${GRAPH_SECRET}"\nauthority_host = "https://login.microsoftonline.com/contoso.onmicrosoft.com"\n',
    )
    assert "graph.authority_host: must be the host only" in only(check(text))


def test_url_with_credentials_is_refused_without_echo(check: Check, edit: Edit) -> None:
    problem = only(
        check(edit(('"https://hybrid.example"', '"https://me:pa55word@hybrid.example"')))
    )
    assert "hybrid.base_url: must not carry a user name or password" in problem
    assert "pa55word" not in problem


def test_http_listen_and_port(check: Check, edit: Edit) -> None:
    problems = check(edit(append='[http]\nlisten = "localhost"\nport = 70000\n'))
    assert [p.split(": ", 1)[1] for p in problems] == [
        "http.listen: 'localhost' is not an IP address "
        "(use e.g. 127.0.0.1, ::1 or 0.0.0.0) (line 21)",
        "http.port: must be at most 65535 (found 70000) (line 22)",
    ]


def test_room_enums_and_log_level(check: Check, edit: Edit) -> None:
    text = edit(
        ('hybrid_id = "r2"\n', 'hybrid_id = "r2"\ndirection = "one_way"\nconflict = "me"\n'),
        append='[log]\nlevel = "INFO"\n',
    )
    assert [p.split(": ", 1)[1] for p in check(text)] == [
        "rooms[1].direction: must be 'both', 'outlook_to_hybrid' or 'hybrid_to_outlook' "
        "(found 'one_way') (line 19)",
        "rooms[1].conflict: must be 'outlook_wins' or 'hybrid_wins' (found 'me') (line 20)",
        "log.level: must be 'debug', 'info', 'warning' or 'error' (found 'INFO') (line 23)",
    ]


def test_rooms_missing_empty_or_not_tables(check: Check, valid_text: str) -> None:
    head = valid_text.split("[[rooms]]")[0]
    assert only(check(head)).endswith(
        ": rooms: missing: map at least one room with a [[rooms]] table"
    )
    assert only(check("rooms = []\n" + head)).endswith(
        ": rooms: is empty: map at least one room with a [[rooms]] table (line 1)"
    )
    assert only(check(head + '[rooms]\nhybrid_id = "r1"\n')).endswith(
        ": rooms: must be an array of tables ([[rooms]]) (found a table) (line 13)"
    )
    assert only(check('rooms = ["room-1@contoso.com"]\n' + head)).endswith(
        ": rooms[0]: must be a table ([[rooms]]) (found 'room-1@contoso.com') (line 1)"
    )


def test_graph_needs_exactly_one_credential(check: Check, edit: Edit, config_dir: Path) -> None:
    none = edit(('client_secret = "${GRAPH_SECRET}"\n', ""))
    assert only(check(none)).endswith(
        ': graph: no credential: set client_secret_file, client_secret = "${ENV_NAME}" '
        "or certificate_file (line 1)"
    )
    (config_dir / "graph.secret").write_text("x")
    two = edit(
        (
            'client_secret = "${GRAPH_SECRET}"\n',
            'client_secret = "${GRAPH_SECRET}"\nclient_secret_file = "graph.secret"\n',
        )
    )
    assert only(check(two)).endswith(
        ": graph: give exactly one credential (found client_secret_file and client_secret) (line 1)"
    )


def test_certificate_password_without_certificate(check: Check, edit: Edit) -> None:
    text = edit(
        (
            'client_secret = "${GRAPH_SECRET}"\n',
            'client_secret = "${GRAPH_SECRET}"\ncertificate_password_file = "p"\n',
        )
    )
    assert only(check(text)).endswith(
        ": graph.certificate_password_file: is set, but certificate_file is not (line 5)"
    )


def test_webhook_secret_given_twice(check: Check, edit: Edit) -> None:
    text = edit(
        (
            'client_secret_file = "hybrid.secret"\n',
            'client_secret_file = "hybrid.secret"\nwebhook_secret = "${WEBHOOK_SECRET}"\n'
            'webhook_secret_file = "hybrid.secret"\n',
        )
    )
    assert only(check(text)).endswith(
        ": hybrid: give only one of webhook_secret_file or webhook_secret "
        "(found webhook_secret_file and webhook_secret) (line 6)"
    )


def test_ca_bundle_that_is_not_a_certificate(check: Check, edit: Edit, config_dir: Path) -> None:
    (config_dir / "ca.pem").write_text("not a certificate\n")
    text = edit(('org = "contoso"\n', 'org = "contoso"\nca_bundle = "ca.pem"\n'))
    assert only(check(text)).endswith(
        f": hybrid.ca_bundle: {config_dir / 'ca.pem'} holds no PEM CA certificate (line 9)"
    )
    text = edit(('org = "contoso"\n', 'org = "contoso"\nca_bundle = "nowhere.pem"\n'))
    assert only(check(text)).endswith(
        f": hybrid.ca_bundle: cannot read {config_dir / 'nowhere.pem'} (no such file) (line 9)"
    )


def test_missing_config_file(tmp_path: Path) -> None:
    path = tmp_path / "roomd.toml"
    assert check_config(path) == [f"config {path}: cannot read (no such file)"]
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.problems == [f"config {path}: cannot read (no such file)"]


def test_config_path_that_is_a_directory(tmp_path: Path) -> None:
    assert check_config(tmp_path) == [f"config {tmp_path}: is a directory, not a config file"]


def test_toml_syntax_error_gives_its_line(write: Callable[[str], Path], valid_text: str) -> None:
    path = write(valid_text.replace('org = "contoso"', "org = contoso"))
    problem = only(check_config(path, env={}))
    assert problem.startswith(f"config {path}: not valid TOML: ")
    assert problem.endswith("(line 8)")


def test_file_that_is_not_utf8(write: Callable[[str], Path], config_dir: Path) -> None:
    path = config_dir / "roomd.toml"
    path.write_bytes(b'# ok\n[log]\nlevel = "\xff"\n')
    assert check_config(path, env={}) == [f"config {path}: not valid TOML: not UTF-8 text (line 3)"]


def test_every_problem_is_reported_at_once(check: Check, edit: Edit) -> None:
    text = edit(
        ('"contoso"', '"con/toso"'),
        ('"room-2@contoso.com"', '"room-2"'),
        ('hybrid_id = "r2"', 'hybrid_id = "r1"'),
        append="[sync]\npoll_interval_seconds = 0\nextra = 2\n[http]\nlisten = 'x'\n",
    )
    keys = [p.split(": ")[1] for p in check(text)]
    assert keys == [
        "hybrid.org",
        "rooms[1].hybrid_id",
        "rooms[1].mailbox",
        "sync.poll_interval_seconds",
        "sync.extra",
        "http.listen",
    ]


def test_load_config_raises_with_the_same_lines(
    write: Callable[[str], Path], edit: Edit, env: dict[str, str]
) -> None:
    path = write(edit(('"room-2@contoso.com"', '"room-2"')))
    with pytest.raises(ConfigError) as caught:
        load_config(path, env)
    assert caught.value.problems == check_config(path, env)
    assert str(caught.value) == "\n".join(caught.value.problems)
