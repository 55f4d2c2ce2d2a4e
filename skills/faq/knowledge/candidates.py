"""Candidate 相似问法 from the numbered choices members confirmed: "你是想问：1. … 2. …", and the member answered
with a number. The question they asked then means the entry they picked, in their own words: operators see these
(``/kb candidates``) and accept the good ones (``/kb accept N``), which adds the question to the entry's file.
Nothing is added by itself: a member can pick a wrong number, and a question may be worded for one person only.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from skills.faq.knowledge.entries import Entry
from skills.faq.knowledge.text import normalize


@dataclass(frozen=True, slots=True)
class Confirmed:
    """One ``faq_answer`` activity row with mode ``choice``."""

    id: int
    at: datetime
    question: str  # what the member asked
    entry: str  # the entry they picked


@dataclass(frozen=True, slots=True)
class Candidate:
    question: str  # the commonest wording (the latest of equally common ones)
    entry: Entry
    count: int  # members' confirmations
    last_at: datetime


def candidates(rows: Iterable[Confirmed], entries: Iterable[Entry]) -> list[Candidate]:
    """Confirmed questions not yet among their entry's questions, grouped by (entry, normalised text); most
    confirmed first, then the most recent, then by wording: the same rows always give the same numbering."""
    by_id = {e.id: e for e in entries}
    known = {e.id: {normalize(q) for q in e.questions} for e in by_id.values()}
    groups: dict[tuple[str, str], list[Confirmed]] = {}
    for row in rows:
        question = " ".join(row.question.split())
        key = normalize(question)
        if row.entry not in by_id or not key or key in known[row.entry] or len(question) > 100:
            continue
        groups.setdefault((row.entry, key), []).append(Confirmed(row.id, row.at, question, row.entry))
    out = []
    for (entry_id, _), rows_ in groups.items():
        wordings = Counter(r.question for r in rows_)
        latest = {r.question: (r.at, r.id) for r in sorted(rows_, key=lambda r: (r.at, r.id))}
        wording = max(wordings, key=lambda w: (wordings[w], latest[w]))
        out.append(Candidate(wording, by_id[entry_id], len(rows_), max(r.at for r in rows_)))
    out.sort(key=lambda c: (c.entry.id, c.question))
    out.sort(key=lambda c: (c.count, c.last_at), reverse=True)
    return out
