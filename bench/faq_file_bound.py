"""FAQ memory at the size bound: what one knowledge file of ``max_file_bytes`` costs to load, and what a bigger one
costs to refuse.

    python bench/faq_file_bound.py [--bytes 2000000]

Two files at the bound, each loaded (parsed and indexed: skills/faq/knowledge/base.py build) in a fresh process:
"typical", entries like bench/faq_speed.py's (a question, two similar questions, an id, a one-line answer), and
"smallest", the most entries a file of that size can hold (a short question and a one-character answer: the
worst case, since the index costs per question, not per byte). Resident memory growth over the build and its
peak; jieba's dictionary is loaded before (once per process, ~65 MB, not per file). Then a 50 MB file (sparse) is
refused: the time and the memory that takes. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.faq_speed import PLACES, PRODUCTS, TOPICS  # noqa: E402
from skills.faq.knowledge.files import MAX_FILE_BYTES, load_knowledge  # noqa: E402


def typical(n: int, rng: random.Random) -> str:
    product, topic, place = rng.choice(PRODUCTS), rng.choice(TOPICS), rng.choice(PLACES)
    return (f"## {place}{product}{topic}？ #{n}\n相似问法：{product}在{place}{topic}；{place}的{product}{topic}呢\n"
            f"编号：gen-{n}\n\n这是第 {n} 条的答案：{place}门店的{product}，{topic}请看小程序说明。\n\n")


def smallest(n: int, rng: random.Random) -> str:
    return f"## {chr(0x4e00 + n % 20000)}{chr(0x4e00 + n // 20000)}{n}\n答\n"


def write(folder: Path, kind: str, size: int) -> int:
    make = typical if kind == "typical" else smallest
    rng = random.Random(1)
    parts, total, n = [], 0, 0
    while True:
        block = make(n, rng)
        if total + len(block.encode()) > size:
            break
        parts.append(block)
        total += len(block.encode())
        n += 1
    (folder / f"{kind}.md").write_text("".join(parts), encoding="utf-8")
    return n


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 1e6


def load(folder: Path, size: int) -> dict:
    """In this process: build the index of ``folder`` (one file) and report memory."""
    from skills.faq.knowledge.base import build
    from skills.faq.knowledge.text import _base_tokenizer

    _base_tokenizer()
    before = rss_mb()
    started = time.perf_counter()
    snap, problems = build(folder, size)
    assert not problems, problems
    return {"entries": len(snap.entries), "questions": len(snap.index.questions),
            "build_s": round(time.perf_counter() - started, 2), "rss_growth_mb": round(rss_mb() - before, 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3, 1),
            "base_rss_mb": round(before, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bytes", type=int, default=MAX_FILE_BYTES)
    ap.add_argument("--load", help=argparse.SUPPRESS)  # internal: the child process
    args = ap.parse_args()
    if args.load:
        print(json.dumps(load(Path(args.load), args.bytes)))
        return
    report: dict = {"max_file_bytes": args.bytes}
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("typical", "smallest"):
            folder = Path(tmp) / kind
            folder.mkdir()
            write(folder, kind, args.bytes)
            out = subprocess.run([sys.executable, __file__, "--bytes", str(args.bytes), "--load", str(folder)],
                                 capture_output=True, text=True, check=True).stdout
            report[kind] = {"bytes": (folder / f"{kind}.md").stat().st_size, **json.loads(out)}
        folder = Path(tmp) / "big"
        folder.mkdir()
        with (folder / "big.md").open("wb") as f:
            f.truncate(50_000_000)
        tracemalloc.start()
        started = time.perf_counter()
        kb = load_knowledge(folder, max_file_bytes=args.bytes)
        took = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        report["50MB"] = {"refused": [str(p) for p in kb.problems], "ms": round(took * 1000, 2),
                          "peak_mb": round(peak / 1e6, 3)}
    print(json.dumps(report, ensure_ascii=False))

if __name__ == "__main__":
    main()
