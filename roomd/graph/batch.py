"""JSON batching: up to 20 Graph requests in one ``POST /$batch``, with per-item retries.

Follows concepts/json-batching.md (@028b8e35) and throttling.md "Throttling and batching":

* at most 20 items; ids unique (not case-sensitive) or the whole batch fails with 400;
* an item with a body must carry a ``Content-Type`` header;
* the batch answers 200 when it parses, and each item has its own status, headers and body;
* a throttled item is a 429 with its ``Retry-After`` in the item's headers, and SDKs do not retry
  items, so this module does: the items to retry (429 always; 503/504 when idempotent; 424 items
  whose dependency is retried) are sent again in a new batch after the longest ``Retry-After``;
* Outlook runs up to 4 items of a batch in parallel whatever their mailbox, so a batch holds up to
  4 of each addressed mailbox's slots (and of the overall limit) while in flight.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import stamina

from roomd.graph.errors import GraphError, GraphProtocolError, error_from_parts
from roomd.graph.http import BASE_PREFER, IDEMPOTENT_METHODS, GraphHttp, json_object, mailbox_of
from roomd.observe import GRAPH_RETRIES, GRAPH_THROTTLED

MAX_BATCH = 20


@dataclass(frozen=True)
class BatchItem:
    """One request in a batch; ``url`` is relative to the base URL (``/users/...``)."""

    id: str
    method: str
    url: str
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    depends_on: tuple[str, ...] = ()
    idempotent: bool | None = None
    mailbox: str | None = None

    @property
    def safe_to_retry(self) -> bool:
        if self.idempotent is not None:
            return self.idempotent
        return self.method.upper() in IDEMPOTENT_METHODS

    @property
    def mailbox_key(self) -> str | None:
        return self.mailbox.lower() if self.mailbox else mailbox_of(self.url)

    def wire(self) -> dict[str, Any]:
        headers = dict(self.headers)
        prefer = [p for k, v in self.headers.items() if k.lower() == "prefer" for p in [v] if p]
        headers = {k: v for k, v in headers.items() if k.lower() != "prefer"}
        headers["Prefer"] = ", ".join([*BASE_PREFER, *prefer])
        if self.body is not None and not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = "application/json"
        out: dict[str, Any] = {
            "id": self.id,
            "method": self.method.upper(),
            "url": self.url,
            "headers": headers,
        }
        if self.body is not None:
            out["body"] = self.body
        if self.depends_on:
            out["dependsOn"] = list(self.depends_on)
        return out


@dataclass(frozen=True)
class BatchAnswer:
    """One item's answer: status, headers (lower-case names) and body."""

    id: str
    status: int
    headers: dict[str, str]
    body: Any

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def error(self, method: str = "", url: str = "") -> GraphError:
        """The typed exception this answer stands for (``SyncStateExpired``, ``Throttled``...)."""
        return error_from_parts(self.status, self.headers, self.body, method=method, path=url)


def _answer_from_error(item_id: str, exc: GraphError) -> BatchAnswer:
    """An item's answer standing for a failure of the whole request that carried it."""
    body = {"error": {"code": exc.code or "BatchFailed", "message": exc.message}}
    return BatchAnswer(item_id, exc.status or 502, {}, body)


class _ItemsToRetry(Exception):
    def __init__(self, retry_after: float | None) -> None:
        super().__init__(f"batch items to retry (Retry-After {retry_after})")
        self.retry_after = retry_after


def _validate(items: Sequence[BatchItem]) -> None:
    if not items:
        raise ValueError("batch: no requests")
    if len(items) > MAX_BATCH:
        raise ValueError(f"batch: {len(items)} requests, Graph takes at most {MAX_BATCH}")
    seen: set[str] = set()
    for item in items:
        key = item.id.lower()
        if not item.id or key in seen:
            raise ValueError(f"batch: request id {item.id!r} is empty or not unique")
        seen.add(key)
        if not item.url.startswith("/"):
            raise ValueError(
                f"batch: request {item.id!r} url {item.url!r} is not relative ('/...')"
            )
    for item in items:
        for dep in item.depends_on:
            if dep.lower() not in seen:
                raise ValueError(f"batch: request {item.id!r} dependsOn unknown id {dep!r}")


async def send_batch(http: GraphHttp, items: Sequence[BatchItem]) -> dict[str, BatchAnswer]:
    """One ``POST /$batch``; answers keyed by item id (as sent). No item-level retries."""
    _validate(items)
    per_mailbox = Counter(k for k in (i.mailbox_key for i in items) if k)
    response = await http.request(
        "POST",
        "/$batch",
        mailbox=None,
        json={"requests": [i.wire() for i in items]},
        headers={"Content-Type": "application/json"},
        idempotent=all(i.safe_to_retry for i in items),
        slots={m: min(n, 4) for m, n in per_mailbox.items()},
        total_slots=min(len(items), 4),
        write=any(i.method.upper() != "GET" for i in items),  # a batch of reads is a read
    )
    body = json_object(response, "POST", "/$batch")
    by_id = {i.id.lower(): i.id for i in items}
    answers: dict[str, BatchAnswer] = {}
    for raw in body.get("responses") or []:
        if not isinstance(raw, dict) or str(raw.get("id", "")).lower() not in by_id:
            continue
        item_id = by_id[str(raw["id"]).lower()]
        headers = raw.get("headers") if isinstance(raw.get("headers"), dict) else {}
        answer = BatchAnswer(
            id=item_id,
            status=int(raw.get("status", 0)),
            headers={str(k).lower(): str(v) for k, v in (headers or {}).items()},
            body=raw.get("body"),
        )
        if answer.status == 429:
            GRAPH_THROTTLED.inc()
        answers[item_id] = answer
    missing = [i.id for i in items if i.id not in answers]
    if missing:
        raise GraphProtocolError(
            response.status_code if response is not None else None,
            "MissingBatchResponse",
            f"$batch answered without responses for ids {missing}",
        )
    return answers


async def run_batch(
    http: GraphHttp, items: Sequence[BatchItem], *, max_item_attempts: int = 4
) -> dict[str, BatchAnswer]:
    """Send a batch, re-sending throttled/unavailable items until they answer or attempts run out.

    Every item gets an answer: its last one if it never got through.
    """
    _validate(items)
    pending: dict[str, BatchItem] = {i.id: i for i in items}
    final: dict[str, BatchAnswer] = {}
    last: dict[str, BatchAnswer] = {}

    def hook(exc: Exception) -> bool | float:
        if not isinstance(exc, _ItemsToRetry):
            return False
        if exc.retry_after is None:
            return True
        if exc.retry_after > http.config.max_retry_after:
            return False
        return exc.retry_after

    try:
        async for attempt in stamina.retry_context(
            on=hook,
            attempts=max_item_attempts,
            timeout=http.config.retry_timeout,
            wait_initial=http.config.retry_wait_initial,
            wait_max=http.config.retry_wait_max,
            wait_jitter=http.config.retry_wait_jitter,
        ):
            with attempt:
                if attempt.num > 1:
                    GRAPH_RETRIES.labels(reason="batch_item").inc(len(pending))
                try:
                    answers = await send_batch(http, list(pending.values()))
                except GraphError as exc:
                    if not final:
                        raise  # nothing answered yet: the caller sees the batch's own error
                    # a resend failed as a whole: keep the answers already in hand (items Graph
                    # already ran must not look failed) and report this error for the rest
                    for item_id in pending:
                        final[item_id] = _answer_from_error(item_id, exc)
                    return final
                retry = {
                    item_id
                    for item_id, answer in answers.items()
                    if answer.status == 429
                    or (answer.status in (503, 504) and pending[item_id].safe_to_retry)
                }
                grew = True
                while grew:  # a 424 whose dependency is being retried is retried with it
                    grew = False
                    for item_id, answer in answers.items():
                        deps = {d.lower() for d in pending[item_id].depends_on}
                        if (
                            answer.status == 424
                            and item_id not in retry
                            and deps & {r.lower() for r in retry}
                        ):
                            retry.add(item_id)
                            grew = True
                for item_id, answer in answers.items():
                    if item_id not in retry:
                        final[item_id] = answer
                    elif answer.status == 429:
                        # an item-level 429 throttles its mailbox as a request-level one does:
                        # single requests to it wait out the Retry-After too
                        key = pending[item_id].mailbox_key
                        wait = answer.error().retry_after
                        if key is not None and wait is not None:
                            http.pause([key], wait)
                last = {item_id: answers[item_id] for item_id in retry}
                kept = {r.lower() for r in retry}
                pending = {
                    item_id: replace(
                        pending[item_id],
                        depends_on=tuple(
                            d for d in pending[item_id].depends_on if d.lower() in kept
                        ),
                    )
                    for item_id in retry
                }
                if pending:
                    waits = [a.error().retry_after for a in last.values() if a.status != 424]
                    known = [w for w in waits if w is not None]
                    raise _ItemsToRetry(max(known) if known else None)
    except _ItemsToRetry:
        final.update(last)
    return final
