"""``roomd rooms``: the room mapping an operator gets, from the pure matching up to the command
run against both simulators, with the faults a first setup meets (a Graph permission or a Hybrid
scope missing, a host that does not answer) named with their fix."""

from __future__ import annotations

import json
import os
import random
import re
import stat
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from hypothesis import given, settings
from hypothesis import strategies as st
from support.sims import SimWorld, sim_world

from roomd.cli import main
from roomd.config import check_config, load_config
from roomd.rooms import (
    HybridRoom,
    Inventory,
    Kind,
    Mapping,
    OutlookRoom,
    Row,
    WriteRefused,
    appended,
    hints,
    match_rooms,
    normalise,
    toml_blocks,
    write_rooms,
)
from roomd.sim.tenant import default_tenant

# --- names -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "Room 4A",
        "4A",
        "room-4a",
        "Meeting Room 4A",
        "MEETING ROOM 4a",
        "Building 1 - Room 4A",
        "Room 4A (Building 1)",
        "B1 Room 4A",
        "Bldg 1 / Conference Room 4A",
        "Rööm 4A",
        "Room4A",
        "Room 4A (8 seats)",
    ],
)
def test_names_are_compared_without_prefixes_case_punctuation_or_building(name: str) -> None:
    assert normalise(name, ["Building 1"]) == normalise("4a") == "4 a"


def test_a_name_is_never_normalised_to_nothing() -> None:
    assert normalise("Room") == "room"
    assert normalise("Building 1", ["Building 1"]) == "building 1"


def o(
    email: str, name: str, capacity: int | None = None, building: str | None = None
) -> OutlookRoom:
    return OutlookRoom(f"{email}@contoso.com", name, capacity, building)


def h(ident: str, name: str, capacity: int | None = None, office: str | None = None) -> HybridRoom:
    return HybridRoom(ident, name, capacity, office, "Europe/London")


def pairs(rows: object) -> set[tuple[str, str]]:
    return {(r.outlook.email, r.hybrid.id) for r in rows}  # type: ignore[attr-defined]


# --- the decision ------------------------------------------------------------------------------


def test_rooms_named_differently_on_each_side_are_paired() -> None:
    outlook = [o("mr4a", "Meeting Room 4A", 8), o("board", "Board Room", 16), o("harb", "Harbour")]
    hybrid = [h("x1", "4A", 8), h("x2", "Boardroom", 16), h("x3", "Harbor")]
    result = match_rooms(outlook, hybrid)
    assert pairs(result.proposals) == {
        ("mr4a@contoso.com", "x1"),
        ("board@contoso.com", "x2"),
        ("harb@contoso.com", "x3"),
    }
    why = {r.hybrid.id: r.reasons for r in result.proposals if r.hybrid}
    assert "same name once normalised ('Meeting Room 4A' = '4A')" in why["x1"]
    assert "capacity 8" in why["x1"]
    assert any(w.startswith("similar names ('Harbour' ~ 'Harbor'") for w in why["x3"])


def test_rooms_whose_numbers_differ_never_match() -> None:
    result = match_rooms(
        [o("r101", "Room 101"), o("r4a", "Room 4A")], [h("x", "Room 102"), h("y", "4B")]
    )
    assert result.proposals == []
    assert len(result.of(Kind.UNMATCHED)) == 4  # two mailboxes, two resources, each listed


def test_a_similar_name_is_not_offered_when_the_same_name_exists_elsewhere() -> None:
    outlook = [o("harbour", "Harbour"), o("harbour-2", "Harbour")]
    hybrid = [h("x1", "Harbour"), h("x2", "Harbor")]
    result = match_rooms(outlook, hybrid, [Mapping("harbour@contoso.com", "x1")])
    assert result.proposals == []
    (row,) = [r for r in result.of(Kind.UNMATCHED) if r.outlook]
    assert row.reasons == ("'Harbour' matches by name but is already mapped",)


def test_two_equally_good_resources_are_ambiguous_not_guessed() -> None:
    result = match_rooms([o("r1", "Room 1")], [h("x", "Room 1"), h("y", "Room 1")])
    assert result.proposals == []
    (row,) = result.of(Kind.AMBIGUOUS)
    assert {c.id for c in row.candidates} == {"x", "y"}
    assert "choose by hand" in row.reasons


def test_one_resource_two_equally_good_mailboxes_is_ambiguous_for_both() -> None:
    result = match_rooms([o("a", "Studio"), o("b", "Studio")], [h("x", "Studio")])
    assert result.proposals == []
    rows = result.of(Kind.AMBIGUOUS)
    assert [r.outlook.email for r in rows if r.outlook] == ["a@contoso.com", "b@contoso.com"]
    assert all("as good a match for" in " ".join(r.reasons) for r in rows)


def test_capacity_breaks_a_tie_between_equal_names() -> None:
    result = match_rooms([o("s", "Studio", 4)], [h("big", "Studio", 10), h("small", "Studio", 4)])
    assert pairs(result.proposals) == {("s@contoso.com", "small")}
    assert "preferred over 'Studio' by building and capacity" in result.proposals[0].reasons
    assert [r.hybrid.id for r in result.of(Kind.UNMATCHED) if r.hybrid] == ["big"]


def test_the_building_tells_apart_rooms_of_the_same_name_in_two_buildings() -> None:
    """Hybrid names offices by id: which is which is learnt from the rooms already mapped."""
    outlook = [
        o("lobby-a", "Lobby", building="North"),
        o("lobby-b", "Atrium", building="South"),
        o("r1-north", "Room 1", 6, "North"),
        o("r1-south", "Room 1", 6, "South"),
    ]
    hybrid = [
        h("lobby", "Lobby", office="OFF-N"),
        h("atrium", "Atrium", office="OFF-S"),
        h("one-n", "Room 1", 6, "OFF-N"),
        h("one-s", "Room 1", 6, "OFF-S"),
    ]
    mapped = [Mapping("lobby-a@contoso.com", "lobby")]
    result = match_rooms(outlook, hybrid, mapped)
    assert pairs(result.proposals) == {
        ("lobby-b@contoso.com", "atrium"),
        ("r1-north@contoso.com", "one-n"),
        ("r1-south@contoso.com", "one-s"),
    }
    # without anything that says which office is which building, it is a coin toss: not taken
    alone = match_rooms(outlook[2:], hybrid[2:])
    assert alone.proposals == [] and len(alone.of(Kind.AMBIGUOUS)) == 2


def test_unmistakable_names_teach_which_office_is_which_building() -> None:
    outlook = [
        o("lobby", "Lobby", building="North"),
        o("atrium", "Atrium", building="South"),
        o("r1-north", "Room 1", building="North"),
        o("r1-south", "Room 1", building="South"),
    ]
    hybrid = [
        h("lobby", "Lobby", office="OFF-N"),
        h("atrium", "Atrium", office="OFF-S"),
        h("one-s", "Room 1", office="OFF-S"),
        h("one-n", "Room 1", office="OFF-N"),
    ]
    result = match_rooms(outlook, hybrid)
    assert ("r1-south@contoso.com", "one-s") in pairs(result.proposals)
    # a pair is never its own evidence: the lobby is the only room known in North
    lobby = next(r for r in result.proposals if r.hybrid and r.hybrid.id == "lobby")
    assert lobby.reasons == ("same name",)


def test_mapped_rooms_stay_as_they_are_and_are_not_proposed_again() -> None:
    outlook = [o("r4a", "Room 4A"), o("r4b", "Room 4B")]
    hybrid = [h("x4a", "Room 4A"), h("x4b", "Room 4B")]
    # the config maps 4A's mailbox to 4B's resource: odd, but the operator's call
    result = match_rooms(outlook, hybrid, [Mapping("R4A@contoso.com", "x4b")])
    assert pairs(result.of(Kind.MAPPED)) == {("r4a@contoso.com", "x4b")}
    assert result.proposals == []
    lonely = result.of(Kind.UNMATCHED)
    assert {
        (r.outlook.email if r.outlook else None, r.hybrid.id if r.hybrid else None) for r in lonely
    } == {
        ("r4b@contoso.com", None),
        (None, "x4a"),
    }
    assert any("already mapped" in " ".join(r.reasons) for r in lonely)


def test_a_mapping_to_something_the_tenant_no_longer_has_says_so() -> None:
    result = match_rooms([], [], [Mapping("gone@contoso.com", "old-id", "Old room")])
    (row,) = result.of(Kind.MAPPED)
    assert "Graph lists no room mailbox with this address" in row.reasons
    assert "Hybrid has no resource with this id" in row.reasons


def test_an_empty_side_comes_with_its_usual_causes() -> None:
    empty = Inventory(outlook=[], hybrid=[], mapped=[], other_resources=12)
    graph_hint, hybrid_hint = hints(empty)
    assert "RoomMailbox" in graph_hint
    assert hybrid_hint.startswith("Hybrid lists no meeting rooms (12 other resources)")
    assert hints(Inventory([o("a", "A")], [h("x", "A")], [], 0)) == []


def test_a_large_estate_is_matched_right_and_fast() -> None:
    """Five buildings, 1,000 rooms a side, names written differently on each side, the same
    name in several buildings told apart by building and capacity. Measured: about 0.4 s; the
    bound only catches a return to comparing every pair (30 s for 300 rooms before)."""
    rnd = random.Random(7)
    words = ["Harbour", "Studio", "Atrium", "Lab", "Focus", "Board", "Garden", "Summit", "Cedar"]
    outlook, hybrid = [], []
    for i in range(1000):
        building, name = f"Building {i % 5 + 1}", f"{rnd.choice(words)} {i // 5 + 1}{'ABC'[i % 3]}"
        seats = rnd.choice([4, 6, 8, 12])
        outlook.append(OutlookRoom(f"r{i}@contoso.com", f"Meeting Room {name}", seats, building))
        hybrid.append(HybridRoom(f"h{i}", f"{building} - {name}", seats, f"office-{i % 5}"))
    started = time.perf_counter()
    result = match_rooms(outlook, hybrid)
    assert time.perf_counter() - started < 20
    assert pairs(result.proposals) == {(f"r{i}@contoso.com", f"h{i}") for i in range(1000)}


# --- properties --------------------------------------------------------------------------------

NAMES = ["Room 1", "Room 2", "Meeting Room 1", "Studio", "Studios", "Harbour", "Harbor", "4A"]


@st.composite
def worlds(draw: st.DrawFn) -> tuple[list[OutlookRoom], list[HybridRoom], list[Mapping]]:
    caps = st.one_of(st.none(), st.sampled_from([4, 6, 8]))
    n_o = draw(st.integers(0, 7))
    n_h = draw(st.integers(0, 7))
    outlook = [
        OutlookRoom(
            f"r{i}@contoso.com",
            draw(st.sampled_from(NAMES)),
            draw(caps),
            draw(st.sampled_from([None, "North", "South"])),
        )
        for i in range(n_o)
    ]
    hybrid = [
        HybridRoom(
            f"h{i}",
            draw(st.sampled_from(NAMES)),
            draw(caps),
            draw(st.sampled_from([None, "N", "S"])),
        )
        for i in range(n_h)
    ]
    k = draw(st.integers(0, min(n_o, n_h)))
    chosen_o = draw(st.permutations(outlook))[:k]
    chosen_h = draw(st.permutations(hybrid))[:k]
    mapped = [Mapping(a.email, b.id) for a, b in zip(chosen_o, chosen_h, strict=True)]
    return outlook, hybrid, mapped


@given(worlds(), st.randoms(use_true_random=False))
@settings(max_examples=300, deadline=None)
def test_no_resource_is_used_twice_and_the_config_is_never_changed(
    world: tuple[list[OutlookRoom], list[HybridRoom], list[Mapping]], rnd: random.Random
) -> None:
    outlook, hybrid, mapped = world
    result = match_rooms(outlook, hybrid, mapped)
    used = [*result.of(Kind.MAPPED), *result.proposals]
    ids = [r.hybrid.id for r in used if r.hybrid]
    mailboxes = [r.outlook.email for r in used if r.outlook]
    assert len(ids) == len(set(ids)) and len(mailboxes) == len(set(mailboxes))
    assert pairs(result.of(Kind.MAPPED)) == {(m.mailbox, m.hybrid_id) for m in mapped}
    assert not {m.hybrid_id for m in mapped} & {r.hybrid.id for r in result.proposals if r.hybrid}
    # every mailbox is on exactly one line
    listed = [r.outlook.email for r in result.rows if r.outlook]
    assert sorted(listed) == sorted(x.email for x in outlook)
    # the input's order decides nothing
    shuffled = match_rooms(
        rnd.sample(outlook, len(outlook)),
        rnd.sample(hybrid, len(hybrid)),
        rnd.sample(mapped, len(mapped)),
    )
    assert sorted(map(repr, shuffled.rows)) == sorted(map(repr, result.rows))


# --- writing the config ------------------------------------------------------------------------

OPERATORS_FILE = """\
# roomd at Contoso   (edited by hand, keep my notes)

[graph]
tenant_id   =   "72f988bf-86f1-41af-91ab-2d7cd011db47"   # prod tenant
client_id = "11111111-2222-3333-4444-555555555555"
client_secret_file = "graph-secret"

[hybrid]
base_url = "https://app.officernd.com"
org = "contoso"
token_url = "https://identity.officernd.com/oauth/token"
client_id = "roomd-sync"
client_secret_file = "hybrid-secret"

[[rooms]]
hybrid_id = "64f0a1b2c3d4e5f6a7b8c901"
mailbox   = "room-4a@contoso.com"    # the big one
name = 'Room 4A'

[state]
path = "roomd.sqlite3"
# last line has no newline"""


@pytest.fixture
def operators_config(tmp_path: Path) -> Path:
    for secret in ("graph-secret", "hybrid-secret"):
        (tmp_path / secret).write_text("s3cr3t-value\n")
    path = tmp_path / "roomd.toml"
    path.write_text(OPERATORS_FILE)
    path.chmod(0o640)
    return path


def proposed(*rooms: tuple[OutlookRoom, HybridRoom]) -> str:
    """The blocks `roomd rooms` prints for these pairs (names from elsewhere, quotes and all)."""
    rows = [Row(Kind.PROPOSED, a, b, ("same name", "capacity 8\n[graph]")) for a, b in rooms]
    return toml_blocks(rows)


def test_write_keeps_every_byte_of_the_file_and_the_result_loads(operators_config: Path) -> None:
    blocks = proposed(
        (o("room-4b", 'Room 4B "the small one"'), h("64f0a1b2c3d4e5f6a7b8c902", "Room 4B")),
        (o("boardroom", "Boardroom\nnew_key = 1"), h("64f0a1b2c3d4e5f6a7b8c903", "Boardroom")),
    )
    write_rooms(operators_config, blocks)
    text = operators_config.read_text()
    assert text.startswith(OPERATORS_FILE)
    assert stat.S_IMODE(operators_config.stat().st_mode) == 0o640
    settings = load_config(operators_config)
    assert [(r.mailbox, r.hybrid_id, r.name) for r in settings.rooms] == [
        ("room-4a@contoso.com", "64f0a1b2c3d4e5f6a7b8c901", "Room 4A"),
        ("room-4b@contoso.com", "64f0a1b2c3d4e5f6a7b8c902", 'Room 4B "the small one"'),
        ("boardroom@contoso.com", "64f0a1b2c3d4e5f6a7b8c903", "Boardroom new_key = 1"),
    ]
    assert [r.time_zone for r in settings.rooms[1:]] == ["Europe/London", "Europe/London"]
    assert list(operators_config.parent.glob(".*.tmp")) == []


def test_write_refuses_a_result_that_would_not_validate(operators_config: Path) -> None:
    bad = proposed((o("x", "Lab"), h("64f0a1b2c3d4e5f6a7b8c901", "Lab")))  # 4A's resource again
    with pytest.raises(WriteRefused) as refused:
        write_rooms(operators_config, bad)
    assert any("already mapped" in line or "mapped twice" in line for line in refused.value.lines)
    assert any(str(operators_config) in line for line in refused.value.lines)
    assert operators_config.read_text() == OPERATORS_FILE
    assert list(operators_config.parent.glob(".*.tmp")) == []


def test_write_refuses_a_file_where_rooms_is_not_an_array_of_tables(tmp_path: Path) -> None:
    path = tmp_path / "roomd.toml"
    path.write_text("rooms = []\n")
    with pytest.raises(WriteRefused):
        write_rooms(path, proposed((o("lab", "Lab"), h("x1", "Lab"))))
    assert path.read_text() == "rooms = []\n"


def test_appended_text_parses_and_keeps_the_old_text_as_its_prefix() -> None:
    blocks = proposed((o("lab", "Lab"), h("x1", "Lab")))
    for old in ("[log]\nlevel = 'info'", "[log]\nlevel = 'info'\n\n\n", "# only a comment"):
        new = appended(old, blocks)
        assert new.startswith(old)
        assert tomllib.loads(new)["rooms"][0]["hybrid_id"] == "x1"


# --- the command against the simulators -------------------------------------------------------


@pytest.fixture
def world() -> Iterator[SimWorld]:
    with sim_world() as w:
        yield w


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    yield
    structlog.reset_defaults()  # `roomd rooms` points the clients' logs at stderr


TENANT = {r.email: r.hybrid_id for r in default_tenant().rooms}


def keep_rooms(path: Path, keep: int) -> str:
    """The simulators' config with only its first ``keep`` [[rooms]] blocks."""
    head, *blocks = path.read_text().split("\n[[rooms]]")
    text = head + "".join("\n[[rooms]]" + b for b in blocks[:keep])
    path.write_text(text)
    return text


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["rooms", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_the_simulators_config_is_shown_fully_mapped(
    world: SimWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = world.write_config(tmp_path)
    code, out, err = run(capsys, "-c", str(config))
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["STATUS", "OUTLOOK"]
    assert sum(line.startswith("mapped ") for line in lines) == 4
    assert "4 mapped, 0 proposed, 0 ambiguous" in out
    assert "[[rooms]]" not in out


def test_unmapped_rooms_are_proposed_correctly_and_written(
    world: SimWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = world.write_config(tmp_path)
    before = keep_rooms(config, 1)
    code, out, _ = run(capsys, "-c", str(config))
    assert code == 0
    row = next(line for line in out.splitlines() if "harbour@contoso.com" in line)
    assert row.startswith("proposed") and TENANT["harbour@contoso.com"] in row
    assert "same name; capacity 6; same building (Building 1)" in row
    assert "1 mapped, 3 proposed" in out and "roomd rooms -c" in out

    code, _, err = run(capsys, "-c", str(config), "--write")
    assert code == 0 and "added 3 [[rooms]] block(s)" in err
    assert config.read_text().startswith(before)
    assert check_config(config) == []
    assert {r.mailbox: r.hybrid_id for r in load_config(config).rooms} == TENANT
    # a second run has nothing left to propose
    assert run(capsys, "-c", str(config), "--write")[2].endswith("nothing to add\n")


def test_a_config_that_maps_no_room_yet_gets_every_room_as_json(
    world: SimWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = world.write_config(tmp_path)
    keep_rooms(config, 0)
    world.call(
        lambda: world.graph.control.add_room("pod-7@contoso.com", "Meeting Pod 7", capacity=2)
    )
    code, out, _ = run(capsys, "-c", str(config), "--json")
    assert code == 0
    document = json.loads(out)
    found = {
        r["outlook"]["mailbox"]: r["hybrid"]["hybrid_id"]
        for r in document["rooms"]
        if r["status"] == "proposed"
    }
    assert found == TENANT
    (pod,) = [r for r in document["rooms"] if r["status"] == "unmatched"]
    assert pod["outlook"]["mailbox"] == "pod-7@contoso.com" and pod["hybrid"] is None
    assert tomllib.loads(document["toml"])["rooms"][0]["mailbox"] in TENANT
    assert check_config(config) != []  # no room yet: not a config roomd can run on...
    assert run(capsys, "-c", str(config), "--write")[0] == 0
    assert {r.mailbox: r.hybrid_id for r in load_config(config).rooms} == TENANT  # ...now it is


def test_a_room_list_gone_while_listing_does_not_stop_it(
    world: SimWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = world.write_config(tmp_path)
    world.call(
        lambda: world.graph.control.inject_fault(
            status=404, path_contains="microsoft.graph.roomlist/rooms", code="ErrorItemNotFound"
        )
    )
    code, out, err = run(capsys, "-c", str(config))
    assert (code, err) == (0, "") and "4 mapped" in out
    assert world.call(world.graph.control.faults) == []  # the 404 was served


def secrets_of(config: Path) -> list[str]:
    return [p.read_text().strip() for p in config.parent.glob("*-secret")]


def test_a_missing_graph_permission_is_named_with_its_fix(
    world: SimWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = world.write_config(tmp_path)
    client_id, secret = world.call(
        lambda: world.graph.identity.register_secret_app("no-places", ("Calendars.ReadWrite",))
    )
    (tmp_path / "graph-client-secret").write_text(secret + "\n")
    text = re.sub(r'(\[graph\][^\[]*?client_id = )"[^"]*"', rf'\1"{client_id}"', config.read_text())
    config.write_text(text)
    code, out, err = run(capsys, "-c", str(config))
    assert (code, out) == (1, "")
    (line,) = err.splitlines()
    assert "403 ErrorAccessDenied" in line and f"app registration {client_id}" in line
    assert "lacks the application permission Place.Read.All" in line and "admin consent" in line
    assert not any(s in err for s in secrets_of(config))


def test_a_missing_hybrid_scope_is_named_with_its_fix(
    world: SimWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = world.write_config(tmp_path)
    text = config.read_text().replace(
        'client_secret_file = "hybrid-client-secret"',
        'client_secret_file = "hybrid-client-secret"\nscope = "flex.space.bookings.read"',
    )
    config.write_text(text)
    code, out, err = run(capsys, "-c", str(config))
    assert (code, out) == (1, "")
    (line,) = err.splitlines()
    assert "403" in line and "roomd needs the scope flex.space.resources.read" in line
    assert "fix: add flex.space.resources.read to hybrid.scope in the config" in line
    assert not any(s in err for s in secrets_of(config))


def test_wrong_secrets_are_named_on_each_side_without_showing_them(
    world: SimWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = world.write_config(tmp_path)
    for name in ("graph-client-secret", "hybrid-client-secret"):
        (tmp_path / name).write_text("not-the-secret-Xq93\n")
    code, out, err = run(capsys, "-c", str(config))
    assert (code, out) == (1, "")
    graph_line, hybrid_line = err.splitlines()
    assert graph_line.startswith("roomd: rooms: Microsoft Graph: cannot sign in as app")
    assert "client secret or certificate" in graph_line
    assert hybrid_line.startswith("roomd: rooms: Hybrid refused roomd's credentials (401")
    assert "not-the-secret-Xq93" not in err


def test_an_unreachable_hybrid_is_one_line_without_a_traceback(
    world: SimWorld, tmp_path: Path
) -> None:
    """Run as an operator runs it: a process, its exit code and what it printed."""
    config = world.write_config(tmp_path)
    config.write_text(config.read_text().replace(world.hybrid.base_url, "https://127.0.0.1:9", 1))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROOMD_")}
    done = subprocess.run(
        [sys.executable, "-m", "roomd", "rooms", "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert (done.returncode, done.stdout) == (1, "")
    (line,) = done.stderr.splitlines()
    assert line.startswith("roomd: rooms: cannot reach Hybrid at https://127.0.0.1:9")
    assert "Traceback" not in done.stderr
