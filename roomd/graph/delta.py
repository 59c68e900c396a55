"""One calendarView delta round per room mailbox, and many idle rooms' rounds in ``$batch``.

The protocol (event-delta.md; delta-query-events.md; delta-query-overview.md;
graph-behaviour.md 1.1-1.7):

* The initial request carries the window (``startDateTime``/``endDateTime``, UTC with an explicit
  ``Z``); Graph freezes it into the tokens, so later requests GET ``@odata.nextLink`` /
  ``@odata.deltaLink`` verbatim and never add query options (``$select``, ``$expand``, ``$filter``
  are not supported on delta).
* A page with ``@odata.nextLink`` means more pages, even when ``value`` is empty; the page with
  ``@odata.deltaLink`` ends the round; store that whole URL for the next round.
* Items are handed back raw: ``@removed`` entries, bare ``occurrence`` items and duplicates
  included. Making sense of them is the sync engine's job.
* An expired token, or a stale nextLink, answers 410 ``SyncStateNotFound`` (or ``resyncRequired``):
  :class:`~roomd.graph.errors.SyncStateExpired` is raised and the caller runs a fresh initial round.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from roomd.graph.batch import BatchItem, run_batch
from roomd.graph.errors import GraphError, GraphProtocolError
from roomd.graph.http import GraphHttp, user_path

MAX_PAGES = 10_000


@dataclass(frozen=True)
class DeltaPage:
    """One page: its items, and either the link to the next page or the round's delta link."""

    changes: list[dict[str, Any]]
    next_link: str | None
    delta_link: str | None


@dataclass(frozen=True)
class DeltaResult:
    """A finished round: every item seen (raw, in order) and the delta link for the next round."""

    changes: list[dict[str, Any]]
    delta_link: str
    pages: int = field(default=1)


def _utc(name: str, value: datetime) -> str:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name}: {value.isoformat()} has no time zone; pass an aware datetime")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _page_size_prefer(page_size: int | None) -> tuple[str, ...]:
    if page_size is None:
        return ()
    if page_size < 1:
        raise ValueError(f"page_size: {page_size} must be at least 1")
    return (f"odata.maxpagesize={page_size}",)


def parse_page(body: Mapping[str, Any], where: str) -> DeltaPage:
    """Split a delta response body into items and its link; a page without a link is an error."""
    value = body.get("value")
    if not isinstance(value, list):
        raise GraphProtocolError(None, "NoValue", f"{where}: delta page has no 'value' list")
    next_link = body.get("@odata.nextLink")
    delta_link = body.get("@odata.deltaLink")
    if not isinstance(next_link, str) and not isinstance(delta_link, str):
        raise GraphProtocolError(
            None, "NoDeltaLink", f"{where}: delta page has neither a nextLink nor a deltaLink"
        )
    return DeltaPage(
        changes=[v for v in value if isinstance(v, dict)],
        next_link=next_link if isinstance(next_link, str) else None,
        delta_link=delta_link if isinstance(delta_link, str) and not next_link else None,
    )


class DeltaReader:
    """calendarView delta for room mailboxes."""

    def __init__(self, http: GraphHttp) -> None:
        self.http = http

    async def pages(
        self,
        mailbox: str,
        *,
        window_start: datetime,
        window_end: datetime,
        delta_link: str | None,
        page_size: int | None = 50,
    ) -> AsyncGenerator[DeltaPage, None]:
        """Yield the round page by page, for a caller that persists each page's link as it goes
        (graph-behaviour.md 1.7: continue from the latest link, never replay an old one)."""
        prefer = _page_size_prefer(page_size)
        if delta_link is None:
            start, end = _utc("window_start", window_start), _utc("window_end", window_end)
            if window_end <= window_start:
                raise ValueError(f"window_end: {end} is not after window_start {start}")
            url = user_path(mailbox, "calendarView", "delta")
            params: dict[str, str] | None = {"startDateTime": start, "endDateTime": end}
        else:
            url, params = delta_link, None
        async for page in self._walk(mailbox, url, params, prefer):
            yield page

    async def _walk(
        self,
        mailbox: str,
        url: str,
        params: dict[str, str] | None,
        prefer: tuple[str, ...],
    ) -> AsyncGenerator[DeltaPage, None]:
        for _ in range(MAX_PAGES):
            body = await self.http.get_json(url, mailbox=mailbox, params=params, prefer=prefer)
            page = parse_page(body, f"delta of {mailbox}")
            yield page
            if page.next_link is None:
                return
            url, params = page.next_link, None
        raise GraphProtocolError(
            None, "TooManyPages", f"delta of {mailbox}: over {MAX_PAGES} pages"
        )

    async def round(
        self,
        mailbox: str,
        *,
        window_start: datetime,
        window_end: datetime,
        delta_link: str | None,
        page_size: int | None = 50,
    ) -> DeltaResult:
        """Run one whole round: from ``delta_link`` (or an initial request for the window) to the
        next delta link. Raises ``SyncStateExpired`` when the link has expired."""
        changes: list[dict[str, Any]] = []
        pages = 0
        async for page in self.pages(
            mailbox,
            window_start=window_start,
            window_end=window_end,
            delta_link=delta_link,
            page_size=page_size,
        ):
            pages += 1
            changes.extend(page.changes)
            if page.delta_link is not None:
                return DeltaResult(changes=changes, delta_link=page.delta_link, pages=pages)
        raise GraphProtocolError(None, "NoDeltaLink", f"delta of {mailbox} ended without a link")

    async def rounds(
        self,
        delta_links: Mapping[str, str],
        *,
        page_size: int | None = 50,
        max_item_attempts: int = 4,
    ) -> dict[str, DeltaResult | GraphError]:
        """The next round of many rooms at once, 20 delta links per ``$batch`` request.

        Idle rooms answer with one short page each, so one batch replaces up to 20 round trips.
        A room whose answer has a nextLink (it has many changes) is finished with ordinary paged
        GETs. Each room gets its result or its error (``SyncStateExpired`` -> re-baseline that
        room); a throttled item is retried after its own ``Retry-After`` (throttling.md,
        "Throttling and batching": "SDKs do not retry items inside a batch").
        """
        if not delta_links:
            return {}
        prefer = _page_size_prefer(page_size)
        rooms = list(delta_links.items())
        chunks = [rooms[i : i + 20] for i in range(0, len(rooms), 20)]
        results: dict[str, DeltaResult | GraphError] = {}

        async def one_chunk(given: list[tuple[str, str]]) -> None:
            items: list[BatchItem] = []
            chunk: list[tuple[str, str]] = []
            for mailbox, link in given:
                try:  # one unusable stored link fails its own room, not the whole chunk
                    url = self.http.relative(link)
                except GraphError as exc:
                    results[mailbox] = exc
                    continue
                chunk.append((mailbox, link))
                items.append(
                    BatchItem(
                        id=str(len(items) + 1),
                        method="GET",
                        url=url,
                        headers={"Prefer": ", ".join(prefer)} if prefer else {},
                        mailbox=mailbox,
                    )
                )
            if not items:
                return
            try:
                answers = await run_batch(self.http, items, max_item_attempts=max_item_attempts)
            except GraphError as exc:  # the batch itself failed: every room in it did
                for mailbox, _link in chunk:
                    results[mailbox] = exc
                return
            follow: list[tuple[str, DeltaPage]] = []
            for item, (mailbox, _link) in zip(items, chunk, strict=True):
                answer = answers[item.id]
                if not answer.ok:
                    results[mailbox] = answer.error("GET", item.url)
                    continue
                try:
                    body = answer.body if isinstance(answer.body, dict) else {}
                    page = parse_page(body, f"delta of {mailbox}")
                except GraphError as exc:
                    results[mailbox] = exc
                    continue
                if page.delta_link is not None:
                    results[mailbox] = DeltaResult(changes=page.changes, delta_link=page.delta_link)
                else:
                    follow.append((mailbox, page))
            await asyncio.gather(*(self._finish(m, p, page_size, results) for m, p in follow))

        await asyncio.gather(*(one_chunk(c) for c in chunks))
        return results

    async def _finish(
        self,
        mailbox: str,
        first: DeltaPage,
        page_size: int | None,
        results: dict[str, DeltaResult | GraphError],
    ) -> None:
        assert first.next_link is not None
        changes = list(first.changes)
        pages = 1
        try:
            async for page in self._walk(
                mailbox, first.next_link, None, _page_size_prefer(page_size)
            ):
                pages += 1
                changes.extend(page.changes)
                if page.delta_link is not None:
                    results[mailbox] = DeltaResult(changes, page.delta_link, pages)
                    return
        except GraphError as exc:
            results[mailbox] = exc
