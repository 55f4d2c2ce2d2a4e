"""Group unanswered questions, so operators see "物流查不到 ×7" rather than seven variants.

The one grouping of misses: ``/kb misses`` and the dashboard's misses page both read it through
skills/faq/store.py ``misses``. Two questions are one when their normalised text (NFKC, lower case, punctuation
and spaces out) is the same, or when the terms of what is left once question particles and filler are dropped
(门店有停车位吗 → 门店 停车位) overlap enough. It does not depend on the knowledge base in service (no synonyms),
so the same activity rows give the same groups wherever they are read.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from skills.faq.knowledge.text import normalize, plain_chars

SIMILAR = 0.5  # Jaccard of two questions' terms: at or above this, they count as one
MAX_WORDING = 200  # characters of a question kept for display
# The most asked different questions grouped by similarity; the rarer rest (asked about once each, when there
# are this many) only by equal normalised text: bounds the time of a report (docs/benchmarks.md).
SIMILAR_KEYS = 5_000


@dataclass(frozen=True, slots=True)
class MissRow:
    """One ``faq_miss`` activity row."""

    id: int
    at: datetime
    question: str  # detail["q"]
    reason: str  # detail["reason"]: low | handoff | llm_refused


@dataclass(frozen=True, slots=True)
class MissGroup:
    question: str  # the most asked question's commonest wording (the latest of equally common ones)
    count: int  # times asked
    last_at: datetime
    reason: str  # of the latest
    ids: tuple[int, ...]  # the activity rows, newest first
    variants: int  # different questions (by normalised text) in the group


@dataclass
class _Key:
    """The rows of one normalised text."""

    rows: list[MissRow]
    wordings: Counter


def _wording(question: str) -> str:
    return " ".join(question.split())[:MAX_WORDING]


def group_misses(rows: Iterable[MissRow], limit: int | None = 10,
                 similar_keys: int = SIMILAR_KEYS) -> list[MissGroup]:
    """Most asked first (then the most recent); ``limit`` groups at most (None: all). Only the ``similar_keys``
    most asked different questions are grouped by similarity; the rest only with the same normalised text."""
    keys: dict[str, _Key] = {}
    key_of: dict[str, str] = {}  # wording → key: the same wordings come back again and again
    for row in rows:
        wording = _wording(row.question)
        if not wording:
            continue
        key = key_of.get(wording)
        if key is None:
            key = key_of[wording] = normalize(wording) or wording  # all emoji or punctuation: the text itself
        k = keys.get(key)
        if k is None:
            k = keys[key] = _Key([], Counter())
        k.rows.append(row)
        k.wordings[wording] += 1
    # commonest first: it founds its group, and the less common join the first group they are similar enough to
    last = {key: max(r.at for r in k.rows) for key, k in keys.items()}
    order = sorted(sorted(keys), key=lambda key: (len(keys[key].rows), last[key]), reverse=True)
    similar, rest = order[:similar_keys], order[similar_keys:]
    # (no key has a line break: whitespace is collapsed)
    terms = [frozenset(chars or (key,)) for key, chars in zip(similar, plain_chars(similar))]
    members: list[list[str]] = []
    for key, g in zip(similar, _similar_groups(terms)):
        if g == len(members):
            members.append([])
        members[g].append(key)
    members += [[key] for key in rest]
    groups = [_group([keys[key] for key in m]) for m in members]
    groups.sort(key=lambda g: g.question)
    groups.sort(key=lambda g: (g.count, g.last_at), reverse=True)
    return groups if limit is None else groups[:limit]


def _similar_groups(sets: list[frozenset[str]]) -> list[int]:
    """Each set's group: the first group (in order of founding) whose founder it is similar to, else a new one.

    Prefix filter (as in all-pairs similarity joins): with terms ranked rarest first, two sets with Jaccard ≥ t
    share a term among the first n - ceil(t·n) + 1 of each; so only those are indexed and probed, and the groups
    are the same as comparing with every group, without the quadratic cost. Sets are compared as bit masks."""
    frequency = Counter(t for ts in sets for t in ts)
    rank = {t: i for i, t in enumerate(sorted(frequency, key=lambda t: (frequency[t], t)))}  # rarest first
    founders: list[tuple[int, int]] = []  # (mask, size)
    postings: dict[int, list[int]] = defaultdict(list)  # prefix term → groups whose founder has it
    decided: dict[frozenset[str], int] = {}  # equal sets land in the same group: decide once
    out = []
    for terms in sets:
        joined = decided.get(terms)
        if joined is None:
            ranks = sorted(rank[t] for t in terms)
            n = len(ranks)
            prefix = ranks[:n - math.ceil(SIMILAR * n) + 1]
            mask = sum(1 << r for r in ranks)
            low, high = SIMILAR * n, n / SIMILAR  # a set this much smaller or bigger can't be similar enough
            for g in sorted({g for r in prefix for g in postings.get(r, ())}):
                f_mask, f_n = founders[g]
                if low <= f_n <= high:
                    shared = (mask & f_mask).bit_count()
                    if shared >= SIMILAR * (n + f_n - shared):  # Jaccard: shared / union
                        joined = g
                        break
            if joined is None:
                joined = len(founders)
                founders.append((mask, n))
                for r in prefix:
                    postings[r].append(joined)
            decided[terms] = joined
        out.append(joined)
    return out


def _group(keys: list[_Key]) -> MissGroup:
    """``keys[0]`` founded the group (the most asked); its commonest wording, the latest of equals, names it."""
    rows = sorted((r for k in keys for r in k.rows), key=lambda r: (r.at, r.id), reverse=True)
    founder = keys[0]
    newest = {}
    for r in sorted(founder.rows, key=lambda r: (r.at, r.id)):
        newest[_wording(r.question)] = (r.at, r.id)
    question = max(founder.wordings, key=lambda w: (founder.wordings[w], newest[w]))
    return MissGroup(question, len(rows), rows[0].at, rows[0].reason, tuple(r.id for r in rows), len(keys))
