"""Hostile replay scripts, seeded: ordinary community traffic (check-ins, redemptions, lotteries, joins, orders)
mixed with lines that are wrong in every way a file from outside can be — random types, huge values, NUL bytes,
lone surrogates, bytes that are not UTF-8, extreme dates, unknown kinds, deep nesting, very long lines."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta

START = datetime.fromisoformat("2026-11-23T08:00:00+08:00")
ADMIN = "admin1"
CONFIG = f"""
[bot]
admins = ["{ADMIN}"]
skills = ["ping", "checkin", "lottery", "welcome", "orders", "tiers"]
[governor]
min_interval_s = 0.5
jitter_s = 0.0
chat_switch_interval_s = 0.5
per_chat_interval_s = 0.5
[skills.checkin]
activity_points_enabled = true
[skills.checkin.rewards]
"杯子" = {{ cost = 10, stock = 3 }}
"贴纸" = {{ cost = 1, stock = 50 }}
[skills.welcome]
referral_points = 5
referral_days = 1
"""

ROOMS = ["g1", "g2", "g3"]
USERS = [f"wxid_{i}" for i in range(30)]
NAMES = ["小李", "阿王", "=SUM(A1)", "Ｚｏｅ", "😀 emoji", "", "名" * 40]
TEXTS = ["签到", "/积分", "/rank", "/兑换", "/兑换 杯子", "/兑换 贴纸", "/兑换 1", "确认", "抽奖", "/lottery status", "/ping", "在吗",
         "今天天气不错", "哈哈哈", "/help", "/orders", "我的订单", "@小助手 怎么退货", "/echo 你好"]
ADMIN_TEXTS = ["/lottery start 耳机 winners=2 duration=30m keyword=抽奖 cost=1", "/lottery draw", "/lottery cancel",
               "/积分 加 @wxid_1 5", "/points add wxid_2 3", "/stats", "/tier wxid_1", "/lottery status",
               "/兑换 待处理", "/兑换 发放 1", "/兑换 拒绝 2 缺货"]
HUGE = ["x" * 300, "名" * 3000, "a" * 200_000]
JUNK_STRINGS = ["\u0000", "a\u0000b", "\ud800", "x\udfffy", "\r\n", "\u202e", "\ufeff", "' OR 1=1 --", "\\", "%s%n"]
BAD_TIMES = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "2026-13-45T00:00:00+08:00",
             "2026-11-23T09:00:00", "yesterday", "", "1999-12-31T23:59:59+00:00", "2101-01-01T00:00:00+00:00",
             "2026-11-23T25:61:00+08:00", "+20260-01-01T00:00:00+08:00"]


def _junk_value(rng: random.Random, depth: int = 0):
    pick = rng.randrange(12)
    if pick == 0:
        return None
    if pick == 1:
        return rng.choice([True, False])
    if pick == 2:
        return rng.choice([0, -1, 2**63, -(2**70), 10**30])
    if pick == 3:
        return rng.choice([1.5, -0.0, 1e308])
    if pick == 4:
        return rng.choice(HUGE)
    if pick == 5:
        return rng.choice(JUNK_STRINGS) + rng.choice(USERS)
    if pick in (6, 7) and depth < 3:
        return [_junk_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    if pick == 8 and depth < 3:
        return {rng.choice(["id", "name", "x", "\u0000"]): _junk_value(rng, depth + 1) for _ in range(rng.randrange(3))}
    if pick == 9:
        return "x" * rng.choice([128, 129, 256, 257, 2001])
    return rng.choice(USERS + NAMES + TEXTS)


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def _good(rng: random.Random, at: datetime) -> dict:
    """A line the bot must handle: its effects are checked afterwards."""
    roll = rng.random()
    stamp = at.isoformat()
    if roll < 0.07:
        users = rng.sample(USERS, rng.randrange(1, 4))
        return {"at": stamp, "kind": "join", "room": rng.choice(ROOMS), "room_topic": "福利群",
                "users": [{"id": u, "name": rng.choice(NAMES)} for u in users], "inviter": rng.choice(USERS)}
    if roll < 0.10:
        return {"at": stamp, "kind": "leave", "room": rng.choice(ROOMS), "users": rng.sample(USERS, 1)}
    if roll < 0.13:
        return {"at": stamp, "kind": "tick"}
    if roll < 0.18:
        order = {"at": stamp, "kind": "order", "order_id": f"o{rng.randrange(40)}",
                 "status": rng.choice(["created", "paid", "shipped", "ready_for_pickup", "completed", "cancelled"])}
        if rng.random() < 0.6:
            order.update(member_id=rng.choice(USERS), amount=rng.choice([9.9, 30, "12.50"]),
                         pay_by=(at + timedelta(hours=2)).isoformat())
        return order
    user, text = rng.choice(USERS), rng.choice(TEXTS)
    if roll < 0.25:
        user, text = ADMIN, rng.choice(ADMIN_TEXTS)
    line = {"at": stamp, "kind": "message", "user": user, "name": rng.choice(NAMES), "text": text}
    if rng.random() < 0.8:
        line.update(room=rng.choice(ROOMS), room_topic=rng.choice(["福利群", "", "群\u0000名" + "长" * 300]))
    if rng.random() < 0.1:
        line["mentions_bot"] = True
    return line


def _hostile(rng: random.Random, at: datetime) -> bytes:
    """A line that is wrong somehow; the bot reports it (or cleans it) and goes on."""
    base = _good(rng, at)
    roll = rng.randrange(15)
    if roll == 0:  # a field of the wrong type or size
        key = rng.choice(["at", "kind", "user", "name", "text", "room", "room_topic", "users", "inviter",
                          "mentions_bot", "order_id", "amount", "member_id", "pay_by", "items"])
        base[key] = _junk_value(rng)
    elif roll == 1:  # NUL bytes and lone surrogates in the values
        for key in ("user", "name", "text", "room", "room_topic"):
            if key in base or rng.random() < 0.3:
                base[key] = rng.choice(JUNK_STRINGS) + str(base.get(key, "")) + rng.choice(JUNK_STRINGS)
    elif roll == 2:
        base["at"] = rng.choice(BAD_TIMES)
    elif roll == 3:
        base["kind"] = rng.choice(["dance", "MESSAGE", "", "message ", "tick\u0000", "say"])
    elif roll == 4:  # deep nesting: past orjson's limit, or within it in a field
        if rng.random() < 0.5:
            return _nested(rng.choice([1025, 3000])).encode()
        base[rng.choice(["text", "users", "name", "items"])] = json.loads(_nested(rng.randrange(20, 200)))
    elif roll == 5:  # long lines: over the 1 MB limit, or just under with a huge text
        if rng.random() < 0.3:
            return b'{"at": "' + b"9" * 1_100_000 + b'"}' if rng.random() < 0.2 else b"{" * 1_000_001
        base["text"] = "长" * 300_000
    elif roll == 6:  # bytes that are not UTF-8
        raw = json.dumps(base, ensure_ascii=False).encode()
        cut = rng.randrange(len(raw))
        return raw[:cut] + rng.choice([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xe9t\xe9", b"\x80\x80"]) + raw[cut:]
    elif roll == 7:  # not JSON, not an object
        return rng.choice([b"{", b"null", b"[1,2,3]", b'"text"', b"{'at': 1}", b"\x00\x00", b"{}", b"42",
                           b"\xef\xbb\xbf{}", b'{"at": NaN}', b'{"a":1,"a":2}'])
    elif roll == 8:  # ids and names past their columns
        base["user"] = "x" * rng.choice([128, 129, 5000])
        base["name"] = "名" * rng.choice([256, 257, 10_000])
    elif roll == 9:  # a lone surrogate escaped in the JSON itself, and a NUL escape
        raw = json.dumps(base, ensure_ascii=True).replace('"kind"', '"\\ud800k\\u0000": 1, "kind"', 1)
        return raw.encode()
    elif roll == 10:  # a join or leave whose users are anything
        base = {"at": base["at"], "kind": rng.choice(["join", "leave"]), "room": rng.choice(ROOMS),
                "users": _junk_value(rng)}
    elif roll == 11:  # missing fields
        for key in rng.sample(sorted(base), rng.randrange(1, len(base) + 1)):
            del base[key]
    elif roll == 12:  # valid, at the limits: ids of 128, names cut to 256, a room id of 128, in every skill
        long_id = "u" * 127 + rng.choice("abc")
        room = rng.choice([*ROOMS, "r" * 128])
        if base["kind"] in ("join", "leave"):
            base.update(room=room, users=[{"id": long_id, "name": "名" * 300}] if base["kind"] == "join" else [long_id])
            if base["kind"] == "join":
                base["inviter"] = rng.choice([long_id, "v" * 128, *USERS])
        else:
            base.update(kind="message", user=rng.choice([long_id, *USERS]), name="名" * rng.choice([129, 200, 300]),
                        room=room, room_topic="题" * 300, text=rng.choice(["抽奖", "/兑换 贴纸", "签到", "/积分",
                                                                            "/rank", "/orders", "/ping"]))
    elif roll == 13 and base["kind"] == "message":  # backdated into the distant past: handled at the clock's time
        base["at"] = (at - timedelta(days=rng.randrange(1, 400))).isoformat()
    else:  # the text as a command with hostile arguments
        base.update(kind="message", user=rng.choice([ADMIN, *USERS]), room=rng.choice(ROOMS),
                    text=rng.choice(["/兑换 ", "/lottery start ", "/积分 加 @", "/tier ", "/echo ", "/export "])
                    + rng.choice(JUNK_STRINGS + HUGE[:2]) + rng.choice(["", " winners=99999 duration=999d"]))
    return json.dumps(base, ensure_ascii=rng.random() < 0.5).encode("utf-8", "surrogatepass")


def script(seed: int, lines: int, hostile_share: float = 0.4) -> list[bytes]:
    """``lines`` lines in time order (mostly), one in ``1/hostile_share`` hostile; none contains a newline."""
    rng = random.Random(seed)
    at = START
    out = []
    for _ in range(lines):
        at += timedelta(seconds=rng.expovariate(1 / 60))  # about three days in 5,000 lines
        if rng.random() < hostile_share:
            raw = _hostile(rng, at)
        else:
            raw = json.dumps(_good(rng, at), ensure_ascii=False).encode()
        out.append(raw.replace(b"\n", b"\\n"))
    return out
