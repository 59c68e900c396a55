"""``$batch``: per-item answers become per-item typed errors; malformed batches are refused
before anything is sent (json-batching.md: at most 20 requests, unique ids)."""

from __future__ import annotations

import pytest

from roomd.graph import GraphClient, NotFound
from roomd.graph.batch import BatchItem, run_batch

from .conftest import ORGANIZER, ROOM, event_body, tomorrow_at


async def test_items_answer_independently(graph: GraphClient) -> None:
    created = await graph.events.create(
        ORGANIZER, event_body("Batch me", tomorrow_at(9), room=None), idempotency_key="b-1"
    )
    items = [
        BatchItem(id="1", method="GET", url=f"/users/{ORGANIZER}/events/{created['id']}"),
        BatchItem(id="2", method="GET", url=f"/users/{ORGANIZER}/events/AAMkDoesNotExist"),
        BatchItem(id="3", method="GET", url=f"/users/{ROOM}"),
    ]
    answers = await run_batch(graph.http, items)
    assert answers["1"].ok and answers["1"].body["subject"] == "Batch me"
    assert not answers["2"].ok and isinstance(answers["2"].error(), NotFound)
    assert answers["3"].ok and answers["3"].body["mail"].lower() == ROOM


async def test_write_items_carry_a_content_type(graph: GraphClient) -> None:
    created = await graph.events.create(
        ORGANIZER, event_body("Rename me", tomorrow_at(10), room=None), idempotency_key="b-2"
    )
    url = f"/users/{ORGANIZER}/events/{created['id']}"
    answers = await run_batch(
        graph.http,
        [
            BatchItem(id="a", method="PATCH", url=url, body={"subject": "Renamed"}),
            BatchItem(id="b", method="GET", url=url, depends_on=("a",)),
        ],
    )
    assert answers["a"].status == 200
    assert answers["b"].body["subject"] == "Renamed"


@pytest.mark.parametrize(
    ("items", "problem"),
    [
        ([BatchItem(id=str(i), method="GET", url="/users/x") for i in range(21)], "at most 20"),
        (
            [BatchItem(id="A", method="GET", url="/users/x"), BatchItem("a", "GET", "/users/y")],
            "not unique",
        ),
        ([BatchItem(id="1", method="GET", url="https://elsewhere/users/x")], "not relative"),
        ([BatchItem(id="1", method="GET", url="/users/x", depends_on=("9",))], "unknown id"),
    ],
)
async def test_malformed_batches_are_refused(
    graph: GraphClient, items: list[BatchItem], problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        await run_batch(graph.http, items)
