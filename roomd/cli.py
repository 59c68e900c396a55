"""roomd's command line: argument parsing and exit codes, nothing else.

Exit codes follow the usual convention: 0 success, 1 runtime failure, 2 usage or config error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from roomd import __version__

if TYPE_CHECKING:
    from roomd.config import Settings

DEFAULT_CONFIG = Path("/etc/roomd/roomd.toml")
EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2

DESCRIPTION = """\
roomd keeps meeting-room bookings in two-way sync between a room-booking system (Hybrid, or any
system serving the OfficeRnD-compatible API) and Microsoft 365 room mailboxes. It polls each room
mailbox's calendarView delta through Microsoft Graph, receives Hybrid webhooks, and writes each
side's changes to the other, keeping its bookkeeping in one SQLite database."""

EPILOG = """\
commands:
  run             run the daemon in the foreground (systemd: Type=notify)
  config check    validate a configuration file; one line per problem
  status          per room: last round, lag, outbox depth, last error and problems
  sync            reconcile rooms now (--full: the whole window), or show the plan (--dry-run)
  explain ID      why a booking looks the way it does: its link, owed writes and history
  rooms           map room mailboxes to Hybrid resources; print or --write [[rooms]] blocks
  doctor          check credentials, permissions, rooms, clocks and the webhook; one line each
  demo            play roomd's promises against the built-in simulators, verified
  sim             run the Microsoft Graph and Hybrid simulators standalone

files:
  /etc/roomd/roomd.toml          configuration (override with -c PATH); see
                                 config/roomd.example.toml for every key
  $STATE_DIRECTORY/roomd.sqlite3 state database (default /var/lib/roomd/roomd.sqlite3)

environment:
  NOTIFY_SOCKET, WATCHDOG_USEC   set by systemd; roomd speaks sd_notify(3) when present
  STATE_DIRECTORY                set by systemd's StateDirectory=; default place of the database
  CREDENTIALS_DIRECTORY          set by systemd's LoadCredential=; *_file keys name it as
                                 "${CREDENTIALS_DIRECTORY:-/etc/roomd/credentials}/NAME", so
                                 commands run by hand read the source files instead

signals:
  SIGTERM, SIGINT  stop taking work, finish in-flight rounds (sync.shutdown_grace_seconds), exit 0
  SIGHUP           reload the configuration; an invalid one is refused and the old one stays

exit status:
  0  success
  1  runtime failure (e.g. the state database cannot be opened)
  2  usage or configuration error

see also:
  roomd <command> --help, systemctl(1), sd_notify(3), README.md"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="roomd",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"roomd {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def config_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "-c",
            "--config",
            type=Path,
            default=DEFAULT_CONFIG,
            metavar="PATH",
            help=f"configuration file (default: {DEFAULT_CONFIG})",
        )

    run = sub.add_parser(
        "run",
        help="run the daemon",
        description="Run the sync daemon in the foreground until SIGTERM or SIGINT. Logs are "
        "JSON lines on stdout (readable text when stdout is a terminal).",
    )
    config_arg(run)
    run.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        help="override log.level from the configuration",
    )

    config = sub.add_parser("config", help="configuration commands", description="Configuration.")
    config_sub = config.add_subparsers(dest="config_command", metavar="COMMAND", required=True)
    check = config_sub.add_parser(
        "check",
        help="validate a configuration file",
        description="Validate a configuration file, including that every secret file it names "
        "can be read. Prints one line per problem, naming the key (and the line where it can), "
        "and exits 2; exits 0 when the file is valid.",
    )
    config_arg(check)

    status = sub.add_parser(
        "status",
        help="show per-room sync status",
        description="Show, per configured room, the last round, the lag since its last "
        "successful round, the outbox depth and the last error, read from the state database "
        "(read-only: safe while the daemon runs).",
    )
    config_arg(status)
    status.add_argument("--json", action="store_true", help="print JSON instead of a table")

    sync = sub.add_parser(
        "sync",
        help="reconcile rooms now, or show what would change",
        description="Reconcile rooms now. With --full, every booking in the window (the past "
        "sync.window_back_days and the next sync.window_ahead_days) on both sides is compared "
        "with what roomd has linked: what is missing is created, nothing is created twice. "
        "With --dry-run, print the plan (what would be created, updated, cancelled, on which "
        "side, and why) and write nothing anywhere; safe while the daemon runs. Without it, a "
        "running daemon does the work in its next round; otherwise it runs here. --force lets "
        "a round cancel past the mass-delete breaker once, after an operator checked it.",
    )
    config_arg(sync)
    sync.add_argument("--full", action="store_true", help="reconcile the whole window")
    sync.add_argument("--dry-run", action="store_true", help="print the plan, write nothing")
    sync.add_argument(
        "--force", action="store_true", help="release the mass-delete breaker for these rooms"
    )
    sync.add_argument(
        "--room",
        action="append",
        default=[],
        metavar="MAILBOX",
        help="only this room (repeatable); default: every room",
    )
    sync.add_argument("rooms", nargs="*", metavar="ROOM", help="rooms, as with --room")

    explain = sub.add_parser(
        "explain",
        help="show why a booking looks the way it does",
        description="Find a booking by any of its ids (a Hybrid booking id, a Graph event id "
        "of the room's or the organizer's copy, an iCalUId, or roomd's link id) and show what "
        "roomd linked, what it last synced on each side, the writes it still owes, and every "
        "decision and write it made, with the reason.",
    )
    config_arg(explain)
    explain.add_argument("id", metavar="ID", help="any id of the booking")
    explain.add_argument("--json", action="store_true", help="print JSON instead of text")

    doctor = sub.add_parser(
        "doctor",
        help="check that this deployment can sync, with the fix for each problem",
        description="Check the Graph credentials and token, each Graph permission roomd uses "
        "(and any broader one), each room mailbox readable and writable (application access "
        "policies), rooms whose copies hide the subject or body (with the "
        "Set-CalendarProcessing command that fixes it), client-secret or certificate expiry, "
        "clock skew against both services, the Hybrid credentials, scopes and rooms, and the "
        "Hybrid webhook registered and answering. One line per check: PASS, WARN, FAIL (with "
        "the fix) or SKIP (not checked, and why). Exits 0 when nothing fails, 1 otherwise. "
        "Writes nothing but a private test event in each room, deleted at once.",
    )
    config_arg(doctor)
    doctor.add_argument("--json", action="store_true", help="print JSON instead of lines")

    rooms = sub.add_parser(
        "rooms",
        help="map Outlook room mailboxes to Hybrid resources",
        description="List the tenant's room mailboxes (Graph places and room lists) beside "
        "the booking system's resources, propose which is which (by name, then building and "
        "capacity; ambiguous matches are shown, never guessed), and print the [[rooms]] blocks "
        "to paste. Rooms already in the config are shown as mapped and never changed. Needs "
        "Place.Read.All in Graph and flex.space.resources.read in Hybrid.",
    )
    config_arg(rooms)
    rooms.add_argument(
        "--write",
        action="store_true",
        help="append the proposed blocks to the config (the rest of the file is kept byte for "
        "byte); refused if the result would not validate",
    )
    rooms.add_argument("--json", action="store_true", help="print JSON instead of a table")

    demo = sub.add_parser(
        "demo",
        help="play roomd's promises against the built-in simulators, verified, and exit",
        description="Start the Microsoft Graph and Hybrid simulators on loopback and a real "
        "roomd daemon against them (a temporary config and state directory), then play a short "
        "story: bookings made, changed and cancelled in Outlook and in Hybrid, a series with a "
        "moved and a cancelled occurrence, approval and rejection, a double booking, a no-show. "
        "Each step is checked on the other side and timed. Prints a timeline and a summary "
        "table; exits 0 only if every step was verified, 1 otherwise. Nothing leaves the machine.",
    )
    demo.add_argument(
        "--keep", type=Path, metavar="DIR", help="keep the demo's config and database in DIR"
    )
    demo.add_argument(
        "--keep-running",
        action="store_true",
        help="after the story, leave roomd and the simulators up, print their URLs and the "
        "config, and wait for Ctrl-C or SIGTERM",
    )

    sim = sub.add_parser(
        "sim",
        help="run the simulators standalone",
        description="Run the Microsoft Graph and Hybrid simulators on loopback with a default "
        "tenant until interrupted, and write a complete roomd configuration that points at "
        "them (secrets in files beside it, the simulators' CA as ca_bundle). Then "
        "'roomd run -c PATH' talks to them exactly as to Microsoft.",
    )
    sim.add_argument(
        "--config-out",
        type=Path,
        default=Path("roomd-sim/roomd.toml"),
        metavar="PATH",
        help="where to write the roomd configuration (default: roomd-sim/roomd.toml)",
    )
    sim.add_argument("--host", default="127.0.0.1", help="address to listen on (loopback)")
    sim.add_argument("--graph-port", type=_port, default=0, help="Graph simulator port (0: any)")
    sim.add_argument("--hybrid-port", type=_port, default=0, help="Hybrid simulator port (0: any)")
    return parser


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port number (0 to 65535)")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            return cmd_run(args.config, args.log_level)
        if args.command == "config" and args.config_command == "check":
            return cmd_config_check(args.config)
        if args.command == "status":
            return cmd_status(args.config, as_json=args.json)
        if args.command == "sync":
            return cmd_sync(
                args.config,
                [*args.room, *args.rooms],
                full=args.full,
                dry_run=args.dry_run,
                force=args.force,
            )
        if args.command == "explain":
            return cmd_explain(args.config, args.id, as_json=args.json)
        if args.command == "doctor":
            return cmd_doctor(args.config, as_json=args.json)
        if args.command == "rooms":
            return cmd_rooms(args.config, write=args.write, as_json=args.json)
        if args.command == "demo":
            from roomd.demo import run_demo

            if args.keep is not None and args.keep.exists() and not args.keep.is_dir():
                return _fail(f"demo: --keep {args.keep}: not a directory", EXIT_USAGE)
            return run_demo(keep=args.keep, keep_running=args.keep_running)
        if args.command == "sim":
            from roomd.sim.cli import run_sim

            return run_sim(
                args.config_out,
                host=args.host,
                graph_port=args.graph_port,
                hybrid_port=args.hybrid_port,
            )
    except KeyboardInterrupt:
        return EXIT_FAILURE
    except OSError as exc:  # a path or port the simulators or the demo cannot use
        where = f" {exc.filename}" if exc.filename else ""
        return _fail(f"{args.command}:{where} {exc.strerror or exc}")
    parser.print_help(sys.stderr)
    return EXIT_USAGE


def _fail(message: str, code: int = EXIT_FAILURE) -> int:
    print(f"roomd: {message}", file=sys.stderr)
    return code


def cmd_config_check(path: Path) -> int:
    from roomd.config import check_config

    problems = check_config(path)
    for problem in problems:
        print(f"roomd: {problem}", file=sys.stderr)
    if problems:
        return EXIT_USAGE
    print(f"roomd: config {path}: ok")
    return EXIT_OK


def _load(path: Path) -> Settings | None:
    """The validated settings, or None after printing one line per problem."""
    from roomd.config import ConfigError, load_config

    try:
        return load_config(path)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"roomd: {problem}", file=sys.stderr)
        return None


def cmd_run(path: Path, log_level: str | None) -> int:
    from roomd import observe
    from roomd.compose import build_daemon
    from roomd.store import StoreError

    settings = _load(path)
    if settings is None:
        return EXIT_USAGE
    observe.configure_logging(log_level or settings.log.level)
    daemon = build_daemon(settings, config_path=path, log_level_override=log_level)
    try:
        return asyncio.run(daemon.run())
    except StoreError as exc:
        return _fail(str(exc))
    except OSError as exc:  # e.g. the HTTP port is taken
        return _fail(f"{exc.strerror or exc}")


def cmd_sync(path: Path, rooms: list[str], *, full: bool, dry_run: bool, force: bool) -> int:
    from roomd.manual import UsageError, manual_sync
    from roomd.store import StoreError

    settings = _load(path)
    if settings is None:
        return EXIT_USAGE
    try:
        lines = asyncio.run(manual_sync(settings, rooms, full=full, dry_run=dry_run, force=force))
    except UsageError as exc:
        return _fail(f"sync: {exc}", EXIT_USAGE)
    except StoreError as exc:
        return _fail(str(exc))
    print("\n".join(lines))
    return EXIT_FAILURE if any(": failed: " in line for line in lines) else EXIT_OK


def cmd_explain(path: Path, any_id: str, *, as_json: bool) -> int:
    from roomd.manual import explain, render
    from roomd.store import StoreError

    settings = _load(path)
    if settings is None:
        return EXIT_USAGE
    try:
        stories = asyncio.run(explain(settings, any_id))
    except StoreError as exc:
        return _fail(str(exc))
    if not stories:
        return _fail(f"explain: no booking roomd knows has the id {any_id!r}")
    if as_json:
        print(json.dumps([s.as_json() for s in stories], indent=2, ensure_ascii=False))
    else:
        print("\n".join(render(stories, settings)).rstrip())
    return EXIT_OK


def cmd_doctor(path: Path, *, as_json: bool) -> int:
    from roomd import observe
    from roomd.doctor import exit_code, render_json, render_text, run_checks

    settings = _load(path)
    if settings is None:
        return EXIT_USAGE
    observe.configure_logging("critical", stream=sys.stderr)  # the clients' own log lines
    checks = asyncio.run(run_checks(settings))
    print(render_json(checks) if as_json else "\n".join(render_text(checks)))
    return exit_code(checks)


def cmd_rooms(path: Path, *, write: bool, as_json: bool) -> int:
    from roomd import observe, rooms
    from roomd.config import ConfigError, load_config

    try:  # a config that maps no room yet is where this command starts
        settings = load_config(path, rooms_required=False)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"roomd: {problem}", file=sys.stderr)
        return EXIT_USAGE
    observe.configure_logging("critical", stream=sys.stderr)  # the clients' own log lines
    try:
        found = asyncio.run(rooms.read_inventory(settings))
    except rooms.RoomsError as exc:
        for line in exc.lines:
            print(f"roomd: rooms: {line}", file=sys.stderr)
        return EXIT_FAILURE
    result = rooms.match_rooms(found.outlook, found.hybrid, found.mapped)
    blocks = rooms.toml_blocks(result.proposals)
    if as_json:
        document = rooms.as_json(result, found)
        print(json.dumps(document, indent=2, ensure_ascii=False))
    else:
        print("\n".join(rooms.table(result)))
        print(f"\n{rooms.summary(result, found.other_resources)}")
        for hint in rooms.hints(found):
            print(f"note: {hint}")
        if blocks and not write:
            print(f"\n# Add to {path} (or run: roomd rooms -c {path} --write)\n")
            print(blocks, end="")
    if write and blocks:
        try:
            rooms.write_rooms(path, blocks)
        except rooms.WriteRefused as exc:
            for line in exc.lines:
                print(f"roomd: {line}", file=sys.stderr)
            return EXIT_USAGE
        print(
            f"roomd: config {path}: added {len(result.proposals)} [[rooms]] block(s); a running "
            "daemon syncs them after 'systemctl reload roomd'",
            file=sys.stderr,
        )
    elif write:
        print(f"roomd: config {path}: nothing to add", file=sys.stderr)
    return EXIT_OK


def cmd_status(path: Path, *, as_json: bool) -> int:
    from roomd.store import StoreError

    settings = _load(path)
    if settings is None:
        return EXIT_USAGE
    try:
        rows = asyncio.run(_status_rows(settings))
    except StoreError as exc:
        return _fail(str(exc))
    if as_json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    header = ("ROOM", "LAST ROUND", "LAG", "OUTBOX", "FAILURES", "LAST ERROR / PROBLEM")
    table = [header] + [
        (
            r["room"],
            r["last_round_at"] or "never",
            _human_seconds(r["lag_s"]),
            str(r["outbox_depth"]) + (f" ({r['outbox_dead']} dead)" if r["outbox_dead"] else ""),
            str(r["consecutive_failures"]),
            _attention(r),
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header) - 1)]
    for row in table:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])]
        print("  ".join([*cells, row[-1]]))
    return EXIT_OK


async def _status_rows(settings: Settings) -> list[dict[str, Any]]:
    from roomd import utc
    from roomd.store import open_store

    store = await open_store(settings.state.path, readonly=True)
    try:
        statuses = {st.room: st for st in await store.room_statuses()}
        flags = await store.room_flags()
    finally:
        await store.close()
    now = utc.now()
    rows = []
    for room in settings.rooms:
        st = statuses.get(room.mailbox.lower())
        lag = utc.age_seconds(st.last_success_at if st else None, now)
        oldest = utc.age_seconds(st.oldest_pending_at if st else None, now)
        rows.append(
            {
                "room": room.mailbox,
                "name": room.name,
                "last_round_at": utc.iso_z(st.last_round_at if st else None),
                "last_success_at": utc.iso_z(st.last_success_at if st else None),
                "lag_s": round(lag, 1) if lag is not None else None,
                "outbox_depth": st.outbox_depth if st else 0,
                "outbox_oldest_age_s": round(oldest, 1) if oldest is not None else None,
                "consecutive_failures": st.consecutive_failures if st else 0,
                "last_error": st.last_error if st else None,
                "outbox_dead": st.outbox_dead if st else 0,
                "breaker": flags.get(room.mailbox, {}).get("breaker"),
                "problem": flags.get(room.mailbox, {}).get("problem"),
            }
        )
    return rows


def _attention(row: dict[str, Any]) -> str:
    """What the operator should look at first: a tripped breaker, the last error, a problem."""
    parts = []
    if row["breaker"]:
        parts.append(f"BREAKER: {row['breaker']}")
    if row["last_error"]:
        parts.append(row["last_error"])
    if row["problem"]:
        parts.append(f"problem: {row['problem']}")
    return "; ".join(parts) or "-"


def _human_seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 120:
        return f"{value:.0f}s"
    if value < 7200:
        return f"{value / 60:.0f}m"
    return f"{value / 3600:.1f}h"
