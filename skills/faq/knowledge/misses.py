"""Group unanswered questions by similarity, so operators see "物流查不到 ×7" rather than seven variants."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from skills.faq.knowledge.text import normalize

SIMILAR = 0.5  # Jaccard of the questions' terms: above this, two count as one


@dataclass(frozen=True)
class MissGroup:
    question: str  # the commonest wording
    count: int
    variants: int


def _bigrams(text: str) -> frozenset[str]:
    t = normalize(text)
    return frozenset(t[i:i + 2] for i in range(len(t) - 1)) or frozenset([t])


def group_misses(questions: list[str], top: int = 10,
                 terms: Callable[[str], frozenset[str]] = _bigrams) -> list[MissGroup]:
    """``terms``: what a question is made of; the knowledge base's analyser (particles out, synonyms in) groups
    门店有停车位吗 with 门店停车位在哪, where raw bigrams would not."""
    counts = Counter(q.strip() for q in questions if q.strip())
    groups: list[tuple[frozenset[str], list[tuple[str, int]]]] = []
    for q, n in counts.most_common():  # commonest first: it becomes its group's wording
        grams = terms(q) or frozenset([q])
        for g_grams, members in groups:
            if len(grams & g_grams) / len(grams | g_grams) >= SIMILAR:
                members.append((q, n))
                break
        else:
            groups.append((grams, [(q, n)]))
    result = [MissGroup(m[0][0], sum(n for _, n in m), len(m)) for _, m in groups]
    result.sort(key=lambda g: g.count, reverse=True)
    return result[:top]
