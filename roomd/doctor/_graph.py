"""The Microsoft 365 side: token, permissions, credential expiry, and each room mailbox.

Every request goes through roomd's own Graph client (msal, the same TLS trust, the same headers),
so what passes here is what the daemon will meet. The probes only gather facts; ``_decide``
says what they mean.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from cryptography import x509

from roomd import utc
from roomd.compose import graph_client_config
from roomd.config import RoomSettings, Settings
from roomd.doctor import _decide as decide
from roomd.doctor._check import Check, failed, passed, skipped
from roomd.graph import AccessDenied, AuthError, GraphClient, GraphError, NotFound
from roomd.graph.http import user_path

LOOK_BACK = timedelta(days=7)
LOOK_AHEAD = timedelta(days=30)
PAGE = 25
COPIES_TRIED = 3
WRITE_CHECK_SUBJECT = "roomd doctor: write check (deleted at once)"


def token_claims(token: str) -> dict[str, Any]:
    """The access token's payload, decoded without a signature check: roomd only reads what
    it was granted (``roles``, ``exp``); Graph verifies the signature. Never printed."""
    try:
        payload = token.split(".")[1]
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, binascii.Error):
        return {}
    return data if isinstance(data, dict) else {}


def _client(settings: Settings) -> GraphClient:
    """roomd's client with short retries: a doctor reports a failure, it does not wait it out."""
    config = dataclasses.replace(
        graph_client_config(settings),
        retry_attempts=2,
        retry_timeout=20.0,
        retry_wait_initial=0.2,
        retry_wait_max=2.0,
        retry_wait_jitter=0.2,
        max_retry_after=5.0,
        read_timeout=20.0,
    )
    return GraphClient(config)


async def graph_checks(settings: Settings) -> list[Check]:
    g = settings.graph
    async with _client(settings) as client:
        try:
            token = await client.http.tokens.token()
        except AuthError as exc:
            return [
                decide.graph_token_failure(
                    exc.code,
                    exc.message,
                    client_id=g.client_id,
                    tenant_id=g.tenant_id,
                    certificate=g.certificate is not None,
                ),
                skipped("graph rooms", "not checked (no Graph token)"),
            ]
        claims = token_claims(token)
        exp = claims.get("exp")
        left = float(exp) - utc.now().timestamp() if isinstance(exp, int | float) else None
        checks = [decide.graph_token_ok(g.client_id, left)]
        roles = claims.get("roles")
        granted = frozenset(str(r) for r in roles) if isinstance(roles, list) else None
        checks += decide.permission_checks(granted, g.client_id)
        checks.append(await _credential_expiry(client, settings))
        for room in settings.rooms:
            checks += await _room_checks(client, room, settings)
        return checks


async def _credential_expiry(client: GraphClient, settings: Settings) -> Check:
    g = settings.graph
    now = utc.now()
    if g.certificate is not None:
        cert = x509.load_pem_x509_certificate(g.certificate.certificate_pem.encode())
        fix = (
            "make a new certificate, az ad app credential reset --id "
            f"{g.client_id} --cert @new-certificate.pem --append, point graph.certificate_file "
            "at it, then systemctl reload roomd"
        )
        return decide.expiry_check(
            "graph certificate expiry", "the certificate", cert.not_valid_after_utc, now, fix
        )
    assert g.client_secret is not None
    name = "graph client secret expiry"
    # An app may read its own registration with no permission (serviceprincipal-get.md).
    url = f"/applications(appId='{quote(g.client_id, safe='')}')"
    try:
        app = await client.http.get_json(
            url, mailbox=None, params={"$select": "id,passwordCredentials"}
        )
    except GraphError as exc:
        return skipped(
            name,
            f"not checked: cannot read the app registration ({exc.status} {exc.code})",
            f"see its end date in Microsoft Entra ID → App registrations → {g.client_id} → "
            "Certificates & secrets",
        )
    creds = app.get("passwordCredentials")
    credentials = [c for c in creds if isinstance(c, Mapping)] if isinstance(creds, list) else []
    return decide.secret_expiry(credentials, g.client_secret.reveal(), now, g.client_id)


async def _room_checks(client: GraphClient, room: RoomSettings, settings: Settings) -> list[Check]:
    mailbox = room.mailbox
    client_id = settings.graph.client_id
    read_name = f"room {mailbox} readable"
    now = utc.now()
    params = {
        "startDateTime": _iso(now - LOOK_BACK),
        "endDateTime": _iso(now + LOOK_AHEAD),
        "$select": "subject,body,organizer,iCalUId,isOrganizer,isCancelled,type",
        "$top": str(PAGE),
    }
    try:
        page = await client.http.get_json(
            user_path(mailbox, "calendarView"), mailbox=mailbox, params=params
        )
    except GraphError as exc:
        failure = _denied(read_name, mailbox, exc, client_id)
        return [
            failure,
            skipped(f"room {mailbox} writable", "not checked (not readable)"),
            skipped(f"room {mailbox} copies", "not checked (not readable)"),
        ]
    items = [v for v in page.get("value") or [] if isinstance(v, dict)]
    more = "+" if page.get("@odata.nextLink") else ""
    count = f"{len(items)}{more} meeting{'' if len(items) == 1 and not more else 's'}"
    checks = [passed(read_name, f"{count} from a week ago to a month ahead")]
    checks.append(await _writable(client, mailbox, settings))
    checks.append(await _copies(client, mailbox, items))
    return checks


def _denied(name: str, mailbox: str, exc: GraphError, client_id: str) -> Check:
    if isinstance(exc, AccessDenied):
        return decide.access_denied(name, mailbox, exc.message, client_id, exc.code)
    if isinstance(exc, NotFound):
        return decide.room_not_found(name, mailbox)
    return failed(name, f"{exc.status or 'no answer'} {exc.code}: {exc.message}")


async def _writable(client: GraphClient, mailbox: str, settings: Settings) -> Check:
    """Prove write access without leaving a trace in anyone's calendar.

    Graph has no dry run and no permission query for one mailbox, so the check writes: a
    private, free, attendee-less event in the room's own calendar, tagged as roomd's, past the
    sync window (nothing roomd syncs ever sees it, no invitation goes out, the Resource Booking
    Assistant has no request to process), deleted at once. The only residue is the deleted item
    in the room's Deleted Items folder, which Exchange purges on its own.
    """
    name = f"room {mailbox} writable"
    start = (utc.now() + timedelta(days=settings.sync.window_ahead_days + 30)).replace(
        hour=3, minute=0, second=0, microsecond=0
    )
    event = {
        "subject": WRITE_CHECK_SUBJECT,
        "start": {"dateTime": start.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
        "end": {
            "dateTime": (start + timedelta(minutes=15)).strftime("%Y-%m-%dT%H:%M:%S"),
            "timeZone": "UTC",
        },
        "sensitivity": "private",
        "showAs": "free",
        "isReminderOn": False,
        "attendees": [],
    }
    key = f"doctor-{uuid.uuid4()}"
    try:
        created = await client.events.create(mailbox, event, idempotency_key=key, tag=key)
    except GraphError as exc:
        return _denied(name, mailbox, exc, settings.graph.client_id)
    event_id = str(created.get("id") or "")
    try:
        await client.events.delete(mailbox, event_id)
    except GraphError as exc:
        return failed(
            name,
            f"created a test event but could not delete it ({exc.status} {exc.code})",
            f"delete the event '{WRITE_CHECK_SUBJECT}' on {start:%Y-%m-%d} from {mailbox}",
        )
    return passed(name, "created and deleted a private test event past the sync window")


async def _copies(client: GraphClient, mailbox: str, items: list[dict[str, Any]]) -> Check:
    """Compare the room's copy of a meeting with its organizer's (graph-behaviour.md 6.2)."""
    candidates = sorted(
        (
            i
            for i in items
            if not i.get("isOrganizer")
            and not i.get("isCancelled")
            and i.get("iCalUId")
            and _organizer(i)[0] not in ("", mailbox.lower())
        ),
        key=lambda i: i.get("type") != "singleInstance",
    )
    if not candidates:
        return decide.copies_check(mailbox, None, "no meetings from a week ago to a month ahead")
    reasons = []
    for item in candidates[:COPIES_TRIED]:
        organizer, organizer_name = _organizer(item)
        try:
            copies = await client.events.find_by_ical_uid(
                organizer, str(item["iCalUId"]), select=("subject", "body")
            )
        except GraphError as exc:
            reasons.append(f"{organizer}: {exc.status} {exc.code}")
            continue
        if not copies:
            reasons.append(f"{organizer}: no copy")
            continue
        found = decide.copy_findings(
            str(item.get("subject") or ""),
            _body(item),
            str(copies[0].get("subject") or ""),
            _body(copies[0]),
            organizer_name,
        )
        return decide.copies_check(mailbox, found, "")
    return decide.copies_check(mailbox, None, "no organizer's copy readable: " + "; ".join(reasons))


def _organizer(item: Mapping[str, Any]) -> tuple[str, str]:
    address = (item.get("organizer") or {}).get("emailAddress") or {}
    return str(address.get("address") or "").lower(), str(address.get("name") or "")


def _body(item: Mapping[str, Any]) -> str:
    body = item.get("body")
    return str(body.get("content") or "") if isinstance(body, Mapping) else ""


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")
