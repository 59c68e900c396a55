"""The Hybrid side: credentials and scopes, the mapped rooms, and the webhook.

The token and the API calls go through roomd's own Hybrid client. Listing webhooks needs
``flex.settings.webhooks.read``, which the daemon never asks for, so that one listing uses a
second client asking for it on top of the configured scopes.
"""

from __future__ import annotations

import dataclasses
import ssl

import httpx

from roomd.compose import hybrid_client_config
from roomd.config import Settings
from roomd.doctor import _decide as decide
from roomd.doctor._check import Check, failed, passed, skipped, warned
from roomd.hybrid import HybridClient, HybridError, RetryPolicy
from roomd.hybrid.webhooks import HOOK_PATH

QUICK = RetryPolicy(attempts=2, timeout=20.0, wait_initial=0.2, wait_max=2.0, retry_after_max=5.0)
WEBHOOKS_READ = "flex.settings.webhooks.read"


def _client(settings: Settings, *, extra_scope: str = "") -> HybridClient:
    config = hybrid_client_config(settings)
    scope = f"{config.scope} {extra_scope}".strip()
    return HybridClient(dataclasses.replace(config, retry=QUICK, scope=scope))


async def hybrid_checks(settings: Settings) -> list[Check]:
    h = settings.hybrid
    async with _client(settings) as client:
        try:
            granted = await client.granted_scopes()
        except HybridError as exc:
            return [
                decide.hybrid_token_failure(exc.status or None, str(exc), h.client_id),
                skipped("hybrid rooms", "not checked (no Hybrid token)"),
            ]
        checks = [
            passed("hybrid token", f"acquired for client {h.client_id!r}"),
            decide.hybrid_scope_check(granted),
        ]
        checks.append(await _rooms(client, settings))
    checks += await _webhook(settings)
    return checks


async def _rooms(client: HybridClient, settings: Settings) -> Check:
    name = "hybrid rooms"
    try:
        resources = {r.id for r in await client.list_resources()}
    except HybridError as exc:
        return failed(name, f"cannot list resources: {exc}")
    missing = [r for r in settings.rooms if r.hybrid_id not in resources]
    if missing:
        which = ", ".join(f"{r.hybrid_id} ({r.mailbox})" for r in missing)
        return failed(
            name,
            f"no Hybrid resource {which}",
            "set rooms[].hybrid_id to the room's resource id (Hybrid: GET resources)",
        )
    return passed(name, f"all {len(settings.rooms)} mapped rooms exist")


async def _webhook(settings: Settings) -> list[Check]:
    if settings.hybrid.webhook_secret is None:
        return [
            skipped(
                "hybrid webhook registered",
                "webhooks off (no hybrid.webhook_secret_file): Hybrid changes wait for the poll",
            )
        ]
    async with _client(settings, extra_scope=WEBHOOKS_READ) as client:
        try:
            hooks = await client.list_webhooks()
        except HybridError as exc:
            return [
                warned(
                    "hybrid webhook registered",
                    f"not checked: cannot list webhooks ({exc})",
                    f"grant the API client {WEBHOOKS_READ} in Hybrid to let roomd doctor see "
                    "the registration",
                )
            ]
    registered = decide.webhook_registration_check(hooks, HOOK_PATH, _local_url(settings))
    found = decide.matching_hooks(hooks, HOOK_PATH)
    if not found:
        return [registered]
    url = str(found[0].get("url"))
    status, error = await _probe(url, settings)
    daemon_up = None
    if status is None or status in (502, 503, 504):
        daemon_up = await _daemon_up(settings)
    return [registered, decide.webhook_answer_check(url, status, error, daemon_up)]


def _local_url(settings: Settings) -> str:
    host = settings.http.listen
    host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    return f"http://{host}:{settings.http.port}{HOOK_PATH}"


def _verify(settings: Settings) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if settings.hybrid.ca_bundle is not None:
        context.load_verify_locations(cafile=str(settings.hybrid.ca_bundle))
    return context


async def _probe(url: str, settings: Settings) -> tuple[int | None, str]:
    """A plain GET: roomd's receiver answers it without reading a body or counting a delivery."""
    try:
        async with httpx.AsyncClient(verify=_verify(settings), timeout=5.0) as http:
            resp = await http.get(url)
    except httpx.HTTPError as exc:
        return None, f"no answer ({type(exc).__name__})"
    return resp.status_code, ""


async def _daemon_up(settings: Settings) -> bool | None:
    """Whether roomd answers on its own port here (``/healthz``); None when the port is 0."""
    if not settings.http.port:
        return None
    url = _local_url(settings).removesuffix(HOOK_PATH) + "/healthz"
    try:
        async with httpx.AsyncClient(timeout=3.0) as http:
            return (await http.get(url)).status_code == 200
    except httpx.HTTPError:
        return False
