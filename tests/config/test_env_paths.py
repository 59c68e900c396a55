"""One config for the unit and the shell: ``*_file`` paths expand ``${NAME}``, ``${NAME:-default}``.

Under systemd, ``CREDENTIALS_DIRECTORY`` names the service's credentials; an operator running
``roomd sync`` or ``roomd doctor`` by hand has no such variable and gets the default instead.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from roomd.config import check_config, load_config

from .conftest import GRAPH_SECRET, HYBRID_SECRET, SECRETS

Edit = Callable[..., str]
Write = Callable[[str], Path]

CREDENTIALS = 'client_secret_file = "${CREDENTIALS_DIRECTORY:-credentials}/hybrid-client-secret"'


@pytest.fixture
def two_places(config_dir: Path) -> tuple[Path, Path]:
    """The secret where systemd puts it (unit) and where the operator keeps it (by hand)."""
    by_hand = config_dir / "credentials"
    unit = config_dir / "run" / "credentials" / "roomd.service"
    for directory, value in ((by_hand, "by-hand-secret"), (unit, "unit-secret")):
        directory.mkdir(parents=True)
        (directory / "hybrid-client-secret").write_text(value + "\n")
    return by_hand, unit


def test_by_hand_the_default_directory_is_read(
    edit: Edit, write: Write, env: dict[str, str], two_places: tuple[Path, Path]
) -> None:
    path = write(edit(('client_secret_file = "hybrid.secret"', CREDENTIALS)))
    settings = load_config(path, env)
    assert settings.hybrid.client_secret.reveal() == "by-hand-secret"


def test_under_the_unit_credentials_directory_is_read(
    edit: Edit, write: Write, env: dict[str, str], two_places: tuple[Path, Path]
) -> None:
    path = write(edit(('client_secret_file = "hybrid.secret"', CREDENTIALS)))
    settings = load_config(path, {**env, "CREDENTIALS_DIRECTORY": str(two_places[1])})
    assert settings.hybrid.client_secret.reveal() == "unit-secret"


def test_empty_variable_takes_the_default_as_in_a_shell(
    edit: Edit, write: Write, env: dict[str, str], two_places: tuple[Path, Path]
) -> None:
    path = write(edit(('client_secret_file = "hybrid.secret"', CREDENTIALS)))
    settings = load_config(path, {**env, "CREDENTIALS_DIRECTORY": ""})
    assert settings.hybrid.client_secret.reveal() == "by-hand-secret"


def test_every_file_key_expands(
    edit: Edit, write: Write, env: dict[str, str], config_dir: Path
) -> None:
    (config_dir / "graph.secret").write_text(GRAPH_SECRET)
    text = edit(
        ('client_secret = "${GRAPH_SECRET}"', 'client_secret_file = "${DIR}/graph.secret"'),
        ('client_secret_file = "hybrid.secret"', 'client_secret_file = "${DIR}/hybrid.secret"'),
        ("[[rooms]]", 'webhook_secret_file = "${NOPE:-hybrid.secret}"\n\n[[rooms]]'),
    )
    settings = load_config(write(text), {"DIR": str(config_dir)})
    assert settings.graph.client_secret is not None
    assert settings.graph.client_secret.reveal() == GRAPH_SECRET
    assert settings.hybrid.client_secret.reveal() == HYBRID_SECRET
    assert settings.hybrid.webhook_secret is not None
    assert settings.hybrid.webhook_secret.reveal() == HYBRID_SECRET


def test_unset_variable_without_default_names_key_and_variable(
    edit: Edit, write: Write, env: dict[str, str]
) -> None:
    text = edit(
        (
            'client_secret_file = "hybrid.secret"',
            'client_secret_file = "${CREDENTIALS_DIRECTORY}/hybrid-client-secret"',
        )
    )
    path = write(text)
    assert check_config(path, env) == [
        f"config {path}: hybrid.client_secret_file: environment variable CREDENTIALS_DIRECTORY "
        "is not set; set it, or give a default as ${CREDENTIALS_DIRECTORY:-default} (line 11)"
    ]
    empty = check_config(path, {**env, "CREDENTIALS_DIRECTORY": ""})
    assert empty == [
        f"config {path}: hybrid.client_secret_file: environment variable CREDENTIALS_DIRECTORY "
        "is empty; set it, or give a default as ${CREDENTIALS_DIRECTORY:-default} (line 11)"
    ]


def test_missing_file_names_the_expanded_path(
    edit: Edit, write: Write, env: dict[str, str], config_dir: Path
) -> None:
    path = write(edit(('client_secret_file = "hybrid.secret"', CREDENTIALS)))
    assert check_config(path, env) == [
        f"config {path}: hybrid.client_secret_file: cannot read "
        f"{config_dir / 'credentials' / 'hybrid-client-secret'} (no such file) (line 11)"
    ]


@pytest.mark.parametrize(
    "written",
    [
        "$CREDENTIALS_DIRECTORY/hybrid.secret",
        "${CREDENTIALS_DIRECTORY:/etc/roomd}/hybrid.secret",
        "${CREDENTIALS_DIRECTORY/hybrid.secret",
        "${1DIR}/hybrid.secret",
        "${}/hybrid.secret",
        "${A:-${B}}/hybrid.secret",
    ],
)
def test_malformed_reference_is_a_config_error(
    edit: Edit, write: Write, env: dict[str, str], written: str
) -> None:
    path = write(
        edit(('client_secret_file = "hybrid.secret"', f'client_secret_file = "{written}"'))
    )
    assert check_config(path, {**env, "CREDENTIALS_DIRECTORY": "/run/credentials/x"}) == [
        f"config {path}: hybrid.client_secret_file: a '$' must start ${{NAME}} or "
        f"${{NAME:-default}} (found {written!r}) (line 11)"
    ]


def test_default_that_expands_to_nothing_is_refused(
    edit: Edit, write: Write, env: dict[str, str]
) -> None:
    path = write(edit(('client_secret_file = "hybrid.secret"', 'client_secret_file = "${X:-}"')))
    assert check_config(path, env) == [
        f"config {path}: hybrid.client_secret_file: '${{X:-}}' expands to an empty path (line 11)"
    ]


def test_certificate_and_password_files_expand(
    edit: Edit, write: Write, env: dict[str, str], config_dir: Path
) -> None:
    text = edit(
        (
            'client_secret = "${GRAPH_SECRET}"',
            'certificate_file = "${CREDS}/graph.pem"\n'
            'certificate_password_file = "${CREDS:-x}/graph.pass"',
        )
    )
    problems = check_config(write(text), {**env, "CREDS": str(config_dir / "creds")})
    assert [p.split(": ", 1)[1] for p in problems] == [
        f"graph.certificate_file: cannot read {config_dir / 'creds' / 'graph.pem'} "
        "(no such file) (line 4)",
        f"graph.certificate_password_file: cannot read {config_dir / 'creds' / 'graph.pass'} "
        "(no such file) (line 5)",
    ]


def test_variable_values_in_the_environment_are_not_secrets_but_secrets_stay_hidden(
    edit: Edit, write: Write, env: dict[str, str], two_places: tuple[Path, Path]
) -> None:
    """A problem names the path it tried; the secret read from it never appears."""
    (two_places[0] / "hybrid-client-secret").write_text("")
    path = write(edit(('client_secret_file = "hybrid.secret"', CREDENTIALS)))
    problems = check_config(path, env)
    assert problems == [
        f"config {path}: hybrid.client_secret_file: "
        f"{two_places[0] / 'hybrid-client-secret'} is empty (line 11)"
    ]
    assert not any(secret in "".join(problems) for secret in SECRETS)


def test_secret_from_environment_keeps_its_whole_value_form(
    edit: Edit, check: Callable[[str], list[str]]
) -> None:
    """``client_secret = "${ENV}"`` is unchanged: a default is not accepted there."""
    problems = check(
        edit(('client_secret = "${GRAPH_SECRET}"', 'client_secret = "${GRAPH_SECRET:-x}"'))
    )
    assert len(problems) == 1 and "graph.client_secret: a secret written into" in problems[0]
