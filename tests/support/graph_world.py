"""The Graph side of a test: the simulator, clients that reach it, the demo tenant's people and
Microsoft's samples to compare answers with.

Shared by roomd's Graph client tests (tests/graph), which drive a real ``GraphClient``, and the
simulator's own tests (tests/sim_graph), which speak raw HTTP through ``World``. Their conftests
only turn these into fixtures.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from roomd.graph import GraphClientConfig
from roomd.sim.graph import GraphSimulator
from roomd.sim.tls import LocalCA

# The demo tenant (roomd.sim.tenant.default_tenant())
ROOM = "room-4a@contoso.com"
ROOM_B = "room-4b@contoso.com"
BOARDROOM = "boardroom@contoso.com"
HARBOUR = "harbour@contoso.com"
ADELE = "adelev@contoso.com"
ALEX = "alexw@contoso.com"

# What roomd sends on every request (graph-behaviour.md 1.1, 2.2)
PREFER = 'outlook.timezone="UTC", IdType="ImmutableId"'

# Microsoft's samples, copied into the repository (tests/fixtures/README.md)
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "graph"


def fixture(name: str) -> Any:
    """A sample by its path under tests/fixtures/graph, e.g. ``synthesized/x.json``."""
    return json.loads((FIXTURES / name).read_text())


# Times


def tomorrow_at(hour: int, minute: int = 0, days: int = 1) -> datetime:
    """UTC ``hour:minute`` on the day ``days`` after today."""
    base = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return base + timedelta(days=days, hours=hour, minutes=minute)


def window() -> tuple[datetime, datetime]:
    """A delta window around now: yesterday to a month ahead."""
    now = datetime.now(UTC).replace(microsecond=0)
    return now - timedelta(days=1), now + timedelta(days=30)


def dtz(when: datetime, zone: str = "UTC") -> dict[str, str]:
    """Graph's ``dateTimeTimeZone`` for ``when``."""
    return {"dateTime": when.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": zone}


def graph_time(value: dict[str, str]) -> datetime:
    """A UTC ``dateTimeTimeZone`` as an aware ``datetime`` (Graph writes 7 fractional digits)."""
    return datetime.fromisoformat(value["dateTime"][:26]).replace(tzinfo=UTC)


# The simulator and its clients


@asynccontextmanager
async def running_graph_sim(
    ca: LocalCA | None = None, **switches: Any
) -> AsyncIterator[GraphSimulator]:
    """A started simulator (its own CA unless ``ca`` is given), stopped on exit; ``switches``
    are set before it starts (docs/graph-simulator.md, "Switches")."""
    simulator = GraphSimulator(ca=ca)
    if switches:
        simulator.control.set_switches(**switches)
    await simulator.start()
    try:
        yield simulator
    finally:
        await simulator.stop()


def config_for(sim: GraphSimulator, ca_bundle: Path, **overrides: Any) -> GraphClientConfig:
    """roomd's client configuration for ``sim``: fast retries for tests, everything else as in
    production."""
    values: dict[str, Any] = {
        "tenant_id": sim.tenant_id,
        "client_id": sim.client_id,
        "client_secret": sim.client_secret,
        "authority_host": sim.authority_host,
        "base_url": sim.base_url,
        "ca_bundle": ca_bundle,
        "retry_wait_initial": 0.01,
        "retry_wait_max": 0.05,
        "retry_wait_jitter": 0.01,
        "retry_timeout": 20.0,
        "max_concurrent": 16,
    }
    values.update(overrides)
    return GraphClientConfig(**values)


@asynccontextmanager
async def app_client(sim: GraphSimulator, ca: LocalCA) -> AsyncIterator[httpx.AsyncClient]:
    """httpx against ``sim``'s Graph API with the default app's token and roomd's ``Prefer``."""
    token = sim.control.token()
    async with httpx.AsyncClient(
        base_url=sim.base_url,
        verify=ca.client_context(),
        headers={"Authorization": f"Bearer {token}", "Prefer": PREFER},
        timeout=10,
    ) as client:
        yield client


class World:
    """The simulator plus a client acting with the default app's token, in users' terms."""

    def __init__(self, sim: GraphSimulator, client: httpx.AsyncClient) -> None:
        self.sim = sim
        self.graph = client

    def meeting(
        self,
        start: datetime,
        end: datetime | None = None,
        *,
        subject: str = "Quarterly planning",
        room: str | None = ROOM,
        attendees: tuple[str, ...] = (),
        **extra: Any,
    ) -> dict[str, Any]:
        """The documented recipe for booking a room (user-post-events.md)."""
        body: dict[str, Any] = {
            "subject": subject,
            "body": {"contentType": "HTML", "content": "Agenda: numbers"},
            "start": dtz(start),
            "end": dtz(end or start + timedelta(hours=1)),
            "attendees": [],
        }
        if room:
            body["location"] = {"displayName": "Room 4A", "locationEmailAddress": room}
            body["attendees"].append({"emailAddress": {"address": room}, "type": "resource"})
        for who in attendees:
            body["attendees"].append({"emailAddress": {"address": who}, "type": "required"})
        body.update(extra)
        return body

    async def book(
        self, organizer: str = ADELE, start: datetime | None = None, **kw: Any
    ) -> dict[str, Any]:
        body = self.meeting(start or tomorrow_at(9), **kw)
        r = await self.graph.post(f"/users/{organizer}/events", json=body)
        assert r.status_code == 201, r.text
        self.sim.control.run_rba()
        return dict(r.json())

    async def get(self, mailbox: str, event_id: str, **params: str) -> httpx.Response:
        return await self.graph.get(f"/users/{mailbox}/events/{event_id}", params=params)

    async def events(self, mailbox: str, **params: str) -> list[dict[str, Any]]:
        r = await self.graph.get(f"/users/{mailbox}/events", params={"$top": "100", **params})
        assert r.status_code == 200, r.text
        return list(r.json()["value"])

    async def only_event(self, mailbox: str) -> dict[str, Any]:
        found = await self.events(mailbox)
        assert len(found) == 1, found
        return found[0]

    async def view(
        self, mailbox: str, start: datetime, end: datetime, **params: str
    ) -> list[dict[str, Any]]:
        r = await self.graph.get(
            f"/users/{mailbox}/calendarView",
            params={
                "startDateTime": start.isoformat(),
                "endDateTime": end.isoformat(),
                "$top": "500",
                **params,
            },
        )
        assert r.status_code == 200, r.text
        return list(r.json()["value"])

    async def delta_round(
        self, url: str, *, page_size: int | None = None
    ) -> tuple[list[dict[str, Any]], str, int]:
        """Follow nextLinks to the deltaLink: (items, deltaLink, pages)."""
        items: list[dict[str, Any]] = []
        pages = 0
        headers = {"Prefer": f"odata.maxpagesize={page_size}"} if page_size else {}
        while True:
            r = await self.graph.get(url, headers=headers)
            assert r.status_code == 200, r.text
            pages += 1
            body = r.json()
            items.extend(body["value"])
            if "@odata.deltaLink" in body:
                return items, body["@odata.deltaLink"], pages
            url = body["@odata.nextLink"]

    def delta_url(self, mailbox: str, start: datetime, end: datetime) -> str:
        return str(
            httpx.URL(
                f"{self.sim.base_url}/users/{mailbox}/calendarView/delta",
                params={"startDateTime": start.isoformat(), "endDateTime": end.isoformat()},
            )
        )


# Answers against Microsoft's samples


def _kind_score(actual: Any, candidate: Any) -> int:
    """How well a sample element matches an answer element's kind: an ``@removed`` stub, an
    event ``type`` (occurrence/exception/...), a batch item's ``status`` (exact, then class)."""
    if not isinstance(actual, dict) or not isinstance(candidate, dict):
        return 0
    score = 0
    if ("@removed" in actual) == ("@removed" in candidate):
        score += 8
    for key in ("type", "lifecycleEvent", "changeType"):
        if key in actual and actual.get(key) == candidate.get(key):
            score += 4
    a_status, c_status = actual.get("status"), candidate.get("status")
    if isinstance(a_status, int) and isinstance(c_status, int):
        if a_status == c_status:
            score += 4
        elif (a_status >= 400) == (c_status >= 400):
            score += 2
    return score


def _shared_keys(actual: Any, candidate: Any) -> int:
    """Tie-break between elements of one kind: keys in common, at the top and in ``body``."""
    if not isinstance(actual, dict) or not isinstance(candidate, dict):
        return 0
    shared = len(set(actual) & set(candidate))
    a_body, c_body = actual.get("body"), candidate.get("body")
    if isinstance(a_body, dict) and isinstance(c_body, dict):
        shared += len(set(a_body) & set(c_body))
    return shared


def same_kind(actual: Any, samples: list[Any]) -> tuple[int, Any]:
    """The sample element (index, value) of the same kind as ``actual``; the first on a tie."""
    best = max(
        range(len(samples)),
        key=lambda i: (
            _kind_score(actual, samples[i]),
            _shared_keys(actual, samples[i]),
            -i,
        ),
    )
    return best, samples[best]


# Properties the v1.0 event resource documents (contrib: resources/event.md, "Properties" table
# and JSON representation) that no sample here shows, with the event types that carry them and
# their JSON type. ``originalStart`` (DateTimeOffset: a string) "is not returned for events that
# are single instances"; every sample with the full property set is of a single instance or a
# series master, and the occurrences of the others are ``$select``ed without it
# (event-instances-response.json) or bare (graph-behaviour.md 1.4), so an occurrence or
# exception carries it where its sample does not. Any other key a sample lacks is still a
# difference, and so is originalStart on any other type of event.
DOCUMENTED_NOT_SAMPLED: dict[str, tuple[frozenset[str], type]] = {
    "originalStart": (frozenset({"occurrence", "exception"}), str),
}


def _documented_not_sampled(actual: dict[str, Any], extra: set[str], path: str) -> list[str]:
    """Take from ``extra`` the ``DOCUMENTED_NOT_SAMPLED`` keys that ``actual``'s event type
    carries; a wrong JSON type for one is still a difference."""
    problems: list[str] = []
    for key in sorted(extra & set(DOCUMENTED_NOT_SAMPLED)):
        kinds, json_type = DOCUMENTED_NOT_SAMPLED[key]
        if actual.get("type") not in kinds:
            continue
        extra.discard(key)
        if not isinstance(actual[key], json_type):
            problems.append(
                f"{path}.{key}: expected {json_type.__name__} (resources/event.md), "
                f"got {type(actual[key]).__name__}"
            )
    return problems


def same_shape(actual: Any, expected: Any, path: str = "$", *, subset: bool = False) -> list[str]:
    """Differences in keys and JSON types between a simulator answer and a documented sample.

    ``subset``: the sample is marked truncated by Microsoft, so only its keys must be present.
    Every element of an array is compared, each with the sample's element of the same kind
    (``same_kind``). Values may differ; ``null`` in the sample stands for a nullable property
    (anything matches it), but the answer may be ``null`` only where the sample is. An
    occurrence or exception may carry ``originalStart`` where its sample does not
    (``DOCUMENTED_NOT_SAMPLED``).
    """
    problems: list[str] = []
    if expected is None:
        return problems
    if actual is None:
        return [f"{path}: null where the sample has {type(expected).__name__}"]
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{path}: expected object, got {type(actual).__name__}"]
        missing = set(expected) - set(actual)
        # innerError "often" carries client-request-id (concepts/errors.md; graph-behaviour.md 4.3)
        extra = set() if subset else set(actual) - set(expected) - {"client-request-id"}
        problems += _documented_not_sampled(actual, extra, path)
        problems += [f"{path}.{k}: missing" for k in sorted(missing)]
        problems += [f"{path}.{k}: not in the sample" for k in sorted(extra)]
        for k in sorted(set(expected) & set(actual)):
            problems += same_shape(actual[k], expected[k], f"{path}.{k}", subset=subset)
        return problems
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return [f"{path}: expected array, got {type(actual).__name__}"]
        if expected:
            for i, item in enumerate(actual):
                j, sample = same_kind(item, expected)
                problems += same_shape(item, sample, f"{path}[{i}~{j}]", subset=subset)
        return problems
    kinds = {bool: "bool", int: "number", float: "number", str: "string"}
    if kinds.get(type(expected)) != kinds.get(type(actual)):
        problems.append(f"{path}: expected {type(expected).__name__}, got {type(actual).__name__}")
    return problems
