"""Change notifications (graph-behaviour.md 5, checklist 7.9): subscriptions, the validation
handshake, deliveries, retries and lifecycle events, against a real local webhook receiver."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web

from .conftest import ADELE, ROOM, World, fixture, same_shape, tomorrow_at


class Receiver:
    """A webhook endpoint on an ephemeral loopback port: answers the validation handshake as the
    docs require (200, text/plain, the decoded token) unless told to misbehave."""

    def __init__(self) -> None:
        self.notifications: list[dict[str, Any]] = []
        self.lifecycle: list[dict[str, Any]] = []
        self.mode = "ok"  # ok | wrong-token | encoded | fail-next | slow
        self.failures_left = 0
        self.slow_left = 0  # deliveries answered too late (after ``slow_s``) before an answer
        self.slow_s = 0.0
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        token = request.query.get("validationToken")
        if token is not None:
            if self.mode == "slow":
                await asyncio.sleep(1)
            if self.mode == "wrong-token":
                return web.Response(text="nope", content_type="text/plain")
            if self.mode == "encoded":
                return web.Response(
                    text=request.rel_url.raw_query_string.split("=", 1)[1],
                    content_type="text/plain",
                )
            return web.Response(text=token, content_type="text/plain")
        if self.failures_left > 0:
            self.failures_left -= 1
            return web.Response(status=500)
        if self.slow_left > 0:  # too late: Graph has given up on this attempt
            self.slow_left -= 1
            await asyncio.sleep(self.slow_s)
            return web.Response(status=202)
        body = await request.json()
        target = self.lifecycle if request.path.endswith("/lifecycle") else self.notifications
        target.extend(body["value"])
        return web.Response(status=202)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/notify", self.handle)
        app.router.add_post("/lifecycle", self.handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
async def receiver(world: World) -> AsyncIterator[Receiver]:
    world.sim.control.set_switches(
        subscription_allow_http=True,
        subscription_validation_timeout_s=0.5,
        notification_retry_delays=[0.05, 0.05],
    )
    rec = Receiver()
    await rec.start()
    try:
        yield rec
    finally:
        await rec.stop()


def request_body(
    receiver: Receiver, world: World, minutes: int = 4200, **extra: Any
) -> dict[str, Any]:
    expires = world.sim.control.now() + timedelta(minutes=minutes)
    return {
        "changeType": "created,updated,deleted",
        "notificationUrl": f"{receiver.url}/notify",
        "lifecycleNotificationUrl": f"{receiver.url}/lifecycle",
        "resource": f"/users/{ROOM}/events",
        "expirationDateTime": expires.strftime("%Y-%m-%dT%H:%M:%S.0000000Z"),
        "clientState": "s3cret-state",
        **extra,
    }


async def test_subscription_is_created_after_the_handshake(
    world: World, receiver: Receiver
) -> None:
    """subscription-post-subscriptions.md: 201 with the subscription, in the Outlook shape with
    every property (subscription-outlook-create-response.json, outlook-change-notifications-
    overview.md); the older generic sample (subscription-create-response.json) shows a subset
    of those properties, all of which must be there with the same types."""
    r = await world.graph.post("/subscriptions", json=request_body(receiver, world))
    assert r.status_code == 201, r.text
    assert not same_shape(r.json(), fixture("subscription-outlook-create-response.json"))
    generic = fixture("subscription-create-response.json")
    # The two samples disagree: the Outlook one (for event resources) has
    # notificationContentType null, the generic one "application/json"; Outlook's decides.
    assert r.json()["notificationContentType"] is None
    generic.pop("notificationContentType")
    assert not same_shape(r.json(), generic, subset=True)
    assert r.json()["changeType"] == "created,updated,deleted"


@pytest.mark.parametrize("mode", ["wrong-token", "encoded", "slow"])
async def test_failed_handshake_fails_the_create(
    world: World, receiver: Receiver, mode: str
) -> None:
    """notificationurl-validation.md: the decoded token, text/plain, within the deadline;
    "If the client returns an encoded validation token, the validation fails"."""
    receiver.mode = mode
    r = await world.graph.post("/subscriptions", json=request_body(receiver, world))
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "ValidationError"
    assert world.sim.control.subscriptions() == []


async def test_limits_on_resource_expiry_and_scheme(world: World, receiver: Receiver) -> None:
    """4,230 minutes at most (subscription-lifetime include); calendarView not subscribable;
    https required (switch subscription_allow_http)."""
    too_long = await world.graph.post(
        "/subscriptions", json=request_body(receiver, world, minutes=4231)
    )
    assert too_long.status_code == 400
    view = request_body(receiver, world, resource=f"/users/{ROOM}/calendarView")
    assert (await world.graph.post("/subscriptions", json=view)).status_code == 400
    world.sim.control.set_switches(subscription_allow_http=False)
    r = await world.graph.post("/subscriptions", json=request_body(receiver, world))
    assert r.status_code == 400
    assert "https" in r.json()["error"]["message"]


async def test_changes_are_notified_with_guid_resource_paths(
    world: World, receiver: Receiver
) -> None:
    """delivery-webhooks.md + synthesized/change-notification-event.json: Users/{guid}/Events/{id},
    clientState echoed, one POST may carry several notifications."""
    await world.graph.post("/subscriptions", json=request_body(receiver, world))
    await world.book(start=tomorrow_at(9))
    await world.sim.control.notifications_idle()
    room_user = (await world.graph.get(f"/users/{ROOM}")).json()["id"]
    kinds = [n["changeType"] for n in receiver.notifications]
    assert kinds[0] == "created" and "updated" in kinds
    first = receiver.notifications[0]
    assert first["resource"].startswith(f"Users/{room_user}/Events/")
    assert first["clientState"] == "s3cret-state"
    # the verbatim sample (change-notifications-delivery-webhooks.md) has the notification
    # ``id`` that the synthesized event form leaves out; both are compared
    assert not same_shape(first, fixture("change-notification-basic.json")["value"][0])
    synthesized = fixture("synthesized/change-notification-event.json")["value"][0]
    assert not same_shape(first, synthesized, subset=True)
    room_event = await world.only_event(ROOM)
    assert first["resourceData"]["id"] == room_event["id"]


async def test_failed_delivery_is_retried(world: World, receiver: Receiver) -> None:
    """graph-behaviour.md 5.3 and checklist 7.9, citing change-notifications-delivery-webhooks.md:
    an endpoint that does not reply 2xx gets the notification again ("retries ... for up to 4
    hours"; delays compressed by switch ``notification_retry_delays``)."""
    await world.graph.post(
        "/subscriptions", json=request_body(receiver, world, changeType="created")
    )
    receiver.failures_left = 2
    await world.graph.post(f"/users/{ROOM}/events", json=world.meeting(tomorrow_at(9), room=None))
    await world.sim.control.notifications_idle()
    assert [n["changeType"] for n in receiver.notifications] == ["created"]
    assert world.sim.control.deliveries()[0]["attempts"] == [500, 500, 202]


async def test_lifecycle_events(world: World, receiver: Receiver) -> None:
    """change-notifications-lifecycle-events.md: reauthorizationRequired pauses until PATCH;
    subscriptionRemoved ends the subscription (lifecycle-notification.json shape)."""
    sub = (await world.graph.post("/subscriptions", json=request_body(receiver, world))).json()
    world.sim.control.send_lifecycle(sub["id"], "reauthorizationRequired")
    await world.graph.post(f"/users/{ROOM}/events", json=world.meeting(tomorrow_at(9), room=None))
    await world.sim.control.notifications_idle()
    assert receiver.notifications == []
    assert not same_shape(receiver.lifecycle[0], fixture("lifecycle-notification.json")["value"][0])
    renew = (world.sim.control.now() + timedelta(minutes=60)).strftime("%Y-%m-%dT%H:%M:%SZ")
    r = await world.graph.patch(f"/subscriptions/{sub['id']}", json={"expirationDateTime": renew})
    assert r.status_code == 200
    await world.graph.post(f"/users/{ROOM}/events", json=world.meeting(tomorrow_at(11), room=None))
    await world.sim.control.notifications_idle()
    assert [n["changeType"] for n in receiver.notifications] == ["created"]
    world.sim.control.send_lifecycle(sub["id"], "subscriptionRemoved")
    await world.sim.control.notifications_idle()
    assert [x["lifecycleEvent"] for x in receiver.lifecycle] == [
        "reauthorizationRequired",
        "subscriptionRemoved",
    ]
    assert (await world.graph.get(f"/subscriptions/{sub['id']}")).status_code == 404


async def test_expired_subscription_stops_and_delete_is_204(
    world: World, receiver: Receiver
) -> None:
    """graph-behaviour.md 5.1 "Expiry limits" and "Renew and delete", citing
    resources/subscription.md (a subscription lasts until its ``expirationDateTime``) and
    "DELETE /subscriptions/{id} returns 204": an expired subscription notifies no more."""
    sub = (
        await world.graph.post("/subscriptions", json=request_body(receiver, world, minutes=30))
    ).json()
    world.sim.control.advance_clock(31 * 60)
    world.graph.headers["Authorization"] = f"Bearer {world.sim.control.token()}"
    await world.graph.post(f"/users/{ADELE}/events", json=world.meeting(tomorrow_at(9)))
    world.sim.control.run_rba()
    await world.sim.control.notifications_idle()
    assert receiver.notifications == []
    assert (await world.graph.delete(f"/subscriptions/{sub['id']}")).status_code == 204


async def test_documented_subscription_requests_are_accepted(
    world: World, receiver: Receiver
) -> None:
    """subscription-create-request.json (change-notifications-lifecycle-events.md) and
    subscription-renew-request.json (change-notifications-delivery-webhooks.md) as sent, except
    what the fixtures README marks as placeholders: the messages resource ("for events use
    /users/{id}/events"), the webhook host, and expiry dates long past."""
    body = fixture("subscription-create-request.json")
    body["resource"] = body["resource"].replace("{id}", ROOM).replace("/messages", "/events")
    body["notificationUrl"] = f"{receiver.url}/notify"
    body["lifecycleNotificationUrl"] = f"{receiver.url}/lifecycle"
    soon = world.sim.control.now() + timedelta(minutes=60)
    body["expirationDateTime"] = soon.strftime("%Y-%m-%dT%H:%M:%S.0000000Z")
    r = await world.graph.post("/subscriptions", json=body)
    assert r.status_code == 201, r.text
    assert r.json()["changeType"] == "created,updated"
    renew = fixture("subscription-renew-request.json")
    later = world.sim.control.now() + timedelta(minutes=120)
    renew["expirationDateTime"] = later.strftime("%Y-%m-%dT%H:%M:%S.0000000Z")
    r = await world.graph.patch(f"/subscriptions/{r.json()['id']}", json=renew)
    assert r.status_code == 200, r.text


async def test_change_type_is_read_case_insensitively(world: World, receiver: Receiver) -> None:
    """Graph is case-insensitive for enums (msgraph-sdk-android PR #68, Microsoft maintainer);
    the subscription echoes Graph's casing (subscription.md: created, updated, deleted)."""
    r = await world.graph.post(
        "/subscriptions", json=request_body(receiver, world, changeType="Created,UPDATED")
    )
    assert r.status_code == 201, r.text
    assert r.json()["changeType"] == "created,updated"
    bad = await world.graph.post(
        "/subscriptions", json=request_body(receiver, world, changeType="created,moved")
    )
    assert bad.status_code == 400


async def test_slow_endpoint_gets_the_notification_again(world: World, receiver: Receiver) -> None:
    """graph-behaviour.md 5.3 and checklist 7.9 ("Retries when the endpoint is slow or fails"),
    citing change-notifications-delivery-webhooks.md: reply 2xx within 3 s, otherwise Graph
    retries. The deadline is switch ``notification_timeout_s`` (3 s), shortened here."""
    world.sim.control.set_switches(notification_timeout_s=0.2)
    await world.graph.post(
        "/subscriptions", json=request_body(receiver, world, changeType="created")
    )
    receiver.slow_left, receiver.slow_s = 1, 0.6
    await world.graph.post(f"/users/{ROOM}/events", json=world.meeting(tomorrow_at(9), room=None))
    await world.sim.control.notifications_idle()
    assert [n["changeType"] for n in receiver.notifications] == ["created"]
    attempts = world.sim.control.deliveries()[0]["attempts"]
    assert len(attempts) == 2 and "Timeout" in str(attempts[0]) and attempts[1] == 202, attempts


async def test_missed_lifecycle_event(world: World, receiver: Receiver) -> None:
    """graph-behaviour.md 5.5 and checklist 7.9, citing change-notifications-lifecycle-events.md:
    ``missed`` (supported for Outlook events) goes to lifecycleNotificationUrl in the
    lifecycle-notification.json shape; the subscription stays and keeps notifying (the client's
    answer is a delta resync)."""
    sub = (await world.graph.post("/subscriptions", json=request_body(receiver, world))).json()
    world.sim.control.send_lifecycle(sub["id"], "missed")
    await world.sim.control.notifications_idle()
    assert [x["lifecycleEvent"] for x in receiver.lifecycle] == ["missed"]
    missed = receiver.lifecycle[0]
    assert missed["subscriptionId"] == sub["id"]
    assert missed["clientState"] == "s3cret-state"
    assert not same_shape(missed, fixture("lifecycle-notification.json")["value"][0])
    assert (await world.graph.get(f"/subscriptions/{sub['id']}")).status_code == 200
    await world.graph.post(f"/users/{ROOM}/events", json=world.meeting(tomorrow_at(9), room=None))
    await world.sim.control.notifications_idle()
    assert "created" in [n["changeType"] for n in receiver.notifications]
