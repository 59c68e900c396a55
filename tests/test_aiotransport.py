"""roomd's clients over aiohttp's pool still behave as httpx clients: failures arrive as the
httpx exceptions their retry rules read, and a proxy from the environment is still used."""

from __future__ import annotations

import socket
import ssl
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiohttp import web

from roomd.aiotransport import AiohttpTransport, Sender, transport_for

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
    for name in (
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "localhost")
    assert isinstance(transport_for(context, LIMITS, trust_env=True), AiohttpTransport)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    assert transport_for(context, LIMITS, trust_env=True) is None  # httpx routes via the proxy
    assert isinstance(transport_for(context, LIMITS, trust_env=False), AiohttpTransport)


@pytest.fixture
async def echo() -> AsyncIterator[str]:
    """A plain-HTTP server on 127.0.0.1 that answers with what it was sent (gzipped)."""

    async def handler(request: web.Request) -> web.Response:
        seen: dict[str, Any] = {
            "method": request.method,
            "query": dict(request.query),
            "headers": {k.lower(): v for k, v in request.headers.items()},
            "body": await request.text(),
        }
        answer = web.json_response(seen, headers={"Set-Cookie": "session=abc"})
        answer.enable_compression(web.ContentCoding.gzip)
        return answer

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_a_request_sent_past_the_client_is_the_request_the_client_would_send(
    echo: str,
) -> None:
    """Sender hands requests straight to the transport: same method, query, body and headers
    (the client's defaults included) as ``client.request``, the answer decoded the same, and
    no cookie kept or sent back."""
    transport = AiohttpTransport(ssl.create_default_context(), LIMITS)
    async with httpx.AsyncClient(
        transport=transport, headers={"Accept": "application/json", "User-Agent": "roomd"}
    ) as client:
        sender = Sender(client, transport)
        answers = []
        for send in (client.request, sender.request, sender.request):
            response = await send(
                "POST",
                f"{echo}/bookings",
                params={"reference": "a b&c"},
                json={"summary": "Board"},
                headers={"Authorization": "Bearer t"},
            )
            assert response.status_code == 200
            assert response.request.url.path == "/bookings"
            answers.append(response.json())
    through_client, direct, again = answers
    assert direct == again  # the session cookie was not sent back
    assert "cookie" not in direct["headers"]
    assert direct == through_client
    assert direct["headers"]["user-agent"] == "roomd"
    assert direct["query"] == {"reference": "a b&c"}


@pytest.mark.parametrize("method", ["DELETE", "POST"])
async def test_a_request_lost_on_a_kept_alive_connection_is_sent_once_and_maybe_acted_on(
    method: str,
) -> None:
    """The server reads the request and closes the kept-alive connection without answering.
    The transport must not send it again on its own (aiohttp would, for an idempotent method:
    the clients' retry rules decide and count retries) and must not call it "never sent"
    (ConnectError would let a POST be retried blindly: a second booking)."""
    import asyncio

    seen: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            seen.append(head.split(b" ", 1)[0])
            if len(seen) == 1:
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
                await writer.drain()
                continue
            writer.close()  # acted on, never answered
            return

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    transport = AiohttpTransport(ssl.create_default_context(), LIMITS)
    try:
        async with httpx.AsyncClient(transport=transport, timeout=5) as client:
            assert (await client.get(f"http://127.0.0.1:{port}/bookings")).status_code == 200
            with pytest.raises(httpx.TransportError) as caught:
                await client.request(method, f"http://127.0.0.1:{port}/bookings/1", json={})
    finally:
        server.close()
        await server.wait_closed()
    assert not isinstance(caught.value, httpx.ConnectError | httpx.ConnectTimeout)
    assert seen == [b"GET", method.encode()]
