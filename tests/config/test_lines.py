"""``(line N)`` points at the key whatever TOML layout the operator chose."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from roomd.config import check_config

Write = Callable[[str], Path]


def line_of(problems: list[str], key: str) -> int:
    [problem] = [p for p in problems if f": {key}: " in p]
    return int(problem.rsplit("(line ", 1)[1].rstrip(")"))


def test_dotted_keys_and_inline_tables(write: Write, valid_text: str, env: dict[str, str]) -> None:
    text = (
        "sync.poll_interval_seconds = 0.5\n"  # line 1
        'http = { listen = "nowhere", port = 1 }\n' + valid_text  # line 2
    )
    problems = check_config(write(text), env)
    assert line_of(problems, "sync.poll_interval_seconds") == 1
    assert line_of(problems, "http.listen") == 2  # inside the inline table: its line


def test_multiline_strings_and_arrays_do_not_confuse_the_count(
    write: Write, valid_text: str, env: dict[str, str]
) -> None:
    text = valid_text + (
        "\n[log]\n"  # 20, 21
        'note = """\n'  # 22: an unknown key holding text that looks like TOML
        "[sync]\n"
        "level = 1\n"
        '"""\n'
        "list = [\n"  # 26
        "  1, # ]\n"
        "  ']',\n"
        "]\n"
        "level = 'loud'\n"  # 30
    )
    problems = check_config(write(text), env)
    assert line_of(problems, "log.note") == 22
    assert line_of(problems, "log.list") == 26
    assert line_of(problems, "log.level") == 30


def test_rooms_are_counted_like_the_array(
    write: Write, valid_text: str, env: dict[str, str]
) -> None:
    text = valid_text + '\n[[rooms]]\nhybrid_id = "r3"\n# comment\n\nmailbox = "bad"\n'
    assert line_of(check_config(write(text), env), "rooms[2].mailbox") == 25


def test_quoted_keys(write: Write, valid_text: str, env: dict[str, str]) -> None:
    text = valid_text + '\n[ "sync" ]\n"window_back_days" = 999\n'
    assert line_of(check_config(write(text), env), "sync.window_back_days") == 22


def test_odd_keys_are_quoted_and_stay_on_one_line(
    write: Write, valid_text: str, env: dict[str, str]
) -> None:
    text = valid_text + "\n[sync]\n\"poll\\ninterval\" = 1\n'a.b' = 2\n"
    problems = check_config(write(text), env)
    assert [p.split(": ", 1)[1] for p in problems] == [
        'sync."poll\\ninterval": unknown key (line 22)',
        'sync."a.b": unknown key (line 23)',
    ]
