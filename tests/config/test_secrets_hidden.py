"""No secret value ever shows in a repr, a str, a dump, or a problem line."""

from __future__ import annotations

import copy
import pickle
from collections.abc import Callable
from pathlib import Path

import pytest

from roomd.config import ConfigError, Secret, check_config, load_config

Write = Callable[[str], Path]
Edit = Callable[..., str]


def test_secret_shows_only_a_mask() -> None:
    secret = Secret("hunter2")
    logged = "%s %r" % (secret, secret)  # noqa: UP031 (the way logging formats arguments)
    for shown in (str(secret), repr(secret), f"{secret}", logged, f"{secret!r}"):
        assert "hunter2" not in shown
    assert secret.reveal() == "hunter2"
    assert secret == Secret("hunter2") and secret != Secret("hunter3")
    assert copy.deepcopy(secret).reveal() == "hunter2"
    with pytest.raises(TypeError):
        pickle.dumps(secret)


def test_settings_never_show_secrets(write: Write, edit: Edit, env: dict[str, str]) -> None:
    text = edit(
        (
            'client_secret_file = "hybrid.secret"\n',
            'client_secret_file = "hybrid.secret"\nwebhook_secret = "${WEBHOOK_SECRET}"\n',
        )
    )
    settings = load_config(write(text), env)
    hybrid_secret = settings.hybrid.client_secret.reveal()
    webhook = settings.hybrid.webhook_secret
    assert webhook is not None and webhook.reveal() == env["WEBHOOK_SECRET"]
    secrets = [env["GRAPH_SECRET"], env["WEBHOOK_SECRET"], hybrid_secret]
    for shown in (
        repr(settings),
        str(settings),
        settings.model_dump_json(),
        str(settings.model_dump()),
        repr(settings.graph),
        repr(settings.hybrid),
    ):
        for secret in secrets:
            assert secret not in shown


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ('client_secret = "${GRAPH_SECRET}"', 'client_secret = "plain-Secret-123"'),
        ('client_secret = "${GRAPH_SECRET}"', 'client_secret = "${GRAPH_SECRET} plain-Secret-123"'),
        ('client_secret = "${GRAPH_SECRET}"', "client_secret = 1234567890123"),
        ('client_secret = "${GRAPH_SECRET}"', 'client_secret = ["plain-Secret-123"]'),
        (
            'client_secret_file = "hybrid.secret"',
            'client_secret_file = "hybrid.secret"\nwebhook_secret = 1234567890123',
        ),
    ],
)
def test_problems_never_echo_a_secret(
    write: Write, edit: Edit, env: dict[str, str], old: str, new: str
) -> None:
    path = write(edit((old, new)))
    with pytest.raises(ConfigError) as caught:
        load_config(path, env)
    shown = "\n".join([*caught.value.problems, str(caught.value), repr(caught.value)])
    assert caught.value.problems  # the mistake is reported...
    assert "plain-Secret-123" not in shown and "1234567890123" not in shown  # ...not its value


def test_secret_file_contents_never_in_problems(
    write: Write, edit: Edit, env: dict[str, str], config_dir: Path
) -> None:
    """A secret file named where a CA bundle or certificate belongs is not quoted back."""
    text = edit(
        ('org = "contoso"', 'org = "contoso"\nca_bundle = "hybrid.secret"'),
        ('client_secret = "${GRAPH_SECRET}"', 'certificate_file = "hybrid.secret"'),
    )
    problems = check_config(write(text), env)
    assert len(problems) == 2
    secret = (config_dir / "hybrid.secret").read_text().strip()
    assert all(secret not in problem for problem in problems)
