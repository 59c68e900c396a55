"""A revoked Hybrid secret costs one token request per hold (5 s, doubling to 5 min), not one per
room and round; rounds in between fail at once with the same reason and its fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from roomd.hybrid import AuthError, CredentialsRefused, HybridClient, HybridError
from roomd.observe import HYBRID_TOKEN_REFRESHES
from roomd.refusals import forgive_all
from roomd.sim.hybrid import HybridSimulator

from .conftest import make_config

WRONG = "revoked-secret-7c1e9a"


def refreshes(outcome: str) -> float:
    return float(HYBRID_TOKEN_REFRESHES.labels(outcome=outcome)._value.get())


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_refused_secret_is_asked_again_only_when_its_hold_ends(
    sim: HybridSimulator, ca_bundle: Path
) -> None:
    clock = Clock()
    config = make_config(sim, ca_bundle, client_secret=WRONG)
    async with HybridClient(config, clock=clock) as client:
        sent, held = sim.control.token_requests(), refreshes("held")
        errors: list[CredentialsRefused] = []
        for _ in range(10):  # ten rooms' rounds, one after the other
            with pytest.raises(CredentialsRefused) as info:
                await client.list_resources()
            errors.append(info.value)
        assert sim.control.token_requests() == sent + 1
        assert refreshes("held") == held + 9
        line = str(errors[-1])
        assert line.startswith("Hybrid refused roomd's credentials (401: ")
        assert "invalid_client" in line and "not asked again for 5 s" in line
        assert "— fix: put the API client's current secret in hybrid.client_secret_file" in line
        assert WRONG not in line and sim.client_secret not in line
        clock.now += 5
        with pytest.raises(CredentialsRefused) as info:
            await client.list_resources()
        assert sim.control.token_requests() == sent + 2
        assert "not asked again for 10 s" in str(info.value)


async def test_the_refusal_keeps_the_endpoints_words_for_doctor_and_rooms(
    sim: HybridSimulator, ca_bundle: Path
) -> None:
    async with HybridClient(make_config(sim, ca_bundle, client_secret=WRONG)) as client:
        with pytest.raises(AuthError) as info:
            await client.list_resources()
    assert info.value.status == 401
    assert info.value.message.startswith(f"token request for client {sim.client_id!r} refused")


async def test_a_success_after_the_hold_starts_the_schedule_over(
    sim: HybridSimulator, ca_bundle: Path
) -> None:
    clock = Clock()
    async with HybridClient(make_config(sim, ca_bundle), clock=clock) as client:
        right = sim.client_secret
        sim.control.set_client_secret(WRONG + "-rotated")  # rotated in Hybrid, not in roomd
        for _ in range(3):
            with pytest.raises(CredentialsRefused):
                await client.list_resources()
            clock.now += 30  # each hold (5, 10, 20 s) has ended
        sim.control.set_client_secret(right)  # the old secret is valid again
        assert len(await client.list_resources()) == 4
        sim.control.set_client_secret(WRONG + "-again")
        with pytest.raises(CredentialsRefused) as info:
            await client.list_resources()
        assert "not asked again for 5 s" in str(info.value)


async def test_a_config_reload_tries_the_credential_again_at_once(
    sim: HybridSimulator, ca_bundle: Path
) -> None:
    async with HybridClient(make_config(sim, ca_bundle)) as client:
        right = sim.client_secret
        sim.control.set_client_secret(WRONG)
        with pytest.raises(CredentialsRefused):
            await client.list_resources()
        sim.control.set_client_secret(right)  # fixed in Hybrid; the operator reloads roomd
        forgive_all()
        assert len(await client.list_resources()) == 4


async def test_an_unreachable_token_endpoint_is_not_held(
    sim: HybridSimulator, ca_bundle: Path
) -> None:
    """5xx and network failures are the retry policy's; the next round tries at once."""
    async with HybridClient(make_config(sim, ca_bundle)) as client:
        sim.control.set_faults(token_5xx=10)
        with pytest.raises(HybridError) as info:
            await client.list_resources()
        assert not isinstance(info.value, AuthError)
        sim.control.clear_faults()
        assert len(await client.list_resources()) == 4
