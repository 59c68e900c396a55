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


def name_tier(a: str, b: str) -> tuple[int, float]:
    """(SAME, 1.0) for equal normalised names, (CLOSE, ratio) for names a few letters apart with
    the same numbers, else (NONE, ratio). Spaces do not count: "Board Room" is "Boardroom"."""
    compact_a, compact_b = a.replace(" ", ""), b.replace(" ", "")
    if compact_a == compact_b:
        return SAME, 1.0
    ratio = SequenceMatcher(None, compact_a, compact_b).ratio()
    same_numbers = re.findall(r"\d+", a) == re.findall(r"\d+", b)
    long_enough = min(len(compact_a), len(compact_b)) >= 4
    if same_numbers and long_enough and ratio >= SIMILAR:
        return CLOSE, ratio
    return NONE, ratio


# --- the decision ------------------------------------------------------------------------------


@dataclass
class _Pool:
    outlook: list[OutlookRoom]
    hybrid: list[HybridRoom]
    keys_o: dict[str, str] = field(default_factory=dict)
    keys_h: dict[str, str] = field(default_factory=dict)
    # building -> how many known pairs put it in each Hybrid office; the pairs themselves
    evidence: dict[str, Counter[str]] = field(default_factory=dict)
    witnesses: set[tuple[str, str]] = field(default_factory=set)

    # mailboxes and resources with a same-name match anywhere, mapped ones included
    named_o: set[str] = field(default_factory=set)
    named_h: set[str] = field(default_factory=set)

    def tier(self, o: OutlookRoom, h: HybridRoom) -> tuple[int, float]:
        return name_tier(self.keys_o[o.email], self.keys_h[h.id])

    def fits(self, o: OutlookRoom, h: HybridRoom) -> bool:
        """A candidate pair: the same name, or a similar one when neither side has a same-name
        match anywhere (Harbour is not offered Harbor when a resource called Harbour exists,
        even one mapped to another mailbox)."""
        tier = self.tier(o, h)[0]
        if tier == SAME:
            return True
        return tier == CLOSE and o.email not in self.named_o and h.id not in self.named_h

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
        """Name first; building, then capacity only among equally good names."""
        return (self.tier(o, h)[0], self.building(o, h), _capacity(o, h))


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
    pool = _Pool(
        outlook=[o for o in outlook if o.email.lower() not in taken_o],
        hybrid=[h for h in hybrid if h.id not in taken_h],
    )
    pool.keys_o = {o.email: normalise(o.name, buildings) for o in outlook}
    pool.keys_h = {h.id: normalise(h.name, buildings) for h in hybrid}
    for a in outlook:
        for b in hybrid:
            if pool.tier(a, b)[0] == SAME:
                pool.named_o.add(a.email)
                pool.named_h.add(b.id)
    known = [
        (by_email[m.mailbox.lower()], by_id[m.hybrid_id])
        for m in mapped
        if m.mailbox.lower() in by_email and m.hybrid_id in by_id
    ]
    _learn_offices(pool, [*known, *_unmistakable(pool)])
    proposed = _pair(pool)
    for o, h in proposed:
        rows.append(Row(Kind.PROPOSED, o, h, _why(pool, o, h)))
    rows += _leftovers(pool, proposed, [h for h in hybrid if h.id in taken_h])
    return Result(tuple(rows))


def _unmistakable(pool: _Pool) -> list[tuple[OutlookRoom, HybridRoom]]:
    """Pairs with the same normalised name and nobody else of that name on either side."""
    same = [(o, h) for o in pool.outlook for h in pool.hybrid if pool.tier(o, h)[0] == SAME]
    per_o = Counter(o.email for o, _ in same)
    per_h = Counter(h.id for _, h in same)
    return [(o, h) for o, h in same if per_o[o.email] == 1 and per_h[h.id] == 1]


def _pair(pool: _Pool) -> list[tuple[OutlookRoom, HybridRoom]]:
    """Mutual single best choices, round after round: a pair leaves the pool, which may make
    another room's runner-up its single best choice (the same name in two buildings, told apart
    by the building once the other room has its pair)."""
    free_o, free_h = list(pool.outlook), list(pool.hybrid)
    pairs: list[tuple[OutlookRoom, HybridRoom]] = []
    while True:
        found = []
        for o in free_o:
            ranked = {h.id: pool.rank(o, h) for h in free_h if pool.fits(o, h)}
            if not ranked:
                continue
            top = max(ranked.values())
            best = [h for h in free_h if ranked.get(h.id) == top]
            if len(best) != 1:
                continue
            h = best[0]
            rivals = [
                o2 for o2 in free_o if o2 is not o and pool.fits(o2, h) and pool.rank(o2, h) >= top
            ]
            if not rivals:
                found.append((o, h))
        if not found:
            return sorted(pairs, key=lambda p: (p[0].name.casefold(), p[0].email))
        pairs += found
        done_o = {o.email for o, _ in found}
        done_h = {h.id for _, h in found}
        free_o = [o for o in free_o if o.email not in done_o]
        free_h = [h for h in free_h if h.id not in done_h]


def _why(pool: _Pool, o: OutlookRoom, h: HybridRoom) -> tuple[str, ...]:
    tier, ratio = pool.tier(o, h)
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
    others = [x for x in pool.hybrid if pool.rank(o, x)[0] == tier and pool.rank(o, x) < mine]
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
    free_o = [o for o in pool.outlook if o.email not in used_o]
    free_h = [h for h in pool.hybrid if h.id not in used_h]
    rows: list[Row] = []
    in_doubt: set[str] = set()
    for o in sorted(free_o, key=lambda x: (x.name.casefold(), x.email)):
        ranked = {h.id: pool.rank(o, h) for h in free_h if pool.fits(o, h)}
        if ranked:
            top = max(ranked.values())
            best = tuple(
                sorted(
                    (h for h in free_h if ranked.get(h.id) == top),
                    key=lambda x: (x.name.casefold(), x.id),
                )
            )
            rivals = sorted(
                o2.email for o2 in free_o if o2 is not o and any(pool.fits(o2, h) for h in best)
            )
            why = [f"{len(best)} resources match as well"] if len(best) > 1 else []
            if rivals:
                why.append(f"as good a match for {', '.join(rivals)}")
            why.append("choose by hand")
            rows.append(Row(Kind.AMBIGUOUS, o, None, tuple(why), best))
            in_doubt |= {h.id for h in best}
            continue
        elsewhere = sorted(
            (h for h in [*mapped_hybrid, *(h for _, h in proposed)] if pool.tier(o, h)[0] > NONE),
            key=lambda x: (x.name.casefold(), x.id),
        )
        if elsewhere:
            note = f"{elsewhere[0].name!r} matches by name but is already mapped"
        else:
            note = "no Hybrid resource with a matching name"
        rows.append(Row(Kind.UNMATCHED, o, None, (note,)))
    for h in sorted(free_h, key=lambda x: (x.name.casefold(), x.id)):
        if h.id not in in_doubt:
            rows.append(Row(Kind.UNMATCHED, None, h, ("no room mailbox with a matching name",)))
    return rows
