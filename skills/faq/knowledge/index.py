"""The retrieval index: BM25 over two views of every question, fused, re-ranked with a third, then a calibrated
confidence.

Stage 1 (recall): Okapi BM25 over words and char n-grams, each view's score divided by the
query's own total IDF so the views add up on one scale. Written here on numpy arrays rather than taken
from rank-bm25 (a Python loop over every document per query term: tens of ms at 10,000 entries) or bm25s (which
spent 0.5-0.7 s per view indexing 30,000 questions in Python loops, three views over the 3 s build budget, and
keeps its own vocabulary the re-ranker needs too): the whole of BM25 is the dozen lines in ``_View``.
Stage 2 (precision): the top candidates are re-scored with an IDF-weighted Dice overlap per view, which, unlike
BM25, also penalises what the *entry* has and the question lacks. Each entry scores as its best question
(standard or similar), plus a share of its second best (SECOND). The confidence is a logistic function of the best similarity and its lead over the next
entry, fitted for the knowledge base in service at every build (calibrate.py), or else the default fitted on the
development split (bench/faq_eval.py --fit); it reads as "probability the top entry is right". When the knowledge
base's own questions, asked with their entry hidden, would too often be answered (near-duplicate entries), the
build sets what an answer must rise above (a confidence level or a lead: calibrate.py), applied in
Index.confidence: the policy's thresholds stay as they are.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import chain, count
from typing import NamedTuple

import numpy as np

from skills.faq.knowledge.entries import Entry
from skills.faq.knowledge.text import Analysed, Analyzer, Lexicon, without_places

VIEWS = ("words", "chars", "forms")
# How much each view counts (stage 1 and stage 2); fitted on the dev split, see bench/faq_eval.py.
RECALL_WEIGHTS = {"words": 0.5, "chars": 0.5}
RERANK_WEIGHTS = {"words": 0.25, "chars": 0.5, "forms": 0.25}
CANDIDATES = 30
# An entry whose second-best question matches too is likelier right: it adds this share of its similarity to what
# the best one leaves below 1 (an exact match stays 1). Entries of one question (the dev split's) are unchanged.
SECOND = 0.1
K1, B = 1.5, 0.75
CACHE_SIZE = 4096  # recent query texts per index  # Okapi BM25's usual constants
# confidence = sigmoid(A * best + B * lead + C)
CALIBRATION = (5.58, 6.18, -5.02)
DENSE_WEIGHT = 0.5  # with embeddings: similarity = (1 - w) * lexical + w * cosine
# The default answer and choice thresholds (skills/faq FaqSettings): where the out-of-knowledge-base level is
# anchored when a knowledge base's own questions, asked with their entry hidden, reach the answering confidence.
ANSWER_AT, CHOICE_AT = 0.6, 0.3
_BELOW_ANSWER = ANSWER_AT - 1e-9


@dataclass(frozen=True, slots=True)
class Dense:
    """Unit vectors per question (rows in the order of ``Index.questions``) and how their cosine is fused.

    ``floor`` rescales the cosine to (cosine - floor) / (1 - floor): models whose cosines all sit between 0.8 and
    1 get a spread comparable to the lexical similarity's. ``calibration`` replaces the lexical one: a fused
    similarity reads differently, so each embedder brings its own fit (bench/faq_eval.py --fit). Set in one
    assignment, so a search sees either no dense view or a whole one."""

    matrix: np.ndarray
    weight: float = DENSE_WEIGHT
    floor: float = 0.0
    calibration: tuple[float, float, float] | None = None  # None: the lexical CALIBRATION
    # what an answer must rise above on fused scores (calibrate.with_absent_levels), as Index.absent_* lexically
    absent_level: float | None = None
    absent_lead: float | None = None


class Ranked(NamedTuple):
    entry: int  # index in Index.entries
    similarity: float
    doc: int  # its best question's row


@dataclass(frozen=True, slots=True)
class Hit:
    entry: Entry
    confidence: float  # calibrated, 0..1
    similarity: float  # the raw fused similarity of the best-matching question (with its entry's SECOND share)
    matched: str  # which of the entry's questions matched best
    lead: float = 0.0  # the top hit's similarity minus the next entry's (0 for the others)


class _View:
    """One view of every question: Okapi BM25 weights as a sparse (term × question) matrix, plus which terms each
    question has (for the re-ranker's overlap), all in numpy arrays: compact, and built without a Python
    loop per (question, term) pair beyond the vocabulary lookup."""

    def __init__(self, docs: list[tuple[str, ...]]) -> None:
        # C-level iteration throughout: a Python loop per token cost ~0.3 s per view on 30,000 questions
        vocab = dict(zip(dict.fromkeys(chain.from_iterable(docs)), count()))
        lengths = np.fromiter(map(len, docs), dtype=np.int64, count=len(docs))
        term = np.fromiter(map(vocab.__getitem__, chain.from_iterable(docs)), dtype=np.int64,
                           count=int(lengths.sum()))
        self.vocab = vocab
        n, v = len(docs), max(len(vocab), 1)
        doc = np.repeat(np.arange(n, dtype=np.int64), lengths)
        pairs, tf = np.unique(doc * v + term, return_counts=True)  # one row per (question, term), with its count
        pdoc, pterm = pairs // v, pairs % v
        df = np.bincount(pterm, minlength=v)
        self.idf = np.log1p((n - df + 0.5) / (df + 0.5)).astype(np.float32)
        self.unknown_idf = float(np.log1p((n + 0.5) / 0.5))  # a term no question has: as rare as can be
        avgdl = max(float(lengths.mean()) if n else 1.0, 1.0)
        norm = K1 * (1 - B + B * lengths[pdoc] / avgdl)
        weights = self.idf[pterm] * tf * (K1 + 1) / (tf + norm)
        # Postings by term (for BM25) and terms by question (for the overlap), as plain CSR arrays: numpy on
        # slices of them beats scipy.sparse's indexing, whose checks cost more than the arithmetic here (and
        # scipy would add 37 MB at import).
        by_term = np.argsort(pterm, kind="stable")  # postings of one term together, by question within it
        self.post_ptr = np.concatenate(([0], np.cumsum(np.bincount(pterm, minlength=v))))
        self.post_doc = pdoc[by_term].astype(np.int32)
        self.post_w = weights[by_term].astype(np.float32)
        # pairs are sorted by question then term: they already are the question→terms CSR
        self.doc_ptr = np.concatenate(([0], np.cumsum(np.bincount(pdoc, minlength=n))))
        self.doc_term = pterm.astype(np.int32)
        self.weight = np.bincount(pdoc, weights=self.idf[pterm], minlength=n)  # each question's summed IDF

    def query(self, tokens: tuple[str, ...]) -> tuple[np.ndarray, float]:
        """The query's known term ids and its total IDF weight (unknown terms count as the rarest)."""
        unique = set(tokens)
        known = np.fromiter((self.vocab[t] for t in unique if t in self.vocab), dtype=np.int64)
        weight = float(self.idf[known].sum()) + self.unknown_idf * (len(unique) - len(known))
        return known, weight

    def postings(self, known: np.ndarray, weight: float, scale: float) -> tuple[np.ndarray, np.ndarray]:
        """(question, BM25 weight × scale / the query's weight) for every posting of the query's terms."""
        if not len(known):
            return _EMPTY_I, _EMPTY_F
        sel = _ranges(self.post_ptr[known], self.post_ptr[known + 1])
        return self.post_doc[sel], self.post_w[sel] * (scale / (weight or 1.0))

    def dice(self, known: np.ndarray, weight: float, cand: np.ndarray) -> np.ndarray:
        """IDF-weighted Dice overlap of the query with each candidate question."""
        starts, ends = self.doc_ptr[cand], self.doc_ptr[cand + 1]
        terms = self.doc_term[_ranges(starts, ends)]
        mask = np.zeros(len(self.idf), dtype=bool)
        mask[known] = True
        owner = np.repeat(np.arange(len(cand)), ends - starts)
        shared = np.bincount(owner, weights=self.idf[terms] * mask[terms], minlength=len(cand))
        total = weight + self.weight[cand]
        return np.divide(2 * shared, total, out=np.zeros_like(shared), where=total > 0)


_EMPTY_I = np.zeros(0, dtype=np.int32)
_EMPTY_F = np.zeros(0, dtype=np.float32)


def _ranges(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """The concatenation of range(s, e) for each pair, without a Python loop."""
    lengths = ends - starts
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.repeat(starts - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths)
    return offsets + np.arange(total)


class Index:
    def __init__(self, entries: list[Entry], analyzer: Analyzer) -> None:
        self.entries = entries
        self.analyzer = analyzer
        doc_entry: list[int] = []
        self.doc_text: list[str] = []
        for i, entry in enumerate(entries):
            for q in entry.questions:
                doc_entry.append(i)
                self.doc_text.append(q)
        analysed = analyzer.analyse_many(self.doc_text) if self.doc_text else []
        self.doc_entry = np.asarray(doc_entry, dtype=np.int32)
        self.views = {v: _View([getattr(a, v) for a in analysed]) for v in VIEWS} if analysed else {}
        self.lexicon: Lexicon | None = analyzer.lexicon(self.views["words"].vocab) if self.views else None
        self.scoped = np.asarray([bool(e.rooms) for e in entries], dtype=bool)
        self._cache: dict[tuple, list[Hit]] = {}
        self.calibration: tuple[float, float, float] | None = None  # fitted on this knowledge base (calibrate.py)
        # What questions this knowledge base can't answer reach, when too many of them would be answered
        # (calibrate.py): a confidence level, or a lead, that an answer must then rise above.
        self.absent_level: float | None = None
        self.absent_lead: float | None = None
        self.dense_view: Dense | None = None  # optional (skills/faq/knowledge/llm.py, skills/faq/knowledge/local.py)

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def dense(self) -> np.ndarray | None:
        """The dense matrix, if any (one row per question)."""
        view = self.dense_view
        return view.matrix if view is not None else None

    @dense.setter
    def dense(self, matrix: np.ndarray | None) -> None:
        """Plain vectors with the default fusion (the LLM endpoint's embeddings)."""
        self.dense_view = Dense(matrix) if matrix is not None else None

    @property
    def questions(self) -> list[str]:
        """Every indexed question (standard and similar), in the order of the dense matrix's rows."""
        return self.doc_text

    def search(self, text: str, k: int = 3, *, room_id: str | None = None, room_tags: tuple[str, ...] = (),
               dense_query: np.ndarray | None = None, cached: bool = True) -> list[Hit]:
        if not self.views:
            return []
        if dense_query is not None or not cached:
            return self._search(text, k, room_id, room_tags, dense_query)
        # Group chatter repeats ("有人在吗", "周末有活动吗"): the same text is scored once per index. The scope is in
        # the key only when some entry is scoped, so unscoped bases share one result across rooms.
        key = (text, k, room_id, room_tags) if self.scoped.any() else (text, k)
        hits = self._cache.get(key)
        if hits is None:
            if len(self._cache) >= CACHE_SIZE:
                self._cache.pop(next(iter(self._cache)))  # oldest first: plain FIFO is enough here
            hits = self._cache[key] = self._search(text, k, room_id, room_tags, None)
        return hits

    def _search(self, text: str, k: int, room_id: str | None, room_tags: tuple[str, ...],
                dense_query: np.ndarray | None) -> list[Hit]:
        view = self.dense_view  # one read: a view attached meanwhile can't mix with this search
        cosine = view.matrix @ dense_query if view is not None and dense_query is not None else None
        hidden = None
        if room_id is not None and self.scoped.any():
            visible = np.asarray([e.visible_in(room_id, room_tags) for e in self.entries], dtype=bool)
            hidden = ~visible[self.doc_entry]
        ranked = self.rank(self.analyzer.analyse(text, self.lexicon), hidden, cosine, view)
        hits = []
        for rank, (e, sim, d) in enumerate(ranked[:k]):
            nxt = ranked[rank + 1][1] if rank + 1 < len(ranked) else 0.0
            lead = sim - nxt if rank == 0 else 0.0
            conf = self.confidence(sim, lead, view if cosine is not None else None, top=rank == 0)
            if hits:  # an entry behind the top is no surer than the top (which a required lead may hold back)
                conf = min(conf, hits[0].confidence)
            hits.append(Hit(self.entries[e], conf, sim, self.doc_text[d], lead))
        return hits

    def confidence(self, similarity: float, lead: float, dense: Dense | None = None, *, top: bool = True) -> float:
        """The calibrated confidence of an entry with this similarity and lead, as search() gives it: the mapping
        fitted on this knowledge base (or, for a fused similarity, the embedder's), then what an answer must rise
        above here (calibrate.py; the dense view's own, measured on fused scores): the confidence rescaled so
        that only above ``absent_level`` is it ANSWER_AT or more, or, for the top entry, kept below ANSWER_AT
        up to a lead of ``absent_lead`` (near-duplicate entries close together: a numbered choice). An entry
        behind the top (``top=False``, its lead taken as 0) is not held back here: search() keeps it at most
        the top's."""
        if dense is not None:
            conf, level, required = confidence(similarity, lead, dense.calibration), dense.absent_level, \
                dense.absent_lead
        else:
            conf, level, required = confidence(similarity, lead, self.calibration), self.absent_level, \
                self.absent_lead
        conf = absent_rescaled(conf, level)
        if top and required and CHOICE_AT < conf and lead <= required:
            # in the choice band: a tie half-way up it, the lead required (not more) at its top
            conf = min(conf, CHOICE_AT + (_BELOW_ANSWER - CHOICE_AT) * (1 + lead / required) / 2)
        return conf

    def rank(self, q: Analysed, hidden: np.ndarray | None = None, cosine: np.ndarray | None = None,
             view: Dense | None = None) -> list[Ranked]:
        """Entries by similarity, best first: (entry index, similarity, its best question's row). ``hidden``:
        a mask of question rows left out (other rooms' entries; the held-out question when calibrating)."""
        q = without_places(q, self.views["words"].vocab)
        n = len(self.doc_entry)
        queries = {v: self.views[v].query(getattr(q, v)) for v in VIEWS}
        parts = [self.views[v].postings(*queries[v], w) for v, w in RECALL_WEIGHTS.items()]
        recall = np.bincount(np.concatenate([p[0] for p in parts]), weights=np.concatenate([p[1] for p in parts]),
                             minlength=n).astype(np.float64, copy=False)  # no known term: bincount gives ints
        if hidden is not None:
            recall[hidden] = -1.0
        if cosine is not None:
            if view.floor:
                cosine = (cosine - view.floor) / (1 - view.floor)
            recall += np.where(recall >= 0, cosine, 0)  # hidden (other rooms') questions stay out
        top = min(CANDIDATES, n)
        cand = np.argpartition(-recall, top - 1)[:top] if top < n else np.arange(n)
        cand = cand[recall[cand] > 0]
        if not len(cand):
            return []
        sims = np.zeros(len(cand), dtype=np.float32)
        for v, w in RERANK_WEIGHTS.items():
            sims += w * self.views[v].dice(*queries[v], cand)
        if cosine is not None:
            sims = (1 - view.weight) * sims + view.weight * np.maximum(cosine[cand], 0)
        best: dict[int, tuple[float, int, float]] = {}
        for d, sim in zip(cand.tolist(), sims.tolist()):
            e = int(self.doc_entry[d])
            if e not in best:
                best[e] = (sim, d, 0.0)
            elif sim > best[e][0]:
                best[e] = (sim, d, best[e][0])
            elif sim > best[e][2]:
                best[e] = (best[e][0], best[e][1], sim)
        scored = [(e, sim + SECOND * second * (1 - sim), d) for e, (sim, d, second) in best.items()]
        return [Ranked(e, sim, d) for e, sim, d in sorted(scored, key=lambda t: t[1], reverse=True)]


def confidence(similarity: float, lead: float, calibration: tuple[float, float, float] | None = None) -> float:
    a, b, c = calibration or CALIBRATION
    return 1.0 / (1.0 + math.exp(-(a * similarity + b * lead + c)))


def absent_rescaled(conf: float, level: float | None) -> float:
    """``conf`` rescaled so that only above ``level`` (what questions the knowledge base can't answer reach) is
    it ANSWER_AT or more: monotone, the same below CHOICE_AT, [CHOICE_AT, level] onto [CHOICE_AT, ANSWER_AT)
    (a numbered choice where the top entry is no surer than an absent one's), (level, 1] onto (ANSWER_AT, 1]."""
    if level is None or level <= ANSWER_AT or conf <= CHOICE_AT:
        return conf
    if conf <= level:  # the level itself is what absent questions reach: not an answer
        return CHOICE_AT + (conf - CHOICE_AT) * (_BELOW_ANSWER - CHOICE_AT) / (level - CHOICE_AT)
    return ANSWER_AT + (conf - level) * (1 - ANSWER_AT) / (1 - level) if level < 1 else ANSWER_AT
