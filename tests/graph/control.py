"""The Graph simulator's control surface, as these tests use it (one place to adapt)."""

from __future__ import annotations

from roomd.observe import REGISTRY
from roomd.sim.graph import GraphSimulator


def tokens_issued(sim: GraphSimulator) -> int:
    """Access tokens the simulated identity platform has handed out."""
    return sim.identity.tokens_issued


def revoke_tokens(sim: GraphSimulator) -> None:
    sim.control.revoke_tokens()
    sim.control.advance_clock(2)  # tokens issued from now on are valid again


def register_certificate_app(sim: GraphSimulator) -> tuple[str, str, str]:
    client_id, key_pem, cert_pem, _sha1 = sim.register_certificate_app()
    return client_id, key_pem, cert_pem


def fail_next(
    sim: GraphSimulator,
    *,
    status: int,
    times: int = 1,
    retry_after: str | None = None,
    method: str | None = None,
) -> None:
    sim.control.inject_fault(
        kind="status", status=status, count=times, retry_after=retry_after, method=method
    )


def drop_next(sim: GraphSimulator, *, times: int = 1, method: str | None = None) -> None:
    sim.control.inject_fault(kind="drop", count=times, method=method)


def lose_next_answer(sim: GraphSimulator, *, method: str) -> None:
    """The next ``method`` request is carried out, then its connection closes unanswered."""
    sim.control.inject_fault(kind="lose_answer", count=1, method=method)


def faults_left(sim: GraphSimulator) -> int:
    """How many injected faults have not been served yet."""
    return sum(int(rule["count"] or 0) for rule in sim.control.faults())


def fail_next_batch_item(
    sim: GraphSimulator, *, mailbox: str, status: int, retry_after: str | None = None
) -> None:
    sim.control.inject_fault(
        kind="status",
        status=status,
        count=1,
        retry_after=retry_after,
        mailbox=mailbox,
        path_contains="/calendarView/delta",
    )


def requests_seen(sim: GraphSimulator) -> int:
    """Requests roomd sent to Graph, by roomd's own ``roomd_graph_requests_total``."""
    total = 0.0
    for family in REGISTRY.collect():
        if family.name == "roomd_graph_requests":
            total += sum(s.value for s in family.samples if s.name.endswith("_total"))
    return int(total)


def slow_down(sim: GraphSimulator, *, seconds: float, mailbox: str | None = None) -> None:
    sim.control.inject_fault(kind="slow", delay_s=seconds, count=None, mailbox=mailbox)


def throttled_by_sim(sim: GraphSimulator) -> int:
    """429s the simulator answered for concurrency or the request budget."""
    return int(sim.control.set_throttling()["throttled"])


def expire_delta_tokens(sim: GraphSimulator, mailbox: str) -> None:
    sim.control.expire_delta_tokens(mailbox)
