"""End to end through `python -m bot replay` with the shipped sample knowledge base, and the evaluation harness."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EVAL = next((p for p in (ROOT.parent / "shared", ROOT.parent.parent / "shared") if p.is_dir()),
            ROOT.parent / "shared") / "data" / "faq-eval" / "dev.jsonl"  # beside the project, or its worktrees
M = "\u2005"


def run(tmp_path, events: list[dict]) -> subprocess.CompletedProcess:
    config = tmp_path / "config.toml"
    config.write_text(
        '[bot]\nadmins = ["admin1"]\nskills = ["ping", "checkin", "faq"]\noperators = ["op1"]\n[governor]\njitter_s = 0.0\n'
        f'[skills.faq]\nknowledge_dir = "{ROOT / "knowledge"}"\n', encoding="utf-8")
    script = tmp_path / "events.jsonl"
    script.write_text("\n".join(json.dumps(e, ensure_ascii=False) for e in events) + "\n", encoding="utf-8")
    return subprocess.run([sys.executable, "-m", "bot", "replay", str(script), "--config", str(config),
                           "--db", str(tmp_path / "r.db")], cwd=tmp_path, capture_output=True, text=True, timeout=120)


def test_a_member_group_morning_with_the_sample_knowledge(tmp_path):
    at = "2026-11-23T09:0{}+08:00".format
    events = [
        {"at": at("0:00"), "kind": "message", "room": "g1", "room_topic": "会员福利群", "user": "u1", "name": "小李",
         "text": "大家早上好"},
        {"at": at("0:05"), "kind": "message", "room": "g1", "user": "u1", "name": "小李", "text": "运费多少",
         "mentions_bot": True},
        {"at": at("0:20"), "kind": "message", "room": "g1", "user": "u2", "name": "小王", "text": "请问积分会过期吗？"},
        {"at": at("0:40"), "kind": "message", "room": "g1", "user": "u4", "name": "小赵", "text": "今天的咖啡真好喝"},
        {"at": at("1:00"), "kind": "message", "user": "u3", "name": "小张", "text": "门店有停车位吗"},
        {"at": at("2:00"), "kind": "message", "user": "admin1", "name": "店长", "text": "/kb misses"},
    ]
    result = run(tmp_path, events)
    assert result.returncode == 0, result.stderr
    says = [json.loads(line) for line in result.stdout.splitlines()]
    by_target = [(s.get("room") or s.get("user"), s["text"]) for s in says]
    assert by_target[0] == ("g1", f"@小李{M}全场满 59 元包邮，不满 59 元运费 8 元；新疆、西藏、青海满 99 元包邮。\n"
                                  "会员卡金卡及以上每月有 2 张免邮券。")
    assert by_target[1][0] == "g1" and by_target[1][1].startswith(f"@小王{M}每年 12 月 31 日清零前一年获得的积分")
    assert ("u3", "这个问题我先记下了，已转人工客服，稍后会有同事回复你～") in by_target
    assert any(who == "op1" and t.startswith("【待人工回复 #1】小张（u3）在私聊问：\n门店有停车位吗") for who, t in by_target)
    (misses,) = [t for who, t in by_target if who == "admin1"]
    assert "1. 门店有停车位吗（1 次）" in misses
    assert len(says) == 5  # the greeting and the chatter got nothing


@pytest.mark.skipif(not EVAL.exists(), reason=f"evaluation data not found at {EVAL} (../shared is absent)")
def test_retrieval_figures_on_the_dev_split():
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "faq_eval.py"), str(EVAL)], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    # measured 2026-11-23: ant 0.473, lcqmc 0.965 (README, FAQ figures); these floors catch a regression
    assert report["lcqmc"]["top1"] >= 0.96 and report["ant"]["top1"] >= 0.45
    assert report["lcqmc"]["precision"] >= 0.95
    # 2026-12-01, with the build's out-of-knowledge-base check: the goal of at most 5 % answered when the
    # query's own entry is taken out (ant 0.032, lcqmc 0.049), and ant answers less but more precisely (0.86)
    assert report["ant"]["unanswerable_answered"] <= 0.05 and report["lcqmc"]["unanswerable_answered"] <= 0.05
    assert report["ant"]["precision"] >= 0.8
