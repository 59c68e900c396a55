"""JSON batching: ``POST /v1.0/$batch`` (contrib concepts/json-batching.md).

At most 20 requests; ids unique (else the whole batch is 400); ``dependsOn`` sequences requests
and a request whose dependency failed gets 424; each response carries its own status, headers and
body, and may come back in any order; the batch itself is 200 when it parses. Outlook requests
run at most 4 in parallel (json-batching.md "by default, the service executes up to 4 requests in
parallel"). Throttling is per item: a 429 item carries ``Retry-After`` in its own headers
(concepts/throttling.md "Throttling and batching").
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from roomd.sim.graph.wire import JSON, GraphError, GraphRequest, GraphResponse, parse_query

MAX_REQUESTS = 20
PARALLEL = 4

Execute = Callable[[GraphRequest], Awaitable[GraphResponse]]


def _bad(message: str) -> GraphError:
    return GraphError(400, "BadRequest", message)


def parse_batch(body: Any) -> list[JSON]:
    if not isinstance(body, dict) or not isinstance(body.get("requests"), list):
        raise _bad("The batch body must be a JSON object with a 'requests' array.")
    requests: list[JSON] = body["requests"]
    if not requests:
        raise _bad("The batch contains no requests.")
    if len(requests) > MAX_REQUESTS:
        raise _bad(
            f"The batch contains {len(requests)} requests; a batch allows at most {MAX_REQUESTS}."
        )
    ids: set[str] = set()
    for i, item in enumerate(requests):
        if not isinstance(item, dict):
            raise _bad(f"requests[{i}] must be an object.")
        rid = item.get("id")
        if not isinstance(rid, str) or not rid:
            raise _bad(f"requests[{i}].id must be a non-empty string.")
        if rid in ids:
            raise _bad(f"Batch request contains duplicate request id '{rid}'.")
        ids.add(rid)
        if not isinstance(item.get("method"), str) or not isinstance(item.get("url"), str):
            raise _bad(f"requests[{i}] needs 'method' and 'url'.")
    for i, item in enumerate(requests):
        deps = item.get("dependsOn") or []
        if not isinstance(deps, list) or any(d not in ids for d in deps):
            raise _bad(f"requests[{i}].dependsOn names an id that is not in the batch.")
    graph = {item["id"]: list(item.get("dependsOn") or []) for item in requests}
    state: dict[str, int] = {}

    def visit(rid: str) -> None:
        if state.get(rid) == 2:
            return
        if state.get(rid) == 1:
            raise _bad(f"The dependsOn chain through request '{rid}' is circular.")
        state[rid] = 1
        for dep in graph[rid]:
            visit(dep)
        state[rid] = 2

    for rid in graph:
        visit(rid)
    return requests


def item_request(item: JSON, outer: GraphRequest) -> GraphRequest | GraphResponse:
    url = item["url"]
    if url.startswith(("https://", "http://")):
        return _item_error(400, "BadRequest", "The url of a batch request must be relative.")
    parts = urlsplit(url if url.startswith("/") else "/" + url)
    path = parts.path
    if path.lower().startswith("/v1.0/"):
        path = path[5:]
    headers = {str(k).lower(): str(v) for k, v in (item.get("headers") or {}).items()}
    if "body" in item and item["body"] is not None and "content-type" not in headers:
        return _item_error(
            400, "BadRequest", "Content-Type header must be specified for a request with a body."
        )
    return GraphRequest(
        method=item["method"].upper(),
        path=path,
        query=parse_query(parts.query),
        raw_query=parts.query,
        headers=headers,
        body=item.get("body"),
        app_id=outer.app_id,
        roles=outer.roles,
        in_batch=True,
    )


def _item_error(status: int, code: str, message: str) -> GraphResponse:
    return GraphResponse(status, {"error": {"code": code, "message": message}})


async def run_batch(outer: GraphRequest, execute: Execute) -> JSON:
    requests = parse_batch(outer.body)
    results: dict[str, GraphResponse] = {}
    order: list[str] = []
    done: dict[str, asyncio.Event] = {item["id"]: asyncio.Event() for item in requests}
    gate = asyncio.Semaphore(PARALLEL)

    async def one(item: JSON) -> None:
        rid = item["id"]
        try:
            for dep in item.get("dependsOn") or []:
                await done[dep].wait()
            failed = [d for d in item.get("dependsOn") or [] if results[d].status >= 400]
            if failed:
                results[rid] = _item_error(
                    424,
                    "FailedDependency",
                    f"Request {rid} depends on request {failed[0]}, which failed.",
                )
                return
            built = item_request(item, outer)
            if isinstance(built, GraphResponse):
                results[rid] = built
                return
            async with gate:
                results[rid] = await execute(built)
        finally:
            order.append(rid)
            done[rid].set()

    await asyncio.gather(*(one(item) for item in requests))
    responses = []
    for rid in order:
        res = results[rid]
        entry: JSON = {"id": rid, "status": res.status, "headers": dict(res.headers)}
        if res.body is not None:
            entry["headers"].setdefault("Cache-Control", "no-cache")
            entry["headers"].setdefault("OData-Version", "4.0")
            entry["headers"].setdefault("Content-Type", "application/json")
            entry["body"] = res.body
            inner = (
                res.body.get("error", {}).get("innerError") if isinstance(res.body, dict) else None
            )
            if isinstance(inner, dict) and "request-id" in inner:
                # each item's innerError carries both ids (json-batching.md, batch-response.json)
                inner.setdefault("client-request-id", inner["request-id"])
        responses.append(entry)
    return {"responses": responses}
