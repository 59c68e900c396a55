"""List endpoints: filters, ``$limit`` and cursor paging, and the OfficeRnD list envelope.

OfficeRnD's "Querying data" page (developer.officernd.com/docs/building-queries): v2 lists page with
``$limit`` (default and maximum 50; "any value above 50 will be capped at 50", so we clamp rather
than refuse) and opaque ``$cursorNext``/``$cursorPrev`` tokens, in the envelope
``{results, cursorNext, cursorPrev, rangeStart, rangeEnd}``.

Our cursors are keyset positions over the sort order (``modifiedAt``, then ``_id``), not offsets:
a record changed while a client pages gets a newer ``modifiedAt`` and moves behind the cursor, so
it is listed again later in the same walk instead of being skipped. A walk may therefore meet a
record twice (old and new version); it never misses one.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from roomd.sim.hybrid.errors import ApiError, bad_request

DEFAULT_LIMIT = 50
MAX_LIMIT = 50
PAGING_PARAMS = {"$limit", "$cursorNext", "$cursorPrev"}

T = TypeVar("T")
Key = tuple[str, str]


@dataclass(frozen=True)
class Page:
    results: list[dict[str, Any]]
    cursor_next: str | None
    cursor_prev: str | None
    range_start: int
    range_end: int

    def to_json(self) -> dict[str, Any]:
        return {
            "results": self.results,
            "cursorNext": self.cursor_next,
            "cursorPrev": self.cursor_prev,
            "rangeStart": self.range_start,
            "rangeEnd": self.range_end,
        }


def parse_limit(query: Mapping[str, str]) -> int:
    raw = query.get("$limit")
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    try:
        limit = int(raw)
    except ValueError:
        raise bad_request(f"$limit: expected a whole number from 1 to 50, got {raw!r}") from None
    if limit < 1:
        raise bad_request(f"$limit: expected a whole number from 1 to 50, got {raw!r}")
    return min(limit, MAX_LIMIT)


def encode_cursor(key: Key) -> str:
    raw = json.dumps({"m": key[0], "i": key[1]}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str, where: str) -> Key:
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        key = (str(data["m"]), str(data["i"]))
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise ApiError(400, "invalid_cursor", f"{where}: not a cursor this server issued") from None
    return key


def paginate(
    items: Sequence[T],
    key: Callable[[T], Key],
    render: Callable[[T], dict[str, Any]],
    query: Mapping[str, str],
) -> Page:
    """One page of ``items`` (already filtered) in key order, positioned by the query's cursor.

    Each item's key is computed once and the cursor found by bisection: a client walking a
    listing of tens of thousands of bookings asks for it page by page (the rig's 1,000-room
    benchmark), and this is the simulator's cost per page, not the service's."""
    limit = parse_limit(query)
    decorated = sorted(((key(item), i) for i, item in enumerate(items)), key=_first)
    keys = [k for k, _ in decorated]
    after, before = query.get("$cursorNext"), query.get("$cursorPrev")
    if after and before:
        raise bad_request("$cursorNext and $cursorPrev: send at most one of them")
    if after:
        first = bisect.bisect_right(keys, decode_cursor(after, "$cursorNext"))
        chosen = range(first, min(first + limit, len(keys)))
    elif before:
        stop = bisect.bisect_left(keys, decode_cursor(before, "$cursorPrev"))
        chosen = range(max(0, stop - limit), stop)
    else:
        chosen = range(0, min(limit, len(keys)))
    if len(chosen) == 0:
        return Page([], None, None, 0, 0)
    lo, hi = chosen.start, chosen.stop
    return Page(
        results=[render(items[decorated[i][1]]) for i in chosen],
        cursor_next=encode_cursor(keys[hi - 1]) if hi < len(keys) else None,
        cursor_prev=encode_cursor(keys[lo]) if lo > 0 else None,
        range_start=lo + 1,
        range_end=hi,
    )


def _first(pair: tuple[Key, int]) -> Key:
    return pair[0]
