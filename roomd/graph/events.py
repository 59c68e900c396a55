"""Event operations roomd performs on organizer and room mailboxes.

Retry safety, per operation (the HTTP layer retries only what is safe, see ``http.py``):

* create: ``POST /users/{organizer}/events`` carries a ``transactionId`` derived from the caller's
  idempotency key, "for the server to avoid redundant POST operations in case of client retries"
  (resources/event.md), so it is retried like an idempotent request.
* update (PATCH), delete, get: idempotent by HTTP semantics. A DELETE answered 404 on a retry means
  the lost first attempt worked (``delete`` says ``deleted_on_retry``). A PATCH with ``If-Match``
  retried after a lost success answers 412: the caller re-reads (documented as a known edge, see
  ``update``).
* accept / tentativelyAccept / decline: the result is a response state on the attendee's copy; a
  repeat sets the same state, and at worst sends the organizer one more reply (none with
  ``sendResponse: false``) (event-accept.md, event-decline.md). Treated as idempotent; a 404 on a
  retried decline means the first one removed the copy (graph-behaviour.md 2.6).
* cancel: a repeat would send every attendee a second cancellation, and nothing makes it
  idempotent (event-cancel.md has no key), so it is retried only when Graph cannot have run it
  (429, connection never opened). After an ambiguous failure the caller should GET the event and
  check ``isCancelled`` before cancelling again.

All ids are immutable ids: every request sends ``Prefer: IdType="ImmutableId"``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import quote, urlencode

from roomd.graph.batch import MAX_BATCH, BatchItem, run_batch
from roomd.graph.errors import (
    GraphConnectionError,
    GraphError,
    NotFound,
    PreconditionFailed,
    ServiceUnavailable,
)
from roomd.graph.http import GraphHttp, json_object, user_path

ROOMD_TAG_PROPERTY_ID = "String {4f8d1f5e-6a0b-4d7c-9b7e-2c1d3a5e7f90} Name roomdBookingId"
"""The single-value extended property roomd tags its own events with: ``String {guid} Name x``
(singlevaluelegacyextendedproperty-post-singlevalueextendedproperties.md; graph-behaviour.md 2.4,
fixture synthesized/organizer-event-with-room-request.json)."""

CREATE_ATTEMPTS = 5
"""POSTs of one create at most, each after a search that found nothing."""

DeleteOutcome = Literal["deleted", "deleted_on_retry", "already_gone"]
"""What ``EventOps.delete`` did: ``deleted`` (204), ``deleted_on_retry`` (an attempt went
unanswered or failed, and the retry found the event gone: that attempt most likely deleted it),
``already_gone`` (404 on the first attempt: it was gone before roomd asked)."""

_TRANSACTION_NAMESPACE = uuid.UUID("8d0f4a52-3c1e-5b7a-9f64-2e5d7c1b0a93")


def transaction_id_for(idempotency_key: str) -> str:
    """The ``transactionId`` for a create: the same key always gives the same id (UUIDv5)."""
    if not idempotency_key:
        raise ValueError("idempotency_key: must not be empty")
    return str(uuid.uuid5(_TRANSACTION_NAMESPACE, idempotency_key))


def tag_property(value: str, property_id: str = ROOMD_TAG_PROPERTY_ID) -> dict[str, str]:
    """A ``singleValueExtendedProperties`` entry tagging an event as roomd's."""
    return {"id": property_id, "value": value}


def _normal_property_id(property_id: str) -> str:
    # "String {GUID} Name x": the GUID is case-insensitive, the name is not (graph-behaviour.md 2.4)
    head, sep, name = property_id.partition(" Name ")
    return head.lower() + sep + name


def tag_value(event: Mapping[str, Any], property_id: str = ROOMD_TAG_PROPERTY_ID) -> str | None:
    """The tag's value on an event fetched with ``$expand`` of the property, if present."""
    wanted = _normal_property_id(property_id)
    for prop in event.get("singleValueExtendedProperties") or []:
        if isinstance(prop, Mapping) and _normal_property_id(str(prop.get("id", ""))) == wanted:
            value = prop.get("value")
            return str(value) if value is not None else None
    return None


_ENUM_KEYS = frozenset(
    {"daysOfWeek", "firstDayOfWeek", "type", "index", "contentType", "showAs", "sensitivity"}
)


def _same(wanted: Any, current: Any, key: str = "") -> bool:
    """Whether a value Graph holds equals the one written, allowing for Graph's normalisation:
    ``dateTime`` with 7 fractional digits, lower-cased enum values (``"Monday"`` -> ``"monday"``,
    event-recurring-create-response.json)."""
    if isinstance(wanted, Mapping) and isinstance(current, Mapping):
        return all(_same(v, current.get(k), k) for k, v in wanted.items())
    if isinstance(wanted, list) and isinstance(current, list):
        return len(wanted) == len(current) and all(
            _same(w, c, key) for w, c in zip(wanted, current, strict=True)
        )
    if isinstance(wanted, str) and isinstance(current, str):
        if key in _ENUM_KEYS:
            return wanted.lower() == current.lower()
        if key == "dateTime":
            return _normal_time(wanted) == _normal_time(current)
    return bool(wanted == current)


def _normal_time(value: str) -> str:
    head, _dot, fraction = value.partition(".")
    fraction = fraction.rstrip("0")
    return f"{head}.{fraction}" if fraction else head


def _odata_string(value: str) -> str:
    """An OData string literal: single quotes doubled."""
    return "'" + value.replace("'", "''") + "'"


@dataclass(frozen=True)
class _Read:
    """One GET for ``EventOps._read_many``; ``listing``: a collection (``value``, paged)."""

    mailbox: str
    path: str
    params: Mapping[str, str]
    listing: bool = False


def _listed(answer: dict[str, Any] | GraphError) -> list[dict[str, Any]] | GraphError:
    """A listing's items, or its error (an answer without ``value`` is one)."""
    if isinstance(answer, GraphError):
        return answer
    values = answer.get("value")
    if not isinstance(values, list):
        return GraphError(None, "NoValue", "a listing answered without 'value'")
    return [v for v in values if isinstance(v, dict)]


def _expand_properties(property_ids: Sequence[str]) -> str:
    clauses = " or ".join(f"id eq {_odata_string(p)}" for p in property_ids)
    return f"singleValueExtendedProperties($filter={clauses})"


def _utc(name: str, value: datetime) -> str:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name}: {value.isoformat()} has no time zone; pass an aware datetime")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class EventOps:
    """Create, read, update, answer, cancel and delete events through one :class:`GraphHttp`."""

    def __init__(self, http: GraphHttp) -> None:
        self.http = http

    async def create(
        self,
        organizer: str,
        event: Mapping[str, Any],
        *,
        idempotency_key: str,
        tag: str | None = None,
    ) -> dict[str, Any]:
        """Create an event in ``organizer``'s calendar (invite the room as a ``resource``
        attendee, user-post-events.md) and return Graph's event (201).

        At most once per ``idempotency_key``. The POST carries a ``transactionId`` derived from
        the key, but what Graph answers to a repeated one is not documented (graph-behaviour.md
        2.3); so the event is always tagged (``tag``, default: the transactionId) and, after an
        ambiguous failure (no answer, 5xx), roomd searches for the tag before it POSTs again, as
        that section recommends. A 429 is retried directly: a throttled request did not run.
        """
        transaction_id = transaction_id_for(idempotency_key)
        given = event.get("transactionId")
        if given is not None and given != transaction_id:
            raise ValueError(
                "event.transactionId: set from idempotency_key; do not pass a different one"
            )
        tag = tag if tag is not None else transaction_id
        body = dict(event)
        body["transactionId"] = transaction_id
        props = [
            p
            for p in body.get("singleValueExtendedProperties") or []
            if _normal_property_id(str(p.get("id", "")))
            != _normal_property_id(ROOMD_TAG_PROPERTY_ID)
        ]
        body["singleValueExtendedProperties"] = [*props, tag_property(tag)]
        url = user_path(organizer, "events")
        for attempt in range(1, CREATE_ATTEMPTS + 1):
            try:
                response = await self.http.request(
                    "POST", url, mailbox=organizer, json=body, idempotent=False
                )
                return json_object(response, "POST", url)
            except (GraphConnectionError, ServiceUnavailable):
                # may or may not have been created, or still be under way on the server:
                # give it a moment, then look before posting again
                await asyncio.sleep(min(0.25 * 2**attempt, 8.0))
                found = await self.find_by_tag(organizer, tag)
                if found:
                    return found[0]
                if attempt == CREATE_ATTEMPTS:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def get(
        self,
        mailbox: str,
        event_id: str,
        *,
        tagged: bool = False,
        property_ids: Sequence[str] = (),
        select: Sequence[str] = (),
    ) -> dict[str, Any]:
        """One event; with ``tagged`` (or ``property_ids``) its extended properties are
        ``$expand``ed, which they never are otherwise (event-get.md;
        singlevaluelegacyextendedproperty-get.md)."""
        ids = list(property_ids) + ([ROOMD_TAG_PROPERTY_ID] if tagged else [])
        params: dict[str, str] = {}
        if ids:
            params["$expand"] = _expand_properties(ids)
        if select:
            params["$select"] = ",".join(select)
        return await self.http.get_json(
            user_path(mailbox, "events", event_id), mailbox=mailbox, params=params or None
        )

    async def series_master(self, mailbox: str, item: Mapping[str, Any] | str) -> dict[str, Any]:
        """The series master of an occurrence or exception (or by its id). calendarView delta
        hands out bare occurrences (graph-behaviour.md 1.4); the master carries the rest."""
        if isinstance(item, str):
            master_id = item
        else:
            found = item.get("seriesMasterId") or (
                item.get("id") if item.get("type") == "seriesMaster" else None
            )
            if not isinstance(found, str) or not found:
                raise ValueError("item: has no seriesMasterId (not part of a series)")
            master_id = found
        return await self.get(mailbox, master_id)

    async def update(
        self,
        mailbox: str,
        event_id: str,
        changes: Mapping[str, Any],
        *,
        etag: str | None,
    ) -> dict[str, Any]:
        """PATCH an event (event-update.md); with ``etag`` (its ``@odata.etag``) the update only
        applies if nobody changed the event since: otherwise ``PreconditionFailed`` (412).

        If the answer to a successful PATCH was lost, its retry meets the new etag and gets 412:
        so on 412 the event is read again, and if it already holds every changed value the update
        counts as done; otherwise ``PreconditionFailed`` stands (someone else changed it).
        """
        if "transactionId" in changes:
            raise ValueError("changes.transactionId: cannot be changed after create (event.md)")
        headers = {"If-Match": etag} if etag else None
        url = user_path(mailbox, "events", event_id)
        try:
            response = await self.http.request(
                "PATCH", url, mailbox=mailbox, json=dict(changes), headers=headers
            )
        except PreconditionFailed:
            current = await self.get(mailbox, event_id)
            if all(_same(v, current.get(k)) for k, v in changes.items()):
                return current
            raise
        return json_object(response, "PATCH", url)

    async def _action(
        self,
        mailbox: str,
        event_id: str,
        action: str,
        body: Mapping[str, Any],
        *,
        idempotent: bool,
        absent_ok: bool,
    ) -> None:
        await self.http.request(
            "POST",
            user_path(mailbox, "events", event_id, action),
            mailbox=mailbox,
            json=dict(body),
            idempotent=idempotent,
            absent_after_retry_ok=absent_ok,
        )

    async def cancel(self, organizer: str, event_id: str, *, comment: str = "") -> None:
        """The organizer cancels a meeting (or one occurrence): every attendee gets a cancellation
        and rooms free their copy (event-cancel.md; 202). Only the organizer may: 400 otherwise."""
        await self._action(
            organizer,
            event_id,
            "cancel",
            {"comment": comment},
            idempotent=False,
            absent_ok=False,
        )

    async def decline(
        self, mailbox: str, event_id: str, *, comment: str = "", send_response: bool = True
    ) -> None:
        """Decline as the attendee (roomd: as the room, for a no-show or a rejected approval);
        the organizer's copy shows the room declined (event-decline.md; 202)."""
        body = {"comment": comment, "sendResponse": send_response}
        await self._action(mailbox, event_id, "decline", body, idempotent=True, absent_ok=True)

    async def accept(
        self, mailbox: str, event_id: str, *, comment: str = "", send_response: bool = True
    ) -> None:
        """Accept as the attendee (event-accept.md; 202)."""
        body = {"comment": comment, "sendResponse": send_response}
        await self._action(mailbox, event_id, "accept", body, idempotent=True, absent_ok=False)

    async def tentatively_accept(
        self, mailbox: str, event_id: str, *, comment: str = "", send_response: bool = True
    ) -> None:
        """Answer "tentative" as the attendee, e.g. a room awaiting approval
        (event-tentativelyaccept.md; 202)."""
        body = {"comment": comment, "sendResponse": send_response}
        await self._action(
            mailbox, event_id, "tentativelyAccept", body, idempotent=True, absent_ok=False
        )

    async def delete(self, mailbox: str, event_id: str) -> DeleteOutcome:
        """Delete an event (event-delete.md; 204). On the organizer's calendar this sends the
        attendees a cancellation. Says whether this call deleted it, most likely deleted it on
        an attempt whose answer was lost, or found it already gone (see ``DeleteOutcome``)."""
        try:
            response = await self.http.request(
                "DELETE",
                user_path(mailbox, "events", event_id),
                mailbox=mailbox,
                absent_after_retry_ok=True,  # a 404 on a retry comes back as None
            )
        except NotFound:
            return "already_gone"
        return "deleted" if response is not None else "deleted_on_retry"

    async def instances(
        self,
        mailbox: str,
        master_id: str,
        *,
        start: datetime,
        end: datetime,
        select: Sequence[str] = (),
        page_size: int | None = None,
    ) -> list[dict[str, Any]]:
        """Occurrences and exceptions of a series in ``[start, end)``, all pages
        (event-list-instances.md). Cancelled occurrences are not listed (event.md). The page
        size is asked with ``$top``: the page documents OData query parameters for it, not
        ``Prefer: odata.maxpagesize`` (delta's), and pages lists by 10 otherwise."""
        params = {"startDateTime": _utc("start", start), "endDateTime": _utc("end", end)}
        if select:
            params["$select"] = ",".join(select)
        if page_size:
            params["$top"] = str(page_size)
        return await self.http.collect(
            user_path(mailbox, "events", master_id, "instances"), mailbox=mailbox, params=params
        )

    async def find_by_ical_uid(
        self, mailbox: str, ical_uid: str, *, select: Sequence[str] = ()
    ) -> list[dict[str, Any]]:
        """The mailbox's copies of a meeting: ``$filter=iCalUId eq '...'`` on ``/events``, which
        lists single instances and series masters (graph-behaviour.md 2.2). Used to read the real
        subject from the organizer's copy of a room booking."""
        if not ical_uid:
            raise ValueError("ical_uid: must not be empty")
        params = {"$filter": f"iCalUId eq {_odata_string(ical_uid)}"}
        if select:
            params["$select"] = ",".join(select)
        return await self.http.collect(user_path(mailbox, "events"), mailbox=mailbox, params=params)

    async def find_many_by_ical_uid(
        self, lookups: Sequence[tuple[str, str]], *, select: Sequence[str] = ()
    ) -> dict[tuple[str, str], list[dict[str, Any]] | GraphError]:
        """``find_by_ical_uid`` for many (mailbox, iCalUId) pairs, 20 per ``POST /$batch``
        (json-batching.md; throttled items are re-sent by ``run_batch``). Each pair gets its
        copies, or the error its item (or its whole batch) answered. An initial sync reads one
        organizer copy per meeting: this makes 20 of those one request (bench/README.md
        section 2)."""
        wanted = list(dict.fromkeys(lookups))
        reads = []
        for mailbox, ical_uid in wanted:
            params = {"$filter": f"iCalUId eq {_odata_string(ical_uid)}"}
            if select:
                params["$select"] = ",".join(select)
            reads.append(_Read(mailbox, user_path(mailbox, "events"), params, listing=True))
        answers = await self._read_many(reads)
        return {pair: _listed(answer) for pair, answer in zip(wanted, answers, strict=True)}

    async def series_many(
        self,
        mailbox: str,
        master_ids: Sequence[str],
        *,
        start: datetime,
        end: datetime,
        page_size: int | None = None,
    ) -> dict[str, tuple[dict[str, Any] | GraphError, list[dict[str, Any]] | GraphError]]:
        """``get`` and ``instances`` of each series master of one mailbox, both in the same
        ``$batch`` (10 series per request): what reading a series whole starts with."""
        ids = list(dict.fromkeys(master_ids))
        reads = []
        window = {"startDateTime": _utc("start", start), "endDateTime": _utc("end", end)}
        if page_size:
            window["$top"] = str(page_size)
        for master_id in ids:
            reads.append(_Read(mailbox, user_path(mailbox, "events", master_id), {}))
            path = user_path(mailbox, "events", master_id, "instances")
            reads.append(_Read(mailbox, path, window, listing=True))
        answers = await self._read_many(reads)
        out: dict[str, tuple[dict[str, Any] | GraphError, list[dict[str, Any]] | GraphError]] = {}
        for n, master_id in enumerate(ids):
            master, instances = answers[2 * n], answers[2 * n + 1]
            if not isinstance(master, GraphError) and not isinstance(master, dict):
                master = GraphError(None, "NoBody", f"GET {reads[2 * n].path} answered no object")
            out[master_id] = (master, _listed(instances))
        return out

    async def _read_many(self, reads: Sequence[_Read]) -> list[dict[str, Any] | GraphError]:
        """GETs through ``$batch``, 20 per request, in order; a listing's later pages (its
        ``@odata.nextLink``) are read one by one, as ``GraphHttp.collect`` does."""
        out: list[dict[str, Any] | GraphError] = []
        for at in range(0, len(reads), MAX_BATCH):
            chunk = reads[at : at + MAX_BATCH]
            items = [
                BatchItem(
                    id=str(n + 1),
                    method="GET",
                    url=read.path
                    + ("?" + urlencode(read.params, quote_via=quote) if read.params else ""),
                    mailbox=read.mailbox,
                )
                for n, read in enumerate(chunk)
            ]
            try:
                answers = await run_batch(self.http, items)
            except GraphError as exc:
                out.extend(exc for _ in chunk)
                continue
            for item, read in zip(items, chunk, strict=True):
                answer = answers[item.id]
                if not answer.ok:
                    out.append(answer.error("GET", read.path))
                    continue
                body = dict(answer.body) if isinstance(answer.body, dict) else {}
                link = body.get("@odata.nextLink")
                if read.listing and isinstance(link, str):
                    try:
                        rest = await self.http.collect(link, mailbox=read.mailbox)
                    except GraphError as exc:
                        out.append(exc)
                        continue
                    body["value"] = [*(body.get("value") or []), *rest]
                out.append(body)
        return out

    async def find_by_tag(
        self, mailbox: str, value: str, *, property_id: str = ROOMD_TAG_PROPERTY_ID
    ) -> list[dict[str, Any]]:
        """Events carrying roomd's tag with ``value`` (``singleValueExtendedProperties/Any``,
        singlevaluelegacyextendedproperty-get.md): the crash-recovery check before re-creating."""
        flt = (
            "singleValueExtendedProperties/Any(ep: ep/id eq "
            f"{_odata_string(property_id)} and ep/value eq {_odata_string(value)})"
        )
        return await self.http.collect(
            user_path(mailbox, "events"), mailbox=mailbox, params={"$filter": flt}
        )
