"""The HTTP face of the simulator: the OfficeRnD-shaped API, the token endpoint and ``/_sim/``.

Routes (under ``/api/v2/organizations/{org}/``), each with the OAuth scope it needs:
``GET resources``, ``GET resources/{id}`` (resources.read); ``GET members``, ``GET members/{id}``
(members.read); ``GET bookings``, ``GET bookings/{id}`` (bookings.read); ``POST bookings``
(bookings.create); ``PATCH bookings/{id}`` (bookings.update); ``POST bookings/{id}/cancel``
(bookings.cancel); ``POST|GET webhooks``, ``DELETE webhooks/{id}`` (settings.webhooks.*).
Every error is JSON ``{"message", "code"}``; see docs/hybrid-api.md. Every answer's ``Date``
header reads the simulated clock, the clock ``modifiedAt`` comes from, as a real server's would.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from email.utils import format_datetime
from typing import Any

from aiohttp import web

from roomd.sim.hybrid.auth import OAuthError, TokenIssuer
from roomd.sim.hybrid.control import Control
from roomd.sim.hybrid.errors import ApiError, bad_request, not_found
from roomd.sim.hybrid.faults import Faults
from roomd.sim.hybrid.filters import booking_filter, member_filter, resource_filter
from roomd.sim.hybrid.model import Booking, CancelReason
from roomd.sim.hybrid.paging import paginate
from roomd.sim.hybrid.payloads import parse_booking_body
from roomd.sim.hybrid.store import Store
from roomd.sim.hybrid.times import format_instant
from roomd.sim.hybrid.webhooks import WebhookDispatcher

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
API_PREFIX = "/api/v2/organizations/{org}"
CLIENT_ID = web.RequestKey("client_id", str)


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.json_response(body, status=status, headers=headers)


async def read_json(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object; 400 naming the problem otherwise."""
    raw = await request.read()
    if not raw.strip():
        raise bad_request("request body: expected a JSON object, got an empty body", "invalid_json")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad_request(f"request body: malformed JSON ({exc})", "invalid_json") from None
    if not isinstance(body, dict):
        raise bad_request(
            f"request body: expected a JSON object, got {type(body).__name__}", "invalid_json"
        )
    return body


async def read_optional_json(request: web.Request) -> dict[str, Any]:
    """Like read_json, but an empty body means ``{}`` (for actions with optional parameters)."""
    if not (await request.read()).strip():
        return {}
    return await read_json(request)


class HybridApp:
    """Builds the aiohttp application around the simulator's parts."""

    def __init__(
        self,
        store: Store,
        issuer: TokenIssuer,
        faults: Faults,
        webhooks: WebhookDispatcher,
        control: Control,
    ) -> None:
        self.store = store
        self.issuer = issuer
        self.faults = faults
        self.webhooks = webhooks
        self.control = control

    def build(self) -> web.Application:
        app = web.Application(middlewares=[self._errors, self._api_faults])
        p = API_PREFIX
        app.router.add_post("/oauth/token", self.token)
        app.router.add_get(
            f"{p}/resources", self._auth("flex.space.resources.read", self.list_resources)
        )
        app.router.add_get(
            f"{p}/resources/{{id}}", self._auth("flex.space.resources.read", self.get_resource)
        )
        app.router.add_get(
            f"{p}/members", self._auth("flex.community.members.read", self.list_members)
        )
        app.router.add_get(
            f"{p}/members/{{id}}", self._auth("flex.community.members.read", self.get_member)
        )
        app.router.add_get(
            f"{p}/bookings", self._auth("flex.space.bookings.read", self.list_bookings)
        )
        app.router.add_post(
            f"{p}/bookings", self._auth("flex.space.bookings.create", self.create_booking)
        )
        app.router.add_get(
            f"{p}/bookings/{{id}}", self._auth("flex.space.bookings.read", self.get_booking)
        )
        app.router.add_patch(
            f"{p}/bookings/{{id}}", self._auth("flex.space.bookings.update", self.patch_booking)
        )
        app.router.add_post(
            f"{p}/bookings/{{id}}/cancel",
            self._auth("flex.space.bookings.cancel", self.cancel_booking),
        )
        app.router.add_post(
            f"{p}/webhooks", self._auth("flex.settings.webhooks.create", self.create_webhook)
        )
        app.router.add_get(
            f"{p}/webhooks", self._auth("flex.settings.webhooks.read", self.list_webhooks)
        )
        app.router.add_delete(
            f"{p}/webhooks/{{id}}", self._auth("flex.settings.webhooks.delete", self.delete_webhook)
        )
        SimRoutes(self.control).add_to(app)
        app.on_response_prepare.append(self._date)
        return app

    async def _date(self, request: web.Request, response: web.StreamResponse) -> None:
        response.headers["Date"] = format_datetime(self.store.clock.now(), usegmt=True)

    # ---- middleware ------------------------------------------------------------------------

    @web.middleware
    async def _errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiError as exc:
            headers = {}
            if exc.status == 401:
                headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
            return json_response(exc.body(), exc.status, headers)
        except OAuthError as exc:
            return json_response(exc.body(), exc.status, {"Cache-Control": "no-store"})
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            message = f"{request.method} {request.path}: {exc.reason}"
            code = "not_found" if exc.status == 404 else "http_error"
            return json_response({"message": message, "code": code}, exc.status)

    @web.middleware
    async def _api_faults(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        if path.startswith("/oauth/") and self.faults.take("token_5xx"):
            return json_response({"error": "temporarily_unavailable"}, 503)
        if path.startswith("/api/") and self.faults.api_path_contains in path:
            if self.faults.take("api_slow"):
                await asyncio.sleep(self.faults.api_slow_seconds)
            if self.faults.take("api_429"):
                return json_response(
                    {"message": "Too many requests; retry later", "code": "rate_limited"},
                    429,
                    {"Retry-After": str(self.faults.retry_after_seconds)},
                )
            if self.faults.take("api_5xx"):
                return json_response(
                    {"message": "Service temporarily unavailable", "code": "server_error"},
                    self.faults.api_5xx_status,
                )
        return await handler(request)

    def _auth(self, scope: str, handler: Handler) -> Handler:
        async def guarded(request: web.Request) -> web.StreamResponse:
            grant = self.issuer.check(request.headers.get("Authorization"), scope)
            org = request.match_info["org"]
            if org != self.store.org:
                raise not_found(f"organization {org!r} not found")
            request[CLIENT_ID] = grant.client_id
            return await handler(request)

        return guarded

    # ---- token -----------------------------------------------------------------------------

    async def token(self, request: web.Request) -> web.StreamResponse:
        form = {k: str(v) for k, v in (await request.post()).items()}
        answer = self.issuer.issue(form, request.headers.get("Authorization"))
        return json_response(answer, headers={"Cache-Control": "no-store"})

    # ---- resources and members -------------------------------------------------------------

    async def list_resources(self, request: web.Request) -> web.StreamResponse:
        keep = resource_filter(request.query)
        items = [r for r in self.store.resources.values() if keep(r)]
        page = paginate(items, lambda r: ("", r.id), lambda r: r.to_json(), request.query)
        return json_response(page.to_json())

    async def get_resource(self, request: web.Request) -> web.StreamResponse:
        return json_response(self.store.resource(request.match_info["id"]).to_json())

    async def list_members(self, request: web.Request) -> web.StreamResponse:
        keep = member_filter(request.query)
        items = [m for m in self.store.members.values() if keep(m)]
        page = paginate(items, lambda m: ("", m.id), lambda m: m.to_json(), request.query)
        return json_response(page.to_json())

    async def get_member(self, request: web.Request) -> web.StreamResponse:
        return json_response(self.store.member(request.match_info["id"]).to_json())

    # ---- bookings --------------------------------------------------------------------------

    async def list_bookings(self, request: web.Request) -> web.StreamResponse:
        keep = booking_filter(request.query)
        items = [b for b in self.store.bookings.values() if keep(b)]
        # By modifiedAt unless the fault says otherwise: OfficeRnD does not promise an order.
        key = _id_key if self.faults.unsorted_listing else _booking_key
        page = paginate(items, key, lambda b: b.to_json(), request.query)
        return json_response(page.to_json())

    async def get_booking(self, request: web.Request) -> web.StreamResponse:
        return json_response(self.store.booking(request.match_info["id"]).to_json())

    async def create_booking(self, request: web.Request) -> web.StreamResponse:
        fields = parse_booking_body(await read_json(request), patch=False)
        source = fields.source if isinstance(fields.source, str) else "api"
        booking = self.store.create(fields, actor=_actor(request), source=source)
        return json_response(booking.to_json(), 201)

    async def patch_booking(self, request: web.Request) -> web.StreamResponse:
        booking_id = request.match_info["id"]
        self.store.booking(booking_id)  # 404 before 400/422
        fields = parse_booking_body(await read_json(request), patch=True)
        booking = self.store.update(booking_id, fields, actor=_actor(request))
        return json_response(booking.to_json())

    async def cancel_booking(self, request: web.Request) -> web.StreamResponse:
        booking = self.store.cancel(
            request.match_info["id"], reason=CancelReason.MEMBER, actor=_actor(request)
        )
        return json_response(booking.to_json())

    # ---- webhooks --------------------------------------------------------------------------

    async def create_webhook(self, request: web.Request) -> web.StreamResponse:
        body = await read_json(request)
        hook = self.webhooks.register(body, self.store.ids.new(self.store.clock.now()))
        answer = hook.to_json(with_secret=True)
        answer["createdAt"] = format_instant(self.store.clock.now())
        return json_response(answer, 201)

    async def list_webhooks(self, request: web.Request) -> web.StreamResponse:
        items = list(self.webhooks.webhooks.values())
        page = paginate(items, lambda h: ("", h.id), lambda h: h.to_json(), request.query)
        return json_response(page.to_json())

    async def delete_webhook(self, request: web.Request) -> web.StreamResponse:
        self.webhooks.unregister(request.match_info["id"])
        return web.Response(status=204)


def _booking_key(booking: Booking) -> tuple[str, str]:
    return (_listing_instant(booking.modified_at), booking.id)


@functools.lru_cache(maxsize=1 << 17)
def _listing_instant(at: datetime) -> str:
    """``format_instant``, remembered: a listing sorts every matching booking by it, page after
    page, and a booking's ``modifiedAt`` changes only when the booking does."""
    return format_instant(at)


def _id_key(booking: Booking) -> tuple[str, str]:
    """Creation order: a booking changed during a walk keeps its place, maybe one already read."""
    return ("", booking.id)


def _actor(request: web.Request) -> str:
    return f"integration:{request[CLIENT_ID]}"


class SimRoutes:
    """``/_sim/...``: the control surface over HTTP, for the demo and for non-Python tests."""

    def __init__(self, control: Control) -> None:
        self.control = control

    def add_to(self, app: web.Application) -> None:
        r = app.router
        r.add_get("/_sim/clock", self.clock)
        r.add_post("/_sim/clock/advance", self.advance)
        r.add_get("/_sim/bookings", self.bookings)
        r.add_post("/_sim/bookings", self.create)
        r.add_patch("/_sim/bookings/{id}", self.update)
        r.add_post("/_sim/bookings/{id}/cancel", self.cancel)
        r.add_post("/_sim/bookings/{id}/approve", self.approve)
        r.add_post("/_sim/bookings/{id}/reject", self.reject)
        r.add_post("/_sim/bookings/{id}/check-in", self.check_in)
        r.add_post("/_sim/no-show-sweep", self.sweep)
        r.add_get("/_sim/faults", self.get_faults)
        r.add_put("/_sim/faults", self.put_faults)
        r.add_delete("/_sim/faults", self.delete_faults)
        r.add_get("/_sim/webhook-deliveries", self.deliveries)
        r.add_post("/_sim/tokens/revoke", self.revoke)

    async def clock(self, request: web.Request) -> web.StreamResponse:
        return json_response({"now": format_instant(self.control.now())})

    async def advance(self, request: web.Request) -> web.StreamResponse:
        body = await read_json(request)
        seconds = body.get("seconds")
        if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
            raise bad_request(f"seconds: expected a non-negative number, got {seconds!r}")
        return json_response({"now": format_instant(self.control.advance_clock(seconds))})

    async def bookings(self, request: web.Request) -> web.StreamResponse:
        return json_response({"results": self.control.bookings(request.query.get("resourceId"))})

    async def create(self, request: web.Request) -> web.StreamResponse:
        body = await read_json(request)
        try:
            resource_id, start, end = body.pop("resourceId"), body.pop("start"), body.pop("end")
            member = body.pop("member")
        except KeyError as exc:
            raise bad_request(f"{exc.args[0]}: required") from None
        recurrence = body.pop("recurrence", None) or {}
        booking = self.control.create_booking(
            resource_id,
            start["dateTime"] if isinstance(start, dict) else start,
            end["dateTime"] if isinstance(end, dict) else end,
            member=member,
            rrule=recurrence.get("rrule"),
            exdates=recurrence.get("exdates"),
            **body,
        )
        return json_response(booking, 201)

    async def update(self, request: web.Request) -> web.StreamResponse:
        body = await read_json(request)
        return json_response(self.control.update_booking(request.match_info["id"], **body))

    async def cancel(self, request: web.Request) -> web.StreamResponse:
        by = (await read_optional_json(request)).get("by", "member")
        return json_response(self.control.cancel_booking(request.match_info["id"], by=by))

    async def approve(self, request: web.Request) -> web.StreamResponse:
        return json_response(self.control.approve(request.match_info["id"]))

    async def reject(self, request: web.Request) -> web.StreamResponse:
        return json_response(self.control.reject(request.match_info["id"]))

    async def check_in(self, request: web.Request) -> web.StreamResponse:
        occurrence = (await read_optional_json(request)).get("occurrenceStart")
        return json_response(self.control.check_in(request.match_info["id"], occurrence))

    async def sweep(self, request: web.Request) -> web.StreamResponse:
        return json_response({"canceled": self.control.run_noshow_sweep()})

    async def get_faults(self, request: web.Request) -> web.StreamResponse:
        return json_response(self.control.faults.to_json())

    async def put_faults(self, request: web.Request) -> web.StreamResponse:
        body = await read_json(request)
        try:
            return json_response(self.control.set_faults(**body))
        except ValueError as exc:
            raise bad_request(str(exc)) from None

    async def delete_faults(self, request: web.Request) -> web.StreamResponse:
        self.control.clear_faults()
        return web.Response(status=204)

    async def deliveries(self, request: web.Request) -> web.StreamResponse:
        return json_response({"results": self.control.deliveries()})

    async def revoke(self, request: web.Request) -> web.StreamResponse:
        self.control.revoke_tokens()
        return web.Response(status=204)
