"""``roomd doctor`` against the simulators: a clean bill of health for the config ``roomd sim``
writes, and, for each fault injected into a simulator, a line naming the fault and its fix.

The simulators run on their own loop (``support.sims``); ``roomd doctor`` runs in-process through
``roomd.cli.main`` as an operator would run it, and its report is read line by line.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from support.sims import SimWorld, sim_world

from roomd.cli import main
from roomd.doctor._decide import copy_findings, graph_token_failure, skew_check
from roomd.hybrid.webhooks import hybrid_webhook_routes
from roomd.sim.cli import register_roomd_webhook
from roomd.sim.graph.auth import DEFAULT_ROLES
from roomd.sim.roomd_config import write_roomd_config

ROOM = "room-4a@contoso.com"
HARBOUR = "harbour@contoso.com"
ADELE = "adelev@contoso.com"


@dataclass
class Report:
    code: int
    out: str
    lines: list[str]

    def line(self, name: str) -> str:
        """The report line of the check called ``name`` (status first)."""
        found = [ln for ln in self.lines if ln[6:].startswith(name + " ")]
        assert len(found) == 1, f"no single line for {name!r} in:\n{self.out}"
        return found[0]


@pytest.fixture
def world() -> Iterator[SimWorld]:
    with sim_world() as w:
        yield w


@pytest.fixture
def doctor(world: SimWorld, capsys: pytest.CaptureFixture[str]) -> Callable[..., Report]:
    def run(config: Path, *extra: str) -> Report:
        code = main(["doctor", "-c", str(config), *extra])
        captured = capsys.readouterr()
        out = captured.out + captured.err
        # secrets never reach the report
        for secret in (world.graph.client_secret, world.hybrid.client_secret):
            assert secret not in out
        assert "Traceback" not in out and "eyJ" not in out  # no traceback, no token
        return Report(code, captured.out, captured.out.splitlines())

    return run


class Receiver:
    """roomd's own webhook receiver on a loopback port, standing in for the running daemon."""

    def __init__(self, world: SimWorld) -> None:
        self.world = world
        self.runner: web.AppRunner | None = None
        self.port = 0

    def start(self) -> int:
        async def serve() -> int:
            app = web.Application()
            app.add_routes(hybrid_webhook_routes("receiver-secret", lambda event: None))
            self.runner = web.AppRunner(app)
            await self.runner.setup()
            site = web.TCPSite(self.runner, "127.0.0.1", 0)
            await site.start()
            return int(self.runner.addresses[0][1])

        self.port = self.world.run(serve())
        return self.port

    def stop(self) -> None:
        if self.runner is not None:
            self.world.run(self.runner.cleanup())


def sim_config(world: SimWorld, directory: Path, *, port: int = 9478, webhook: bool = True) -> Path:
    """The config ``roomd sim`` writes: roomd's webhook registered in Hybrid for its
    ``[http]`` port, the signing secret in ``webhook_secret_file``."""
    secret = None
    if webhook:
        url = f"http://127.0.0.1:{port}/hooks/hybrid"
        secret = world.run(register_roomd_webhook(world.hybrid, world.ca, url))
    return write_roomd_config(
        directory / "roomd.toml",
        tenant=world.tenant,
        ca=world.ca,
        graph=world.graph,
        hybrid=world.hybrid,
        webhook_secret=secret,
        http_port=port,
    )


@pytest.fixture
def receiver(world: SimWorld) -> Iterator[Receiver]:
    r = Receiver(world)
    r.start()
    yield r
    r.stop()


def book_meeting(world: SimWorld, room: str, subject: str, body: str) -> None:
    """Adele books ``room`` in Outlook for tomorrow 10:00; the room's assistant answers."""
    start = (datetime.now(UTC) + timedelta(days=1)).replace(hour=10, minute=0, second=0)
    event = {
        "subject": subject,
        "body": {"contentType": "text", "content": body},
        "start": {"dateTime": start.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
        "end": {
            "dateTime": (start + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S"),
            "timeZone": "UTC",
        },
        "attendees": [{"emailAddress": {"address": room}, "type": "resource"}],
    }
    world.call(lambda: world.graph.control.set_switches(rba_delay=None))
    token = world.call(world.graph.control.token)
    with httpx.Client(verify=world.ca.client_context(), timeout=10) as http:
        resp = http.post(
            f"{world.graph.base_url}/users/{ADELE}/events",
            json=event,
            headers={"Authorization": f"Bearer {token}"},
        )
        resp.raise_for_status()
    world.call(world.graph.control.run_rba)


# -- a clean bill of health ------------------------------------------------------------------


def test_roomd_sims_config_gets_a_clean_bill_of_health(
    world: SimWorld, receiver: Receiver, doctor: Callable[..., Report], tmp_path: Path
) -> None:
    report = doctor(sim_config(world, tmp_path, port=receiver.port))
    assert report.code == 0
    statuses = {ln[:4] for ln in report.lines[:-1]}
    assert statuses <= {"PASS", "SKIP"}, report.out
    assert report.line("graph token").startswith("PASS")
    assert "expires in" in report.line("graph token")
    assert report.line("graph permission Calendars.ReadWrite").startswith("PASS")
    assert report.line("graph client secret expiry").startswith("PASS")
    for room in world.tenant.rooms:
        assert report.line(f"room {room.email} readable").startswith("PASS")
        assert report.line(f"room {room.email} writable").startswith("PASS")
        # no meetings yet: said so, not passed
        assert report.line(f"room {room.email} copies").startswith("SKIP  ")
        assert "no meetings" in report.line(f"room {room.email} copies")
    assert report.line("hybrid webhook registered").startswith("PASS")
    assert report.line("hybrid webhook answers").startswith("PASS")
    assert report.lines[-1].startswith("roomd doctor: ") and "0 failed" in report.lines[-1]


def test_the_write_check_leaves_no_event_behind(
    world: SimWorld, doctor: Callable[..., Report], tmp_path: Path
) -> None:
    report = doctor(sim_config(world, tmp_path, webhook=False))
    assert report.code == 0
    for room in world.tenant.rooms:
        assert world.call(lambda email=room.email: world.graph.control.events(email)) == []


def test_json_report(world: SimWorld, doctor: Callable[..., Report], tmp_path: Path) -> None:
    world.call(world.graph.control.expire_client_secret)
    report = doctor(sim_config(world, tmp_path, webhook=False), "--json")
    body = json.loads(report.out)
    assert report.code == 1 and body["ok"] is False
    token = next(c for c in body["checks"] if c["check"] == "graph token")
    assert token["status"] == "fail" and "az ad app credential reset" in token["fix"]


# -- each fault, named with its fix ----------------------------------------------------------


def _expire_secret(w: SimWorld, config: Path) -> None:
    w.call(w.graph.control.expire_client_secret)


def _wrong_secret(w: SimWorld, config: Path) -> None:
    (config.parent / "graph-client-secret").write_text("not-the-secret\n")


def _roles(*roles: str) -> Callable[[SimWorld, Path], None]:
    def inject(w: SimWorld, config: Path) -> None:
        w.call(lambda: w.graph.control.set_roles(list(roles)))

    return inject


def _policy_without_harbour(w: SimWorld, config: Path) -> None:
    allowed = [r.email for r in w.tenant.rooms if r.email != HARBOUR] + [ADELE]
    w.call(lambda: w.graph.control.set_access_policy(allowed))


def _secret_expiring_soon(w: SimWorld, config: Path) -> None:
    when = w.call(w.graph.control.now) + timedelta(days=10, hours=1)
    w.call(lambda: w.graph.control.set_client_secret_expiry(when))


def _graph_clock(seconds: float) -> Callable[[SimWorld, Path], None]:
    def inject(w: SimWorld, config: Path) -> None:
        w.call(lambda: w.graph.control.advance_clock(seconds))

    return inject


def _hybrid_clock(w: SimWorld, config: Path) -> None:
    w.call(lambda: w.hybrid.control.advance_clock(600))


def _hybrid_wrong_secret(w: SimWorld, config: Path) -> None:
    (config.parent / "hybrid-client-secret").write_text("not-the-secret\n")


def _hybrid_scope(w: SimWorld, config: Path) -> None:
    text = config.read_text().replace(
        "[hybrid]\n", '[hybrid]\nscope = "flex.space.bookings.read flex.space.resources.read"\n'
    )
    config.write_text(text)


def _hybrid_unknown_scope(w: SimWorld, config: Path) -> None:
    text = config.read_text().replace(
        "[hybrid]\n", '[hybrid]\nscope = "flex.space.bookings.read flex.bookings.everything"\n'
    )
    config.write_text(text)


def _hidden_subject(w: SimWorld, config: Path) -> None:
    w.call(
        lambda: w.graph.control.set_calendar_processing(
            ROOM, DeleteSubject=True, AddOrganizerToSubject=True, DeleteComments=True
        )
    )
    book_meeting(w, ROOM, "Quarterly planning", "Agenda: budgets")


def _organizer_in_subject(w: SimWorld, config: Path) -> None:
    w.call(
        lambda: w.graph.control.set_calendar_processing(
            ROOM, DeleteSubject=False, AddOrganizerToSubject=True, DeleteComments=False
        )
    )
    book_meeting(w, ROOM, "Quarterly planning", "Agenda: budgets")


FAULTS: list[tuple[str, Callable[[SimWorld, Path], None], str, str, str, int]] = [
    # (id, inject, check, what the line says, the fix it gives, exit code)
    (
        "expired-secret",
        _expire_secret,
        "graph token",
        "client secret has expired",
        "az ad app credential reset --id",
        1,
    ),
    (
        "wrong-secret",
        _wrong_secret,
        "graph token",
        "is not one of app",
        "put the secret's Value (not its Secret ID)",
        1,
    ),
    (
        "no-calendars-permission",
        _roles("Place.Read.All"),
        "graph permission Calendars.ReadWrite",
        "not granted",
        "--api-permissions ef54d2bf-783f-4e0f-bca1-3210c0444d99=Role",
        1,
    ),
    (
        "read-only-calendars",
        _roles("Calendars.Read", "Place.Read.All"),
        "graph permission Calendars.ReadWrite",
        "only Calendars.Read",
        "az ad app permission admin-consent",
        1,
    ),
    (
        "broader-permission",
        _roles(*DEFAULT_ROLES, "Mail.ReadWrite"),
        "graph permissions, broader",
        "Mail.ReadWrite",
        "Remove permission",
        0,
    ),
    (
        "access-policy",
        _policy_without_harbour,
        f"room {HARBOUR} readable",
        "403 ErrorAccessDenied: an application access policy excludes",
        f"Add-DistributionGroupMember -Identity roomd-scope -Member {HARBOUR}",
        1,
    ),
    (
        "subject-replaced",
        _hidden_subject,
        f"room {ROOM} copies",
        "the subject is replaced by the organizer's name; the body is removed",
        f"Set-CalendarProcessing -Identity {ROOM} -DeleteSubject $false "
        "-AddOrganizerToSubject $false -DeleteComments $false",
        0,
    ),
    (
        "organizer-in-subject",
        _organizer_in_subject,
        f"room {ROOM} copies",
        "the organizer's name is added to the subject",
        f"Set-CalendarProcessing -Identity {ROOM} -AddOrganizerToSubject $false",
        0,
    ),
    (
        "secret-expiring-soon",
        _secret_expiring_soon,
        "graph client secret expiry",
        "expires in 10 days",
        "az ad app credential reset --id",
        0,
    ),
    (
        "graph-clock-skewed",
        _graph_clock(600),
        "clock vs Graph",
        "s behind Graph (more than the 5 min tokens and webhooks allow)",
        "timedatectl set-ntp true",
        1,
    ),
    (
        "graph-clock-drifting",
        _graph_clock(30),
        "clock vs Graph",
        "s behind Graph",
        "timedatectl set-ntp true",
        0,
    ),
    (
        "hybrid-clock-skewed",
        _hybrid_clock,
        "clock vs Hybrid",
        "s behind Hybrid (more than the 5 min",
        "timedatectl set-ntp true",
        1,
    ),
    (
        "hybrid-wrong-secret",
        _hybrid_wrong_secret,
        "hybrid token",
        "invalid_client",
        "hybrid.client_secret_file",
        1,
    ),
    (
        "hybrid-unknown-scope",
        _hybrid_unknown_scope,
        "hybrid token",
        "invalid_scope",
        "remove hybrid.scope",
        1,
    ),
    (
        "hybrid-scope",
        _hybrid_scope,
        "hybrid scopes",
        "lacks flex.space.bookings.create",
        "remove hybrid.scope",
        1,
    ),
]


@pytest.mark.parametrize(
    ("inject", "check", "says", "fix", "code"),
    [pytest.param(*f[1:], id=f[0]) for f in FAULTS],
)
def test_each_fault_is_named_with_its_fix(
    world: SimWorld,
    receiver: Receiver,
    doctor: Callable[..., Report],
    tmp_path: Path,
    inject: Callable[[SimWorld, Path], None],
    check: str,
    says: str,
    fix: str,
    code: int,
) -> None:
    config = sim_config(world, tmp_path, port=receiver.port)
    inject(world, config)
    report = doctor(config)
    line = report.line(check)
    assert line.startswith("FAIL" if code else "WARN"), line
    assert says in line.split(" — fix: ")[0], line
    assert fix in line.split(" — fix: ")[1], line
    assert report.code == code


def test_a_missing_webhook_registration_is_named(
    world: SimWorld, doctor: Callable[..., Report], tmp_path: Path
) -> None:
    config = sim_config(world, tmp_path)
    for hook in world.call(lambda: list(world.hybrid.webhooks.webhooks.values())):
        world.call(lambda h=hook: world.hybrid.webhooks.unregister(h.id))
    report = doctor(config)
    line = report.line("hybrid webhook registered")
    assert line.startswith("FAIL") and "no webhook delivers to /hooks/hybrid" in line
    assert "— fix: register https://YOUR-HOST/hooks/hybrid" in line and "POST /webhooks" in line
    assert report.code == 1


def test_a_stopped_daemon_is_a_warning_to_start_it(
    world: SimWorld, doctor: Callable[..., Report], tmp_path: Path
) -> None:
    """``roomd sim``'s config as written: the webhook points at port 9478, where no roomd runs
    yet."""
    report = doctor(sim_config(world, tmp_path, port=_free_port()))
    line = report.line("hybrid webhook answers")
    assert line.startswith("WARN") and "roomd is not running" in line
    assert line.endswith("— fix: systemctl start roomd")
    assert report.code == 0


def test_a_room_with_its_subjects_kept_passes(
    world: SimWorld, doctor: Callable[..., Report], tmp_path: Path
) -> None:
    world.call(
        lambda: world.graph.control.set_calendar_processing(
            ROOM, DeleteSubject=False, AddOrganizerToSubject=False, DeleteComments=False
        )
    )
    book_meeting(world, ROOM, "Quarterly planning", "Agenda: budgets")
    report = doctor(sim_config(world, tmp_path, webhook=False))
    assert report.line(f"room {ROOM} copies").startswith("PASS")


def test_a_bad_config_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "roomd.toml").write_text("[graph]\n")
    assert main(["doctor", "-c", str(tmp_path / "roomd.toml")]) == 2
    assert "roomd: config" in capsys.readouterr().err


# -- the comparison of a room's copy with its organizer's, case by case ------------------------


@pytest.mark.parametrize(
    ("room_subject", "room_body", "expected"),
    [
        ("Planning", "<p>Agenda</p>", ([], [])),
        (
            "Adele Vance",
            "",
            (
                ["the subject is replaced by the organizer's name", "the body is removed"],
                [
                    "-DeleteSubject $false",
                    "-AddOrganizerToSubject $false",
                    "-DeleteComments $false",
                ],
            ),
        ),
        ("", "<p>Agenda</p>", (["the subject is removed"], ["-DeleteSubject $false"])),
        (
            "Adele Vance Planning",
            "<p>Agenda</p>",
            (["the organizer's name is added to the subject"], ["-AddOrganizerToSubject $false"]),
        ),
        (
            "Planning",
            "<html><body> &nbsp; </body></html>",
            (["the body is removed"], ["-DeleteComments $false"]),
        ),
    ],
)
def test_copy_findings(room_subject: str, room_body: str, expected: Any) -> None:
    found = copy_findings(room_subject, room_body, "Planning", "<p>Agenda</p>", "Adele Vance")
    assert found == expected


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_certificate_credential_is_checked_by_its_not_after(
    world: SimWorld, doctor: Callable[..., Report], tmp_path: Path
) -> None:
    client_id, key_pem, cert_pem, _ = world.call(world.graph.register_certificate_app)
    config = sim_config(world, tmp_path, webhook=False)
    (tmp_path / "graph-app.pem").write_text(key_pem + cert_pem)
    text = config.read_text().replace(
        'client_secret_file = "graph-client-secret"', 'certificate_file = "graph-app.pem"'
    )
    config.write_text(text.replace(world.graph.client_id, client_id))
    report = doctor(config)
    assert report.line("graph token").startswith("PASS")
    line = report.line("graph certificate expiry")
    assert line.startswith("PASS") and "the certificate is valid until" in line
    assert "BEGIN" not in report.out  # the key never reaches the report


def test_a_room_that_exists_on_neither_side_is_named(
    world: SimWorld, doctor: Callable[..., Report], tmp_path: Path
) -> None:
    config = sim_config(world, tmp_path, webhook=False)
    ghost = '\n[[rooms]]\nhybrid_id = "64f0a1b2c3d4e5f6a7b8c9ff"\nmailbox = "ghost@contoso.com"\n'
    config.write_text(config.read_text() + ghost)
    report = doctor(config)
    line = report.line("room ghost@contoso.com readable")
    assert line.startswith("FAIL") and "404" in line and "Get-Mailbox" in line
    assert report.line("room ghost@contoso.com writable").startswith("SKIP")
    hybrid = report.line("hybrid rooms")
    assert hybrid.startswith("FAIL") and "64f0a1b2c3d4e5f6a7b8c9ff (ghost@contoso.com)" in hybrid
    assert report.code == 1


@pytest.mark.parametrize(
    ("description", "says", "fix"),
    [
        (
            "AADSTS700016: Application with identifier 'x' was not found",
            "no app",
            "Application (client) ID",
        ),
        ("AADSTS90002: Tenant 'x' not found. Check", "tenant", "graph.tenant_id"),
        ("AADSTS700027: Client assertion failed", "certificate", "--cert @"),
        ("AADSTS700024: Client assertion is not within", "valid time", "timedatectl"),
    ],
)
def test_token_refusals_map_to_their_fix(description: str, says: str, fix: str) -> None:
    check = graph_token_failure(
        "invalid_client", description, client_id="app", tenant_id="t", certificate=True
    )
    assert check.status == "fail" and says in check.detail and fix in (check.fix or "")


@pytest.mark.parametrize(
    ("skew", "status"), [(0.4, "pass"), (-4.9, "pass"), (6, "warn"), (-299, "warn"), (301, "fail")]
)
def test_clock_skew_bounds(skew: float, status: str) -> None:
    assert skew_check("Graph", skew).status == status
