"""The table an operator reads, the JSON a script reads, and the ``[[rooms]]`` blocks to paste.

The blocks are built with tomlkit, so a room name with quotes, backslashes or non-ASCII letters
is a correct TOML string, and the reasons go in as comments (one line each: a remote name cannot
end a comment early and inject a key).
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import tomlkit

from roomd.rooms._listing import Inventory
from roomd.rooms._match import HybridRoom, Kind, OutlookRoom, Result, Row

HEADER = ("STATUS", "OUTLOOK ROOM MAILBOX", "HYBRID RESOURCE", "WHY")


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _outlook_cell(room: OutlookRoom | None) -> str:
    return "-" if room is None else f"{_one_line(room.name)} <{room.email}>"


def _hybrid_cell(room: HybridRoom | None) -> str:
    return "-" if room is None else f"{_one_line(room.name)} [{room.id}]"


def table(result: Result) -> list[str]:
    """One line per room, side by side; the last column is left unpadded."""
    cells = [HEADER] + [
        (
            row.kind.value,
            _outlook_cell(row.outlook),
            " or ".join(map(_hybrid_cell, row.candidates)) or _hybrid_cell(row.hybrid),
            "; ".join(row.reasons),
        )
        for row in result.rows
    ]
    widths = [max(len(c[i]) for c in cells) for i in range(3)]
    return ["  ".join([*(c[i].ljust(widths[i]) for i in range(3)), c[3]]) for c in cells]


def summary(result: Result, other_resources: int = 0) -> str:
    count = {kind: len(result.of(kind)) for kind in Kind}
    lonely_o = sum(1 for r in result.of(Kind.UNMATCHED) if r.outlook is not None)
    lonely_h = count[Kind.UNMATCHED] - lonely_o
    text = (
        f"{count[Kind.MAPPED]} mapped, {count[Kind.PROPOSED]} proposed, "
        f"{count[Kind.AMBIGUOUS]} ambiguous, {lonely_o} room mailbox(es) and "
        f"{lonely_h} Hybrid resource(s) unmatched"
    )
    if other_resources:
        text += f"; {other_resources} Hybrid resource(s) that are not meeting rooms left out"
    return text


def hints(inventory: Inventory) -> list[str]:
    """What to look at when a side lists nothing: the usual causes, not a diagnosis."""
    found = []
    other_resources = inventory.other_resources
    if not inventory.outlook:
        found.append(
            "Graph lists no room mailboxes: rooms must be room mailboxes (Exchange: "
            "Get-Mailbox -RecipientTypeDetails RoomMailbox), and a new one can take a while "
            "to appear in Graph's places"
        )
    if not inventory.hybrid:
        found.append(
            "Hybrid lists no meeting rooms"
            + (f" ({other_resources} other resources)" if other_resources else "")
            + ": check hybrid.org and that the rooms exist in Hybrid as meeting rooms"
        )
    return found


def _zone(name: str | None) -> str | None:
    """The resource's IANA zone if this machine knows it (the config refuses unknown ones)."""
    if not name:
        return None
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return name


def toml_blocks(rows: list[Row]) -> str:
    """``[[rooms]]`` blocks for proposed rows, in the keys of config/roomd.example.toml; the
    time zone comes from Hybrid (the zone its recurrences are evaluated in)."""
    if not rows:
        return ""
    doc = tomlkit.document()
    aot = tomlkit.aot()
    for row in rows:
        assert row.outlook is not None and row.hybrid is not None
        block = tomlkit.table()
        block.add(tomlkit.comment(_one_line("roomd rooms: " + "; ".join(row.reasons))))
        block.add("hybrid_id", row.hybrid.id)
        block.add("mailbox", row.outlook.email)
        block.add("name", _one_line(row.outlook.name) or row.outlook.email)
        zone = _zone(row.hybrid.time_zone)
        if zone is not None:
            block.add("time_zone", zone)
        aot.append(block)
    doc.append("rooms", aot)
    return tomlkit.dumps(doc)


def _outlook_json(room: OutlookRoom | None) -> dict[str, Any] | None:
    if room is None:
        return None
    return {
        "mailbox": room.email,
        "name": room.name,
        "capacity": room.capacity,
        "building": room.building,
    }


def _hybrid_json(room: HybridRoom | None) -> dict[str, Any] | None:
    if room is None:
        return None
    return {
        "hybrid_id": room.id,
        "name": room.name,
        "capacity": room.capacity,
        "office": room.office,
        "time_zone": room.time_zone,
    }


def as_json(result: Result, inventory: Inventory | None = None) -> dict[str, Any]:
    return {
        "rooms": [
            {
                "status": row.kind.value,
                "outlook": _outlook_json(row.outlook),
                "hybrid": _hybrid_json(row.hybrid),
                "candidates": [_hybrid_json(c) for c in row.candidates],
                "why": list(row.reasons),
            }
            for row in result.rows
        ],
        "other_resources": inventory.other_resources if inventory else 0,
        "hints": hints(inventory) if inventory else [],
        "toml": toml_blocks(result.proposals),
    }
