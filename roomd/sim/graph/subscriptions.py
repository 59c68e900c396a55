"""Change notifications for events: subscriptions, the validation handshake, deliveries with
retries, and lifecycle notifications.

Sources (graph-behaviour.md 5): contrib api-reference/v1.0/api/subscription-post-subscriptions.md
(create, 201), includes/change-notifications-delivery-notificationurl-validation.md (POST
``{url}?validationToken=...`` text/plain, answer 200 text/plain with the decoded token within
10 s, else the create fails with 400), concepts/change-notifications-delivery-webhooks.md (POST
``{"value": [...]}``, 2xx within 3 s or Graph retries), resources/subscription.md and
includes/change-notifications-subscription-lifetime.md (Outlook events: 4,230 minutes),
outlook-change-notifications-overview.md (``/users/{id}/events``; calendarView is not
subscribable; 1,000 subscriptions per mailbox), change-notifications-lifecycle-events.md
(``reauthorizationRequired``, ``subscriptionRemoved``, ``missed``). Notification ``resource``
paths name the user object id (GUID), not the SMTP address (synthesized/change-notification-
event.json).
"""

from __future__ import annotations

import asyncio
import re
import ssl
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from roomd.sim.graph.clock import SimClock
from roomd.sim.graph.directory import Directory
from roomd.sim.graph.events import Event, to_rest_id
from roomd.sim.graph.settings import Switches
from roomd.sim.graph.wire import JSON, GraphError, canonical_enum, fmt_instant, parse_local

CHANGE_TYPES = ("created", "updated", "deleted")
LIFECYCLE_EVENTS = ("reauthorizationRequired", "subscriptionRemoved", "missed")
RESOURCE = re.compile(r"^/?(?:users/(?P<user>[^/]+)|me)(?:/calendar)?/events$", re.IGNORECASE)
MAX_PER_MAILBOX = 1000


@dataclass
class Subscription:
    id: str
    app_id: str
    mailbox: str  # lower-case address
    user_id: str  # the mailbox's object id, as notifications name it
    resource: str
    change_types: tuple[str, ...]
    notification_url: str
    lifecycle_url: str | None
    expires: datetime
    client_state: str | None
    immutable_ids: bool
    paused: bool = False  # after reauthorizationRequired, until renewed/reauthorized

    def __repr__(self) -> str:  # clientState is a shared secret
        return f"Subscription(id={self.id!r}, resource={self.resource!r})"

    def as_graph(self) -> JSON:
        """The v1.0 Outlook subscription shape (subscription-outlook-create-response.json)."""
        return {
            "id": self.id,
            "resource": self.resource,
            "applicationId": self.app_id,
            "changeType": ",".join(self.change_types),
            "clientState": self.client_state,
            "notificationUrl": self.notification_url,
            "notificationQueryOptions": None,
            "notificationContentType": None,
            "lifecycleNotificationUrl": self.lifecycle_url,
            "expirationDateTime": fmt_instant(self.expires),
            "creatorId": str(uuid.uuid5(uuid.NAMESPACE_URL, self.app_id)),
            "includeResourceData": None,
            "latestSupportedTlsVersion": "v1_2",
            "encryptionCertificate": None,
            "encryptionCertificateId": None,
            "notificationUrlAppId": None,
        }


@dataclass
class Delivery:
    url: str
    body: JSON
    attempts: list[int | str] = field(default_factory=list)  # status codes or error names


class Subscriptions:
    def __init__(
        self,
        directory: Directory,
        clock: SimClock,
        switches: Switches,
        tenant_id: str,
        client_ssl: ssl.SSLContext,
    ) -> None:
        self.directory = directory
        self.clock = clock
        self.switches = switches
        self.tenant_id = tenant_id
        self._ssl = client_ssl
        self.subs: dict[str, Subscription] = {}
        self.deliveries: list[Delivery] = []
        self._pending: dict[str, list[JSON]] = {}
        self._flush_scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None

    # -- lifecycle of the component ---------------------------------------------------------
    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=self._ssl, force_close=True),
                trust_env=False,
            )
        return self._session

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    async def idle(self) -> None:
        """Wait until every queued notification was delivered or given up (tests)."""
        for _ in range(1000):
            if not self._tasks and not self._pending:
                return
            await asyncio.sleep(0.01)

    # -- create / renew / delete ------------------------------------------------------------
    def _check_url(self, url: Any, name: str) -> str:
        if not isinstance(url, str) or not url:
            raise GraphError(400, "InvalidRequest", f"{name} is required.")
        parts = urlsplit(url)
        if parts.scheme == "https" or (
            parts.scheme == "http" and self.switches.subscription_allow_http
        ):
            return url
        raise GraphError(
            400,
            "InvalidRequest",
            f"The {name} must be an https URL (got {parts.scheme or 'no'} scheme).",
        )

    def _expiry(self, value: Any) -> datetime:
        if not isinstance(value, str):
            raise GraphError(400, "InvalidRequest", "expirationDateTime is required.")
        try:
            when = parse_local(value)
        except ValueError as exc:
            raise GraphError(
                400, "InvalidRequest", f"expirationDateTime {value!r} is not a date-time."
            ) from exc
        when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
        now = self.clock.now()
        limit = self.switches.subscription_max_minutes
        if when <= now:
            raise GraphError(
                400, "InvalidRequest", "Subscription expiration must be in the future."
            )
        if when > now + timedelta(minutes=limit):
            raise GraphError(
                400,
                "InvalidRequest",
                f"Subscription expiration can only be {limit} minutes in the future.",
            )
        return when

    async def create(self, body: Any, app_id: str, immutable_ids: bool) -> Subscription:
        if not isinstance(body, dict):
            raise GraphError(400, "InvalidRequest", "The body must be a subscription object.")
        resource = body.get("resource")
        if not isinstance(resource, str):
            raise GraphError(400, "InvalidRequest", "resource is required.")
        if "calendarview" in resource.lower():
            raise GraphError(
                400, "InvalidRequest", "Subscriptions to calendarView are not supported."
            )
        m = RESOURCE.match(resource.strip())
        if m is None or m.group("user") is None:
            raise GraphError(
                400,
                "InvalidRequest",
                f"Resource '{resource}' is not supported: use /users/{{id}}/events.",
            )
        mbx = self.directory.find(m.group("user"))
        if mbx is None:
            raise GraphError(
                404, "ErrorInvalidUser", f"The requested user '{m.group('user')}' is invalid."
            )
        raw_kinds = [k.strip() for k in str(body.get("changeType") or "").split(",") if k.strip()]
        canon = [canonical_enum(k, CHANGE_TYPES) for k in raw_kinds]  # case-insensitive enums
        kinds = tuple(k for k in canon if k is not None)
        if not kinds or len(kinds) != len(raw_kinds):
            raise GraphError(
                400,
                "InvalidRequest",
                f"changeType must be a comma-separated subset of {', '.join(CHANGE_TYPES)}.",
            )
        url = self._check_url(body.get("notificationUrl"), "notificationUrl")
        lifecycle = body.get("lifecycleNotificationUrl")
        if lifecycle is not None:
            lifecycle = self._check_url(lifecycle, "lifecycleNotificationUrl")
        expires = self._expiry(body.get("expirationDateTime"))
        client_state = body.get("clientState")
        if client_state is not None and (
            not isinstance(client_state, str) or len(client_state) > 128
        ):
            raise GraphError(
                400, "InvalidRequest", "clientState must be a string of at most 128 characters."
            )
        if sum(1 for s in self.subs.values() if s.mailbox == mbx.email.lower()) >= MAX_PER_MAILBOX:
            raise GraphError(
                403,
                "ExtensionError",
                "Operation: Create; Exception: [Status Code: Forbidden; Reason: The maximum number "
                "of subscriptions for this mailbox has been reached.]",
            )
        for target in (url, lifecycle):
            if target is not None:
                await self._validate(target)
        sub = Subscription(
            str(uuid.uuid4()),
            app_id,
            mbx.email.lower(),
            mbx.id,
            resource,
            kinds,
            url,
            lifecycle,
            expires,
            client_state,
            immutable_ids,
        )
        self.subs[sub.id] = sub
        return sub

    async def _validate(self, url: str) -> None:
        """The handshake: the decoded token must come back as text/plain within the deadline."""
        token = (
            "Validation: Testing client application reachability for subscription Request-Id: "
            f"{uuid.uuid4()}"
        )
        failure = (
            "Subscription validation request failed. Notification endpoint must respond with 200 "
            "OK to validation request."
        )
        try:
            async with self._client().post(
                url,
                params={"validationToken": token},
                data=b"",
                headers={"Content-Type": "text/plain; charset=utf-8"},
                timeout=aiohttp.ClientTimeout(
                    total=self.switches.subscription_validation_timeout_s
                ),
            ) as resp:
                text = await resp.text()
                ctype = resp.headers.get("Content-Type", "")
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise GraphError(400, "ValidationError", failure) from exc
        if status != 200:
            raise GraphError(400, "ValidationError", failure)
        if not ctype.lower().startswith("text/plain") or text != token:
            raise GraphError(
                400,
                "ValidationError",
                "Subscription validation request failed. Response must exactly match "
                "validationToken query parameter.",
            )

    def get(self, sub_id: str, app_id: str) -> Subscription:
        sub = self.subs.get(sub_id)
        if sub is None or sub.app_id != app_id:
            raise GraphError(
                404, "ResourceNotFound", f"The object was not found. Subscription '{sub_id}'."
            )
        return sub

    def renew(self, sub_id: str, app_id: str, body: Any) -> Subscription:
        sub = self.get(sub_id, app_id)
        if not isinstance(body, dict):
            raise GraphError(400, "InvalidRequest", "The body must be an object.")
        sub.expires = self._expiry(body.get("expirationDateTime"))
        sub.paused = False  # PATCH renews and reauthorizes (lifecycle-events.md)
        return sub

    def reauthorize(self, sub_id: str, app_id: str) -> None:
        self.get(sub_id, app_id).paused = False

    def delete(self, sub_id: str, app_id: str) -> None:
        self.get(sub_id, app_id)
        del self.subs[sub_id]

    # -- notifications ----------------------------------------------------------------------
    def on_change(self, mailbox: str, event_id: str, kind: str, event: Event | None) -> None:
        now = self.clock.now()
        for sub in list(self.subs.values()):
            if sub.mailbox != mailbox or kind not in sub.change_types or sub.paused:
                continue
            if sub.expires <= now:
                continue
            shown = event_id if sub.immutable_ids else to_rest_id(event_id)
            path = f"Users/{sub.user_id}/Events/{shown}"
            data: JSON = {"@odata.type": "#Microsoft.Graph.Event", "@odata.id": path, "id": shown}
            if event is not None:
                data["@odata.etag"] = event.etag
            item: JSON = {
                # changeNotification.id: "Unique ID for the notification" (resources/
                # changenotification.md; the change-notification-basic.json sample carries one)
                "id": uuid.uuid4().hex,
                "subscriptionId": sub.id,
                "subscriptionExpirationDateTime": fmt_instant(sub.expires)[:-1] + "+00:00",
                "changeType": kind,
                "resource": path,
                "resourceData": data,
                "clientState": sub.client_state,
                "tenantId": self.tenant_id,
            }
            self._pending.setdefault(sub.notification_url, []).append(item)
        self._schedule_flush()

    def lifecycle(self, sub_id: str, event: str) -> None:
        """Send a lifecycle notification (and act on it: removed ends, reauthorization pauses)."""
        if event not in LIFECYCLE_EVENTS:
            raise ValueError(f"lifecycle event must be one of {LIFECYCLE_EVENTS}, got {event!r}")
        sub = self.subs.get(sub_id)
        if sub is None:
            raise ValueError(f"no subscription {sub_id!r}")
        if sub.lifecycle_url is None:
            raise ValueError(f"subscription {sub_id} has no lifecycleNotificationUrl")
        item = {
            "subscriptionId": sub.id,
            "subscriptionExpirationDateTime": fmt_instant(sub.expires)[:-1] + "+00:00",
            "tenantId": self.tenant_id,
            "clientState": sub.client_state,
            "lifecycleEvent": event,
        }
        if event == "subscriptionRemoved":
            del self.subs[sub_id]
        elif event == "reauthorizationRequired":
            sub.paused = True
        self._pending.setdefault(sub.lifecycle_url, []).append(item)
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        if self._flush_scheduled or not self._pending:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._flush_scheduled = True
        loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        pending, self._pending = self._pending, {}
        for url, items in pending.items():
            delivery = Delivery(url, {"value": items})
            self.deliveries.append(delivery)
            task = asyncio.get_running_loop().create_task(self._deliver(delivery))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _deliver(self, delivery: Delivery) -> None:
        """POST with retries; 2xx within the deadline ends it (delivery-webhooks.md)."""
        delays = (0.0, *self.switches.notification_retry_delays)
        for delay in delays:
            if delay:
                await asyncio.sleep(delay)
            try:
                async with self._client().post(
                    delivery.url,
                    json=delivery.body,
                    timeout=aiohttp.ClientTimeout(total=self.switches.notification_timeout_s),
                ) as resp:
                    delivery.attempts.append(resp.status)
                    if 200 <= resp.status < 300:
                        return
            except (aiohttp.ClientError, TimeoutError) as exc:
                delivery.attempts.append(type(exc).__name__)
