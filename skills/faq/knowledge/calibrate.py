"""The confidence mapping fitted on the knowledge base in service, at every build (start, hot reload, /kb reload).

A shop's knowledge base of a few dozen distinct entries is not the public QA split the default mapping
(index.CALIBRATION) was fitted on: there, near-duplicate intents made the top entry unreliable even when it was
clearly ahead. So the knowledge base checks itself: each entry's own 相似问法, held out one at a time, is asked
against the rest, twice:
- with its entry still there (its other questions): the top entry is right or not — how a paraphrase fares;
- with its entry hidden: whatever comes first is wrong — how a question the knowledge base can't answer fares.
A logistic regression of "the top entry is right" on (similarity, lead over the next entry) over these is the
mapping, so a confidence still reads as "the probability the top entry is right", and the thresholds keep their
meaning. With too few 相似问法 to learn from, or a fit that would not rise with similarity and lead, the default
stays. The held-out question's own words still count in the vocabulary's IDF: a small optimism the minimum
below absorbs.

Then what a question the knowledge base can't answer reaches: every entry's standard question (sampled evenly
when there are many) and the held-out 相似问法 are asked with their entry hidden. A knowledge base of distinct
entries answers at most ABSENT_SHARE of them and nothing changes. One with near-duplicate entries (the same intent
under two questions: each answers for the other when hidden) answers more, and then an answer needs more, one of:
- a confidence level all but ABSENT_SHARE of them stay below (pairs of duplicates: hide one, the other stands
  alone, far ahead of the rest);
- a lead over the next entry (clusters of duplicates: hide one, the others stay close together);
whichever asks less of an answer. Below either, down to the choice threshold, is a numbered choice
(index.Index.confidence).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

import numpy as np

from skills.faq.knowledge.index import ANSWER_AT, CALIBRATION, Dense, Index, confidence

log = logging.getLogger(__name__)

MIN_QUERIES = 30  # held-out questions needed to fit; fewer: the default mapping
MAX_QUERIES = 250  # held out at most (sampled evenly): ~0.4 s on 30,000 questions, within the 3 s build
L2 = 0.5  # ridge toward the default mapping: a few dozen questions can't pull it anywhere extreme
STEPS = 50
MAX_ABSENT = 250  # standard questions asked with their entry hidden, at least this many when there are
ABSENT_WORK = 1_000_000  # ...and up to 4 × MAX_ABSENT while (questions asked × questions in the base) stays below
ABSENT_SHARE = 0.05  # questions the knowledge base can't answer that may still be answered
# A right answer's usual lead over the next entry (median on the dev split: ant 0.41, lcqmc 0.52): to compare
# how much a required lead and a required confidence ask of an answer.
TYPICAL_LEAD = 0.5
DENSE_BATCH = 128  # questions whose cosines with every question are computed in one product


def samples(index: Index, limit: int = MAX_QUERIES) -> list[tuple[float, float, bool]]:
    """(similarity, lead, right) of each held-out question, with its entry there and with it hidden."""
    rows = _held_out(index, limit)
    if not rows:
        return []
    analysed = index.analyzer.analyse_many([index.doc_text[d] for d in rows])
    out = []
    n = len(index.doc_entry)
    for d, q in zip(rows, analysed):
        e = int(index.doc_entry[d])
        hidden = np.zeros(n, dtype=bool)
        hidden[d] = True
        ranked = index.rank(q, hidden)
        out.append(_sample(ranked, e))
        out.append(_sample([r for r in ranked if r[0] != e], -1))
    return out


def _held_out(index: Index, limit: int = MAX_QUERIES) -> list[int]:
    """The rows of the 相似问法 held out (evenly over the knowledge base, the same sample every build)."""
    rows = [d for d in range(len(index.doc_entry))
            if index.doc_text[d] != index.entries[int(index.doc_entry[d])].question]
    if len(rows) > limit:
        rows = [rows[i] for i in np.linspace(0, len(rows) - 1, limit).round().astype(int)]
    return rows


def _sample(ranked: list[tuple[int, float, int]], entry: int) -> tuple[float, float, bool]:
    if not ranked:
        return 0.0, 0.0, False
    sim = ranked[0][1]
    lead = sim - (ranked[1][1] if len(ranked) > 1 else 0.0)
    return sim, lead, ranked[0][0] == entry


def fit(rows: list[tuple[float, float, bool]], prior: tuple[float, float, float] = CALIBRATION
        ) -> tuple[float, float, float] | None:
    """Logistic regression by Newton's method, with a ridge toward ``prior``; None if it can't be trusted."""
    if len(rows) < 2 * MIN_QUERIES:
        return None
    data = np.asarray(rows, dtype=np.float64)
    x = np.column_stack([data[:, 0], data[:, 1], np.ones(len(data))])
    y = data[:, 2]
    if y.sum() < 5 or (1 - y).sum() < 5:
        return None
    w0 = np.asarray(prior, dtype=np.float64)
    w = w0.copy()
    ridge = np.diag([L2, L2, 0.0])
    for _ in range(STEPS):
        p = 1 / (1 + np.exp(-np.clip(x @ w, -30, 30)))
        grad = x.T @ (p - y) + ridge @ (w - w0)
        hess = (x * (p * (1 - p))[:, None]).T @ x + ridge + 1e-9 * np.eye(3)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-6:
            break
    if not np.all(np.isfinite(w)) or w[0] <= 0 or w[1] < 0:
        return None  # a confidence that falls as the match gets better is no calibration
    return round(float(w[0]), 2), round(float(w[1]), 2), round(float(w[2]), 2)


def absent_samples(index: Index, limit: int | None = None) -> list[tuple[float, float, bool]]:
    """(similarity, lead, False) of each entry's standard question asked with its whole entry hidden."""
    if limit is None:  # as many as fit ABSENT_WORK: all of a small knowledge base, MAX_ABSENT of a large one
        limit = max(MAX_ABSENT, min(4 * MAX_ABSENT, ABSENT_WORK // max(len(index.doc_entry), 1)))
    entries = list(range(len(index.entries)))
    if len(entries) > limit:
        entries = [entries[i] for i in np.linspace(0, len(entries) - 1, limit).round().astype(int)]
    analysed = index.analyzer.analyse_many([index.entries[e].question for e in entries]) if entries else []
    return [_sample(index.rank(q, index.doc_entry == e), -1) for e, q in zip(entries, analysed)]


def with_absent_levels(index: Index, view: Dense) -> Dense:
    """``view`` with its own out-of-knowledge-base levels: the same questions as the lexical check (each sampled
    entry's standard question, the held-out 相似问法) asked with their entry hidden, on fused scores (a question's
    own vector is its query's: the embedders embed a known text once). Run it off the event loop: a product of
    the matrix per question (in batches), ~1.3 s for 500 questions on 30,000 (benchmarks)."""
    firsts = np.flatnonzero(np.r_[True, index.doc_entry[1:] != index.doc_entry[:-1]])  # each entry's first row
    n_asked = max(MAX_ABSENT, min(4 * MAX_ABSENT, ABSENT_WORK // max(len(index.doc_entry), 1)))
    if len(firsts) > n_asked:
        firsts = firsts[np.linspace(0, len(firsts) - 1, n_asked).round().astype(int)]
    docs = [int(d) for d in firsts] + _held_out(index)
    analysed = index.analyzer.analyse_many([index.doc_text[d] for d in docs]) if docs else []
    rows = []
    for start in range(0, len(docs), DENSE_BATCH):  # one pass over the matrix per batch: memory-bound otherwise
        batch = docs[start:start + DENSE_BATCH]
        cosines = view.matrix[batch] @ view.matrix.T
        for d, q, cosine in zip(batch, analysed[start:start + DENSE_BATCH], cosines):
            ranked = index.rank(q, index.doc_entry == index.doc_entry[d], cosine, view)
            rows.append(_sample(ranked, -1))
    level, lead = absent_levels(rows, view.calibration)
    return replace(view, absent_level=level, absent_lead=lead)


async def attach_dense(index: Index, view: Dense | None) -> None:
    """Attach ``view`` to ``index`` with its own out-of-knowledge-base levels (computed in a thread)."""
    if view is not None and index.views:
        view = await asyncio.to_thread(with_absent_levels, index, view)
    index.dense_view = view


def absent_levels(rows: list[tuple[float, float, bool]], calibration: tuple[float, float, float] | None
                  ) -> tuple[float | None, float | None]:
    """What an answer must reach so that at most ABSENT_SHARE of ``rows`` (questions asked with their entry
    hidden) are answered: (a confidence level, None) or (None, a lead), whichever asks less of an answer; (None,
    None) when no more than that share reaches the answer threshold already, or with too few rows."""
    if len(rows) < MIN_QUERIES:
        return None, None
    scored = [(confidence(sim, lead, calibration), lead) for sim, lead, _ in rows]
    allowed = int(ABSENT_SHARE * len(rows))
    answered = sorted((lead for conf, lead in scored if conf >= ANSWER_AT), reverse=True)
    if len(answered) <= allowed:
        return None, None
    level = sorted((conf for conf, _ in scored), reverse=True)[allowed]  # all but `allowed` are at or below it
    lead = answered[allowed]  # the same with a required lead: all but `allowed` answered ones are at or below
    if (level - ANSWER_AT) / (1 - ANSWER_AT) <= lead / TYPICAL_LEAD:
        return level, None
    return None, lead


def calibrate(index: Index) -> tuple[float, float, float] | None:
    """Fit the mapping for ``index`` and set it (None: the default stays), then its out-of-knowledge-base level."""
    if not index.views:
        return None
    rows = samples(index)
    fitted = fit(rows)
    index.calibration = fitted
    if fitted is None:
        log.info("knowledge: %d held-out questions: too few to fit the confidence, the default mapping stays",
                 len(rows) // 2)
    else:
        log.info("knowledge: confidence fitted on %d held-out questions: %s", len(rows) // 2, fitted)
    absent = absent_samples(index) + rows[1::2]
    index.absent_level, index.absent_lead = absent_levels(absent, fitted)
    if index.absent_level is not None:
        log.info("knowledge: of %d questions asked with their entry hidden, over %d%% would be answered: only a "
                 "confidence above %.2f answers now", len(absent), round(100 * ABSENT_SHARE), index.absent_level)
    elif index.absent_lead is not None:
        log.info("knowledge: of %d questions asked with their entry hidden, over %d%% would be answered (near-"
                 "duplicate entries): an answer now needs a lead of %.2f over the next entry", len(absent),
                 round(100 * ABSENT_SHARE), index.absent_lead)
    return fitted
