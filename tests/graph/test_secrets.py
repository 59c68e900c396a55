"""No secret or token ever reaches a log line, an exception or a repr."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from roomd.graph import AuthError, GraphClient, GraphError
from roomd.sim.graph import GraphSimulator

from .conftest import ROOM, config_for
from .control import fail_next, revoke_tokens


async def test_token_and_secret_stay_out_of_logs_and_errors(
    sim: GraphSimulator, ca_bundle: Path, logs: io.StringIO
) -> None:
    config = config_for(sim, ca_bundle, retry_attempts=2)
    async with GraphClient(config) as graph:
        await graph.http.get_json(f"/users/{ROOM}", mailbox=ROOM)
        token = await graph.http.tokens.token()
        revoke_tokens(sim)  # forces a refresh: a log line about tokens
        fail_next(sim, status=503, times=5)  # retries, then an error
        errors: list[BaseException] = []
        try:
            await graph.http.get_json(f"/users/{ROOM}", mailbox=ROOM)
        except GraphError as exc:
            errors.append(exc)
        try:
            await graph.http.get_json("/users/nobody@contoso.com", mailbox="nobody@contoso.com")
        except GraphError as exc:
            errors.append(exc)
        text = logs.getvalue() + "".join(str(e) + repr(e) for e in errors)
        text += repr(graph) + repr(graph.http.tokens) + repr(config)
    assert errors and "graph_retry" in logs.getvalue()
    assert token not in text
    assert sim.client_secret not in text


async def test_failed_token_request_logs_without_the_secret(
    sim: GraphSimulator, ca_bundle: Path, logs: io.StringIO
) -> None:
    secret = "WRONG-secret-" + "k" * 24
    async with GraphClient(config_for(sim, ca_bundle, client_secret=secret)) as graph:
        with pytest.raises(AuthError) as caught:
            await graph.http.get_json(f"/users/{ROOM}", mailbox=ROOM)
    text = logs.getvalue() + str(caught.value) + repr(caught.value)
    assert "graph_token_failed" in text
    assert secret not in text and sim.client_secret not in text
