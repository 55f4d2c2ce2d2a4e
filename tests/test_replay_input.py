"""Replay lines that are wrong in every way an outside trial found: each is reported as ``line N: field: problem;
skipped`` (exit 2), never a traceback, and the good lines around it are handled and stored."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from storage.models import Activity, Member
from tests.support.db_checks import read
from tests.test_replay_contract import ROOT, actions

AT = "2026-11-23T09:00:00+08:00"


def run_replay(tmp_path: Path, body: bytes, *, skills: str = '["ping"]', db: str | None = None,
               until: str | None = None) -> subprocess.CompletedProcess:
    tmp_path.mkdir(parents=True, exist_ok=True)
    config = tmp_path / "config.toml"
    config.write_text(f'[bot]\nadmins = ["admin1"]\nskills = {skills}\n'
                      "[governor]\nmin_interval_s = 1.0\njitter_s = 0.0\nchat_switch_interval_s = 1.0\n"
                      "per_chat_interval_s = 1.0\n", encoding="utf-8")
    (tmp_path / "events.jsonl").write_bytes(body)
    args = [sys.executable, "-m", "bot", "replay", str(tmp_path / "events.jsonl"), "--config", str(config),
            "--db", db or str(tmp_path / "replay.db")]
    if until:
        args += ["--until", until]
    return subprocess.run(args, cwd=ROOT, capture_output=True, timeout=120)


def line(**fields) -> bytes:
    return json.dumps(fields, ensure_ascii=False).encode()


def ping(user: str, at: str = AT, **extra) -> bytes:
    return line(at=at, kind="message", room="g1", user=user, text="/ping", **extra)


def problems(run) -> list[str]:
    return [x for x in run.stderr.decode().splitlines() if x.startswith("line ")]


def test_hostile_lines_are_reported_by_field_and_the_rest_is_handled(tmp_path):
    lines = [
        ping("u1"),
        b'{"at": "2026-11-23T09:00:01+08:00", "kind": "message", "user": "u2", "text": "caf\xe9"}',  # Latin-1
        ping("u3", at="0001-01-01T00:00:00+08:00"),
        ping("u4", at="9999-12-31T23:59:59-12:00"),
        ping("u5", name=["小", "五"]),
        ping("u6", room_topic=["群"]),
        ping("x" * 200),
        line(at=AT, kind="join", room="g1", users=[{"id": "u7", "name": 7}]),
        line(at=AT, kind="leave", room="g1", users=[["u8"]]),
        line(at=AT, kind="message", user="u9", text={"deep": [[[["x"]]]]}),
        b"[" * 5000 + b"]" * 5000,
        line(at=AT, kind=["message"]),
        ping("u10", mentions_bot="yes"),
        ping("u11", at="2026-11-23T09:00:05+08:00"),
    ]
    run = run_replay(tmp_path, b"\n".join(lines) + b"\n")
    assert run.returncode == 2
    assert b"Traceback" not in run.stderr
    assert problems(run) == [
        "line 2: not UTF-8 (byte 0xe9 at column 82); skipped",
        "line 3: at: must be between the years 2000 and 2100; skipped",
        "line 4: at: must be between the years 2000 and 2100; skipped",
        "line 5: name: must be a string; skipped",
        "line 6: room_topic: must be a string; skipped",
        "line 7: user: is longer than 128 characters; skipped",
        "line 8: users[0].name: must be a string; skipped",
        "line 9: users[0]: must be an id; skipped",
        "line 10: text: must be a string; skipped",
        "line 11: not valid JSON (depth limit exceeded at column 1026); skipped",
        "line 12: kind: must be a string; skipped",
        "line 13: mentions_bot: must be true or false; skipped",
    ]
    assert [a["mentions"] for a in actions(run)] == [["u1"], ["u11"]]


def test_a_bom_does_not_cost_the_first_line_and_nul_bytes_never_reach_the_store(tmp_path):
    body = b"\xef\xbb\xbf" + ping("u1", name="小\x00李") + b"\n" + ping("u2", at="2026-11-23T09:00:03+08:00",
                                                                      room_topic="福利\x00群") + b"\n"
    run = run_replay(tmp_path, body)
    assert run.returncode == 0, run.stderr
    assert [a["text"] for a in actions(run)] == ["@小李\u2005在的～", "@u2\u2005在的～"]
    with sqlite3.connect(tmp_path / "replay.db") as db:
        assert db.execute("select name from members where id = 'u1'").fetchall() == [("小李",)]
        assert db.execute("select topic from rooms").fetchall() == [("福利群",)]


def test_a_missing_file_and_a_far_until_are_refused_at_once(tmp_path):
    run = run_replay(tmp_path, ping("u1") + b"\n", until="9999-01-01T00:00:00+08:00")
    assert run.returncode == 1 and b"--until: must be between the years 2000 and 2100" in run.stderr
    config = tmp_path / "config.toml"
    run = subprocess.run([sys.executable, "-m", "bot", "replay", str(tmp_path / "nope.jsonl"), "--config",
                          str(config)], cwd=ROOT, capture_output=True, timeout=60)
    assert run.returncode == 1 and b"nope.jsonl: cannot read it" in run.stderr and b"Traceback" not in run.stderr


def test_a_backdated_line_happens_at_the_clocks_time(tmp_path):
    """The clock never goes back, and the event says so: a check-in dated yesterday is today's (already done)."""
    lines = [
        line(at="2026-11-24T09:00:00+08:00", kind="message", user="u1", text="签到"),
        line(at="2026-11-23T09:00:00+08:00", kind="message", user="u1", text="签到"),
    ]
    run = run_replay(tmp_path, b"\n".join(lines) + b"\n", skills='["checkin"]')
    assert run.returncode == 0, run.stderr
    said = actions(run)
    assert said[0]["text"].startswith("签到成功！") and said[1]["text"].startswith("今天已经签过到啦")
    assert said[1]["at"] == "2026-11-24T09:00:01+08:00"
    with sqlite3.connect(tmp_path / "replay.db") as db:
        days = [d for (d,) in db.execute("select local_date from checkins")]
    assert days == ["2026-11-24"]


def test_what_a_command_reads_of_the_store_depends_on_the_script_not_the_machine(tmp_path):
    """The activity store writes on the virtual clock: a member seen 15 script-minutes ago is in the directory
    whatever the wall clock did meanwhile (a wall-time timer made /tier answer differently from run to run)."""
    lines = [
        line(at=AT, kind="message", room="g1", room_topic="群", user="u1", name="小李", text="大家好"),
        line(at="2026-11-23T09:15:00+08:00", kind="message", room="g1", user="admin1", text="/tier u1"),
    ]
    body = b"\n".join(lines) + b"\n"
    outputs = {json.dumps(actions(run_replay(tmp_path / f"run{i}", body, skills='["tiers"]'))) for i in range(2)}
    assert len(outputs) == 1
    said = json.loads(outputs.pop())
    assert "小李 的成员档案" in said[-1]["text"] and "所在群：1 个" in said[-1]["text"]


@pytest.mark.all_backends
async def test_on_either_backend_every_good_line_is_stored_and_nothing_stops_the_store(tmp_path, db_url):
    """What the trial broke the store with on PostgreSQL (a 300-character name, NUL bytes, an over-long id) and
    on SQLite (a list as room_topic): cleaned or refused at the door, and the store has every good line's rows."""
    lines = [
        ping("u1", name="名" * 300),
        ping("u2", name="a\x00b", room_topic="群\x00"),
        ping("x" * 129),
        ping("u3", room_topic=["a list"]),
        ping("u4", at="2026-11-23T09:00:02+08:00"),
    ]
    run = await asyncio.to_thread(run_replay, tmp_path, b"\n".join(lines) + b"\n", db=db_url)
    assert run.returncode == 2 and b"Traceback" not in run.stderr
    assert [p.split(":")[0] for p in problems(run)] == ["line 3", "line 4"]

    async def stored(conn):
        names = dict((await conn.execute(select(Member.id, Member.name))).all())
        messages = (await conn.execute(select(func.count()).select_from(Activity)
                                       .where(Activity.kind == "message"))).scalar()
        return names, messages

    names, messages = await read(db_url, stored)
    assert names == {"u1": "名" * 256, "u2": "ab", "u4": ""}
    assert messages == 3
