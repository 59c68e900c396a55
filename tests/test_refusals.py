"""A refused credential is tried again after 5 s, then 10, 20 ... never more than 5 min apart;
a success or a config reload starts the schedule over."""

from __future__ import annotations

from roomd.refusals import FIRST_HOLD_S, MAX_HOLD_S, RefusalGate, forgive_all


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_holds_double_up_to_five_minutes() -> None:
    clock = Clock()
    gate: RefusalGate[str] = RefusalGate(clock=clock)
    holds = []
    for _ in range(9):
        assert gate.held() is None  # the hold has ended: one attempt may go
        holds.append(gate.refused("invalid_client").retry_in_s)
        clock.now += holds[-1]
    assert holds == [5, 10, 20, 40, 80, 160, 300, 300, 300]
    assert (FIRST_HOLD_S, MAX_HOLD_S) == (5, 300)


def test_every_attempt_during_a_hold_gets_the_refusal_and_the_time_left() -> None:
    clock = Clock()
    gate: RefusalGate[str] = RefusalGate(clock=clock)
    gate.refused("AADSTS7000222: secret expired")
    clock.now += 2
    hold = gate.held()
    assert hold is not None
    assert hold.refusal == "AADSTS7000222: secret expired"
    assert hold.retry_in_s == 3


def test_a_success_starts_the_schedule_over() -> None:
    clock = Clock()
    gate: RefusalGate[str] = RefusalGate(clock=clock)
    gate.refused("x")
    clock.now += 5
    gate.refused("x")  # 10 s
    gate.succeeded()
    assert gate.held() is None
    assert gate.refused("x").retry_in_s == 5


def test_a_config_reload_lifts_every_hold_and_starts_over() -> None:
    clock = Clock()
    graph: RefusalGate[str] = RefusalGate(clock=clock)
    hybrid: RefusalGate[str] = RefusalGate(clock=clock)
    graph.refused("g")
    hybrid.refused("h")
    clock.now += 5
    hybrid.refused("h")  # 10 s
    forgive_all()
    assert graph.held() is None and hybrid.held() is None
    assert hybrid.refused("h").retry_in_s == 5
    assert hybrid.held() is not None  # a refusal after the reload holds again
