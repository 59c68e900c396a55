"""The daemon against the simulated Microsoft 365: ready when rooms sync, stale when they stop,
and a bounded stop even when a round hangs."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.daemon import DaemonProcess
from support.sims import SimWorld, sim_world


@pytest.fixture
def world() -> Iterator[SimWorld]:
    with sim_world() as w:
        yield w


def deny_access(world: SimWorld, mailbox: str | None = None) -> None:
    """What Graph answers for a mailbox outside the app's access policy (graph-behaviour 3.2)."""
    world.call(
        lambda: world.graph.control.inject_fault(
            kind="status",
            status=403,
            code="ErrorAccessDenied",
            message="Access to OData is disabled.",
            mailbox=mailbox,
            count=None,
        )
    )


def wait_ready(daemon: DaemonProcess, timeout: float = 20) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        resp = httpx.get(daemon.url("/readyz"))
        if resp.status_code == 200:
            return resp
        time.sleep(0.1)
    raise AssertionError(f"not ready within {timeout}s: {resp.text}")


def test_ready_once_every_room_has_completed_a_round(
    tmp_path: Path, world: SimWorld, daemons: list[DaemonProcess]
) -> None:
    cfg = world.write_config(tmp_path)
    daemon = DaemonProcess(cfg).start()
    daemons.append(daemon)
    detail = wait_ready(daemon).json()
    assert detail["ready"] is True
    assert {room.email for room in world.tenant.rooms} == set(detail["rooms"])
    assert all(room["state"] == "ok" for room in detail["rooms"].values())
    line = daemon.wait_log(lambda x: x.get("event") == "room_round")
    assert line["outcome"] == "ok" and line["delta_pages"] >= 1


def test_a_room_that_stops_syncing_turns_readyz_503_and_names_the_room(
    tmp_path: Path, world: SimWorld, daemons: list[DaemonProcess]
) -> None:
    cfg = world.write_config(tmp_path)
    text = cfg.read_text().replace(
        "poll_interval_seconds = 1", "poll_interval_seconds = 1\nstale_after_seconds = 4"
    )
    cfg.write_text(text)
    daemon = DaemonProcess(cfg).start()
    daemons.append(daemon)
    wait_ready(daemon)
    broken = world.tenant.rooms[0].email
    deny_access(world, broken)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        resp = httpx.get(daemon.url("/readyz"))
        if resp.status_code == 503:
            break
        time.sleep(0.2)
    assert resp.status_code == 503, resp.text
    rooms = resp.json()["rooms"]
    assert rooms[broken]["state"] == "stale"
    assert "ErrorAccessDenied" in (rooms[broken]["last_error"] or "") or "Access" in (
        rooms[broken]["last_error"] or ""
    )
    others = [r for email, r in rooms.items() if email != broken]
    assert all(r["state"] == "ok" for r in others)


def test_sigterm_during_a_hung_round_exits_0_within_the_grace_period(
    tmp_path: Path, world: SimWorld, daemons: list[DaemonProcess]
) -> None:
    cfg = world.write_config(tmp_path)
    grace = 2
    cfg.write_text(
        cfg.read_text().replace(
            "poll_interval_seconds = 1",
            f"poll_interval_seconds = 1\nshutdown_grace_seconds = {grace}",
        )
    )
    # every request hangs far longer than the grace period: rounds cannot finish in time
    world.call(lambda: world.graph.control.inject_fault(kind="slow", delay_s=8, count=None))
    daemon = DaemonProcess(cfg).start()
    daemons.append(daemon)
    daemon.wait_log(lambda x: x.get("event") == "started")
    time.sleep(1.0)
    started = time.monotonic()
    daemon.signal(signal.SIGTERM)
    assert daemon.wait_exit(timeout=30) == 0
    elapsed = time.monotonic() - started
    assert elapsed < grace + 3, elapsed
    stopping = daemon.events("stopping")
    assert stopping and stopping[0]["inflight"] >= 1
    assert daemon.events("abandoned_rounds")
    assert daemon.events("stopped")


def start_with_webhooks(
    tmp_path: Path, world: SimWorld, daemons: list[DaemonProcess]
) -> DaemonProcess:
    """An hourly-polling daemon whose receiver is registered with the Hybrid simulator.

    It starts with a placeholder secret, registers its real URL, then rotates the secret with a
    SIGHUP: the operator's order of events, and proof that rotation needs no restart.
    """
    import dataclasses

    from roomd.compose import hybrid_client_config
    from roomd.config import load_config
    from roomd.hybrid import HybridClient

    cfg = world.write_config(tmp_path, poll_interval=3600, webhook_secret="not-yet-known")
    daemon = DaemonProcess(cfg).start()
    daemons.append(daemon)
    wait_ready(daemon)

    async def register() -> str:
        config = hybrid_client_config(load_config(cfg))
        admin = dataclasses.replace(config, scope=config.scope + " flex.settings.webhooks.create")
        async with HybridClient(admin) as client:
            hook = await client.register_webhook(daemon.url("/hooks/hybrid"))
            return hook.reveal()

    (tmp_path / "hybrid-webhook-secret").write_text(world.run(register()) + "\n")
    mark = daemon.mark()
    daemon.signal(signal.SIGHUP)
    daemon.wait_log(lambda x: x.get("event") == "config_reloaded", since=mark)
    return daemon


def hybrid_booker(world: SimWorld, resource_id: str, summary: str = "Meeting") -> Any:
    """``book(h)``: a member books half an hour, h hours after 24 h from now, in the Hybrid app."""
    from datetime import UTC, datetime, timedelta

    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)

    def book(hours: int) -> None:
        world.hybrid.control.create_booking(
            resource_id,
            start + timedelta(hours=hours),
            start + timedelta(hours=hours, minutes=30),
            member=world.tenant.people[0].email,
            summary=summary,
        )

    return book


def test_hybrid_webhook_brings_the_rooms_round_forward_and_listing_catches_lost_ones(
    tmp_path: Path, world: SimWorld, daemons: list[DaemonProcess]
) -> None:

    daemon = start_with_webhooks(tmp_path, world, daemons)
    cfg = tmp_path / "roomd.toml"
    room = world.tenant.rooms[0]
    book = hybrid_booker(world, room.hybrid_id, summary="Stand-up")

    mark = daemon.mark()
    world.call(lambda: book(0))
    # the hourly schedule would not come round for an hour: the webhook brought it forward
    line = daemon.wait_log(
        lambda x: (
            x.get("event") == "room_round"
            and x.get("room") == room.email
            and x.get("outbound") == 1
        ),
        timeout=15,
    )
    assert line["outcome"] == "ok"
    assert "Stand-up" not in "".join(daemon.raw)  # booking contents are not logged
    metrics = httpx.get(daemon.url("/metrics")).text
    assert 'roomd_webhooks_total{outcome="accepted",source="hybrid"}' in metrics
    # a lost delivery: the next round's listing still finds the booking
    world.call(lambda: world.hybrid.control.set_faults(webhook_drop=1))
    before_drop = daemon.mark()
    world.call(lambda: book(2))
    time.sleep(1.0)
    mark = daemon.mark()
    # nothing arrived: no round ran for the room since the booking was made
    assert not [x for x in daemon.lines[before_drop:mark] if x.get("event") == "room_round"]
    # the periodic listing is the safety net: poll every 2 s from now on (SIGHUP reschedules)
    cfg.write_text(
        cfg.read_text().replace("poll_interval_seconds = 3600", "poll_interval_seconds = 2")
    )
    daemon.signal(signal.SIGHUP)
    line = daemon.wait_log(
        lambda x: x.get("event") == "room_round" and x.get("room") == room.email,
        timeout=15,
        since=mark,
    )
    assert line["outbound"] == 1


def test_a_room_remapped_to_another_hybrid_resource_lists_that_resource_from_the_start(
    tmp_path: Path, world: SimWorld, daemons: list[DaemonProcess]
) -> None:
    """SIGHUP 'changed': the old resource's cursor must not hide the new one's bookings."""
    from datetime import UTC, datetime, timedelta

    room, other = world.tenant.rooms[0], world.tenant.rooms[3]
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
    world.call(
        lambda: world.hybrid.control.create_booking(
            other.hybrid_id,
            start,
            start + timedelta(hours=1),
            member=world.tenant.people[1].email,
            summary="Booked long ago",
        )
    )
    world.call(lambda: world.hybrid.control.advance_clock(600))
    world.call(
        lambda: world.hybrid.control.create_booking(
            room.hybrid_id,
            start,
            start + timedelta(hours=1),
            member=world.tenant.people[1].email,
            summary="Booked now",
        )
    )
    cfg = world.write_config(tmp_path, poll_interval=3600)
    head, *rooms = cfg.read_text().split("\n[[rooms]]\n")
    cfg.write_text(head + "\n[[rooms]]\n" + rooms[0])  # only the first room
    daemon = DaemonProcess(cfg).start()
    daemons.append(daemon)
    first = daemon.wait_log(lambda x: x.get("event") == "room_round" and x["outcome"] == "ok")
    assert first["outbound"] == 1  # its cursor is now ten minutes past the other booking
    cfg.write_text(cfg.read_text().replace(room.hybrid_id, other.hybrid_id))
    mark = daemon.mark()
    daemon.signal(signal.SIGHUP)
    changed = daemon.wait_log(lambda x: x.get("event") == "rooms_changed", since=mark)
    assert changed["changed"] == [room.email]
    line = daemon.wait_log(
        lambda x: x.get("event") == "room_round" and x.get("room") == room.email, since=mark
    )
    assert line["outbound"] == 1


def test_after_a_restart_readyz_waits_for_this_processs_own_rounds(
    tmp_path: Path, world: SimWorld, daemons: list[DaemonProcess]
) -> None:
    cfg = world.write_config(tmp_path)
    first = DaemonProcess(cfg).start()
    daemons.append(first)
    wait_ready(first)
    first.signal(signal.SIGTERM)
    assert first.wait_exit() == 0
    # the database now holds fresh successes, but Graph refuses everything from here on
    deny_access(world)
    second = DaemonProcess(cfg).start()
    daemons.append(second)
    second.wait_log(lambda x: x.get("event") == "room_round" and x.get("outcome") == "error")
    resp = httpx.get(second.url("/readyz"))
    assert resp.status_code == 503
    rooms = resp.json()["rooms"]
    assert {r["state"] for r in rooms.values()} == {"waiting_for_first_round"}
    assert all(r["last_success_at"] for r in rooms.values())  # the old successes are shown


def test_expired_delta_tokens_are_rebaselined_without_failing_the_round(
    tmp_path: Path, world: SimWorld, daemons: list[DaemonProcess]
) -> None:
    cfg = world.write_config(tmp_path)
    daemon = DaemonProcess(cfg).start()
    daemons.append(daemon)
    wait_ready(daemon)
    room = world.tenant.rooms[0].email
    # every room's first (baseline) round is in the log before the mark
    first = {r.email for r in world.tenant.rooms}
    for email in first:
        daemon.wait_log(lambda x, e=email: x.get("event") == "room_round" and x["room"] == e)
    mark = daemon.mark()
    world.call(lambda: world.graph.control.expire_delta_tokens(room))
    line = daemon.wait_log(
        lambda x: x.get("event") == "room_round" and x.get("room") == room and x.get("baseline"),
        since=mark,
    )
    assert line["outcome"] == "ok"
    assert httpx.get(daemon.url("/readyz")).status_code == 200


def test_throttling_is_waited_out_and_counted(
    tmp_path: Path, world: SimWorld, daemons: list[DaemonProcess]
) -> None:
    room = world.tenant.rooms[0].email
    world.call(
        lambda: world.graph.control.inject_fault(
            kind="status", status=429, retry_after="0.5", mailbox=room, count=2
        )
    )
    cfg = world.write_config(tmp_path)
    daemon = DaemonProcess(cfg).start()
    daemons.append(daemon)
    line = daemon.wait_log(lambda x: x.get("event") == "room_round" and x.get("room") == room)
    assert line["outcome"] == "ok"
    assert line["duration_s"] >= 0.5
    metrics = httpx.get(daemon.url("/metrics")).text
    assert "roomd_graph_throttled_total 2.0" in metrics
    assert 'roomd_graph_requests_total{status="429"} 2.0' in metrics


def test_an_expired_client_secret_is_reported_per_room_and_keeps_the_secret_out(
    tmp_path: Path, world: SimWorld, daemons: list[DaemonProcess]
) -> None:
    """A classic: the app secret expires and sync silently stops. roomd says so, per room."""
    world.call(lambda: world.graph.control.expire_client_secret())
    cfg = world.write_config(tmp_path)
    daemon = DaemonProcess(cfg).start()
    daemons.append(daemon)
    line = daemon.wait_log(lambda x: x.get("event") == "room_round")
    assert line["outcome"] == "error"
    assert "7000222" in line["error"] or "expired" in line["error"].lower(), line["error"]
    detail = httpx.get(daemon.url("/readyz")).json()
    assert detail["ready"] is False
    assert world.graph.client_secret not in "".join(daemon.raw)
    assert world.graph.client_secret not in str(detail)


def test_signals_while_stopping_sighup_ignored_second_sigterm_abandons_at_once(
    tmp_path: Path, world: SimWorld, daemons: list[DaemonProcess]
) -> None:
    cfg = world.write_config(tmp_path)
    cfg.write_text(
        cfg.read_text().replace(
            "poll_interval_seconds = 1", "poll_interval_seconds = 1\nshutdown_grace_seconds = 30"
        )
    )
    world.call(lambda: world.graph.control.inject_fault(kind="slow", delay_s=8, count=None))
    daemon = DaemonProcess(cfg).start()
    daemons.append(daemon)
    daemon.wait_log(lambda x: x.get("event") == "started")
    time.sleep(0.5)
    daemon.signal(signal.SIGTERM)
    daemon.wait_log(lambda x: x.get("event") == "stopping")
    daemon.signal(signal.SIGHUP)  # e.g. `systemctl reload` during a stop: must not kill us
    daemon.wait_log(lambda x: x.get("event") == "reload_ignored")
    assert daemon.proc is not None and daemon.proc.poll() is None
    started = time.monotonic()
    daemon.signal(signal.SIGTERM)  # the impatient operator: do not wait the 30 s grace
    assert daemon.wait_exit(timeout=20) == 0
    assert time.monotonic() - started < 10
    assert daemon.events("abandoned_rounds")
    assert daemon.events("stopped")


def test_a_rejected_client_secret_is_reported_without_the_secret(
    tmp_path: Path, world: SimWorld, daemons: list[DaemonProcess]
) -> None:
    """The secret really travels to the token endpoint here, and the refusal comes back."""
    cfg = world.write_config(tmp_path)
    wrong = "Wr0ng-s3cret-that-must-never-be-logged"
    (tmp_path / "graph-client-secret").write_text(wrong + "\n")
    daemon = DaemonProcess(cfg).start()
    daemons.append(daemon)
    line = daemon.wait_log(lambda x: x.get("event") == "room_round")
    assert line["outcome"] == "error"
    assert "7000215" in line["error"] or "secret" in line["error"].lower(), line["error"]
    readyz = httpx.get(daemon.url("/readyz")).text
    metrics = httpx.get(daemon.url("/metrics")).text
    daemon.signal(signal.SIGTERM)
    daemon.wait_exit()
    for text in ("".join(daemon.raw), readyz, metrics):
        assert wrong not in text


def test_a_webhook_during_a_running_round_gets_a_round_of_its_own(
    tmp_path: Path, world: SimWorld, daemons: list[DaemonProcess]
) -> None:
    """A change that lands after the round read the Hybrid listing must not wait an hour."""

    daemon = start_with_webhooks(tmp_path, world, daemons)
    room = world.tenant.rooms[0]
    book = hybrid_booker(world, room.hybrid_id)

    # the first round reads the Hybrid listing, then writes the first booking's meeting into
    # its member's calendar: that Graph request takes 2 s, so the round (past its listing) is
    # still running when the second booking's webhook arrives
    member = world.tenant.people[0].email
    world.call(
        lambda: world.graph.control.inject_fault(kind="slow", delay_s=2, mailbox=member, count=1)
    )
    mark = daemon.mark()
    world.call(lambda: book(0))
    time.sleep(0.5)
    world.call(lambda: book(2))
    rounds = []
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and sum(r.get("outbound", 0) for r in rounds) < 2:
        time.sleep(0.1)
        daemon.mark()
        rounds = [
            x
            for x in daemon.lines[mark:]
            if x.get("event") == "room_round" and x.get("room") == room.email
        ]
    assert len(rounds) >= 2, rounds
    assert sum(r["outbound"] for r in rounds) >= 2  # both bookings read within seconds


def post_signed_webhook(
    daemon: DaemonProcess, secret: str, event_type: str, obj: dict[str, Any]
) -> httpx.Response:
    """A delivery as OfficeRnD signs it, whose booking object carries only what ``obj`` has."""
    import json

    from roomd.hybrid.webhooks import sign

    raw = json.dumps({"eventType": event_type, "data": {"object": obj}}).encode()
    headers = {
        "content-type": "application/json",
        "officernd-signature": sign(secret, raw, int(time.time())),
    }
    return httpx.post(daemon.url("/hooks/hybrid"), content=raw, headers=headers)


def rounds_of(daemon: DaemonProcess, mailbox: str, since: int) -> list[dict[str, Any]]:
    daemon.mark()
    return [
        x
        for x in daemon.lines[since:]
        if x.get("event") == "room_round" and x.get("room") == mailbox
    ]


def test_a_partial_webhook_naming_the_resource_brings_the_rooms_round_forward(
    tmp_path: Path, world: SimWorld, daemons: list[DaemonProcess]
) -> None:
    """Only ``_id`` and ``resourceId``: enough to know which room to look at now."""
    from datetime import UTC, datetime, timedelta

    secret = "whsec-partial-0123456789abcdef"
    cfg = world.write_config(tmp_path, poll_interval=3600, webhook_secret=secret)
    daemon = DaemonProcess(cfg).start()
    daemons.append(daemon)
    wait_ready(daemon)
    room = world.tenant.rooms[1]
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    mark = daemon.mark()
    made = world.call(
        lambda: world.hybrid.control.create_booking(
            room.hybrid_id,
            start,
            start + timedelta(minutes=30),
            member=world.tenant.people[0].email,
        )
    )
    resp = post_signed_webhook(
        daemon, secret, "booking.created", {"_id": made["_id"], "resourceId": room.hybrid_id}
    )
    assert resp.status_code == 202, resp.text
    # the hourly schedule would not come round for an hour: the webhook brought it forward
    line = daemon.wait_log(
        lambda x: x.get("event") == "room_round" and x.get("room") == room.email,
        timeout=15,
        since=mark,
    )
    assert (line["outcome"], line["outbound"]) == ("ok", 1)
    others = {x["room"] for x in daemon.lines[mark:] if x.get("event") == "room_round"}
    assert others == {room.email}
    metrics = httpx.get(daemon.url("/metrics")).text
    assert 'roomd_webhooks_total{outcome="bad_body",source="hybrid"}' not in metrics


def test_a_webhook_naming_only_the_booking_runs_the_round_of_the_room_linked_to_it(
    tmp_path: Path, world: SimWorld, daemons: list[DaemonProcess]
) -> None:
    """A removal may carry only the booking's ``_id``: roomd finds the room by its link."""
    import asyncio
    from datetime import UTC, datetime, timedelta

    from roomd.store import Link, open_store

    room = world.tenant.rooms[2]
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    made = world.call(
        lambda: world.hybrid.control.create_booking(
            room.hybrid_id,
            start,
            start + timedelta(minutes=30),
            member=world.tenant.people[0].email,
        )
    )
    secret = "whsec-partial-0123456789abcdef"
    cfg = world.write_config(tmp_path, poll_interval=3600, webhook_secret=secret)

    async def seed_link() -> None:  # what a round that synced the booking leaves behind
        store = await open_store(tmp_path / "roomd.sqlite3")
        try:
            async with store.write(room.email) as tx:
                await tx.upsert_link(Link("l-1", hybrid_id=made["_id"]))
        finally:
            await store.close()

    asyncio.run(seed_link())
    daemon = DaemonProcess(cfg).start()
    daemons.append(daemon)
    wait_ready(daemon)
    mark = daemon.mark()
    world.call(lambda: world.hybrid.control.cancel_booking(made["_id"]))
    # a booking roomd has no link for waits for the listing: no round now
    unknown = {"_id": "65a0000000000000000000ff"}
    assert post_signed_webhook(daemon, secret, "booking.removed", unknown).status_code == 202
    time.sleep(1.0)
    assert rounds_of(daemon, room.email, mark) == []
    resp = post_signed_webhook(daemon, secret, "booking.removed", {"_id": made["_id"]})
    assert resp.status_code == 202, resp.text
    line = daemon.wait_log(
        lambda x: x.get("event") == "room_round" and x.get("room") == room.email,
        timeout=15,
        since=mark,
    )
    assert (line["outcome"], line["outbound"]) == ("ok", 1)
    others = {x["room"] for x in daemon.lines[mark:] if x.get("event") == "room_round"}
    assert others == {room.email}
