"""Which Hybrid resource is which room mailbox: a pure decision, no I/O.

A proposal must be one a facilities person would make at a glance, or none at all: a wrong
mapping syncs one room's meetings into another room's calendar. So:

- Names are compared after normalisation (case, accents, punctuation, "Room"/"Meeting room"
  prefixes, building names and "Building 1"/"B1" prefixes); equal normalised names are a strong
  match, names a few letters apart (``Harbour``/``Harbor``) a weak one, and names whose numbers
  differ never match at all (room 4A is not room 4B, 101 is not 102).
- Building and capacity only break ties between equally good names; they never make a match
  on their own. Hybrid names a resource's office by id, so which office is which building is
  learnt from the rooms already mapped and from the unmistakable name matches.
- A room and a resource are paired only when each is the other's single best choice; what is
  left with several equally good candidates is reported as ambiguous, never guessed.
- A mapping already in the config is never changed, and its mailbox and resource are never
  proposed again. No resource is ever proposed for two mailboxes.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from enum import StrEnum

SIMILAR = 0.8  # SequenceMatcher ratio for "a few letters apart" (Harbour/Harbor: 0.92)
SAME, CLOSE, NONE = 2, 1, 0  # name tiers

_PREFIXES: tuple[tuple[str, ...], ...] = (
    ("meeting", "room"),
    ("conference", "room"),
    ("conf", "room"),
    ("room",),
    ("meeting",),
)
# "Building 1", "Bldg 2", "B1" at the start or the end of a name: a building, not the room
_GENERIC_BUILDING = re.compile(r"^(?:building|bldg|bld|b) (?:\d+|[a-z])(?: |$)")
_CAPACITY_HINT = re.compile(r"\(\s*\d+\s*(?:seats?|people|persons?|pax|p)?\s*\)")


@dataclass(frozen=True)
class OutlookRoom:
    """A room mailbox; ``building`` is Graph's, else the name of a room list holding it."""

    email: str
    name: str
    capacity: int | None = None
    building: str | None = None


@dataclass(frozen=True)
class HybridRoom:
    """A Hybrid resource; ``office`` is Hybrid's office id."""

    id: str
    name: str
    capacity: int | None = None
    office: str | None = None
    time_zone: str | None = None


@dataclass(frozen=True)
class Mapping:
    """A ``[[rooms]]`` block already in the config."""

    mailbox: str
    hybrid_id: str
    name: str | None = None


class Kind(StrEnum):
    MAPPED = "mapped"
    PROPOSED = "proposed"
    AMBIGUOUS = "ambiguous"
    UNMATCHED = "unmatched"


@dataclass(frozen=True)
class Row:
    """One line of the side-by-side table. ``outlook``/``hybrid`` is None on the side a row
    does not have (an unmatched resource has no mailbox); a mapped row whose mailbox or resource
    the tenant no longer lists says so in ``reasons``. ``candidates``: an ambiguous row's
    equally good resources."""

    kind: Kind
    outlook: OutlookRoom | None
    hybrid: HybridRoom | None
    reasons: tuple[str, ...] = ()
    candidates: tuple[HybridRoom, ...] = ()


@dataclass(frozen=True)
class Result:
    rows: tuple[Row, ...]

    def of(self, kind: Kind) -> list[Row]:
        return [r for r in self.rows if r.kind is kind]

    @property
    def proposals(self) -> list[Row]:
        return self.of(Kind.PROPOSED)


# --- names ------------------------------------------------------------------------------------


def tokens(name: str) -> list[str]:
    """Lower-case words and numbers, accents and punctuation dropped, letters split from
    digits (``Room4A`` -> room 4 a), capacity hints such as ``(8 seats)`` dropped."""
    text = unicodedata.normalize("NFKD", name)
    text = "".join(c for c in text if not unicodedata.combining(c)).casefold()
    text = _CAPACITY_HINT.sub(" ", text)
    text = re.sub(r"(?<=[a-z])(?=\d)|(?<=\d)(?=[a-z])", " ", text)
    return re.findall(r"[a-z]+|\d+", text)


def normalise(name: str, buildings: Iterable[str] = ()) -> str:
    """The part of a room's name that names the room: ``"Building 1 - Meeting Room 4A"`` and
    ``"4a"`` both give ``"4 a"``. Never strips a name to nothing (a room called "Room" stays)."""
    words = tokens(name)
    known = sorted((tokens(b) for b in buildings), key=len, reverse=True)
    changed = True
    while changed:
        changed = False
        for cut in _cuts(words, known):
            if cut and cut != words:
                words, changed = cut, True
                break
    return " ".join(words)


def _cuts(words: list[str], buildings: list[list[str]]) -> Iterable[list[str]]:
    for b in buildings:
        if b and words[: len(b)] == b:
            yield words[len(b) :]
        if b and len(words) > len(b) and words[-len(b) :] == b:
            yield words[: -len(b)]
    spaced = " ".join(words)
    generic = _GENERIC_BUILDING.match(spaced)
    if generic:
        yield spaced[generic.end() :].split()
    for prefix in _PREFIXES:
        if tuple(words[: len(prefix)]) == prefix:
            yield words[len(prefix) :]


def _compact(key: str) -> str:
    return key.replace(" ", "")


def _numbers(key: str) -> tuple[str, ...]:
    return tuple(re.findall(r"\d+", _compact(key)))


def name_tier(a: str, b: str) -> tuple[int, float]:
    """(SAME, 1.0) for equal normalised names, (CLOSE, ratio) for names a few letters apart with
    the same numbers, else (NONE, ratio). Spaces do not count: "Board Room" is "Boardroom"."""
    compact_a, compact_b = _compact(a), _compact(b)
    if compact_a == compact_b:
        return SAME, 1.0
    ratio = SequenceMatcher(None, compact_a, compact_b).ratio()
    long_enough = min(len(compact_a), len(compact_b)) >= 4
    if _numbers(a) == _numbers(b) and long_enough and ratio >= SIMILAR:
        return CLOSE, ratio
    return NONE, ratio


def _tiers(keys_o: dict[str, str], keys_h: dict[str, str]) -> dict[tuple[str, str], int]:
    """The name tier of every pair that has one, by email and id. Only names with the same
    numbers can match, so each mailbox is compared with that group of resources alone, and
    SequenceMatcher's cheap upper bounds rule most of those out before its ratio is computed:
    a tenant of a thousand rooms on each side is matched in well under a second."""
    groups: dict[tuple[str, ...], list[tuple[str, str]]] = {}
    for ident, key in keys_h.items():
        groups.setdefault(_numbers(key), []).append((ident, _compact(key)))
    found: dict[tuple[str, str], int] = {}
    matcher = SequenceMatcher(None, "", "")
    for email, key in keys_o.items():
        mine = _compact(key)
        matcher.set_seq2(mine)
        for ident, theirs in groups.get(_numbers(key), ()):
            if theirs == mine:
                found[(email, ident)] = SAME
                continue
            if min(len(mine), len(theirs)) < 4:
                continue
            matcher.set_seq1(theirs)
            if (
                matcher.real_quick_ratio() >= SIMILAR
                and matcher.quick_ratio() >= SIMILAR
                and matcher.ratio() >= SIMILAR
            ):
                found[(email, ident)] = CLOSE
    return found


# --- the decision ------------------------------------------------------------------------------


@dataclass
class _Pool:
    """The rooms still to be paired, and what is known about every pair (computed once)."""

    outlook: list[OutlookRoom]
    hybrid: list[HybridRoom]
    keys_o: dict[str, str]
    keys_h: dict[str, str]
    tiers: dict[tuple[str, str], int]
    # mailboxes and resources with a same-name match anywhere, mapped ones included
    named_o: set[str] = field(default_factory=set)
    named_h: set[str] = field(default_factory=set)
    # the fitting candidates of each free mailbox and each free resource
    fit_o: dict[str, list[HybridRoom]] = field(default_factory=dict)
    fit_h: dict[str, list[OutlookRoom]] = field(default_factory=dict)
    # building -> how many known pairs put it in each Hybrid office; the pairs themselves
    evidence: dict[str, Counter[str]] = field(default_factory=dict)
    witnesses: set[tuple[str, str]] = field(default_factory=set)
    _ranks: dict[tuple[str, str], tuple[int, int, int]] = field(default_factory=dict)

    def tier(self, o: OutlookRoom, h: HybridRoom) -> int:
        return self.tiers.get((o.email, h.id), NONE)

    def fits(self, o: OutlookRoom, h: HybridRoom) -> bool:
        """A candidate pair: the same name, or a similar one when neither side has a same-name
        match anywhere (Harbour is not offered Harbor when a resource called Harbour exists,
        even one mapped to another mailbox)."""
        tier = self.tier(o, h)
        if tier == SAME:
            return True
        return tier == CLOSE and o.email not in self.named_o and h.id not in self.named_h

    def index(self) -> None:
        for (email, ident), tier in self.tiers.items():
            if tier == SAME:
                self.named_o.add(email)
                self.named_h.add(ident)
        outlook = {o.email: o for o in self.outlook}
        hybrid = {h.id: h for h in self.hybrid}
        self.fit_o = {email: [] for email in outlook}
        self.fit_h = {ident: [] for ident in hybrid}
        for email, ident in self.tiers:
            o, h = outlook.get(email), hybrid.get(ident)
            if o is not None and h is not None and self.fits(o, h):
                self.fit_o[email].append(h)
                self.fit_h[ident].append(o)

    def building(self, o: OutlookRoom, h: HybridRoom) -> int:
        """+1 when the other rooms known in ``o``'s building are in ``h``'s office, -1 when
        they are in another, 0 when nothing is known or the evidence is split. A pair is never
        its own evidence."""
        if not o.building or h.office is None:
            return 0
        counts = Counter(self.evidence.get(_fold(o.building), Counter()))
        if (o.email, h.id) in self.witnesses:
            counts[h.office] -= 1
        ranked = [(office, n) for office, n in counts.most_common() if n > 0]
        if not ranked or (len(ranked) > 1 and ranked[1][1] == ranked[0][1]):
            return 0
        return 1 if ranked[0][0] == h.office else -1

    def rank(self, o: OutlookRoom, h: HybridRoom) -> tuple[int, int, int]:
        """Name first; building, then capacity only among equally good names. Asked only once
        the offices are learnt, so it is cached."""
        key = (o.email, h.id)
        if key not in self._ranks:
            self._ranks[key] = (self.tier(o, h), self.building(o, h), _capacity(o, h))
        return self._ranks[key]


def _fold(text: str) -> str:
    return " ".join(tokens(text))


def _capacity(o: OutlookRoom, h: HybridRoom) -> int:
    if o.capacity is None or h.capacity is None:
        return 0
    return 1 if o.capacity == h.capacity else -1


def _learn_offices(pool: _Pool, pairs: Iterable[tuple[OutlookRoom, HybridRoom]]) -> None:
    """Which Hybrid office each building's known pairs are in (Hybrid gives offices by id)."""
    for o, h in pairs:
        if o.building and h.office and (o.email, h.id) not in pool.witnesses:
            pool.evidence.setdefault(_fold(o.building), Counter())[h.office] += 1
            pool.witnesses.add((o.email, h.id))


def match_rooms(
    outlook: Sequence[OutlookRoom],
    hybrid: Sequence[HybridRoom],
    mapped: Sequence[Mapping] = (),
) -> Result:
    """The table: config mappings as they are, then proposals, ambiguities and the unmatched
    rooms on either side. Independent of the order of its inputs."""
    by_email = {o.email.lower(): o for o in outlook}
    by_id = {h.id: h for h in hybrid}
    rows: list[Row] = []
    for m in mapped:
        o_found, h_found = by_email.get(m.mailbox.lower()), by_id.get(m.hybrid_id)
        notes = ["in the config"]
        if o_found is None:
            notes.append("Graph lists no room mailbox with this address")
        if h_found is None:
            notes.append("Hybrid has no resource with this id")
        o_row = o_found or OutlookRoom(m.mailbox, m.name or m.mailbox)
        h_row = h_found or HybridRoom(m.hybrid_id, m.name or m.hybrid_id)
        rows.append(Row(Kind.MAPPED, o_row, h_row, tuple(notes)))
    taken_o = {m.mailbox.lower() for m in mapped}
    taken_h = {m.hybrid_id for m in mapped}
    buildings = {o.building for o in outlook if o.building}
    keys_o = {o.email: normalise(o.name, buildings) for o in outlook}
    keys_h = {h.id: normalise(h.name, buildings) for h in hybrid}
    pool = _Pool(
        outlook=[o for o in outlook if o.email.lower() not in taken_o],
        hybrid=[h for h in hybrid if h.id not in taken_h],
        keys_o=keys_o,
        keys_h=keys_h,
        tiers=_tiers(keys_o, keys_h),
    )
    pool.index()
    known = [
        (by_email[m.mailbox.lower()], by_id[m.hybrid_id])
        for m in mapped
        if m.mailbox.lower() in by_email and m.hybrid_id in by_id
    ]
    _learn_offices(pool, [*known, *_unmistakable(pool)])
    proposed = _pair(pool)
    for o, h in proposed:
        rows.append(Row(Kind.PROPOSED, o, h, _why(pool, o, h)))
    left = _leftovers(pool, proposed, [h for h in hybrid if h.id in taken_h])
    rows += sorted(left, key=lambda r: (r.kind is Kind.UNMATCHED, r.outlook is None))
    return Result(tuple(rows))


def _unmistakable(pool: _Pool) -> list[tuple[OutlookRoom, HybridRoom]]:
    """Pairs with the same normalised name and nobody else of that name on either side."""
    same = [(o, h) for o in pool.outlook for h in pool.fit_o[o.email] if pool.tier(o, h) == SAME]
    per_o = Counter(o.email for o, _ in same)
    per_h = Counter(h.id for _, h in same)
    return [(o, h) for o, h in same if per_o[o.email] == 1 and per_h[h.id] == 1]


def _best(
    pool: _Pool, o: OutlookRoom, free_h: set[str]
) -> tuple[tuple[int, int, int], list[HybridRoom]] | None:
    """``o``'s best rank among the free resources it fits, and the resources that have it."""
    ranked = [(pool.rank(o, h), h) for h in pool.fit_o[o.email] if h.id in free_h]
    if not ranked:
        return None
    top = max(rank for rank, _ in ranked)
    return top, sorted((h for rank, h in ranked if rank == top), key=_hybrid_order)


def _hybrid_order(h: HybridRoom) -> tuple[str, str]:
    return (h.name.casefold(), h.id)


def _outlook_order(o: OutlookRoom) -> tuple[str, str]:
    return (o.name.casefold(), o.email)


def _pair(pool: _Pool) -> list[tuple[OutlookRoom, HybridRoom]]:
    """Mutual single best choices, round after round: a pair leaves the pool, which may make
    another room's runner-up its single best choice (the same name in two buildings, told apart
    by the building once the other room has its pair)."""
    free_o = {o.email for o in pool.outlook}
    free_h = {h.id for h in pool.hybrid}
    pairs: list[tuple[OutlookRoom, HybridRoom]] = []
    while True:
        found = []
        for o in pool.outlook:
            best = _best(pool, o, free_h) if o.email in free_o else None
            if best is None or len(best[1]) != 1:
                continue
            top, (h,) = best
            rivals = [
                o2
                for o2 in pool.fit_h[h.id]
                if o2 is not o and o2.email in free_o and pool.rank(o2, h) >= top
            ]
            if not rivals:
                found.append((o, h))
        if not found:
            return sorted(pairs, key=lambda p: _outlook_order(p[0]))
        pairs += found
        free_o -= {o.email for o, _ in found}
        free_h -= {h.id for _, h in found}


def _why(pool: _Pool, o: OutlookRoom, h: HybridRoom) -> tuple[str, ...]:
    tier, ratio = name_tier(pool.keys_o[o.email], pool.keys_h[h.id])
    if o.name.casefold() == h.name.casefold():
        reasons = ["same name"]
    elif tier == SAME:
        reasons = [f"same name once normalised ({o.name!r} = {h.name!r})"]
    else:
        reasons = [f"similar names ({o.name!r} ~ {h.name!r}, {ratio:.0%})"]
    cap = _capacity(o, h)
    if cap > 0:
        reasons.append(f"capacity {o.capacity}")
    elif cap < 0:
        reasons.append(f"capacity differs ({o.capacity} vs {h.capacity})")
    building = pool.building(o, h)
    if building > 0:
        reasons.append(f"same building ({o.building})")
    elif building < 0:
        reasons.append(f"other rooms of {o.building} are in another Hybrid office")
    mine = pool.rank(o, h)
    others = [
        x for x in pool.fit_o[o.email] if pool.rank(o, x)[0] == tier and pool.rank(o, x) < mine
    ]
    if others:
        names = ", ".join(sorted(repr(x.name) for x in others))
        reasons.append(f"preferred over {names} by building and capacity")
    return tuple(reasons)


def _leftovers(
    pool: _Pool,
    proposed: list[tuple[OutlookRoom, HybridRoom]],
    mapped_hybrid: list[HybridRoom],
) -> list[Row]:
    used_o = {o.email for o, _ in proposed}
    used_h = {h.id for _, h in proposed}
    free_o = sorted((o for o in pool.outlook if o.email not in used_o), key=_outlook_order)
    free_h = sorted((h for h in pool.hybrid if h.id not in used_h), key=_hybrid_order)
    free_o_ids, free_h_ids = {o.email for o in free_o}, {h.id for h in free_h}
    rows: list[Row] = []
    in_doubt: set[str] = set()
    for o in free_o:
        best = _best(pool, o, free_h_ids)
        if best is not None:
            candidates = tuple(best[1])
            rivals = sorted(
                {
                    o2.email
                    for h in candidates
                    for o2 in pool.fit_h[h.id]
                    if o2 is not o and o2.email in free_o_ids
                }
            )
            why = [f"{len(candidates)} resources match as well"] if len(candidates) > 1 else []
            if rivals:
                why.append(f"as good a match for {', '.join(rivals)}")
            why.append("choose by hand")
            rows.append(Row(Kind.AMBIGUOUS, o, None, tuple(why), candidates))
            in_doubt |= {h.id for h in candidates}
            continue
        elsewhere = sorted(
            (h for h in [*mapped_hybrid, *(h for _, h in proposed)] if pool.tier(o, h) > NONE),
            key=_hybrid_order,
        )
        if elsewhere:
            note = f"{elsewhere[0].name!r} matches by name but is already mapped"
        else:
            note = "no Hybrid resource with a matching name"
        rows.append(Row(Kind.UNMATCHED, o, None, (note,)))
    for h in free_h:
        if h.id not in in_doubt:
            rows.append(Row(Kind.UNMATCHED, None, h, ("no room mailbox with a matching name",)))
    return rows
