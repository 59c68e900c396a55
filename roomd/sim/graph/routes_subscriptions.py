"""Subscription routes (subscription-post-subscriptions.md, subscription-update.md,
subscription-delete.md, subscription-reauthorize.md); the behaviour lives in subscriptions.py."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from roomd.sim.graph.subscriptions import Subscription, Subscriptions
from roomd.sim.graph.wire import JSON, GraphError, GraphRequest, GraphResponse, forbidden

if TYPE_CHECKING:
    from roomd.sim.graph.api import GraphApi

READ_ROLES = {"Calendars.Read", "Calendars.ReadWrite", "Calendars.ReadBasic.All"}


class SubscriptionRoutes:
    def __init__(self, api: GraphApi) -> None:
        self.api = api

    def register(self) -> None:
        r = self.api.route
        r("POST", r"/subscriptions", self.create_subscription)
        r("GET", r"/subscriptions", self.list_subscriptions)
        r("GET", r"/subscriptions/(?P<sid>[^/]+)", self.get_subscription)
        r("PATCH", r"/subscriptions/(?P<sid>[^/]+)", self.renew_subscription)
        r("DELETE", r"/subscriptions/(?P<sid>[^/]+)", self.delete_subscription)
        r("POST", r"/subscriptions/(?P<sid>[^/]+)/reauthorize", self.reauthorize_subscription)

    def _subs(self, req: GraphRequest) -> Subscriptions:
        if not req.roles & READ_ROLES:
            raise forbidden()
        if self.api.subscriptions is None:
            raise GraphError(501, "NotImplemented", "Subscriptions are not available.")
        return self.api.subscriptions

    def _sub_body(self, sub: Subscription) -> JSON:
        return {
            "@odata.context": f"{self.api.base_url}/$metadata#subscriptions/$entity",
            **sub.as_graph(),
        }

    async def create_subscription(self, req: GraphRequest, m: re.Match[str]) -> GraphResponse:
        """201 with the subscription after both URLs passed the validation handshake."""
        subs = self._subs(req)
        _, applied = self.api.zone(req)
        immutable = "IdType" in applied and "immutableid" in applied["IdType"].lower()
        created = await subs.create(req.body, req.app_id, immutable)
        return GraphResponse(201, self._sub_body(created), self.api.applied_headers(applied))

    async def list_subscriptions(self, req: GraphRequest, m: re.Match[str]) -> GraphResponse:
        subs = self._subs(req)
        items = [s.as_graph() for s in subs.subs.values() if s.app_id == req.app_id]
        return GraphResponse(
            200, {"@odata.context": f"{self.api.base_url}/$metadata#subscriptions", "value": items}
        )

    async def get_subscription(self, req: GraphRequest, m: re.Match[str]) -> GraphResponse:
        return GraphResponse(200, self._sub_body(self._subs(req).get(m["sid"], req.app_id)))

    async def renew_subscription(self, req: GraphRequest, m: re.Match[str]) -> GraphResponse:
        """PATCH expirationDateTime: renews and reauthorizes (lifecycle-events.md)."""
        renewed = self._subs(req).renew(m["sid"], req.app_id, req.body)
        return GraphResponse(200, self._sub_body(renewed))

    async def delete_subscription(self, req: GraphRequest, m: re.Match[str]) -> GraphResponse:
        self._subs(req).delete(m["sid"], req.app_id)
        return GraphResponse(204)

    async def reauthorize_subscription(self, req: GraphRequest, m: re.Match[str]) -> GraphResponse:
        self._subs(req).reauthorize(m["sid"], req.app_id)
        return GraphResponse(204)
