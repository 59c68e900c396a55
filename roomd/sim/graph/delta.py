"""calendarView/delta: rounds, pages, tokens that freeze the window, and their expiry.

Sources (graph-behaviour.md 1): contrib api-reference/v1.0/api/event-delta.md (window required,
``$select``/``$expand``/``$filter``/``$orderby``/``$search`` unsupported, ``Prefer:
odata.maxpagesize``), concepts/delta-query-events.md (tokens "encode the startDateTime and
endDateTime parameters"; ``@odata.nextLink`` with ``$skiptoken``, ``@odata.deltaLink`` with
``$deltatoken``), concepts/delta-query-overview.md (``@removed``, duplicates, replays, token
duration), v1.0 event-delta.md "Response" (events outside the range that changed come back as
``@removed`` too), microsoft-graph-docs #2350/contrib #7975 (410 ``SyncStateNotFound``, earlier
links go stale as a round pages forward).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from roomd.sim.graph.clock import SimClock
from roomd.sim.graph.events import Calendar, Instance
from roomd.sim.graph.render import (
    OutputZone,
    render_bare_occurrence,
    render_event,
    render_removed,
)
from roomd.sim.graph.settings import Switches
from roomd.sim.graph.wire import JSON, GraphError

UNSUPPORTED = ("$select", "$filter", "$orderby", "$search", "$top", "$skip", "$count")


@dataclass
class Chain:
    """One lineage of tokens from one initial request (one mailbox, one window)."""

    id: str
    mailbox: str
    path: str  # the request path as the client wrote it, reused in links
    ws: datetime
    we: datetime
    snapshot: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> (version, kind)
    seq: int = 0
    generation: int = 0
    live: list[int] = field(default_factory=list)
    tokens: dict[int, TokenState] = field(default_factory=dict)  # live generation -> state
    last_emitted: list[str] = field(default_factory=list)
    valid: bool = True


@dataclass
class TokenState:
    chain: Chain
    generation: int
    kind: str  # "skip" | "delta"
    issued_at: datetime
    pending: list[tuple[str, str]] = field(default_factory=list)  # ("item"|"removed", id)
    empty_pages: int = 0
    new_snapshot: dict[str, tuple[str, str]] = field(default_factory=dict)
    new_seq: int = 0
    emitted: list[str] = field(default_factory=list)


def gone(state: TokenState | None, resync: bool) -> GraphError:
    if resync:
        return GraphError(
            410,
            "resyncRequired",
            "The delta token is no longer valid, and the app must reset the sync state.",
        )
    if state is None:
        return GraphError(
            410, "SyncStateNotFound", "The sync state generation is not found; generation=0;."
        )
    chain = state.chain
    highest = chain.generation
    kept = "".join(f"[{g}]" for g in sorted(chain.live, reverse=True))
    return GraphError(
        410,
        "SyncStateNotFound",
        f"The sync state generation is not found; generation={state.generation};"
        f"[highest={highest}]{kept}.",
    )


class DeltaEngine:
    def __init__(self, clock: SimClock, switches: Switches) -> None:
        self.clock = clock
        self.switches = switches
        self.tokens: dict[str, TokenState] = {}
        self.chains: list[Chain] = []

    # -- control ----------------------------------------------------------------------------
    def expire(self, mailbox: str | None = None) -> int:
        """Invalidate every token (of one mailbox): the next use gets 410."""
        n = 0
        for chain in self.chains:
            if chain.valid and (mailbox is None or chain.mailbox == mailbox.lower()):
                chain.valid = False
                n += 1
        return n

    # -- requests ---------------------------------------------------------------------------
    def start(self, cal: Calendar, path: str, ws: datetime, we: datetime) -> TokenState:
        chain = Chain(secrets.token_hex(8), cal.mailbox, path, ws, we)
        self.chains.append(chain)
        if len(self.chains) > 2000:
            self.chains = [c for c in self.chains[-2000:] if c.valid]
        return self._round(cal, chain, initial=True)

    def resume(self, cal: Calendar, token: str, kind: str) -> TokenState:
        state = self.tokens.get(token)
        if state is None or state.kind != kind or state.chain.mailbox != cal.mailbox:
            raise gone(None, self.switches.delta_resync_required)
        chain = state.chain
        max_age = self.switches.delta_token_max_age_s
        if (
            not chain.valid
            or state.generation not in chain.live
            or (
                max_age is not None
                and self.clock.now() - state.issued_at > timedelta(seconds=max_age)
            )
        ):
            raise gone(state, self.switches.delta_resync_required)
        if kind == "delta":
            return self._round(cal, chain, initial=False)
        return state

    def _round(self, cal: Calendar, chain: Chain, initial: bool) -> TokenState:
        include_masters = self.switches.series_master_in_delta
        current = cal.instances(chain.ws, chain.we, include_masters)
        new_snapshot = {i.id: (i.version, i.kind) for i in current}
        pending: list[tuple[str, str]] = []
        for inst in current:
            old = chain.snapshot.get(inst.id)
            if initial or old is None or old[0] != inst.version:
                pending.append(("item", inst.id))
        if not initial:
            for old_id, (_, kind) in chain.snapshot.items():
                if old_id not in new_snapshot:
                    if kind == "occurrence" and not self.switches.report_deleted_occurrences:
                        continue
                    pending.append(("removed", old_id))
            # changes outside the window come back as @removed too (v1.0 event-delta.md)
            seen = {i for _, i in pending} | set(new_snapshot) | set(chain.snapshot)
            masters_in_view = {i.event.id for i in current} | {
                i.event.series_master_id for i in current if i.event.series_master_id
            }
            for changed in sorted(cal.changed_since(chain.seq)):
                if changed not in seen and changed not in masters_in_view:
                    pending.append(("removed", changed))
            if self.switches.delta_replay:
                pending.extend(("item", i) for i in chain.last_emitted if i in new_snapshot)
        if self.switches.delta_duplicates and pending:
            pending.append(pending[0])
        state = TokenState(
            chain,
            0,
            "skip",
            self.clock.now(),
            pending=pending,
            empty_pages=self.switches.delta_empty_pages,
            new_snapshot=new_snapshot,
            new_seq=cal.seq,
        )
        return state

    def page(
        self, cal: Calendar, state: TokenState, page_size: int, zone: OutputZone, base: str
    ) -> JSON:
        """Serve the next page of ``state``'s round and issue the next link."""
        chain = state.chain
        items: list[JSON] = []
        rest = list(state.pending)
        empty = state.empty_pages
        if empty > 0:
            empty -= 1
        else:
            take, rest = rest[:page_size], rest[page_size:]
            by_id: dict[str, Instance] = {}
            if any(kind == "item" for kind, _ in take):
                by_id = {
                    i.id: i
                    for i in cal.instances(chain.ws, chain.we, self.switches.series_master_in_delta)
                }
            for kind, item_id in take:
                inst = by_id.get(item_id)
                if kind == "removed" or inst is None:
                    items.append(render_removed(item_id, zone))
                elif inst.kind == "occurrence":
                    items.append(render_bare_occurrence(inst, zone))
                else:
                    full = render_event(inst.event, zone, instance=inst)
                    items.append({"@odata.type": "#microsoft.graph.event", **full})
                    state.emitted.append(item_id)
        chain.generation += 1
        gen = chain.generation
        chain.live.append(gen)
        keep = max(1, self.switches.delta_generations_kept)
        for evicted in chain.live[:-keep]:
            # keep the token (its 410 names its generation) but drop the round it carried
            old = chain.tokens.pop(evicted, None)
            if old is not None:
                old.pending, old.new_snapshot, old.emitted = [], {}, []
        chain.live = chain.live[-keep:]
        token = secrets.token_urlsafe(24)
        body: JSON = {"@odata.context": f"{base}/$metadata#Collection(event)"}
        if rest or empty > 0:
            nxt = TokenState(
                chain,
                gen,
                "skip",
                self.clock.now(),
                pending=rest,
                empty_pages=empty,
                new_snapshot=state.new_snapshot,
                new_seq=state.new_seq,
                emitted=state.emitted,
            )
            self.tokens[token] = chain.tokens[gen] = nxt
            body["@odata.nextLink"] = f"{base}{chain.path}?$skiptoken={token}"
        else:
            chain.snapshot = state.new_snapshot
            chain.seq = state.new_seq
            chain.last_emitted = list(dict.fromkeys(state.emitted))
            self.tokens[token] = chain.tokens[gen] = TokenState(
                chain, gen, "delta", self.clock.now()
            )
            body["@odata.deltaLink"] = f"{base}{chain.path}?$deltatoken={token}"
        body["value"] = items
        return body
