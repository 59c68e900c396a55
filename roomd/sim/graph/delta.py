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


Snapshot = dict[str, tuple[str, str]]  # instance id -> (version, kind)


@dataclass
class Chain:
    """One lineage of tokens from one initial request (one mailbox, one window)."""

    id: str
    mailbox: str
    path: str  # the request path as the client wrote it, reused in links
    ws: datetime
    we: datetime
    generation: int = 0
    live: list[int] = field(default_factory=list)
    tokens: dict[int, TokenState] = field(default_factory=dict)  # live generation -> state
    valid: bool = True


@dataclass
class TokenState:
    """What one token stands for. A ``delta`` token carries the sync state it was issued at
    (``snapshot``, ``seq``, ``emitted``), so replaying any still-valid deltaLink returns every
    change since *that* token, not since the chain's latest one (graph-behaviour.md 1.2 replays,
    1.3 "These tokens are state tokens", 1.7 generations). A ``skip`` token carries the rest of
    its round (``pending``) and the state the round ends in."""

    chain: Chain
    generation: int
    kind: str  # "skip" | "delta"
    issued_at: datetime
    pending: list[tuple[str, str]] = field(default_factory=list)  # ("item"|"removed", id)
    empty_pages: int = 0
    snapshot: Snapshot = field(default_factory=dict)
    seq: int = 0
    emitted: list[str] = field(default_factory=list)

    def release(self) -> None:
        """Drop the round this token carried (its generation was evicted)."""
        self.pending, self.snapshot, self.emitted = [], {}, []


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
    """Issues and resumes calendarView/delta tokens.

    Bounded like Exchange's own cache (graph-behaviour.md 1.7, delta-query-overview.md "Token
    duration": "after the cache capacity is exceeded, the older delta tokens are deleted"): each
    mailbox keeps at most ``Switches.delta_tokens_per_mailbox`` tokens, oldest out first, and an
    evicted token answers 410 ``SyncStateNotFound``; so a long-running ``roomd sim`` stays flat."""

    def __init__(self, clock: SimClock, switches: Switches) -> None:
        self.clock = clock
        self.switches = switches
        self.tokens: dict[str, TokenState] = {}
        # per mailbox, token strings in issue order (dicts keep insertion order)
        self._issued: dict[str, dict[str, None]] = {}

    # -- control ----------------------------------------------------------------------------
    def expire(self, mailbox: str | None = None) -> int:
        """Invalidate every token (of one mailbox): the next use gets 410."""
        chains = {
            id(s.chain): s.chain
            for s in self.tokens.values()
            if s.chain.valid and (mailbox is None or s.chain.mailbox == mailbox.lower())
        }
        for chain in chains.values():
            chain.valid = False
        return len(chains)

    def tokens_held(self, mailbox: str) -> int:
        """How many tokens (live or evicted-generation) the mailbox's cache holds."""
        return len(self._issued.get(mailbox.lower(), {}))

    # -- requests ---------------------------------------------------------------------------
    def start(self, cal: Calendar, path: str, ws: datetime, we: datetime) -> TokenState:
        chain = Chain(secrets.token_hex(8), cal.mailbox, path, ws, we)
        return self._round(cal, chain, None)

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
            return self._round(cal, chain, state)
        return state

    def _round(self, cal: Calendar, chain: Chain, since: TokenState | None) -> TokenState:
        """A new round: everything in the window (initial), or every change since the sync
        state that the deltaLink ``since`` carries."""
        include_masters = self.switches.series_master_in_delta
        current = cal.instances(chain.ws, chain.we, include_masters)
        new_snapshot = {i.id: (i.version, i.kind) for i in current}
        old_snapshot = since.snapshot if since is not None else {}
        pending: list[tuple[str, str]] = []
        for inst in current:
            old = old_snapshot.get(inst.id)
            if since is None or old is None or old[0] != inst.version:
                pending.append(("item", inst.id))
        if since is not None:
            for old_id, (_, kind) in old_snapshot.items():
                if old_id not in new_snapshot:
                    if kind == "occurrence" and not self.switches.report_deleted_occurrences:
                        continue
                    pending.append(("removed", old_id))
            # changes outside the window come back as @removed too (v1.0 event-delta.md)
            seen = {i for _, i in pending} | set(new_snapshot) | set(old_snapshot)
            masters_in_view = {i.event.id for i in current} | {
                i.event.series_master_id for i in current if i.event.series_master_id
            }
            for changed in sorted(cal.changed_since(since.seq)):
                if changed not in seen and changed not in masters_in_view:
                    pending.append(("removed", changed))
            if self.switches.delta_replay:
                pending.extend(("item", i) for i in since.emitted if i in new_snapshot)
        if self.switches.delta_duplicates and pending:
            pending.append(pending[0])
        return TokenState(
            chain,
            0,
            "skip",
            self.clock.now(),
            pending=pending,
            empty_pages=self.switches.delta_empty_pages,
            snapshot=new_snapshot,
            seq=cal.seq,
        )

    def _issue(self, chain: Chain, state: TokenState) -> str:
        """Register a new token for ``state`` and evict the oldest beyond the mailbox's bound."""
        token = secrets.token_urlsafe(24)
        self.tokens[token] = chain.tokens[state.generation] = state
        issued = self._issued.setdefault(chain.mailbox, {})
        issued[token] = None
        bound = max(1, self.switches.delta_tokens_per_mailbox)
        while len(issued) > bound:
            oldest = next(iter(issued))
            del issued[oldest]
            evicted = self.tokens.pop(oldest, None)
            if evicted is not None:
                evicted.release()
                owner = evicted.chain
                if owner.tokens.get(evicted.generation) is evicted:
                    del owner.tokens[evicted.generation]
        return token

    def page(
        self, cal: Calendar, state: TokenState, page_size: int, zone: OutputZone, base: str
    ) -> JSON:
        """Serve the next page of ``state``'s round and issue the next link."""
        chain = state.chain
        items: list[JSON] = []
        rest = list(state.pending)
        emitted = list(state.emitted)  # a replayed nextLink must not grow its token's list
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
                    emitted.append(item_id)
        chain.generation += 1
        gen = chain.generation
        chain.live.append(gen)
        keep = max(1, self.switches.delta_generations_kept)
        for evicted in chain.live[:-keep]:
            # keep the token (its 410 names its generation) but drop the round it carried
            old = chain.tokens.pop(evicted, None)
            if old is not None:
                old.release()
        chain.live = chain.live[-keep:]
        body: JSON = {"@odata.context": f"{base}/$metadata#Collection(event)"}
        if rest or empty > 0:
            nxt = TokenState(
                chain,
                gen,
                "skip",
                self.clock.now(),
                pending=rest,
                empty_pages=empty,
                snapshot=state.snapshot,
                seq=state.seq,
                emitted=emitted,
            )
            token = self._issue(chain, nxt)
            body["@odata.nextLink"] = f"{base}{chain.path}?$skiptoken={token}"
        else:
            done = TokenState(
                chain,
                gen,
                "delta",
                self.clock.now(),
                snapshot=state.snapshot,
                seq=state.seq,
                emitted=list(dict.fromkeys(emitted)),
            )
            token = self._issue(chain, done)
            body["@odata.deltaLink"] = f"{base}{chain.path}?$deltatoken={token}"
        body["value"] = items
        return body
