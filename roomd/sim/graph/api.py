"""The Graph v1.0 routes the simulator serves, as plain functions of a ``GraphRequest``.

The aiohttp adapter (``server.py``) and ``$batch`` (``batch.py``) both call ``GraphApi.handle``,
so a request behaves the same on its own and inside a batch. Each route names the Microsoft
document it follows.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from urllib.parse import quote, unquote

from roomd.sim.graph.delta import UNSUPPORTED, DeltaEngine
from roomd.sim.graph.directory import Directory, Mailbox
from roomd.sim.graph.events import Event, Instance, normalise_id, series_instances
from roomd.sim.graph.exchange import Exchange, not_found
from roomd.sim.graph.render import SOMETIMES_ABSENT, OutputZone, apply_select, render_event
from roomd.sim.graph.routes_directory import DirectoryRoutes
from roomd.sim.graph.routes_subscriptions import SubscriptionRoutes
from roomd.sim.graph.settings import Switches
from roomd.sim.graph.subscriptions import Subscriptions
from roomd.sim.graph.wire import (
    JSON,
    GraphError,
    GraphRequest,
    GraphResponse,
    forbidden,
    parse_prefer,
)
from roomd.sim.graph.zones import UnknownTimeZone

Handler = Callable[[GraphRequest, "re.Match[str]"], Awaitable[GraphResponse]]

READ_ROLES = {"Calendars.Read", "Calendars.ReadWrite", "Calendars.ReadBasic.All"}
WRITE_ROLES = {"Calendars.ReadWrite"}
EVENT_PROPS = None  # filled lazily: the keys render_event produces
EXPAND_EXT = re.compile(
    r"^singleValueExtendedProperties(?:\(\$filter=(?P<filter>.+)\))?$", re.IGNORECASE
)
EXT_ID_EQ = re.compile(r"id\s+eq\s+'(?P<id>(?:[^']|'')*)'", re.IGNORECASE)
FILTER_ICAL = re.compile(r"^iCalUId\s+eq\s+'(?P<v>(?:[^']|'')*)'$", re.IGNORECASE)
FILTER_EXT = re.compile(
    r"^singleValueExtendedProperties/any\(\s*(?P<var>\w+)\s*:\s*(?P=var)/id\s+eq\s+"
    r"'(?P<id>(?:[^']|'')*)'\s+and\s+(?P=var)/value\s+eq\s+'(?P<v>(?:[^']|'')*)'\s*\)$",
    re.IGNORECASE,
)
FILTER_TYPE = re.compile(r"^type\s+eq\s+'(?P<v>\w+)'$", re.IGNORECASE)
SEG = r"(?P<user>[^/]+)"


def parse_window_value(value: str | None, name: str) -> datetime:
    """startDateTime/endDateTime: ISO 8601; no offset means UTC (user-list-calendarview.md)."""
    if value is None or not value.strip():
        raise GraphError(
            400,
            "ErrorInvalidParameter",
            "This request requires a time window specified by the query string parameters "
            "StartDateTime and EndDateTime.",
        )
    text = value.strip().replace(" ", "+")
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        when = datetime.fromisoformat(text)
    except ValueError as exc:
        raise GraphError(
            400,
            "ErrorInvalidParameter",
            f"The value '{value}' of parameter '{name}' is invalid.",
        ) from exc
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


class GraphApi:
    def __init__(
        self,
        directory: Directory,
        exchange: Exchange,
        delta: DeltaEngine,
        switches: Switches,
        access_policy: Callable[[str, Mailbox], bool],
    ) -> None:
        self.directory = directory
        self.exchange = exchange
        self.delta = delta
        self.switches = switches
        self.access_policy = access_policy
        self.base_url = ""  # "https://127.0.0.1:PORT/v1.0", set at start
        self.subscriptions: Subscriptions | None = None
        r = self.route
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []
        DirectoryRoutes(self).register()
        # the OData function form ``delta()`` too: Microsoft's SDKs (msgraph-sdk) call it so
        r(
            "GET",
            rf"/users/{SEG}(?:/calendar)?/calendarview/delta(?:\(\))?",
            self.calendar_view_delta,
        )
        r("GET", rf"/users/{SEG}(?:/calendar)?/calendarview", self.calendar_view)
        r("GET", rf"/users/{SEG}(?:/calendar)?/events/delta", self.events_delta)
        r("GET", rf"/users/{SEG}(?:/calendar)?/events", self.list_events)
        r("POST", rf"/users/{SEG}(?:/calendar)?/events", self.create_event)
        r("GET", rf"/users/{SEG}(?:/calendar)?/events/(?P<id>[^/]+)/instances", self.instances)
        r("GET", rf"/users/{SEG}(?:/calendar)?/events/(?P<id>[^/]+)", self.get_event)
        r("PATCH", rf"/users/{SEG}(?:/calendar)?/events/(?P<id>[^/]+)", self.update_event)
        r("DELETE", rf"/users/{SEG}(?:/calendar)?/events/(?P<id>[^/]+)", self.delete_event)
        r(
            "POST",
            rf"/users/{SEG}(?:/calendar)?/events/(?P<id>[^/]+)/"
            r"(?P<action>cancel|accept|decline|tentativelyaccept)",
            self.event_action,
        )
        SubscriptionRoutes(self).register()
        r("ANY", r"/me(?:/.*)?", self.me)

    def route(self, method: str, pattern: str, handler: Handler) -> None:
        self.routes.append((method, re.compile(f"^{pattern}/?$", re.IGNORECASE), handler))

    @staticmethod
    def mailbox_of(path: str) -> str | None:
        """The mailbox segment a path targets (for throttling and faults)."""
        m = re.match(r"^/users/([^/]+)", path, re.IGNORECASE)
        return unquote(m.group(1)).lower() if m else None

    async def handle(self, req: GraphRequest) -> GraphResponse:
        path_allowed = False
        for method, pattern, handler in self.routes:
            m = pattern.match(req.path)
            if m is None:
                continue
            path_allowed = True
            if method not in ("ANY", req.method):
                continue
            return await handler(req, m)
        if path_allowed:
            raise GraphError(
                405,
                "Request_BadRequest",
                "Specified HTTP method is not allowed for the request target.",
            )
        raise GraphError(
            400,
            "BadRequest",
            f"Resource not found for the segment '{req.path.strip('/').split('/')[-1]}'.",
        )

    # -- helpers ----------------------------------------------------------------------------
    def zone(self, req: GraphRequest) -> tuple[OutputZone, dict[str, str]]:
        prefs = parse_prefer([req.headers.get("prefer", "")])
        applied: dict[str, str] = {}
        name = prefs.get("outlook.timezone")
        immutable = prefs.get("idtype", "").lower() == "immutableid"
        zone = OutputZone("UTC", immutable)
        if name:
            try:
                zone = OutputZone(name, immutable)
            except UnknownTimeZone:
                zone = OutputZone("UTC", immutable)  # unknown zone: UTC [INF]
            else:
                applied["outlook.timezone"] = f'outlook.timezone="{name}"'
        if "idtype" in prefs:
            applied["IdType"] = f'IdType="{prefs["idtype"]}"'
        return zone, applied

    @staticmethod
    def applied_headers(applied: dict[str, str]) -> dict[str, str]:
        return {"Preference-Applied": ", ".join(applied.values())} if applied else {}

    def _mailbox(self, req: GraphRequest, key: str, write: bool = False) -> Mailbox:
        if not (req.roles & (WRITE_ROLES if write else READ_ROLES)):
            raise forbidden()
        mbx = self.directory.find(unquote(key))
        if mbx is None:
            raise GraphError(
                404, "ErrorInvalidUser", f"The requested user '{unquote(key)}' is invalid."
            )
        if not self.access_policy(req.app_id, mbx):
            raise GraphError(403, "ErrorAccessDenied", "Access to OData is disabled.")
        return mbx

    def _ctx(self, user: str, suffix: str) -> str:
        return f"{self.base_url}/$metadata#users('{quote(unquote(user), safe='@')}'){suffix}"

    def _ext_filter(self, req: GraphRequest) -> list[str] | None:
        expand = req.q("$expand")
        if not expand:
            return None
        m = EXPAND_EXT.match(expand.strip())
        if m is None:
            raise GraphError(
                400,
                "BadRequest",
                f"Parsing OData Select and Expand failed: Could not find a property named "
                f"'{expand.split('(')[0]}' on type 'microsoft.graph.event'.",
            )
        if not m.group("filter"):
            return []
        ids = [x.group("id").replace("''", "'") for x in EXT_ID_EQ.finditer(m.group("filter"))]
        return ids

    def _select(self, req: GraphRequest, item: JSON) -> JSON:
        select = req.q("$select")
        if select:
            for name in (s.strip() for s in select.split(",")):
                if (
                    name
                    and name not in item
                    and name not in SOMETIMES_ABSENT
                    and name != "singleValueExtendedProperties"
                ):
                    raise GraphError(
                        400,
                        "RequestBroker--ParseUri",
                        f"Could not find a property named '{name}' on type "
                        "'microsoft.graph.event'.",
                    )
        return apply_select(item, select)

    def page(
        self, req: GraphRequest, items: list[JSON], context: str, default_top: int = 10
    ) -> JSON:
        """``$top``/``$skip`` paging with an ``@odata.nextLink`` (user-list-events.md)."""
        top = _int_param(req.q("$top"), "$top", default_top, 1, 1000)
        skip = _int_param(req.q("$skip"), "$skip", 0, 0, 10**9)
        body: JSON = {"@odata.context": context, "value": items[skip : skip + top]}
        if skip + top < len(items):
            params = [(k, v) for k, v in req.query if k.lower() not in ("$skip", "$top")]
            params += [("$top", str(top)), ("$skip", str(skip + top))]
            qs = "&".join(f"{quote(k, safe='$')}={quote(v, safe='')}" for k, v in params)
            body["@odata.nextLink"] = f"{self.base_url}{req.path}?{qs}"
        return body

    async def me(self, req: GraphRequest, m: re.Match[str]) -> GraphResponse:
        raise GraphError(
            400, "BadRequest", "/me request is only valid with delegated authentication flow."
        )

    # -- calendar views ---------------------------------------------------------------------
    def _render_instance(
        self, inst: Instance, zone: OutputZone, ext: list[str] | None = None
    ) -> JSON:
        if inst.kind == "occurrence":
            return render_event(inst.event, zone, instance=inst, ext_filter=ext)
        return render_event(inst.event, zone, ext_filter=ext)

    async def calendar_view(self, req: GraphRequest, m: re.Match[str]) -> GraphResponse:
        """GET /users/{id}/calendarView (user-list-calendarview.md): occurrences, exceptions
        and single instances in the window; the window's offset decides, not the Prefer zone."""
        mbx = self._mailbox(req, m.group("user"))
        ws = parse_window_value(req.q("startDateTime"), "startDateTime")
        we = parse_window_value(req.q("endDateTime"), "endDateTime")
        zone, applied = self.zone(req)
        cal = self.exchange.calendar(mbx)
        items = [self._select(req, self._render_instance(i, zone)) for i in cal.instances(ws, we)]
        ctx = self._ctx(m.group("user"), "/calendarView")
        return GraphResponse(200, self.page(req, items, ctx), self.applied_headers(applied))

    async def calendar_view_delta(self, req: GraphRequest, m: re.Match[str]) -> GraphResponse:
        mbx = self._mailbox(req, m.group("user"))
        for key, _ in req.query:
            low = key.lower()
            if low == "$expand":
                # [OBS] docs #2270 / contrib #7929: $expand on calendarView/delta -> 500.
                raise GraphError(
                    500, "InternalServerError", "Value cannot be null.\r\nParameter name: type"
                )
            if low in UNSUPPORTED:
                raise GraphError(
                    400,
                    "ErrorInvalidUrlQuery",
                    f"The following parameters are not supported with change tracking over the "
                    f"'Events' resource: '{key}'.",
                )
        zone, applied = self.zone(req)
        prefs = parse_prefer([req.headers.get("prefer", "")])
        size = self.switches.delta_default_page_size
        if "odata.maxpagesize" in prefs:
            try:
                size = max(1, min(1000, int(prefs["odata.maxpagesize"])))
            except ValueError:
                pass
            else:
                applied["odata.maxpagesize"] = f"odata.maxpagesize={size}"
        cal = self.exchange.calendar(mbx)
        skip = req.q("$skiptoken")
        dtoken = req.q("$deltatoken")
        path = req.path if not req.path.endswith("/") else req.path[:-1]
        if skip is not None:
            state = self.delta.resume(cal, skip, "skip")
        elif dtoken is not None:
            state = self.delta.resume(cal, dtoken, "delta")
        else:
            ws = parse_window_value(req.q("startDateTime"), "startDateTime")
            we = parse_window_value(req.q("endDateTime"), "endDateTime")
            state = self.delta.start(cal, path, ws, we)
        body = self.delta.page(cal, state, size, zone, self.base_url)
        return GraphResponse(200, body, self.applied_headers(applied))

    async def events_delta(self, req: GraphRequest, m: re.Match[str]) -> GraphResponse:
        """v1.0 has no /events/delta (msgraph-metadata #608; beta only)."""
        raise GraphError(
            400,
            "BadRequest",
            "Unsupported request: Change tracking is not supported against "
            "'microsoft.graph.event'.",
        )

    # -- events -----------------------------------------------------------------------------
    async def list_events(self, req: GraphRequest, m: re.Match[str]) -> GraphResponse:
        """GET /users/{id}/events: single instances and series masters (event.md), with the
        ``$filter`` forms clients use (iCalUId eq; singleValueExtendedProperties/Any)."""
        mbx = self._mailbox(req, m.group("user"))
        zone, applied = self.zone(req)
        ext = self._ext_filter(req)
        events = [e for e in self.exchange.calendar(mbx).events.values() if e.type != "exception"]
        flt = (req.q("$filter") or "").strip()
        if flt:
            keep = _compile_filter(flt)
            events = [e for e in events if keep(e)]
        events.sort(key=lambda e: (e.created, e.id))
        items = [self._select(req, render_event(e, zone, ext_filter=ext)) for e in events]
        ctx = self._ctx(m.group("user"), "/events")
        return GraphResponse(200, self.page(req, items, ctx), self.applied_headers(applied))

    async def get_event(self, req: GraphRequest, m: re.Match[str]) -> GraphResponse:
        mbx = self._mailbox(req, m.group("user"))
        zone, applied = self.zone(req)
        ext = self._ext_filter(req)
        cal = self.exchange.calendar(mbx)
        resolved = cal.resolve(unquote(m.group("id")))
        if resolved is None:
            raise not_found()
        event, original = resolved
        if original is not None:
            inst = Instance(
                unquote(m.group("id")),
                "occurrence",
                event,
                original,
                original + event.duration,
                original,
            )
            item = render_event(event, zone, instance=inst, ext_filter=ext)
        else:
            item = render_event(event, zone, ext_filter=ext)
        body = {"@odata.context": self._ctx(m.group("user"), "/events/$entity"), **item}
        return GraphResponse(200, self._select(req, body), self.applied_headers(applied))

    async def instances(self, req: GraphRequest, m: re.Match[str]) -> GraphResponse:
        """GET .../events/{id}/instances (event-list-instances.md): occurrences and exceptions
        in the window; cancelled occurrences are not included (event.md)."""
        mbx = self._mailbox(req, m.group("user"))
        ws = parse_window_value(req.q("startDateTime"), "startDateTime")
        we = parse_window_value(req.q("endDateTime"), "endDateTime")
        zone, applied = self.zone(req)
        cal = self.exchange.calendar(mbx)
        master = cal.events.get(normalise_id(unquote(m.group("id"))))
        if master is None:
            raise not_found()
        found = series_instances(cal, master, ws, we) if master.type == "seriesMaster" else []
        found.sort(key=lambda i: (i.start, i.id))
        items = [self._select(req, self._render_instance(i, zone)) for i in found]
        ctx = self._ctx(m.group("user"), f"/events('{quote(master.id)}')/instances")
        return GraphResponse(200, self.page(req, items, ctx), self.applied_headers(applied))

    async def create_event(self, req: GraphRequest, m: re.Match[str]) -> GraphResponse:
        """POST /users/{id}/events -> 201 (user-post-events.md); transactionId dedupe (2.3)."""
        mbx = self._mailbox(req, m.group("user"), write=True)
        zone, applied = self.zone(req)
        event, _created = self.exchange.create(mbx, req.body)
        body = {
            "@odata.context": self._ctx(m.group("user"), "/events/$entity"),
            **render_event(event, zone),
        }
        return GraphResponse(
            201, body, {**self.applied_headers(applied), "Location": self._location(m, event)}
        )

    def _location(self, m: re.Match[str], event: Event) -> str:
        return f"{self.base_url}/users/{m.group('user')}/events/{quote(event.id, safe='')}"

    async def update_event(self, req: GraphRequest, m: re.Match[str]) -> GraphResponse:
        """PATCH -> 200 with the event (event-update.md); If-Match -> 412 when stale
        (concepts/errors.md)."""
        mbx = self._mailbox(req, m.group("user"), write=True)
        zone, applied = self.zone(req)
        event = self.exchange.update(mbx, unquote(m.group("id")), req.body, req.header("if-match"))
        body = {
            "@odata.context": self._ctx(m.group("user"), "/events/$entity"),
            **render_event(event, zone),
        }
        return GraphResponse(200, body, self.applied_headers(applied))

    async def delete_event(self, req: GraphRequest, m: re.Match[str]) -> GraphResponse:
        """DELETE -> 204 (event-delete.md)."""
        mbx = self._mailbox(req, m.group("user"), write=True)
        self.exchange.delete(mbx, unquote(m.group("id")))
        return GraphResponse(204)

    async def event_action(self, req: GraphRequest, m: re.Match[str]) -> GraphResponse:
        """POST /cancel | /accept | /tentativelyAccept | /decline -> 202, no body."""
        mbx = self._mailbox(req, m.group("user"), write=True)
        action = m.group("action").lower()
        event_id = unquote(m.group("id"))
        if action == "cancel":
            self.exchange.cancel(mbx, event_id)
        else:
            self.exchange.respond(
                mbx,
                event_id,
                {"accept": "accept", "decline": "decline"}.get(action, "tentative"),
                req.body,
            )
        return GraphResponse(202)


def _int_param(value: str | None, name: str, default: int, lo: int, hi: int) -> int:
    if value is None:
        return default
    try:
        n = int(value)
    except ValueError as exc:
        raise GraphError(400, "BadRequest", f"Invalid value '{value}' for {name}.") from exc
    if not lo <= n <= hi:
        raise GraphError(400, "BadRequest", f"{name} must be between {lo} and {hi}, got {n}.")
    return n


def _compile_filter(expr: str) -> Callable[[Event], bool]:
    """The ``$filter`` forms on /events that clients rely on (graph-behaviour.md 2.2, 2.4)."""
    m = FILTER_ICAL.match(expr)
    if m:
        uid = m.group("v").replace("''", "'").lower()
        return lambda e: e.ical_uid.lower() == uid
    m = FILTER_EXT.match(expr)
    if m:
        # Name part of the id is case-sensitive, the value is not (singlevaluelegacy...-get.md)
        pid = m.group("id").replace("''", "'")
        value = m.group("v").replace("''", "'").lower()
        return lambda e: (e.ext_props.get(pid) or "\0").lower() == value
    m = FILTER_TYPE.match(expr)
    if m:
        kind = m.group("v").lower()
        return lambda e: e.type.lower() == kind
    if "organizer/" in expr.lower():
        raise GraphError(
            501,
            "ErrorInvalidUrlQueryFilter",
            "The query filter contains one or more invalid nodes: 'not a supported filter "
            "expression'.",
        )
    raise GraphError(400, "ErrorInvalidUrlQueryFilter", f"Invalid filter clause: {expr}")
