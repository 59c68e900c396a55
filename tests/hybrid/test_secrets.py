"""No client secret, access token, webhook secret or signature in a log line, error or repr,
through the paths that log: retries, token refresh, refused deliveries."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from roomd.hybrid import HybridClient, HybridError
from roomd.hybrid.webhooks import sign
from roomd.sim.hybrid import HybridSimulator

from .conftest import make_config


async def test_nothing_secret_reaches_logs_errors_or_reprs(
    sim: HybridSimulator, ca_bundle: Path, receiver_factory: Any
) -> None:
    hook_secret = "whsec-0f1e2d3c4b5a69788796a5b4c3d2e1f0"
    rx = await receiver_factory(hook_secret)
    texts: list[str] = []
    with capture_logs() as logs:
        config = make_config(sim, ca_bundle)
        async with HybridClient(config) as client:
            texts += [repr(config), repr(client)]
            await client.list_resources()
            token = client._tokens._token  # the value that must never leak
            assert token
            sim.control.revoke_tokens()
            sim.control.set_faults(api_5xx=1, api_429=1, retry_after_seconds=0)
            await client.list_resources()
            texts.append(repr(client._tokens))
            sim.control.set_faults(api_5xx=20)
            with pytest.raises(HybridError) as info:
                await client.list_resources()
            texts += [str(info.value), repr(info.value)]
        raw = b'{"eventType": "booking.created", "data": {"object": {}}}'
        good = sign(hook_secret, raw, int(time.time()))
        async with httpx.AsyncClient(trust_env=False) as http:
            for header in (good, sign(hook_secret, raw, 0), sign("wrong", raw, int(time.time()))):
                resp = await http.post(rx.url, content=raw, headers={"officernd-signature": header})
                texts.append(resp.text)
    texts += [repr(entry) for entry in logs]
    assert any("hybrid_retry" in t for t in texts)  # the paths above did log
    assert any("hybrid_webhook_refused" in t for t in texts)
    blob = "\n".join(texts)
    for secret in (sim.client_secret, token, hook_secret, good.split("v1=")[1]):
        assert secret not in blob
