"""roomd's clients over aiohttp's pool still behave as httpx clients: failures arrive as the
httpx exceptions their retry rules read, and a proxy from the environment is still used."""

from __future__ import annotations

import socket
import ssl

import httpx
import pytest

from roomd.aiotransport import AiohttpTransport, transport_for

LIMITS = httpx.Limits(max_connections=4, max_keepalive_connections=4)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_a_refused_connection_is_a_connect_error_that_names_no_secret() -> None:
    """ConnectError: the request was never sent, so even a POST may be retried."""
    transport = AiohttpTransport(ssl.create_default_context(), LIMITS)
    async with httpx.AsyncClient(transport=transport, timeout=5) as client:
        with pytest.raises(httpx.ConnectError) as caught:
            await client.post(
                f"https://127.0.0.1:{_closed_port()}/bookings",
                json={},
                headers={"Authorization": "Bearer s3cret-token"},
            )
    assert "s3cret" not in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_a_proxy_in_the_environment_keeps_httpx_transport(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    context = ssl.create_default_context()
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    assert transport_for(context, LIMITS, trust_env=True) is None  # httpx routes via the proxy
    assert isinstance(transport_for(context, LIMITS, trust_env=False), AiohttpTransport)
