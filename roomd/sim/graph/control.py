"""The control surface: what tests and the demo may change in the simulated tenant.

In-process methods (``sim.control.<method>``) and the same operations over HTTP under ``/_sim/``
(loopback callers only). Acting as a user needs no special door: the app's token may write any
mailbox, as an application permission can (graph-behaviour.md 3.2), so "Adele books Room 4A" is
``POST /v1.0/users/adelev@contoso.com/events`` with the room as a resource attendee.
docs/graph-simulator.md documents every method and endpoint.
"""

from __future__ import annotations

import ipaddress
import json
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from aiohttp import web

from roomd.sim.graph.faults import FaultRule
from roomd.sim.graph.render import OutputZone, render_event

if TYPE_CHECKING:
    from roomd.sim.graph.simulator import GraphSimulator


class ControlError(ValueError):
    """Bad input to the control surface; the message names what is wrong."""


class SimControl:
    def __init__(self, sim: GraphSimulator) -> None:
        self._sim = sim

    # -- time -------------------------------------------------------------------------------
    def now(self) -> datetime:
        return self._sim.clock.now()

    def advance_clock(self, seconds: float) -> datetime:
        """Move simulated time: token lifetimes, booking windows, delta-token age, budgets."""
        return self._sim.clock.advance(timedelta(seconds=seconds))

    def set_clock(self, when: datetime) -> datetime:
        try:
            return self._sim.clock.set(when)
        except ValueError as exc:
            raise ControlError(str(exc)) from exc

    def freeze_clock(self, when: datetime | None = None) -> datetime:
        """Stop simulated time (e.g. to assert exact timestamps) until ``unfreeze_clock``."""
        return self._sim.clock.freeze(when)

    def unfreeze_clock(self) -> None:
        self._sim.clock.unfreeze()

    # -- switches and room settings ---------------------------------------------------------
    def switches(self) -> dict[str, Any]:
        return self._sim.switches.as_dict()

    def set_switches(self, **changes: Any) -> dict[str, Any]:
        try:
            self._sim.switches.update(changes)
        except ValueError as exc:
            raise ControlError(str(exc)) from exc
        if "rba_delay" in changes:
            self._sim.exchange.rba.cancel_rba_timer()
            self._sim.exchange.rba.schedule()
        return self.switches()

    def calendar_processing(self, room: str) -> dict[str, Any]:
        return self._room(room).processing.as_dict()  # type: ignore[no-any-return]

    def set_calendar_processing(self, room: str, **settings: Any) -> dict[str, Any]:
        """Set-CalendarProcessing for a room (names as in the cmdlet, e.g. DeleteSubject)."""
        mbx = self._room(room)
        try:
            mbx.processing.update(settings)
        except ValueError as exc:
            raise ControlError(f"room {room}: {exc}") from exc
        return mbx.processing.as_dict()  # type: ignore[no-any-return]

    def _room(self, room: str) -> Any:
        mbx = self._sim.directory.find(room)
        if mbx is None or not mbx.is_room:
            raise ControlError(f"{room!r} is not a room mailbox of this tenant")
        return mbx

    # -- the Resource Booking Assistant -----------------------------------------------------
    def run_rba(self) -> int:
        """Let the RBA process everything pending (use with ``rba_delay=None``)."""
        return self._sim.exchange.rba.run_rba()

    def run_rba_step(self) -> int:
        """One RBA stage: e.g. the room copy appears with its real subject, not yet rewritten."""
        return self._sim.exchange.rba.run_rba_step()

    def pending_rba(self) -> int:
        return len(self._sim.exchange.rba.rba_queue)

    # -- faults and throttling --------------------------------------------------------------
    def inject_fault(self, **rule: Any) -> dict[str, Any]:
        """e.g. ``inject_fault(kind="status", status=429, retry_after="2.128",
        mailbox="room-4a@contoso.com", count=3)``; kinds: status, slow (delay_s), drop (before
        the request is carried out), lose_answer (after: the work is done, the answer lost)."""
        try:
            added = self._sim.faults.add(FaultRule(**rule))
        except TypeError as exc:
            raise ControlError(f"fault: {exc}") from exc
        except ValueError as exc:
            raise ControlError(str(exc)) from exc
        return added.as_dict()

    def faults(self) -> list[dict[str, Any]]:
        return [r.as_dict() for r in self._sim.faults.rules]

    def clear_faults(self) -> None:
        self._sim.faults.clear()

    def set_throttling(
        self,
        *,
        concurrency_limit: int | str | None = "keep",
        budget: int | str | None = "keep",
        budget_window_s: float | None = None,
        concurrency_retry_after: str | None = None,
    ) -> dict[str, Any]:
        f = self._sim.faults
        if concurrency_limit != "keep":
            if concurrency_limit is not None and (
                not isinstance(concurrency_limit, int) or concurrency_limit < 1
            ):
                raise ControlError(
                    f"concurrency_limit must be >= 1 or null, got {concurrency_limit!r}"
                )
            f.concurrency_limit = concurrency_limit
        if budget != "keep":
            if budget is not None and (not isinstance(budget, int) or budget < 1):
                raise ControlError(f"budget must be >= 1 or null, got {budget!r}")
            f.budget = budget
        if budget_window_s is not None:
            f.budget_window = timedelta(seconds=budget_window_s)
        if concurrency_retry_after is not None:
            f.concurrency_retry_after = concurrency_retry_after
        return {
            "concurrency_limit": f.concurrency_limit,
            "budget": f.budget,
            "budget_window_s": f.budget_window.total_seconds(),
            "concurrency_retry_after": f.concurrency_retry_after,
            "throttled": f.throttled,
        }

    # -- delta tokens -----------------------------------------------------------------------
    def expire_delta_tokens(self, mailbox: str | None = None) -> int:
        """Every delta/skip token (of one mailbox) answers 410 SyncStateNotFound from now on."""
        if mailbox is not None and self._sim.directory.find(mailbox) is None:
            raise ControlError(f"{mailbox!r} is not a mailbox of this tenant")
        key = self._sim.directory.find(mailbox).email if mailbox else None  # type: ignore[union-attr]
        return self._sim.delta.expire(key)

    # -- subscriptions ----------------------------------------------------------------------
    def subscriptions(self) -> list[dict[str, Any]]:
        return [s.as_graph() for s in self._sim.subscriptions.subs.values()]

    def send_lifecycle(self, subscription_id: str, event: str) -> None:
        """Post a lifecycle notification: ``missed``, ``reauthorizationRequired`` (notifications
        pause until PATCH or /reauthorize) or ``subscriptionRemoved`` (the subscription ends)."""
        try:
            self._sim.subscriptions.lifecycle(subscription_id, event)
        except ValueError as exc:
            raise ControlError(str(exc)) from exc

    def deliveries(self) -> list[dict[str, Any]]:
        """Every notification POST so far: url, body, and each attempt's status or error."""
        return [
            {"url": d.url, "body": d.body, "attempts": list(d.attempts)}
            for d in self._sim.subscriptions.deliveries
        ]

    async def notifications_idle(self) -> None:
        """Wait until every queued notification was delivered or given up."""
        await self._sim.subscriptions.idle()

    # -- identity ---------------------------------------------------------------------------
    def token(self, client_id: str | None = None) -> str:
        """An app access token without the OAuth dance (for curl and demos)."""
        try:
            return self._sim.identity.token_for(client_id or self._sim.client_id)
        except KeyError as exc:
            raise ControlError(str(exc.args[0])) from exc

    def revoke_tokens(self) -> None:
        """Tokens issued until now get 401 (as after a credential reset)."""
        self._sim.identity.revoked_below = self._sim.identity.tokens_issued

    def token_requests(self) -> int:
        """Token requests received so far, answered or refused."""
        return self._sim.identity.token_requests

    def set_token_lifetime(self, seconds: int) -> None:
        if seconds < 1:
            raise ControlError(f"token lifetime must be positive, got {seconds}")
        self._sim.identity.token_lifetime = timedelta(seconds=seconds)

    def expire_client_secret(self, client_id: str | None = None) -> None:
        """The app's secrets expire now: the token endpoint answers AADSTS7000222."""
        app = self._sim.identity.apps.get(client_id or self._sim.client_id)
        if app is None:
            raise ControlError(f"no app registration with client id {client_id!r}")
        for secret in app.secrets:
            secret.expires_at = self._sim.clock.now()

    def set_client_secret_expiry(self, when: datetime, client_id: str | None = None) -> None:
        """The app's secrets expire at ``when`` (their ``endDateTime``; until then they work)."""
        if when.tzinfo is None:
            raise ControlError(f"secret expiry {when.isoformat()!r} has no UTC offset")
        app = self._sim.identity.apps.get(client_id or self._sim.client_id)
        if app is None:
            raise ControlError(f"no app registration with client id {client_id!r}")
        for secret in app.secrets:
            secret.expires_at = when

    def set_roles(self, roles: list[str], client_id: str | None = None) -> None:
        """The app's admin-consented application permissions (tokens issued from now on)."""
        app = self._sim.identity.apps.get(client_id or self._sim.client_id)
        if app is None:
            raise ControlError(f"no app registration with client id {client_id!r}")
        app.roles = tuple(roles)

    def set_access_policy(self, mailboxes: list[str] | None, client_id: str | None = None) -> None:
        """New-ApplicationAccessPolicy RestrictAccess: only these mailboxes (None: all)."""
        app = self._sim.identity.apps.get(client_id or self._sim.client_id)
        if app is None:
            raise ControlError(f"no app registration with client id {client_id!r}")
        app.allowed_mailboxes = None if mailboxes is None else {m.lower() for m in mailboxes}

    # -- tenant -----------------------------------------------------------------------------
    def add_room(
        self, email: str, display_name: str, time_zone: str = "UTC", capacity: int | None = None
    ) -> dict[str, Any]:
        try:
            mbx = self._sim.directory.add_room(email, display_name, time_zone, capacity)
        except ValueError as exc:
            raise ControlError(str(exc)) from exc
        return {"id": mbx.id, "email": mbx.email}

    def add_user(self, email: str, display_name: str) -> dict[str, Any]:
        try:
            mbx = self._sim.directory.add_user(email, display_name)
        except ValueError as exc:
            raise ControlError(str(exc)) from exc
        return {"id": mbx.id, "email": mbx.email}

    def events(self, mailbox: str) -> list[dict[str, Any]]:
        """Every stored event of a mailbox as Graph renders it (UTC), for inspection."""
        mbx = self._sim.directory.find(mailbox)
        if mbx is None:
            raise ControlError(f"{mailbox!r} is not a mailbox of this tenant")
        cal = self._sim.exchange.calendar(mbx)
        zone = OutputZone("UTC")
        return [render_event(e, zone, ext_filter=[]) for e in cal.events.values()]

    def state(self) -> dict[str, Any]:
        sim = self._sim
        return {
            "authority_host": sim.authority_host,
            "base_url": sim.base_url,
            "tenant_id": sim.tenant_id,
            "client_id": sim.client_id,
            "now": self.now().isoformat(),
            "switches": self.switches(),
            "faults": self.faults(),
            "throttling": self.set_throttling(),
            "pending_rba": self.pending_rba(),
            "mailboxes": [
                {"email": m.email, "id": m.id, "room": m.is_room} for m in sim.directory.mailboxes
            ],
        }

    # -- HTTP -------------------------------------------------------------------------------
    def add_routes(self, router: web.UrlDispatcher) -> None:
        routes: list[tuple[str, str, Any]] = [
            ("GET", "/_sim/state", lambda b, m: self.state()),
            ("GET", "/_sim/clock", lambda b, m: {"now": self.now().isoformat()}),
            (
                "POST",
                "/_sim/clock/advance",
                lambda b, m: {"now": self.advance_clock(float(b["seconds"])).isoformat()},
            ),
            (
                "POST",
                "/_sim/clock/set",
                lambda b, m: {"now": self.set_clock(datetime.fromisoformat(b["now"])).isoformat()},
            ),
            (
                "POST",
                "/_sim/clock/freeze",
                lambda b, m: {
                    "now": self.freeze_clock(
                        datetime.fromisoformat(b["now"]) if b.get("now") else None
                    ).isoformat()
                },
            ),
            ("POST", "/_sim/clock/unfreeze", lambda b, m: _done(self.unfreeze_clock, ok=True)),
            (
                "POST",
                "/_sim/tokens/lifetime",
                lambda b, m: _done(self.set_token_lifetime, int(b["seconds"]), ok=True),
            ),
            ("GET", "/_sim/switches", lambda b, m: self.switches()),
            ("POST", "/_sim/switches", lambda b, m: self.set_switches(**b)),
            (
                "GET",
                "/_sim/rooms/{room}/calendar-processing",
                lambda b, m: self.calendar_processing(m["room"]),
            ),
            (
                "POST",
                "/_sim/rooms/{room}/calendar-processing",
                lambda b, m: self.set_calendar_processing(m["room"], **b),
            ),
            ("POST", "/_sim/rooms", lambda b, m: self.add_room(**b)),
            ("POST", "/_sim/users", lambda b, m: self.add_user(**b)),
            ("GET", "/_sim/mailboxes/{mailbox}/events", lambda b, m: self.events(m["mailbox"])),
            ("POST", "/_sim/rba/run", lambda b, m: {"processed": self.run_rba()}),
            ("GET", "/_sim/subscriptions", lambda b, m: self.subscriptions()),
            (
                "POST",
                "/_sim/subscriptions/{sid}/lifecycle",
                lambda b, m: _done(self.send_lifecycle, m["sid"], b.get("event", ""), sent=True),
            ),
            ("GET", "/_sim/deliveries", lambda b, m: self.deliveries()),
            ("GET", "/_sim/faults", lambda b, m: self.faults()),
            ("POST", "/_sim/faults", lambda b, m: self.inject_fault(**b)),
            ("DELETE", "/_sim/faults", lambda b, m: _done(self.clear_faults, cleared=True)),
            ("POST", "/_sim/throttling", lambda b, m: self.set_throttling(**b)),
            (
                "POST",
                "/_sim/delta/expire",
                lambda b, m: {"expired_chains": self.expire_delta_tokens(b.get("mailbox"))},
            ),
            (
                "POST",
                "/_sim/token",
                lambda b, m: {"access_token": self.token(b.get("client_id"))},
            ),
            ("POST", "/_sim/tokens/revoke", lambda b, m: _done(self.revoke_tokens, revoked=True)),
            (
                "POST",
                "/_sim/secrets/expire",
                lambda b, m: _done(self.expire_client_secret, b.get("client_id"), expired=True),
            ),
            (
                "POST",
                "/_sim/access-policy",
                lambda b, m: _done(
                    self.set_access_policy, b.get("mailboxes"), b.get("client_id"), ok=True
                ),
            ),
            (
                "POST",
                "/_sim/secrets/expiry",
                lambda b, m: _done(
                    self.set_client_secret_expiry,
                    datetime.fromisoformat(b["when"]),
                    b.get("client_id"),
                    ok=True,
                ),
            ),
            (
                "POST",
                "/_sim/roles",
                lambda b, m: _done(self.set_roles, list(b["roles"]), b.get("client_id"), ok=True),
            ),
        ]
        for method, path, fn in routes:
            router.add_route(method, path, self._wrap(fn))

    def _wrap(self, fn: Any) -> Any:
        async def handler(request: web.Request) -> web.Response:
            remote = request.remote or ""
            try:
                loopback = ipaddress.ip_address(remote).is_loopback
            except ValueError:
                loopback = False
            if not loopback:
                return web.json_response(
                    {"error": "the control surface is loopback-only"}, status=403
                )
            body: dict[str, Any] = {}
            if request.can_read_body:
                try:
                    raw = await request.json()
                except ValueError:
                    return web.json_response({"error": "body is not JSON"}, status=400)
                if not isinstance(raw, dict):
                    return web.json_response({"error": "body must be a JSON object"}, status=400)
                body = raw
            try:
                result = fn(body, request.match_info)
            except (ControlError, KeyError, TypeError, ValueError) as exc:
                return web.json_response({"error": str(exc)}, status=400)
            return web.json_response(result, dumps=_dumps)

        return handler


def _dumps(obj: Any) -> str:
    return json.dumps(obj, default=str)


def _done(fn: Any, *args: Any, **result: Any) -> dict[str, Any]:
    fn(*args)
    return result
