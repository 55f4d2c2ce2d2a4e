"""A handoff round trip end to end through `python -m bot replay` (the contract in ../shared/docs/replay.md):
member → ticket → operator /reply (1-on-1) or `#N` in the operators' room → member, with the shipped knowledge."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
M = "\u2005"
HANDOFF = "这个问题我先记下了，已转人工客服，稍后会有同事回复你～"


def replay(tmp_path: Path, events: list[dict]) -> list[dict]:
    config = tmp_path / "config.toml"
    config.write_text(
        '[bot]\nadmins = ["admin1"]\nskills = ["faq"]\noperators = ["op1"]\noperators_room = "staff"\n'
        "[governor]\nmin_interval_s = 1.0\njitter_s = 0.0\nchat_switch_interval_s = 1.0\nper_chat_interval_s = 1.0\n"
        f'[skills.faq]\nknowledge_dir = "{ROOT / "knowledge"}"\nreload_interval_s = 0\n'
        '[skills.faq.handoff]\nrenotify_after = "30m"\n', encoding="utf-8")
    script = tmp_path / "events.jsonl"
    script.write_text("\n".join(json.dumps(e, ensure_ascii=False) for e in events) + "\n", encoding="utf-8")
    # cwd=ROOT: this worktree's bot (from another folder the venv's editable install would run its own)
    run = subprocess.run([sys.executable, "-m", "bot", "replay", str(script), "--config", str(config),
                          "--db", str(tmp_path / "r.db"), "--until", "2026-11-23T10:00:00+08:00"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return [json.loads(line) for line in run.stdout.splitlines()]


def test_handoff_round_trips_over_the_replay(tmp_path):
    at = "2026-11-23T09:{}+08:00".format
    says = replay(tmp_path, [
        {"at": at("00:00"), "kind": "message", "user": "u1", "name": "小李", "text": "你好"},
        {"at": at("00:10"), "kind": "message", "user": "u1", "name": "小李", "text": "你们的咖啡豆是哪里产的"},
        {"at": at("00:30"), "kind": "message", "user": "u1", "name": "小李", "text": "是阿拉比卡吗"},
        {"at": at("01:00"), "kind": "message", "room": "g1", "room_topic": "会员福利群", "user": "u2",
         "name": "小王", "text": "门店有停车位吗", "mentions_bot": True},
        {"at": at("02:00"), "kind": "message", "user": "op1", "name": "客服小美", "text": "/reply 1 云南保山的小粒咖啡～"},
        {"at": at("03:00"), "kind": "message", "room": "staff", "user": "op2", "name": "客服小刘",
         "text": "#2 有的，地下一层免费停车"},
        {"at": at("04:00"), "kind": "message", "user": "u1", "name": "小李", "text": "谢谢"},
        {"at": at("05:00"), "kind": "message", "user": "op1", "name": "客服小美", "text": "/close 1"},
    ])
    assert all(s["kind"] == "say" for s in says)
    to = [(s.get("room") or s.get("user"), s["text"], s.get("mentions", [])) for s in says]
    assert [t for who, t, _ in to if who == "u1"] == ["你好呀～有什么想问的直接发给我就好。", HANDOFF,
                                                     "【工作人员回复】云南保山的小粒咖啡～", "不客气～还有问题随时问我。"]
    assert ("g1", f"@小王{M}{HANDOFF}", ["u2"]) in to
    assert ("g1", f"@小王{M}【工作人员回复】有的，地下一层免费停车", ["u2"]) in to
    op1 = [t for who, t, _ in to if who == "op1"]
    assert op1[0].startswith("【待人工回复 #1】小李（u1）在私聊问：\n你们的咖啡豆是哪里产的\n最近的聊天：")
    assert op1[1].startswith("【#1 补充】小李 又问：\n是阿拉比卡吗")
    assert op1[2].startswith("【待人工回复 #2】小王（u2）在群「会员福利群」问：\n门店有停车位吗")
    assert op1[3].startswith("已回复 #1（小李，私聊）") and op1[4] == "已关闭 #1。"
    staff = [t for who, t, _ in to if who == "staff"]
    assert [t.split("\n")[0] for t in staff] == ["【待人工回复 #1】小李（u1）在私聊问：", "【#1 补充】小李 又问：",
                                                 "【待人工回复 #2】小王（u2）在群「会员福利群」问：",
                                                 f"@客服小刘{M}已回复 #2（小王，群「会员福利群」）。问题解决了就 /close 2。"]
    assert not any(t.startswith("【仍在等待") for _, t, _ in to)  # both answered within 30 minutes
