"""The retrieval index: BM25 over three views of every question, fused, then a calibrated confidence.

Stage 1 (recall): Okapi BM25 from bm25s (sparse matrices: a 10,000-entry base answers in about a millisecond,
where rank-bm25 loops over every document in Python) over words, char n-grams and pinyin bigrams, each field's
score divided by the query's own best possible score so the fields add up on one scale.
Stage 2 (precision): the top candidates are re-scored with an IDF-weighted Dice overlap per view, which, unlike
BM25, also penalises what the *entry* has and the question lacks. Each entry scores as its best question
(standard or similar). The confidence is a logistic function of the best similarity and its lead over the next
entry, fitted on the development split (bench/faq_eval.py --fit); it reads as "probability the top entry is right".
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from dataclasses import dataclass

import bm25s
import numpy as np

from skills.knowledge.entries import Entry
from skills.knowledge.text import Analysed, Analyzer

logging.getLogger("bm25s").setLevel(logging.WARNING)  # bm25s sets its logger to DEBUG on import

VIEWS = ("words", "chars", "sounds")
# How much each view counts (stage 1 and stage 2); fitted on the dev split, see bench/faq_eval.py.
RECALL_WEIGHTS = {"words": 0.4, "chars": 0.4, "sounds": 0.2}
RERANK_WEIGHTS = {"words": 0.4, "chars": 0.4, "sounds": 0.2}
CANDIDATES = 30
# confidence = sigmoid(A * best + B * lead + C)
CALIBRATION = (5.44, 6.29, -4.92)
DENSE_WEIGHT = 0.5  # with embeddings: similarity = (1 - w) * lexical + w * cosine


@dataclass(frozen=True, slots=True)
class Hit:
    entry: Entry
    confidence: float  # calibrated, 0..1
    similarity: float  # the raw fused similarity of the best-matching question
    matched: str  # which of the entry's questions matched best
    lead: float = 0.0  # the top hit's similarity minus the next entry's (0 for the others)


class _View:
    """One view of every question: a BM25 index plus the IDF and term sets the re-ranker needs."""

    def __init__(self, docs: list[tuple[str, ...]]) -> None:
        self.bm25 = bm25s.BM25()
        safe = [list(d) if d else [""] for d in docs]  # bm25s wants no empty document
        self.bm25.index(safe, show_progress=False)
        df: Counter[str] = Counter()
        for d in docs:
            df.update(set(d))
        n = max(len(docs), 1)
        self.idf = {t: math.log(1 + (n - c + 0.5) / (c + 0.5)) for t, c in df.items()}
        self.unknown_idf = math.log(1 + (n + 0.5) / 0.5)  # a term no question has: as rare as can be
        self.terms = [frozenset(d) for d in docs]
        self.weight = [sum(self.idf[t] for t in s) for s in self.terms]

    def recall(self, query: tuple[str, ...], n_docs: int) -> np.ndarray:
        ids = self.bm25.get_tokens_ids(list(dict.fromkeys(query)))
        if not ids:
            return np.zeros(n_docs, dtype=np.float32)
        scores = self.bm25.get_scores(ids)
        ideal = sum(self.idf.get(t, self.unknown_idf) for t in set(query)) or 1.0
        return scores / ideal

    def dice(self, query: frozenset[str], query_weight: float, doc: int) -> float:
        shared = sum(self.idf[t] for t in query & self.terms[doc])
        total = query_weight + self.weight[doc]
        return 2 * shared / total if total else 0.0


class Index:
    def __init__(self, entries: list[Entry], analyzer: Analyzer) -> None:
        self.entries = entries
        self.analyzer = analyzer
        doc_entry: list[int] = []
        self.doc_text: list[str] = []
        analysed: list[Analysed] = []
        for i, entry in enumerate(entries):
            for q in entry.questions:
                doc_entry.append(i)
                self.doc_text.append(q)
                analysed.append(analyzer.analyse(q))
        self.doc_entry = np.asarray(doc_entry, dtype=np.int32)
        self.views = {v: _View([getattr(a, v) for a in analysed]) for v in VIEWS} if analysed else {}
        self.scoped = np.asarray([bool(e.rooms) for e in entries], dtype=bool)
        self.dense: np.ndarray | None = None  # optional: unit vectors per question (see skills/knowledge/llm.py)

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def questions(self) -> list[str]:
        """Every indexed question (standard and similar), in the order of the dense matrix's rows."""
        return self.doc_text

    def search(self, text: str, k: int = 3, *, room_id: str | None = None, room_tags: tuple[str, ...] = (),
               dense_query: np.ndarray | None = None) -> list[Hit]:
        if not self.views:
            return []
        q = self.analyzer.analyse(text)
        n = len(self.doc_entry)
        recall = np.zeros(n, dtype=np.float32)
        for v, w in RECALL_WEIGHTS.items():
            recall += w * self.views[v].recall(getattr(q, v), n)
        if room_id is not None and self.scoped.any():
            visible = np.asarray([e.visible_in(room_id, room_tags) for e in self.entries], dtype=bool)
            recall[~visible[self.doc_entry]] = -1.0
        cosine = self.dense @ dense_query if self.dense is not None and dense_query is not None else None
        if cosine is not None:
            recall += np.where(recall >= 0, cosine, 0)  # hidden (other rooms') questions stay out
        top = min(CANDIDATES, n)
        cand = np.argpartition(-recall, top - 1)[:top] if top < n else np.arange(n)
        cand = [int(d) for d in cand if recall[d] > 0]
        qsets = {v: frozenset(getattr(q, v)) for v in VIEWS}
        qweights = {v: sum(self.views[v].idf.get(t, self.views[v].unknown_idf) for t in qsets[v]) for v in VIEWS}
        best: dict[int, tuple[float, int]] = {}
        for d in cand:
            sim = sum(w * self.views[v].dice(qsets[v], qweights[v], d) for v, w in RERANK_WEIGHTS.items())
            if cosine is not None:
                sim = (1 - DENSE_WEIGHT) * sim + DENSE_WEIGHT * max(float(cosine[d]), 0.0)
            e = int(self.doc_entry[d])
            if e not in best or sim > best[e][0]:
                best[e] = (sim, d)
        ranked = sorted(best.items(), key=lambda kv: kv[1][0], reverse=True)
        hits = []
        for rank, (e, (sim, d)) in enumerate(ranked[:k]):
            nxt = ranked[rank + 1][1][0] if rank + 1 < len(ranked) else 0.0
            lead = sim - nxt if rank == 0 else 0.0
            hits.append(Hit(self.entries[e], confidence(sim, lead), sim, self.doc_text[d], lead))
        return hits


def confidence(similarity: float, lead: float) -> float:
    a, b, c = CALIBRATION
    return 1.0 / (1.0 + math.exp(-(a * similarity + b * lead + c)))
