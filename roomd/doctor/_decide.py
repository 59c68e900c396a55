"""What each finding means and how to fix it: pure functions, no I/O, no clock.

The probes (``_graph``, ``_hybrid``) gather facts; every verdict and every fix command is decided
here, so a test can walk each case without a network and the wording lives in one place.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from roomd.config import DEFAULT_HYBRID_SCOPE
from roomd.doctor._check import Check, failed, passed, skipped, warned
from roomd.entra import aadsts_code, credential_fix, new_secret_fix

GRAPH_APP = "00000003-0000-0000-c000-000000000000"  # Microsoft Graph's appId

# Application permissions (app roles) roomd uses, with their Microsoft Graph app-role ids
# (permissions reference). Calendars.ReadWrite: every sync read and write; Place.Read.All:
# `roomd rooms` lists the tenant's rooms (the sync itself does not need it).
REQUIRED_ROLES = {"Calendars.ReadWrite": "ef54d2bf-783f-4e0f-bca1-3210c0444d99"}
OPTIONAL_ROLES = {"Place.Read.All": "913b9306-0ce1-42b8-9137-6a7df690a760"}
# Listed as required by earlier READMEs, so many apps have it; read-only and harmless, though
# roomd calls no /users and the README no longer asks for it.
TOLERATED_ROLES = frozenset({"User.Read.All"})

EXPIRY_WARN = timedelta(days=30)
SKEW_WARN_S = 5.0
SKEW_FAIL_S = 300.0  # the identity platform's and roomd's webhook tolerance: 5 minutes

# What every round needs: roomd's default scopes less webhook registration (done by an operator)
HYBRID_NEEDED_SCOPES = tuple(
    s for s in DEFAULT_HYBRID_SCOPE.split() if not s.startswith("flex.settings.")
)
HOOK_EVENTS = ("booking.created", "booking.updated", "booking.removed")


def _consent(client_id: str) -> str:
    return f"az ad app permission admin-consent --id {client_id}"


def _add_role(client_id: str, role_id: str) -> str:
    return (
        f"az ad app permission add --id {client_id} --api {GRAPH_APP} "
        f"--api-permissions {role_id}=Role && {_consent(client_id)}"
    )


# -- Graph token -------------------------------------------------------------------------------


def graph_token_failure(
    code: str, description: str, *, client_id: str, tenant_id: str, certificate: bool
) -> Check:
    """A refused or failed token request, by its AADSTS code (Microsoft Entra error codes)."""
    aadsts = aadsts_code(description)
    # the first sentence: "AADSTS7000215: Invalid client secret provided"
    reason = description.splitlines()[0].split(". ")[0].strip() if description else code
    name = "graph token"
    fix = credential_fix(aadsts, client_id, certificate=certificate)
    if fix is not None:
        return failed(name, _refusal_detail(aadsts, client_id, tenant_id, reason), fix)
    if not code or code in ("token_request_failed",):
        return failed(
            name,
            f"no answer from the identity platform: {reason}",
            "check graph.authority_host, graph.ca_bundle, and that this host reaches it "
            "(proxy, firewall)",
        )
    return failed(
        name,
        f"refused: {code}: {reason}",
        "check graph.tenant_id, graph.client_id and the credential against the app "
        "registration in Microsoft Entra ID",
    )


def _refusal_detail(aadsts: int | None, client_id: str, tenant_id: str, reason: str) -> str:
    """What the refusal means, in words; the fix comes from roomd.entra's one table."""
    if aadsts == 7000222:
        return f"the client secret has expired ({reason})"
    if aadsts == 7000215:
        return f"the client secret is not one of app {client_id}'s secrets ({reason})"
    if aadsts == 700016:
        return f"no app {client_id} in tenant {tenant_id} ({reason})"
    if aadsts in (90002, 900023):
        return f"tenant {tenant_id} not found ({reason})"
    if aadsts == 700024:
        return f"the client assertion is outside its valid time ({reason})"
    return f"the certificate is not accepted ({reason})"


def graph_token_ok(client_id: str, expires_in_s: float | None) -> Check:
    short = client_id[:8] + "…" if len(client_id) > 9 else client_id
    left = f" (expires in {max(0, round(expires_in_s / 60))} min)" if expires_in_s else ""
    return passed("graph token", f"acquired for app {short}{left}")


# -- Graph permissions ---------------------------------------------------------------------------


def permission_checks(roles: frozenset[str] | None, client_id: str) -> list[Check]:
    """One line per permission roomd uses, one for any broader than it needs.

    ``roles`` is the access token's ``roles`` claim: the application permissions an admin
    consented to (auth-v2-service.md). None: the token carried no ``roles`` at all.
    """
    if not roles:
        return [
            failed(
                "graph permission Calendars.ReadWrite",
                "the token carries no application permissions (roles): none granted, or no "
                "admin consent",
                _add_role(client_id, REQUIRED_ROLES["Calendars.ReadWrite"]),
            )
        ]
    out = []
    for role, role_id in REQUIRED_ROLES.items():
        name = f"graph permission {role}"
        if role in roles:
            out.append(passed(name, "granted (read room calendars, write meetings)"))
        elif "Calendars.Read" in roles:
            out.append(
                failed(
                    name,
                    "only Calendars.Read granted: roomd cannot create, update or decline meetings",
                    _add_role(client_id, role_id),
                )
            )
        else:
            out.append(
                failed(
                    name,
                    "not granted: roomd cannot read or write room calendars",
                    _add_role(client_id, role_id),
                )
            )
    for role, role_id in OPTIONAL_ROLES.items():
        name = f"graph permission {role}"
        if role in roles:
            out.append(passed(name, "granted (roomd rooms lists the tenant's rooms)"))
        else:
            out.append(
                warned(
                    name,
                    "not granted: 'roomd rooms' cannot list the tenant's rooms (sync does not "
                    "need it)",
                    _add_role(client_id, role_id),
                )
            )
    needed = set(REQUIRED_ROLES) | set(OPTIONAL_ROLES) | TOLERATED_ROLES | {"Calendars.Read"}
    broader = sorted(roles - needed)
    if broader:
        out.append(
            warned(
                "graph permissions, broader",
                f"granted but not needed by roomd: {', '.join(broader)}",
                "remove them: Microsoft Entra ID → App registrations → "
                f"{client_id} → API permissions → Remove permission, then {_consent(client_id)}",
            )
        )
    else:
        out.append(passed("graph permissions, broader", "none beyond what roomd uses"))
    return out


# -- credential expiry ---------------------------------------------------------------------------


def expiry_check(name: str, what: str, ends: datetime | None, now: datetime, fix: str) -> Check:
    """Fail once expired, warn within 30 days, pass otherwise."""
    if ends is None:
        return passed(name, f"{what} has no end date")
    left = ends - now
    when = ends.strftime("%Y-%m-%d %H:%M UTC")
    if left <= timedelta(0):
        return failed(name, f"{what} has expired ({when})", fix)
    if left < EXPIRY_WARN:
        days = left.total_seconds() / 86400
        return warned(name, f"{what} expires in {days:.0f} days ({when})", fix)
    return passed(name, f"{what} is valid until {when} ({left.days} days)")


def secret_expiry(
    credentials: Sequence[Mapping[str, Any]], secret: str, now: datetime, client_id: str
) -> Check:
    """The configured secret's ``endDateTime`` among the app's ``passwordCredentials``.

    Graph never returns a secret's value, only its ``hint``, "the first three characters of the
    password" (resources/passwordcredential.md), which tells the configured secret from others
    during a rotation. Without a match, the earliest-expiring secret stands in (the safe guess).
    """
    name = "graph client secret expiry"
    if not credentials:
        return warned(name, "the app lists no client secrets", new_secret_fix(client_id))
    mine = [c for c in credentials if c.get("hint") and secret.startswith(str(c["hint"]))]
    pool = mine or list(credentials)
    ends = [_instant(c.get("endDateTime")) for c in pool]
    known = [e for e in ends if e is not None]
    end = min(known) if known else None
    what = "the client secret" if mine else "the app's earliest client secret"
    return expiry_check(name, what, end, now, new_secret_fix(client_id))


def _instant(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


# -- clock skew ----------------------------------------------------------------------------------


def skew_check(service: str, skew_s: float | None, detail_if_none: str = "") -> Check:
    """``skew_s``: the service's clock minus this host's. Tokens and signed webhooks tolerate
    5 minutes; a few seconds already shifts the Hybrid change feed's overlap."""
    name = f"clock vs {service}"
    if skew_s is None:
        return skipped(name, detail_if_none or "the answer had no Date header")
    fix = "set this host's clock right: timedatectl set-ntp true (or chronyc makestep)"
    ahead = "ahead of" if skew_s < 0 else "behind"
    text = f"this host is {abs(skew_s):.0f} s {ahead} {service}"
    if abs(skew_s) > SKEW_FAIL_S:
        return failed(name, text + " (more than the 5 min tokens and webhooks allow)", fix)
    if abs(skew_s) > SKEW_WARN_S:
        return warned(name, text, fix)
    return passed(name, f"in step ({round(skew_s) or 0:+d} s)")


# -- rooms ---------------------------------------------------------------------------------------


def policy_fix(room: str, client_id: str) -> str:
    return (
        f"Add-DistributionGroupMember -Identity roomd-scope -Member {room}; then "
        f"Test-ApplicationAccessPolicy -AppId {client_id} -Identity {room} (the group your "
        "New-ApplicationAccessPolicy -AccessRight RestrictAccess names; changes take up to an hour)"
    )


def access_denied(name: str, room: str, message: str, client_id: str, code: str) -> Check:
    """A 403 on a room: an application access policy ("Access to OData is disabled.",
    auth-limit-mailbox-access.md) or a missing permission."""
    if "odata is disabled" in message.lower():
        return failed(
            name,
            f"403 {code}: an application access policy excludes {room}",
            policy_fix(room, client_id),
        )
    return failed(
        name,
        f"403 {code}: {message}",
        _add_role(client_id, REQUIRED_ROLES["Calendars.ReadWrite"]),
    )


def room_not_found(name: str, room: str) -> Check:
    return failed(
        name,
        f"404: {room} is not a mailbox Graph knows",
        f"check rooms[].mailbox: Get-Mailbox -Identity {room} -RecipientTypeDetails RoomMailbox",
    )


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]*>|&nbsp;", " ", html or "")).strip()


def copy_findings(
    room_subject: str,
    room_body: str,
    organizer_subject: str,
    organizer_body: str,
    organizer_name: str,
) -> tuple[list[str], list[str]]:
    """What the room's copy of a meeting lost against the organizer's, and the
    Set-CalendarProcessing switches that cause it (Set-CalendarProcessing.md;
    OfficeDocs-Support "calendar shows organizer name"; graph-behaviour.md 6.2)."""
    problems: list[str] = []
    switches: list[str] = []
    room_s, org_s, name = room_subject.strip(), organizer_subject.strip(), organizer_name.strip()
    if room_s != org_s and org_s:
        if name and room_s == name:
            problems.append("the subject is replaced by the organizer's name")
            switches += ["-DeleteSubject $false", "-AddOrganizerToSubject $false"]
        elif not room_s:
            problems.append("the subject is removed")
            switches.append("-DeleteSubject $false")
        elif name and room_s == f"{name} {org_s}":
            problems.append("the organizer's name is added to the subject")
            switches.append("-AddOrganizerToSubject $false")
        else:
            problems.append("the subject differs from the organizer's")
            switches += ["-DeleteSubject $false", "-AddOrganizerToSubject $false"]
    if _text(organizer_body) and not _text(room_body):
        problems.append("the body is removed")
        switches.append("-DeleteComments $false")
    return problems, switches


def copies_check(room: str, findings: tuple[list[str], list[str]] | None, why_not: str) -> Check:
    """Hidden subjects are a warning: roomd reads the real subject from the organizer's copy,
    but everyone looking at the room's calendar (and roomd, for organizers it cannot read)
    sees only the organizer."""
    name = f"room {room} copies"
    if findings is None:
        return skipped(name, f"not checked ({why_not})")
    problems, switches = findings
    if not problems:
        return passed(name, "the room's copy keeps the organizer's subject and body")
    return warned(
        name,
        "; ".join(problems),
        f"Set-CalendarProcessing -Identity {room} {' '.join(dict.fromkeys(switches))}",
    )


# -- Hybrid --------------------------------------------------------------------------------------


def hybrid_token_failure(status: int | None, message: str, client_id: str) -> Check:
    name = "hybrid token"
    low = message.lower()
    if "invalid_scope" in low or ("scope" in low and status == 400):
        return failed(
            name,
            f"refused: {message}",
            "remove hybrid.scope from the config (roomd's default asks for exactly what it "
            f"needs: {DEFAULT_HYBRID_SCOPE})",
        )
    if status in (400, 401, 403):
        return failed(
            name,
            message if client_id in message else f"refused for client {client_id!r}: {message}",
            "put the API client's secret in hybrid.client_secret_file and its id in "
            "hybrid.client_id (Hybrid: Settings → Integrations → API), then systemctl reload roomd",
        )
    return failed(
        name,
        f"no token: {message}",
        "check hybrid.token_url, hybrid.ca_bundle, and that this host reaches it",
    )


def hybrid_scope_check(granted: Iterable[str]) -> Check:
    name = "hybrid scopes"
    missing = [s for s in HYBRID_NEEDED_SCOPES if s not in set(granted)]
    if missing:
        return failed(
            name,
            f"the token lacks {', '.join(missing)}",
            "grant them to the API client in Hybrid and remove hybrid.scope from the config "
            "(the default asks for all of them)",
        )
    return passed(name, "bookings read/create/update/cancel, resources, members")


def matching_hooks(hooks: Sequence[Mapping[str, Any]], path: str) -> list[Mapping[str, Any]]:
    """Registrations that deliver to roomd's receiver route, wherever it is published."""
    return [h for h in hooks if str(h.get("url", "")).split("?")[0].rstrip("/").endswith(path)]


def webhook_registration_check(
    hooks: Sequence[Mapping[str, Any]], path: str, example_url: str
) -> Check:
    name = "hybrid webhook registered"
    found = matching_hooks(hooks, path)
    register = (
        f"register https://YOUR-HOST{path} for {', '.join(HOOK_EVENTS)} (Hybrid: Settings → "
        f'Webhooks, or POST /webhooks {{"url": "{example_url}", "eventTypes": '
        f"[{', '.join(repr(e).replace(chr(39), chr(34)) for e in HOOK_EVENTS)}]}}), put its "
        "secret in hybrid.webhook_secret_file, then systemctl reload roomd"
    )
    if not found:
        urls = ", ".join(str(h.get("url")) for h in hooks) or "none"
        return failed(name, f"no webhook delivers to {path} (registered: {urls})", register)
    hook = found[0]
    events = set(hook.get("eventTypes") or [])
    missing = [e for e in HOOK_EVENTS if e not in events]
    if missing:
        return warned(
            name,
            f"{hook.get('url')} is not sent {', '.join(missing)}: those changes wait for the poll",
            f"add {', '.join(missing)} to the webhook in Hybrid (Settings → Webhooks)",
        )
    return passed(name, f"{hook.get('url')} for {', '.join(HOOK_EVENTS)}")


def webhook_answer_check(url: str, status: int | None, error: str, daemon_up: bool | None) -> Check:
    """Any answer from roomd's receiver counts: it takes signed POSTs only, so a plain GET gets
    405 (or 401/400); 404 means something else answers at that URL."""
    name = "hybrid webhook answers"
    if status is not None and status not in (404, 502, 503, 504):
        return passed(name, f"{url} answers ({status} to a GET; deliveries are signed POSTs)")
    if status == 404:
        return failed(
            name,
            f"{url} answers 404: nothing serves {url.split('://', 1)[-1].split('/', 1)[-1]!r}",
            "route the URL's path to roomd's [http] port (reverse proxy: location /hooks/hybrid)",
        )
    if daemon_up is False:
        return warned(
            name,
            f"{url}: {error or status}; roomd is not running here",
            "systemctl start roomd",
        )
    return failed(
        name,
        f"{url}: {error or status}",
        "make the URL reach roomd's [http] listen:port (reverse proxy, firewall, DNS)",
    )
