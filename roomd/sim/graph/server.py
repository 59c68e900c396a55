"""The HTTPS front door: aiohttp routes for the identity platform, Graph v1.0 and ``/_sim``.

Every Graph call goes through one pipeline: bearer check (401 ``InvalidAuthenticationToken``
with Graph's error body, contrib concepts/errors.md), injected faults, per-mailbox throttling
(faults.py), the route, and Graph's response headers (``request-id``, ``client-request-id``,
``Preference-Applied``). ``$batch`` items take the same pipeline minus the socket.
"""

from __future__ import annotations

import asyncio
import json
from email.utils import format_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from aiohttp import web

from roomd.sim.graph import batch
from roomd.sim.graph.auth import AuthFailure, TokenError
from roomd.sim.graph.wire import (
    GraphError,
    GraphRequest,
    GraphResponse,
    dumps,
    error_body,
    new_request_id,
    parse_query,
)

JSON_CT = (
    "application/json;odata.metadata=minimal;odata.streaming=true;"
    "IEEE754Compatible=false;charset=utf-8"
)

if TYPE_CHECKING:
    from roomd.sim.graph.simulator import GraphSimulator


class Front:
    """Owns the aiohttp application of one simulator."""

    def __init__(self, sim: GraphSimulator) -> None:
        self.sim = sim
        self.app = web.Application(client_max_size=8 * 1024 * 1024)
        r = self.app.router
        r.add_get("/{tenant}/v2.0/.well-known/openid-configuration", self.openid)
        r.add_get("/{tenant}/.well-known/openid-configuration", self.openid)
        r.add_get("/{tenant}/discovery/v2.0/keys", self.jwks)
        r.add_post("/{tenant}/oauth2/v2.0/token", self.token)
        r.add_route("*", "/v1.0/{tail:.*}", self.graph)
        sim.control.add_routes(r)
        self.app.on_response_prepare.append(self._date)

    async def _date(self, request: web.Request, response: web.StreamResponse) -> None:
        """Every answer's ``Date`` reads the simulated clock, as a real server's reads its own,
        so a client can measure its clock's skew against the service (RFC 9110 6.6.1)."""
        response.headers["Date"] = format_datetime(self.sim.clock.now(), usegmt=True)

    # -- identity ---------------------------------------------------------------------------
    def _known_tenant(self, tenant: str) -> bool:
        ident = self.sim.identity
        return tenant.lower() in (ident.tenant_id.lower(), ident.domain.lower())

    async def openid(self, request: web.Request) -> web.Response:
        tenant = request.match_info["tenant"]
        if not self._known_tenant(tenant):
            err = TokenError(400, "invalid_tenant", 90002, f"Tenant '{tenant}' not found.")
            return web.json_response(err.body(self.sim.clock.now()), status=400)
        return web.json_response(self.sim.identity.openid_configuration(self.sim.authority_host))

    async def jwks(self, request: web.Request) -> web.Response:
        return web.json_response(self.sim.identity.jwks())

    async def token(self, request: web.Request) -> web.StreamResponse:
        verdict = self.sim.faults.injected("token", "POST", request.path, None)
        if verdict is not None:
            if verdict.delay_s:
                await asyncio.sleep(verdict.delay_s)
            if verdict.drop:
                return self._drop(request)
            if verdict.status is not None:
                headers = {"Retry-After": verdict.retry_after} if verdict.retry_after else {}
                err = TokenError(verdict.status, "temporarily_unavailable", 90033, verdict.message)
                return web.json_response(
                    err.body(self.sim.clock.now()), status=verdict.status, headers=headers
                )
        raw = await request.text()
        form = dict(parse_qsl(raw, keep_blank_values=True))
        endpoint = f"{self.sim.authority_host}{request.path}"
        try:
            body = self.sim.identity.issue_token(request.match_info["tenant"], form, endpoint)
        except TokenError as exc:
            return web.json_response(exc.body(self.sim.clock.now()), status=exc.status)
        return web.json_response(body, headers={"Cache-Control": "no-store, no-cache"})

    # -- graph ------------------------------------------------------------------------------
    @staticmethod
    def _drop(request: web.Request) -> web.StreamResponse:
        if request.transport is not None:
            request.transport.abort()
        raise asyncio.CancelledError

    async def graph(self, request: web.Request) -> web.StreamResponse:
        request_id = new_request_id()
        client_rid = request.headers.get("client-request-id")
        raw_path = request.rel_url.raw_path
        path = raw_path[len("/v1.0") :] or "/"
        raw_query = request.rel_url.raw_query_string
        headers = {k.lower(): v for k, v in request.headers.items()}
        prefer = request.headers.getall("Prefer", [])
        if prefer:
            headers["prefer"] = ", ".join(prefer)
        req = GraphRequest(request.method, path, parse_query(raw_query), headers, None, raw_query)
        try:
            identity = self.sim.identity.authenticate(request.headers.get("Authorization"))
        except AuthFailure as exc:
            return self._error(
                GraphError(401, "InvalidAuthenticationToken", str(exc)),
                request_id,
                client_rid,
                {
                    "WWW-Authenticate": 'Bearer realm="", authorization_uri="https://login.'
                    'microsoftonline.com/common/oauth2/authorize", client_id="00000003-0000-'
                    '0000-c000-000000000000"'
                },
            )
        req.app_id, req.roles = identity.app_id, identity.roles
        if request.can_read_body:
            text = await request.text()
            if text.strip():
                try:
                    req.body = json.loads(text)
                except ValueError:
                    return self._error(
                        GraphError(
                            400,
                            "BadRequest",
                            "Unable to read JSON request payload. Please ensure Content-Type "
                            "header is set and payload is of valid JSON format.",
                        ),
                        request_id,
                        client_rid,
                    )
        mailbox = self.sim.api.mailbox_of(path)
        verdict = self.sim.faults.injected("graph", request.method, path, mailbox)
        if verdict is not None and verdict.drop:
            return self._drop(request)
        res = await self.execute(req, verdict)
        if res.drop_connection or (verdict is not None and verdict.lose_answer):
            return self._drop(request)  # carried out; the answer never reaches the client
        return self._respond(res, request_id, client_rid)

    async def execute(self, req: GraphRequest, verdict: Any = None) -> GraphResponse:
        """Faults, throttling and the route for one request (socket or batch item)."""
        sim = self.sim
        mailbox = sim.api.mailbox_of(req.path)
        if req.in_batch:
            verdict = sim.faults.injected("graph", req.method, req.path, mailbox, allow_drop=False)
        if verdict is not None:
            if verdict.delay_s and verdict.status is None:
                pass  # slow: delay while holding a concurrency slot, below
            elif verdict.status is not None:
                if verdict.delay_s:
                    await asyncio.sleep(verdict.delay_s)
                # the generic throttling body carries code/message/status in innerError
                # (concepts/throttling.md sample, throttling-429.json)
                inner = (
                    {
                        "code": str(verdict.status),
                        "message": "Please retry after",
                        "status": str(verdict.status),
                    }
                    if verdict.code == "TooManyRequests"
                    else None
                )
                return self._error_response(
                    GraphError(
                        verdict.status,
                        verdict.code,
                        verdict.message,
                        {"Retry-After": verdict.retry_after} if verdict.retry_after else {},
                        inner,
                    )
                )
        if mailbox is not None:
            throttled = sim.faults.admit(req.app_id, mailbox)
            if throttled is not None and throttled.status is not None:
                return self._error_response(
                    GraphError(
                        throttled.status,
                        throttled.code,
                        throttled.message,
                        {"Retry-After": throttled.retry_after or "1"},
                    )
                )
            sim.faults.enter(req.app_id, mailbox)
        try:
            if verdict is not None and verdict.delay_s and verdict.status is None:
                await asyncio.sleep(verdict.delay_s)
            if req.path.rstrip("/").lower() == "/$batch" and not req.in_batch:
                if req.method != "POST":
                    raise GraphError(405, "BadRequest", "$batch accepts POST only.")
                body = await batch.run_batch(req, self.execute)
                return GraphResponse(200, body)
            return await sim.api.handle(req)
        except GraphError as exc:
            return self._error_response(exc)
        finally:
            if mailbox is not None:
                sim.faults.leave(req.app_id, mailbox)

    def _error_response(self, exc: GraphError) -> GraphResponse:
        body = error_body(
            exc.code, exc.message, new_request_id(), None, self.sim.clock.now(), exc.inner
        )
        return GraphResponse(exc.status, body, dict(exc.headers))

    def _error(
        self,
        exc: GraphError,
        request_id: str,
        client_rid: str | None,
        extra: dict[str, str] | None = None,
    ) -> web.Response:
        res = GraphResponse(
            exc.status,
            error_body(exc.code, exc.message, request_id, client_rid, self.sim.clock.now()),
            {**exc.headers, **(extra or {})},
        )
        return self._respond(res, request_id, client_rid)

    def _respond(self, res: GraphResponse, request_id: str, client_rid: str | None) -> web.Response:
        headers = {
            "request-id": request_id,
            "client-request-id": client_rid or request_id,
            "x-ms-ags-diagnostic": '{"ServerInfo":{"DataCenter":"Local","Slice":"E",'
            '"Ring":"SIM","ScaleUnit":"000","RoleInstance":"roomd-sim"}}',
            **res.headers,
        }
        if isinstance(res.body, dict) and "error" in res.body:
            inner = res.body["error"].setdefault("innerError", {})
            inner["request-id"] = request_id
            inner["client-request-id"] = client_rid or request_id
        if res.body is None:
            return web.Response(status=res.status, headers=headers)
        headers["Content-Type"] = JSON_CT
        return web.Response(status=res.status, body=dumps(res.body), headers=headers)
