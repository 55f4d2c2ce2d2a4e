"""The replay contract of shared/docs/replay.md, through the real command line."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = [
    {"at": "2026-11-23T09:00:05+08:00", "kind": "message", "room": "g1", "room_topic": "会员福利群",
     "user": "u1", "name": "小李", "text": "/ping"},
    {"at": "2026-11-23T09:00:05+08:00", "kind": "message", "room": "g1", "user": "u2", "name": "小王",
     "text": "在吗"},
    {"at": "2026-11-23T09:00:06+08:00", "kind": "message", "room": "g1", "user": "u3", "name": "小赵",
     "text": "大家好"},
    {"at": "2026-11-23T09:00:07+08:00", "kind": "join", "room": "g1", "users": [{"id": "u4", "name": "小张"}],
     "inviter": "u1"},
    {"at": "2026-11-23T09:30:00+08:00", "kind": "message", "user": "u1", "name": "小李", "text": "/ping"},
    {"at": "2026-11-23T09:31:00+08:00", "kind": "leave", "room": "g1", "users": ["u4"]},
    {"at": "2026-11-23T10:00:00+08:00", "kind": "tick"},
]


def replay(tmp_path, lines: list[str], *extra: str, stdin: bool = False,
           skills: str = '["ping", "welcome"]') -> subprocess.CompletedProcess:
    tmp_path.mkdir(exist_ok=True)
    config = tmp_path / "config.toml"
    config.write_text(
        f'[bot]\nadmins = ["admin1"]\nskills = {skills}\n'
        "[governor]\nmin_interval_s = 1.0\njitter_s = 0.0\nchat_switch_interval_s = 3.0\nper_chat_interval_s = 1.0\n"
        '[skills.welcome]\ntemplate = "欢迎加入{topic}！{howto}"\nhowto = "发送 /help 看看我能做什么。"\n',
        encoding="utf-8")
    body = "\n".join(lines) + "\n"
    args = [sys.executable, "-m", "bot", "replay", "-" if stdin else str(tmp_path / "events.jsonl"),
            "--config", str(config), "--db", str(tmp_path / "replay.db"), *extra]
    if not stdin:
        (tmp_path / "events.jsonl").write_text(body, encoding="utf-8")
    return subprocess.run(args, cwd=ROOT, input=body if stdin else None, capture_output=True, text=True,
                          timeout=120)


def actions(run) -> list[dict]:
    return [json.loads(line) for line in run.stdout.splitlines()]


def test_a_script_in_gives_exactly_these_actions_out(tmp_path):
    run = replay(tmp_path, [json.dumps(e, ensure_ascii=False) for e in SCRIPT])
    assert run.returncode == 0, run.stderr
    assert actions(run) == [
        {"at": "2026-11-23T09:00:05+08:00", "kind": "say", "room": "g1", "text": "@小李\u2005在的～",
         "mentions": ["u1"]},
        # same chat: 1 s apart (min_interval_s)
        {"at": "2026-11-23T09:00:06+08:00", "kind": "say", "room": "g1", "text": "@小王\u2005在的～",
         "mentions": ["u2"]},
        # joins are welcomed together at the end of the 60 s window
        {"at": "2026-11-23T09:01:07+08:00", "kind": "say", "room": "g1",
         "text": "@小张\u2005欢迎加入会员福利群！发送 /help 看看我能做什么。", "mentions": ["u4"]},
        {"at": "2026-11-23T09:30:00+08:00", "kind": "say", "user": "u1", "text": "在的～", "mentions": []},
    ]
    assert run.stderr.count("skipped") == 0


def test_stdin_and_pacing_between_chats(tmp_path):
    lines = [
        json.dumps({"at": "2026-11-23T09:00:00+08:00", "kind": "message", "room": "g1", "user": "u1",
                    "text": "/ping"}),
        json.dumps({"at": "2026-11-23T09:00:00+08:00", "kind": "message", "room": "g2", "user": "u2",
                    "text": "/ping"}),
    ]
    run = replay(tmp_path, lines, stdin=True)
    assert run.returncode == 0, run.stderr
    # the second goes to another chat: chat_switch_interval_s (3 s) after the first
    assert [a["at"] for a in actions(run)] == ["2026-11-23T09:00:00+08:00", "2026-11-23T09:00:03+08:00"]


def test_bad_lines_are_reported_with_their_numbers_skipped_and_exit_2(tmp_path):
    good = [json.dumps(e, ensure_ascii=False) for e in SCRIPT[:2]]
    lines = [
        "this is not json",
        good[0],
        '{"at": "2026-11-23T09:00:05+08:00", "kind": "dance"}',
        '{"at": "yesterday", "kind": "tick"}',
        "[1, 2]",
        '{"at": "2026-11-23T09:00:05+08:00", "kind": "message", "room": "g1", "text": "no user"}',
        good[1],
    ]
    run = replay(tmp_path, lines)
    assert run.returncode == 2
    errors = [line for line in run.stderr.splitlines() if line.startswith("line ")]
    assert [e.split(":")[0] for e in errors] == ["line 1", "line 3", "line 4", "line 5", "line 6"]
    assert "kind: unknown kind 'dance'" in errors[1]
    assert errors[2] == "line 4: at: is not an ISO 8601 time: 'yesterday'; skipped"
    assert errors[4] == "line 6: user: is required; skipped"
    assert len(actions(run)) == 2  # nothing good was lost


def test_time_never_goes_backwards_and_until_runs_the_clock_on(tmp_path):
    lines = [
        json.dumps({"at": "2026-11-23T09:00:00+08:00", "kind": "message", "room": "g1", "user": "u1",
                    "text": "/ping"}),
        json.dumps({"at": "2026-11-23T08:00:00+08:00", "kind": "message", "room": "g1", "user": "u2",
                    "text": "/ping"}),
    ]
    run = replay(tmp_path, lines, "--until", "2026-11-23T12:00:00+08:00")
    assert run.returncode == 0, run.stderr
    # the earlier line is handled at the clock's time; pacing puts its reply 1 s later
    assert [a["at"] for a in actions(run)] == ["2026-11-23T09:00:00+08:00", "2026-11-23T09:00:01+08:00"]


def test_until_lets_scheduled_work_happen_at_its_own_time(tmp_path):
    lines = [json.dumps({"at": "2026-11-23T09:00:00+08:00", "kind": "message", "room": "g1", "user": "u1",
                         "text": "/remind 3600 喝水"})]
    run = replay(tmp_path, lines, "--until", "2026-11-23T12:00:00+08:00", skills='["ping", "welcome", "tests.support.dispatch_skill"]')
    assert run.returncode == 0, run.stderr
    assert [(a["at"], a["text"]) for a in actions(run)] == [
        ("2026-11-23T09:00:00+08:00", "@u1\u2005好的"),
        ("2026-11-23T10:00:00+08:00", "喝水"),
    ]
    # without --until the replay ends with its last event: the reminder is still pending, not sent
    again = replay(tmp_path / "again", lines, skills='["ping", "welcome", "tests.support.dispatch_skill"]')
    assert [a["text"] for a in actions(again)] == ["@u1\u2005好的"]


def test_stdout_has_only_actions(tmp_path):
    run = replay(tmp_path, [json.dumps(e, ensure_ascii=False) for e in SCRIPT])
    for line in run.stdout.splitlines():
        assert json.loads(line)["kind"] == "say"


def test_order_events_drive_reminders_on_the_virtual_clock(tmp_path):
    script = [
        {"at": "2026-11-23T09:00:00+08:00", "kind": "order", "order_id": "A1", "member_id": "u1", "amount": 30,
         "items": ["草莓"], "status": "created", "pay_by": "2026-11-23T12:00:00+08:00"},
        {"at": "2026-11-23T09:05:00+08:00", "kind": "order", "order_id": "A2", "member_id": "u2", "amount": 12.5,
         "status": "created", "pay_by": "2026-11-23T12:00:00+08:00"},
        {"at": "2026-11-23T10:00:00+08:00", "kind": "order", "order_id": "A2", "status": "paid"},
        {"at": "2026-11-23T10:01:00+08:00", "kind": "order", "order_id": "A3", "status": "paid"},
        {"at": "2026-11-23T10:02:00+08:00", "kind": "order", "order_id": "A4", "status": "paid", "amount": "x"},
    ]
    run = replay(tmp_path, [json.dumps(e, ensure_ascii=False) for e in script], "--until",
                 "2026-11-23T13:00:00+08:00", skills='["orders"]')
    assert run.returncode == 2
    assert "line 4: order: member_id: is required for a new order" in run.stderr
    assert "line 5: order: amount: is not a number" in run.stderr
    said = actions(run)
    assert [(a["at"], a["user"]) for a in said] == [("2026-11-23T11:30:00+08:00", "u1")]
    assert "A1" in said[0]["text"] and "还没有付款" in said[0]["text"]
