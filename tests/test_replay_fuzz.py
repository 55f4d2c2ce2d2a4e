"""Fuzz: 5,000 seeded hostile replay lines through ``python -m bot replay`` on SQLite and PostgreSQL.

Never a traceback; exit status 0 or 2 as the contract says, each skipped line reported with its number; and
afterwards the store holds together: every balance equals its ledger, no reward stock below zero, one entry per
member per lottery, and an activity row for every event the replay accepted."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from collections import Counter

import pytest
from sqlalchemy import func, select

from skills.checkin.models import RewardStock
from skills.lottery.models import LotteryEntry
from storage.models import Activity, Member
from tests.support.db_checks import messages_balances_ledger, read
from tests.support.replay_fuzz import CONFIG, script
from tests.test_replay_contract import ROOT

pytestmark = pytest.mark.all_backends
SEED, LINES = 20261123, 5000
_REPORTED = re.compile(rb"^line (\d+): .*; skipped$")


def expected_rows(lines: list[bytes], skipped: set[int]) -> tuple[Counter, set[str]]:
    """Activity rows by kind that the accepted lines must have left, and the members they name."""
    rows: Counter = Counter()
    members: set[str] = set()
    for number, raw in enumerate(lines, start=1):
        if number in skipped or not raw.strip():
            continue
        event = json.loads(raw.removeprefix(b"\xef\xbb\xbf"))
        if event["kind"] == "message":
            rows["message"] += 1
            members.add(event["user"])
        elif event["kind"] == "join":
            users = [u if isinstance(u, str) else u["id"] for u in event["users"]]
            rows["join"] += len(users)
            members.update(users)
        elif event["kind"] == "leave":
            rows["leave"] += len(event["users"])
    return rows, members


async def store_figures(conn):
    by_kind = dict((await conn.execute(select(Activity.kind, func.count()).group_by(Activity.kind))).all())
    members = set((await conn.execute(select(Member.id))).scalars())
    stock = dict((await conn.execute(select(RewardStock.item, RewardStock.stock))).all())
    doubled = (await conn.execute(select(LotteryEntry.lottery_id, LotteryEntry.member_id)
                                  .group_by(LotteryEntry.lottery_id, LotteryEntry.member_id)
                                  .having(func.count() > 1))).all()
    entries = (await conn.execute(select(func.count()).select_from(LotteryEntry))).scalar()
    return by_kind, members, stock, doubled, entries


async def test_hostile_lines_never_break_the_replay_or_the_store(tmp_path, db_url):
    lines = script(SEED, LINES)
    (tmp_path / "events.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    (tmp_path / "config.toml").write_text(CONFIG, encoding="utf-8")
    run = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "bot", "replay", str(tmp_path / "events.jsonl"), "--config",
                         str(tmp_path / "config.toml"), "--db", db_url, "--until", "2026-11-27T00:00:00+08:00"],
        cwd=ROOT, capture_output=True, timeout=600)

    assert b"Traceback" not in run.stderr, run.stderr.decode(errors="replace")[-3000:]
    assert run.returncode == 2  # some lines were skipped (and said so); nothing else went wrong
    reported = [m for x in run.stderr.splitlines() if (m := _REPORTED.match(x))]
    skipped = {int(m.group(1)) for m in reported}
    assert 1000 < len(skipped) < 2000  # the hostile share, minus what cleaning lets through
    assert not [x for x in run.stderr.splitlines() if b" ERROR " in x]  # no handler, job or store errors
    for action in run.stdout.splitlines():
        assert json.loads(action)["kind"] == "say"

    _, balances, ledger = await read(db_url, messages_balances_ledger)
    assert balances and balances == ledger
    assert all(b >= 0 for b in balances.values())
    by_kind, members, stock, doubled, entries = await read(db_url, store_figures)
    assert stock and all(n >= 0 for n in stock.values())
    assert doubled == [] and entries > 0
    rows, named = expected_rows(lines, skipped)
    assert {k: by_kind.get(k, 0) for k in rows} == dict(rows)  # a row for every accepted event, no more
    assert named <= members
