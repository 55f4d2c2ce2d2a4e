"""FAQ misses: how long the one grouping of unanswered questions (skills/faq/knowledge/misses.py) takes.

    python bench/faq_misses.py [--rows 5000 20000 50000] [--eval ../shared/data/faq-eval/dev.jsonl]

Two kinds of rows: "eval", the dev split's questions and paraphrases (2,404 texts) asked with a long tail, as real
misses are; and "generated", questions put together from the few words of
bench/faq_speed.py (nearly every question different, all sharing words: the worst case for the similarity step).
jieba's dictionary is loaded before the clock starts. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.faq_speed import FILLER, PLACES, PRODUCTS, TOPICS  # noqa: E402
from skills.faq.knowledge.misses import MissRow, group_misses  # noqa: E402
from skills.faq.knowledge.text import _base_tokenizer  # noqa: E402

EVAL = ROOT.parent / "shared" / "data" / "faq-eval" / "dev.jsonl"


def questions(kind: str, n: int, rng: random.Random, path: Path = EVAL) -> list[str]:
    if kind == "generated":
        return [f"{rng.choice(FILLER)}{rng.choice(PLACES)}{rng.choice(PRODUCTS)}{rng.choice(TOPICS)}"
                f"{rng.randrange(50) if rng.random() < 0.5 else ''}" for _ in range(n)]
    texts = []
    for line in path.read_text(encoding="utf-8").splitlines():
        d = json.loads(line)
        texts += [d["question"], *d["paraphrases"]]
    return [rng.choice(texts) if rng.random() < 0.5 else texts[int(rng.paretovariate(1.2)) % len(texts)]
            for _ in range(n)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[5000, 20000, 50000])
    ap.add_argument("--eval", type=Path, default=EVAL, help="the evaluation's dev split (skipped if absent)")
    args = ap.parse_args()
    _base_tokenizer()
    at = datetime(2026, 11, 23, tzinfo=timezone.utc)
    report = {}
    for kind in ("eval", "generated") if args.eval.exists() else ("generated",):
        for n in args.rows:
            rng = random.Random(1)
            rows = [MissRow(i, at + timedelta(seconds=i), q, "low") for i, q in enumerate(questions(kind, n, rng, args.eval))]
            started = time.perf_counter()
            groups = group_misses(rows, limit=None)
            report[f"{kind}_{n}"] = {"distinct": len({r.question for r in rows}), "groups": len(groups),
                                     "seconds": round(time.perf_counter() - started, 2)}
            print(json.dumps({kind: n, **report[f"{kind}_{n}"]}), file=sys.stderr)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
