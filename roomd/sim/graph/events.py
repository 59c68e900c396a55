"""The event store: one calendar per mailbox, its events, and the instances a time window sees.

What is stored follows Graph's event resource (contrib: resources/event.md): single instances and
series masters; a modified occurrence is stored as an ``exception`` item linked to its master;
plain occurrences are never stored, they are expanded from the master's recurrence on demand
(so their ids are derived from the master id and the original start, and change if the series is
rescheduled: AvengeMedia/dankcalendar #95, graph-behaviour.md 1.4). Each calendar keeps a change
sequence that the delta engine reads.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from roomd.sim.graph import recurrence as rec_mod
from roomd.sim.graph.recurrence import Recurrence

ICAL_PREFIX = "040000008200E00074C5B7101A82E008"  # the Outlook global object id class id


IMMUTABLE = "AAkALg"  # immutable ids (Prefer: IdType="ImmutableId") start like this
REST = "AAMkAG"  # the default REST id format


def new_event_id() -> str:
    """Stored ids are immutable-format ids; ``A`` after the prefix keeps them apart from
    occurrence ids (``...OC``)."""
    return IMMUTABLE + "A" + base64.urlsafe_b64encode(secrets.token_bytes(33)).decode()


def to_rest_id(value: str) -> str:
    """The same item's id in the default REST format (outlook-immutable-id.md: the two formats
    differ; a client that omits IdType gets these)."""
    return REST + value[len(IMMUTABLE) :] if value.startswith(IMMUTABLE) else value


def normalise_id(value: str) -> str:
    """Accept either id format on input."""
    return IMMUTABLE + value[len(REST) :] if value.startswith(REST) else value


def new_change_key() -> str:
    return base64.b64encode(secrets.token_bytes(16)).decode()


def new_ical_uid(now: datetime) -> str:
    """Outlook's global object id in hex: class id, zero instance date, creation time, random."""
    filetime = int((now.timestamp() + 11644473600) * 10_000_000)
    created = filetime.to_bytes(8, "little").hex().upper()
    return (
        ICAL_PREFIX + "00000000" + created + "0" * 16 + "10000000" + secrets.token_hex(16).upper()
    )


def occurrence_ical_uid(master_uid: str, original_local_date: Any) -> str:
    """Occurrences get their own iCalUId (event.md): the instance date in bytes 16-19."""
    stamp = f"{original_local_date.year:04X}{original_local_date.month:02X}"
    stamp += f"{original_local_date.day:02X}"
    return master_uid[:32] + stamp + master_uid[40:]


def occurrence_id(master_id: str, original_start: datetime) -> str:
    raw = f"{master_id}|{original_start.astimezone(UTC):%Y%m%dT%H%M%SZ}".encode()
    return IMMUTABLE + "OC" + base64.urlsafe_b64encode(raw).decode()


def parse_occurrence_id(value: str) -> tuple[str, datetime] | None:
    if not value.startswith(IMMUTABLE + "OC"):
        return None
    try:
        raw = base64.urlsafe_b64decode(value[len(IMMUTABLE) + 2 :].encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    master_id, sep, stamp = raw.rpartition("|")
    if not sep:
        return None
    try:
        when = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None
    return master_id, when


@dataclass
class Event:
    id: str
    mailbox: str  # lower-case address of the mailbox holding this copy
    ical_uid: str
    type: str  # singleInstance | seriesMaster | exception
    start: datetime  # aware UTC
    end: datetime
    created: datetime
    modified: datetime
    change_key: str = field(default_factory=new_change_key)
    subject: str = ""
    body_type: str = "html"
    body: str = ""
    start_tz: str = "UTC"
    end_tz: str = "UTC"
    is_all_day: bool = False
    location: dict[str, Any] = field(default_factory=dict)
    locations: list[dict[str, Any]] = field(default_factory=list)
    attendees: list[dict[str, Any]] = field(default_factory=list)
    organizer: dict[str, str] = field(default_factory=dict)  # {"name","address"}
    is_organizer: bool = True
    response: str = "organizer"
    response_time: datetime | None = None
    sensitivity: str = "normal"
    show_as: str = "busy"
    importance: str = "normal"
    categories: list[str] = field(default_factory=list)
    reminder_minutes: int = 15
    is_reminder_on: bool = True
    allow_new_time_proposals: bool = True
    response_requested: bool = True
    hide_attendees: bool = False
    is_online_meeting: bool = False
    recurrence: Recurrence | None = None
    series_master_id: str | None = None
    original_start: datetime | None = None  # exceptions: the occurrence they replace
    transaction_id: str | None = None
    ext_props: dict[str, str] = field(default_factory=dict)
    is_cancelled: bool = False
    cancelled_occurrences: set[datetime] = field(default_factory=set)
    exceptions: dict[datetime, str] = field(default_factory=dict)  # original start -> id
    organizer_mailbox: str | None = None  # copies: where the organizer's copy lives

    @property
    def duration(self) -> timedelta:
        return self.end - self.start

    @property
    def etag(self) -> str:
        return f'W/"{self.change_key}"'


@dataclass
class Instance:
    """One item of a calendar view: a single instance, an occurrence, an exception (or master)."""

    id: str
    kind: str
    event: Event  # the stored event (for an occurrence: its master)
    start: datetime
    end: datetime
    original_start: datetime | None = None

    @property
    def version(self) -> str:
        return self.event.change_key


def overlaps(start: datetime, end: datetime, ws: datetime, we: datetime) -> bool:
    if start == end:
        return ws <= start < we
    return start < we and end > ws


class Calendar:
    """A mailbox's default calendar."""

    def __init__(self, mailbox: str) -> None:
        self.mailbox = mailbox
        self.events: dict[str, Event] = {}
        self.seq = 0
        self.changes: list[tuple[int, str]] = []  # (seq, stored event id) in order
        self.by_transaction: dict[str, str] = {}
        self._by_ical: dict[str, str] = {}  # iCalUId -> single instance / series master id
        # (event id, "created" | "updated" | "deleted", event or None): change notifications
        self.on_change: Callable[[str, str, Event | None], None] | None = None

    def _log(self, event_id: str, kind: str = "updated", event: Event | None = None) -> None:
        self.seq += 1
        self.changes.append((self.seq, event_id))
        if self.on_change is not None:
            self.on_change(event_id, kind, event)

    def add(self, event: Event) -> Event:
        self.events[event.id] = event
        if event.type != "exception":
            self._by_ical[event.ical_uid] = event.id
        if event.transaction_id:
            self.by_transaction[event.transaction_id] = event.id
        self._log(event.id, "created", event)
        return event

    def touch(self, event: Event, now: datetime) -> None:
        """Record a change: new changeKey/etag and lastModifiedDateTime."""
        event.change_key = new_change_key()
        event.modified = now
        self._log(event.id, "updated", event)

    def remove(self, event_id: str) -> Event | None:
        event = self.events.pop(event_id, None)
        if event is None:
            return None
        if self._by_ical.get(event.ical_uid) == event_id:
            del self._by_ical[event.ical_uid]
        if event.type == "seriesMaster":
            for exc_id in list(event.exceptions.values()):
                if self.events.pop(exc_id, None) is not None:
                    self._log(exc_id, "deleted")
        if event.series_master_id and event.original_start is not None:
            master = self.events.get(event.series_master_id)
            if master is not None and master.exceptions.get(event.original_start) == event_id:
                del master.exceptions[event.original_start]
        if event.transaction_id and self.by_transaction.get(event.transaction_id) == event_id:
            del self.by_transaction[event.transaction_id]
        self._log(event_id, "deleted", event)
        return event

    def changed_since(self, seq: int) -> set[str]:
        return {eid for s, eid in self.changes if s > seq}

    def find_by_ical(self, ical_uid: str) -> Event | None:
        found = self.events.get(self._by_ical.get(ical_uid, ""))
        return found if found is not None and found.type != "exception" else None

    def resolve(self, event_id: str) -> tuple[Event, datetime | None] | None:
        """A stored event, or (master, original start) for an occurrence id (either format)."""
        event_id = normalise_id(event_id)
        stored = self.events.get(event_id)
        if stored is not None:
            return stored, None
        parsed = parse_occurrence_id(event_id)
        if parsed is None:
            return None
        master_id, original = parsed
        master = self.events.get(master_id)
        if master is None or master.recurrence is None:
            return None
        if original in master.cancelled_occurrences:
            return None
        if original in master.exceptions:
            exc = self.events.get(master.exceptions[original])
            return (exc, None) if exc is not None else None
        if original not in set(occurrence_starts(master, original + timedelta(seconds=1))):
            return None
        return master, original

    def instances(
        self, ws: datetime, we: datetime, include_masters: bool = False
    ) -> list[Instance]:
        """What calendarView shows for [ws, we): singles, occurrences, exceptions."""
        out: list[Instance] = []
        for event in list(self.events.values()):
            if event.type == "singleInstance":
                if overlaps(event.start, event.end, ws, we):
                    out.append(Instance(event.id, "singleInstance", event, event.start, event.end))
            elif event.type == "seriesMaster":
                found = series_instances(self, event, ws, we)
                out.extend(found)
                if include_masters and found:
                    out.append(Instance(event.id, "seriesMaster", event, event.start, event.end))
        out.sort(key=lambda i: (i.start, i.id))
        return out


def occurrence_starts(master: Event, until: datetime | None) -> list[datetime]:
    assert master.recurrence is not None
    return rec_mod.expand(master.recurrence, master.start, until)


def series_instances(cal: Calendar, master: Event, ws: datetime, we: datetime) -> list[Instance]:
    out: list[Instance] = []
    for original in occurrence_starts(master, we):
        if original in master.cancelled_occurrences or original in master.exceptions:
            continue
        end = original + master.duration
        if overlaps(original, end, ws, we):
            out.append(
                Instance(
                    occurrence_id(master.id, original),
                    "occurrence",
                    master,
                    original,
                    end,
                    original,
                )
            )
    for original, exc_id in master.exceptions.items():
        exc = cal.events.get(exc_id)
        if exc is not None and overlaps(exc.start, exc.end, ws, we):
            out.append(Instance(exc.id, "exception", exc, exc.start, exc.end, original))
    return out
