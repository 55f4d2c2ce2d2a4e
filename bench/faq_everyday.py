"""Everyday paraphrases of the shipped knowledge base, asked 1-on-1: what the bot would do with each.

    python bench/faq_everyday.py [--data bench/faq_everyday.tsv] [--knowledge knowledge] [--show]

The data (bench/faq_everyday.tsv) labels each question with its entry's id (编号), or "-" when the knowledge base
has no answer. The knowledge base is built as the bot builds it (skills/faq/knowledge/base.py ``build``: files,
synonyms, user dictionary, calibration), and each question gets the 1-on-1 policy with the faq skill's default
thresholds: an answer at or above ``answer_threshold``, a numbered choice at or above ``choice_threshold``, else a
handoff. Outcomes:

- answerable: ``right`` (answered with its entry), ``first`` (a choice with its entry first), ``offered`` (a choice
  with its entry further down), ``handoff`` (below the choice threshold, or a choice without its entry),
  ``wrong`` (answered with another entry);
- unanswerable: ``handoff`` (right), ``offered`` (a choice: the member can say none), ``wrong`` (answered).

The bar: right + first ≥ 90 % of the answerable, 0 wrong in all. ``entry_removed_answered``: the share of the
answerable questions still answered outright when their own entry is hidden (any answer then is wrong; goal ≤ 5 %).
``--show`` lists every question not right.
The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from skills.faq import FaqSettings  # noqa: E402
from skills.faq.knowledge.base import Snapshot, build  # noqa: E402

DATA = ROOT / "bench" / "faq_everyday.tsv"
NONE = "-"


@dataclass(frozen=True)
class Case:
    question: str
    entry: str  # NONE: the knowledge base has no answer
    line: int


@dataclass(frozen=True)
class Outcome:
    case: Case
    kind: str  # right | first | offered | handoff | wrong
    top: str  # the top entry's id ("" when nothing matched)
    confidence: float


def read_cases(path: Path = DATA) -> list[Case]:
    cases = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        entry, _, question = line.partition("\t")
        if not question.strip():
            raise ValueError(f"{path}:{n}: expected 'entry id<TAB>question'")
        cases.append(Case(question.strip(), entry.strip(), n))
    return cases


def judge(snap: Snapshot, cases: list[Case], settings: FaqSettings = FaqSettings()) -> list[Outcome]:
    out = []
    for case in cases:
        hits = snap.index.search(case.question, settings.choices, cached=False)
        top = hits[0] if hits else None
        score = top.confidence if top else 0.0
        offered = [h.entry.id for h in hits]
        if score >= settings.answer_threshold:
            kind = "right" if top.entry.id == case.entry else "wrong"
        elif score >= settings.choice_threshold:
            if case.entry == NONE:
                kind = "offered"
            else:
                kind = ("first" if offered[0] == case.entry else "offered" if case.entry in offered
                        else "handoff")
        else:
            kind = "handoff"
        out.append(Outcome(case, kind, top.entry.id if top else "", round(score, 3)))
    return out


def answered_without_entry(snap: Snapshot, cases: list[Case], settings: FaqSettings = FaqSettings()) -> float:
    """The share of the answerable cases answered outright when their own entry is hidden."""
    index = snap.index
    ids = [e.id for e in index.entries]
    answered = total = 0
    for case in cases:
        if case.entry == NONE or case.entry not in ids:
            continue
        total += 1
        hidden = index.doc_entry == ids.index(case.entry)
        ranked = index.rank(index.analyzer.analyse(case.question, index.lexicon), hidden)
        if ranked:
            sim = ranked[0][1]
            lead = sim - (ranked[1][1] if len(ranked) > 1 else 0.0)
            answered += index.confidence(sim, lead) >= settings.answer_threshold
    return round(answered / max(total, 1), 4)


def summarise(outcomes: list[Outcome]) -> dict:
    known = [o for o in outcomes if o.case.entry != NONE]
    unknown = [o for o in outcomes if o.case.entry == NONE]

    def count(rows: list[Outcome], kind: str) -> int:
        return sum(o.kind == kind for o in rows)

    return {
        "answerable": len(known),
        "right": count(known, "right"),
        "first": count(known, "first"),
        "offered": count(known, "offered"),
        "handoff": count(known, "handoff"),
        "wrong": count(known, "wrong"),
        "right_or_first": round((count(known, "right") + count(known, "first")) / max(len(known), 1), 4),
        "unanswerable": len(unknown),
        "unanswerable_handoff": count(unknown, "handoff"),
        "unanswerable_offered": count(unknown, "offered"),
        "unanswerable_wrong": count(unknown, "wrong"),
        "wrong_total": count(outcomes, "wrong"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--knowledge", default=str(ROOT / "knowledge"))
    parser.add_argument("--show", action="store_true", help="list every question not answered right")
    args = parser.parse_args()
    cases = read_cases(Path(args.data))
    started = time.perf_counter()
    snap, problems = build(Path(args.knowledge))
    if problems:
        for p in problems:
            print(p, file=sys.stderr)
        return 2
    outcomes = judge(snap, cases)
    report = summarise(outcomes)
    report["entry_removed_answered"] = answered_without_entry(snap, cases)
    report["calibration"] = snap.index.calibration
    report["entries"] = len(snap.entries)
    report["seconds"] = round(time.perf_counter() - started, 2)
    if args.show:
        for o in outcomes:
            if o.kind != ("handoff" if o.case.entry == NONE else "right"):
                print(f"{o.kind:8} {o.confidence:.2f} {o.case.question}  want={o.case.entry} top={o.top}")
    print(json.dumps(report, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
