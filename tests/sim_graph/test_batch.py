"""JSON batching (issue 3 item 7; concepts/json-batching.md; graph-behaviour.md 4.4, 7.8)."""

from __future__ import annotations

from typing import Any

from .conftest import ADELE, ROOM, World, fixture, same_shape, tomorrow_at


def by_id(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in body["responses"]}


async def test_batch_runs_each_request_with_its_own_status(world: World) -> None:
    """json-batching.md: 200 for the batch, per-item status/headers/body (batch-response.json)."""
    meeting = world.meeting(tomorrow_at(9))
    r = await world.graph.post(
        "/$batch",
        json={
            "requests": [
                {"id": "1", "method": "GET", "url": f"/users/{ROOM}/events"},
                {
                    "id": "2",
                    "method": "POST",
                    "url": f"/users/{ADELE}/events",
                    "body": meeting,
                    "headers": {"Content-Type": "application/json"},
                },
                {"id": "3", "method": "GET", "url": "/users/nobody@contoso.com/events"},
                {"id": "4", "method": "POST", "url": f"/users/{ADELE}/events", "body": meeting},
            ]
        },
    )
    assert r.status_code == 200
    items = by_id(r.json())
    assert items["1"]["status"] == 200
    assert items["2"]["status"] == 201
    assert items["3"]["status"] == 404
    assert items["4"]["status"] == 400  # a body needs a Content-Type header
    sample = fixture("batch-response.json")
    assert set(r.json()) == set(sample)
    for item in r.json()["responses"]:
        assert set(item) <= set(sample["responses"][0]) | {"body"}
        assert isinstance(item["headers"], dict)
    assert items["1"]["headers"]["OData-Version"] == "4.0"


async def test_depends_on_failure_gives_424_and_item_429_keeps_retry_after(world: World) -> None:
    """throttling.md "Throttling and batching": item 429 with Retry-After in its headers, the
    batch stays 200; a dependent request gets 424 (synthesized/batch-response-with-429.json)."""
    world.sim.control.inject_fault(
        kind="status", status=429, retry_after="10", mailbox=ROOM, count=1
    )
    r = await world.graph.post(
        "/$batch",
        json={
            "requests": [
                {"id": "1", "method": "GET", "url": f"/users/{ADELE}/events"},
                {"id": "2", "method": "GET", "url": f"/users/{ROOM}/events", "dependsOn": ["1"]},
                {"id": "3", "method": "GET", "url": f"/users/{ROOM}/events", "dependsOn": ["2"]},
            ]
        },
    )
    assert r.status_code == 200
    items = by_id(r.json())
    assert items["2"]["status"] == 429
    assert items["2"]["headers"]["Retry-After"] == "10"
    assert items["3"]["status"] == 424
    sample = fixture("synthesized/batch-response-with-429.json")["responses"][1]
    assert not same_shape(items["2"], sample, subset=True)


async def test_more_than_twenty_or_duplicate_ids_fail_the_whole_batch(world: World) -> None:
    """graph-behaviour.md 4.4 and checklist 7.8 ("<=20 requests; duplicate
    id -> 400"), citing concepts/json-batching.md @028b8e35: at most 20 requests, ``id`` unique
    "or the whole batch fails with 400"; the batch is 400 when malformed (a dependsOn cycle)."""
    reqs = [{"id": str(i), "method": "GET", "url": f"/users/{ROOM}"} for i in range(21)]
    assert (await world.graph.post("/$batch", json={"requests": reqs})).status_code == 400
    dup = [{"id": "1", "method": "GET", "url": f"/users/{ROOM}"}] * 2
    r = await world.graph.post("/$batch", json={"requests": dup})
    assert r.status_code == 400
    assert "duplicate" in r.json()["error"]["message"]
    cycle = [
        {"id": "1", "method": "GET", "url": "/users/x", "dependsOn": ["2"]},
        {"id": "2", "method": "GET", "url": "/users/x", "dependsOn": ["1"]},
    ]
    assert (await world.graph.post("/$batch", json={"requests": cycle})).status_code == 400


async def test_documented_request_sample_parses(world: World) -> None:
    """batch-request.json (directory calls the simulator does not serve come back per item)."""
    r = await world.graph.post("/$batch", json=fixture("batch-request.json"))
    assert r.status_code == 200
    items = by_id(r.json())
    assert items["5"]["status"] == 200  # the users list
    assert items["1"]["status"] == 400  # /me needs a delegated token
    assert {items[i]["status"] for i in "234"} <= {400, 404, 405}


async def test_documented_depends_on_chain_runs_in_order(world: World) -> None:
    """batch-dependson-request.json: 1 -> 2 -> 4 -> 3, fully sequential."""
    body = fixture("batch-dependson-request.json")
    for item in body["requests"]:
        item["url"] = f"/users/{ROOM}"
    r = await world.graph.post("/$batch", json=body)
    assert [x["id"] for x in r.json()["responses"]] == ["1", "2", "4", "3"]
    assert {x["status"] for x in r.json()["responses"]} == {200}


async def test_at_most_four_outlook_requests_run_in_parallel(world: World) -> None:
    """json-batching.md: "the service executes up to 4 requests in parallel": six slow requests
    to one mailbox take two rounds and never trip MailboxConcurrency."""
    import time

    world.sim.control.inject_fault(kind="slow", delay_s=0.25, mailbox=ROOM, count=6)
    reqs = [{"id": str(i), "method": "GET", "url": f"/users/{ROOM}/events"} for i in range(6)]
    t0 = time.perf_counter()
    r = await world.graph.post("/$batch", json={"requests": reqs})
    elapsed = time.perf_counter() - t0
    assert {x["status"] for x in r.json()["responses"]} == {200}
    assert 0.5 <= elapsed < 1.4
