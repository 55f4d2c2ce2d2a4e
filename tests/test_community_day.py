"""A community day through the replay contract (shared/docs/replay.md), with the real command line:
newcomers welcomed together, check-ins coalesced, a lottery started, entered, drawn at its deadline and verified."""

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
M = "\u2005"


def ev(at: str, **kw) -> str:
    return json.dumps({"at": f"2026-11-23T{at}+08:00", **kw}, ensure_ascii=False)


def msg(at, user, text, room="g1"):
    return ev(at, kind="message", room=room, room_topic="会员福利群", user=user, name=f"名{user}", text=text)


SCRIPT = [
    ev("09:00:00", kind="join", room="g1", users=[{"id": "u1", "name": "名u1"}, {"id": "u2", "name": "名u2"}],
       inviter="admin1", room_topic="会员福利群"),
    ev("09:00:20", kind="join", room="g1", users=[{"id": "u3", "name": "名u3"}], inviter="u1"),
    msg("09:05:00", "u1", "签到"),
    msg("09:05:10", "u2", "／签到"),
    msg("09:05:20", "u1", "签到"),  # again: told once, in its own coalesced message
    msg("10:00:00", "admin1", "/lottery start 帆布袋 winners=2 duration=30m keyword=我要抽奖"),
    msg("10:01:00", "u1", "我要抽奖"),
    msg("10:01:05", "u2", "我要抽奖"),
    msg("10:01:10", "u3", "我要抽奖"),
    msg("10:01:15", "admin1", "我要抽奖"),  # admins can't enter
]


def run(tmp_path, *args, stdin=None):
    return subprocess.run([sys.executable, "-m", "bot", *args], cwd=ROOT, input=stdin, capture_output=True,
                          text=True, timeout=120)


def test_a_community_day(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(
        '[bot]\nadmins = ["admin1"]\nskills = ["ping", "welcome", "checkin", "lottery"]\n'
        "[governor]\njitter_s = 0.0\n"
        '[skills.welcome]\ntemplate = "欢迎{names}加入{topic}"\n', encoding="utf-8")
    db = tmp_path / "day.db"
    replay = run(tmp_path, "replay", "-", "--config", str(config), "--db", str(db),
                 "--until", "2026-11-23T11:00:00+08:00", stdin="\n".join(SCRIPT) + "\n")
    assert replay.returncode == 0, replay.stderr
    actions = [json.loads(line) for line in replay.stdout.splitlines()]
    texts = [a["text"] for a in actions]

    # one welcome for the wave of three, at the end of its 60 s window
    (welcome,) = [a for a in actions if "欢迎" in a["text"]]
    assert welcome["mentions"] == ["u1", "u2", "u3"] and welcome["at"] == "2026-11-23T09:01:00+08:00"
    assert welcome["text"] == f"@名u1{M}@名u2{M}@名u3{M}欢迎名u1、名u2、名u3加入会员福利群"

    # check-ins: one confirmation listing both, one "already" note
    (ok,) = [t for t in texts if t.startswith("签到成功")]
    assert "名u1 +5" in ok and "名u2 +5" in ok
    assert sum("今天已经签过到啦" in t for t in texts) == 1

    # the lottery: announced with a commitment, drawn at 10:30 with the seed revealed
    (start,) = [t for t in texts if "帆布袋" in t and re.search(r"\b[0-9a-f]{64}\b", t)][:1]
    commitment = re.search(r"\b([0-9a-f]{64})\b", start).group(1)
    (draw,) = [a for a in actions if a["at"].startswith("2026-11-23T10:30")]
    seed = [s for s in re.findall(r"\b[0-9a-f]{64}\b", draw["text"]) if s != commitment][0]
    assert hashlib.sha256(seed.encode()).hexdigest() == commitment
    assert len(draw["mentions"]) == 2 and set(draw["mentions"]) <= {"u1", "u2", "u3"}

    verify = run(tmp_path, "lottery", "verify", "1", "--config", str(config), "--db", str(db))
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "result: MATCH" in verify.stdout
