"""Orders and reminders on the virtual clock: each reminder at its time, at most once, cancelled by status
changes, transactional (quiet hours yes, caps no); the activity-store contract; /orders; the CSV import."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from skills.orders import apply_order
from skills.orders.input import OrderFieldError, parse_order
from storage.models import Activity
from skills.orders.models import Order, OrderEvent, ReminderSent
from tests.support import TZ, Harness, make_config

pytestmark = pytest.mark.all_backends  # the storage contract: SQLite and PostgreSQL alike

ROOT = Path(__file__).resolve().parents[1]


def local(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=TZ)


def cfg(**governor):
    raw = {"bot": {"admins": ["admin1"], "skills": ["ping", "orders"]}}
    return make_config(raw, **({"min_interval_s": 1.0} | governor))


async def order(h: Harness, **fields):
    data = {"member_id": "u1", "amount": 59.9, "items": ["草莓 x2"]} | fields
    for key in ("pay_by", "pickup_by", "cutoff_at"):
        if isinstance(data.get(key), datetime):
            data[key] = data[key].isoformat()
    return await apply_order(h.app.services, parse_order(data), "api")


async def activity(h: Harness, kind: str) -> list[Activity]:
    await h.app.activity.flush()
    async with h.app.services.sessions() as s:
        return list((await s.execute(select(Activity).where(Activity.kind == kind).order_by(Activity.id))).scalars())


def dms(h: Harness, user: str = "u1") -> list[tuple[datetime, str]]:
    return [(s.at.astimezone(TZ), s.text) for s in h.sent if s.message.user_id == user]


async def test_unpaid_reminder_half_an_hour_before_pay_by(db_url):
    async with Harness(cfg(), db_url) as h:
        result = await order(h, order_id="A1", status="created", pay_by=local(23, 12))
        assert (result.outcome, result.status) == ("applied", "created")
        await h.clock.advance_to(local(23, 13))
        assert len(dms(h)) == 1
        when, text = dms(h)[0]
        assert when == local(23, 11, 30) and "A1" in text and "还没有付款" in text and "¥59.90" in text
        orders = await activity(h, "order")
        assert [(r.member_id, r.detail) for r in orders] == [
            ("u1", {"order_id": "A1", "status": "created", "amount": 59.9, "group_buy": None})]
        reminders = await activity(h, "reminder")
        assert [(r.member_id, r.detail) for r in reminders] == [
            ("u1", {"order_id": "A1", "reminder": "unpaid", "outcome": "sent"})]


async def test_paying_cancels_the_unpaid_reminder(db_url):
    async with Harness(cfg(), db_url) as h:
        await order(h, order_id="A1", status="created", pay_by=local(23, 12))
        await h.clock.advance_to(local(23, 10))
        await order(h, order_id="A1", status="paid")
        await h.clock.advance_to(local(23, 13))
        assert dms(h) == []
        assert (await h.app.scheduler.get("order:A1:unpaid")).status == "cancelled"


async def test_pickup_reminders_at_once_and_the_day_before_unless_picked_up(db_url):
    async with Harness(cfg(), db_url) as h:
        await order(h, order_id="P1", status="ready_for_pickup", pickup_by=local(26, 18))
        await order(h, order_id="P2", status="ready_for_pickup", pickup_by=local(26, 18), member_id="u2")
        await h.settle()
        assert len(dms(h)) == 1 and "已到自提点" in dms(h)[0][1] and "11月26日 18:00" in dms(h)[0][1]
        await order(h, order_id="P2", status="completed")  # u2 picked up: no second reminder
        await h.clock.advance_to(local(27, 9))
        assert [t for t, _ in dms(h)] == [local(23, 9), local(25, 18)]
        assert "还没有取" in dms(h)[1][1]
        assert len(dms(h, "u2")) == 1


async def test_shipped_reminder_carries_the_tracking_text(db_url):
    async with Harness(cfg(), db_url) as h:
        await order(h, order_id="S1", status="paid")
        await order(h, order_id="S1", status="shipped", tracking="顺丰 SF1234567890")
        await h.settle()
        assert len(dms(h)) == 1 and "顺丰 SF1234567890" in dms(h)[0][1]


async def test_a_replayed_webhook_changes_nothing_and_reminds_once(db_url):
    async with Harness(cfg(), db_url) as h:
        first = await order(h, order_id="S1", status="shipped", tracking="YT123")
        again = await order(h, order_id="S1", status="shipped", tracking="YT123")
        await h.settle()
        assert (first.outcome, again.outcome) == ("applied", "duplicate")
        assert len(dms(h)) == 1
        # even a reminder job run again (a restart that re-planned it) decides nothing twice
        await h.app.scheduler.schedule("order:S1:shipped", "orders.remind", at=h.clock.now(),
                                       payload={"order_id": "S1", "reminder": "shipped"})
        await h.clock.advance(60)
        await h.settle()
        assert len(dms(h)) == 1
        async with h.app.services.sessions() as s:
            assert len((await s.execute(select(ReminderSent))).all()) == 1
            assert len((await s.execute(select(OrderEvent))).all()) == 1
        assert len(await activity(h, "order")) == 1


async def test_reminders_survive_a_restart_and_are_not_repeated(db_url):
    async with Harness(cfg(), db_url) as h:
        await order(h, order_id="A1", status="created", pay_by=local(23, 12))
        await order(h, order_id="R1", status="ready_for_pickup", pickup_by=local(25, 12))
        await h.settle()
    async with Harness(cfg(), db_url, start=local(23, 11)) as h:  # down from 09:00 to 11:00
        await order(h, order_id="R1", status="ready_for_pickup")  # the shop resends: duplicate
        await h.clock.advance_to(local(25, 12))
        assert [(t, "R1" in x) for t, x in dms(h)] == [(local(23, 11, 30), False), (local(24, 12), True)]


async def test_transactional_reminders_keep_quiet_hours_but_ignore_caps(db_url):
    config = cfg(room_daily_caps={"total": 0}, member_daily_caps={"total": 0})
    async with Harness(config, db_url, start=local(23, 21)) as h:
        await order(h, order_id="N1", status="created", pay_by=local(23, 23, 50))  # reminder due 23:20
        await h.clock.advance_to(local(24, 9))
        assert [t for t, _ in dms(h)] == [local(24, 8)]  # deferred to the end of quiet hours, not capped


async def test_group_buy_cutoff_once_per_room_an_hour_before(db_url):
    async with Harness(cfg(room_daily_caps={"total": 0}), db_url) as h:
        cutoff = local(23, 20)
        for i, (member, room) in enumerate([("u1", "g1"), ("u2", "g1"), ("u3", "g2")]):
            await order(h, order_id=f"G{i}", status="paid", member_id=member, room=room, group_buy_id="GB1",
                        cutoff_at=cutoff)
        await order(h, order_id="G0", status="shipped", group_buy_id="GB1", cutoff_at=cutoff)  # same cut-off again
        await h.clock.advance_to(local(23, 21))
        cut = [(s.message.room_id, s.at.astimezone(TZ)) for s in h.sent if "还有1小时截单" in s.text]
        assert sorted(cut) == [("g1", local(23, 19)), ("g2", local(23, 19) + timedelta(seconds=1))]  # paced
        rows = [r for r in await activity(h, "reminder") if r.detail["reminder"] == "gb_cutoff"]
        assert sorted(r.room_id for r in rows) == ["g1", "g2"] and {r.detail["outcome"] for r in rows} == {"sent"}


async def test_a_late_older_status_is_kept_but_not_applied(db_url):
    async with Harness(cfg(), db_url) as h:
        await order(h, order_id="C1", status="completed")
        late = await order(h, order_id="C1", status="paid")
        assert (late.outcome, late.status) == ("stale", "completed")
        async with h.app.services.sessions() as s:
            assert (await s.get(Order, "C1")).status == "completed"
            events = (await s.execute(select(OrderEvent.status, OrderEvent.applied).order_by(OrderEvent.id))).all()
            assert [tuple(e) for e in events] == [("completed", True), ("paid", False)]


async def test_a_new_order_needs_a_member_and_an_amount(db_url):
    async with Harness(cfg(), db_url) as h:
        with pytest.raises(OrderFieldError) as exc:
            await apply_order(h.app.services, parse_order({"order_id": "X", "status": "created", "amount": 1}))
        assert exc.value.field == "member_id"
        with pytest.raises(OrderFieldError) as exc:
            await apply_order(h.app.services, parse_order({"order_id": "X", "status": "created", "member_id": "u"}))
        assert exc.value.field == "amount"
        async with h.app.services.sessions() as s:
            assert await s.get(Order, "X") is None


async def test_external_member_ids_go_through_the_binding_table(db_url):
    from skills.orders import bind_member

    async with Harness(cfg(), db_url) as h:
        await order(h, order_id="E1", status="ready_for_pickup", member_id=None, external_member_id="VIP-001")
        await h.settle()
        assert h.sent == []
        assert (await activity(h, "reminder"))[0].detail == {"order_id": "E1", "reminder": "pickup_ready",
                                                             "outcome": "unbound"}
        assert await bind_member(h.app.services, "VIP-001", "u9") == 1
        await order(h, order_id="E2", status="shipped", member_id=None, external_member_id="VIP-001", tracking="T")
        await h.settle()
        assert len(dms(h, "u9")) == 1


async def test_my_orders_lists_open_orders_privately(db_url):
    async with Harness(cfg(), db_url) as h:
        await order(h, order_id="O1", status="created", pay_by=local(24, 12), items=["牛奶", "面包"])
        await order(h, order_id="O2", status="shipped", tracking="SF9")
        await order(h, order_id="O3", status="completed")
        await h.settle()
        h.sent.clear()
        await h.say("u1", "我的订单", room=None)
        await h.say("u1", "/orders", room="g1")
        await h.say("u2", "/订单", room=None)
        await h.settle()
        mine, in_group, none = h.transport.texts()
        assert "O1" in mine and "牛奶、面包" in mine and "11月24日 12:00 前付款" in mine and "SF9" in mine
        assert "O3" not in mine
        assert "请私聊我" in in_group and "O1" not in in_group
        assert "没有进行中的订单" in none


def test_csv_import_reports_bad_rows_by_line_and_imports_the_rest(tmp_path):
    db = tmp_path / "bot.db"
    config = tmp_path / "config.toml"
    config.write_text('[bot]\nskills = ["orders"]\n', encoding="utf-8")
    csv_file = tmp_path / "orders.csv"
    csv_file.write_text(
        "order_id,member_id,items,amount,status,pay_by\n"
        "A1,u1,草莓;牛奶,59.9,created,2030-01-01T12:00:00+08:00\n"
        "A2,u2,面包,abc,created,\n"
        "A3,u3,面包,10,teleported,\n"
        "A4,,面包,10,created,\n"
        "A5,u5,面包,12.5,paid,not-a-time\n"
        "A6,u6,蛋糕,88,paid,\n"
        "A1,u1,草莓;牛奶,59.9,created,2030-01-01T12:00:00+08:00\n", encoding="utf-8")
    run = subprocess.run([sys.executable, "-m", "bot", "orders", "import", str(csv_file), "--config", str(config),
                          "--db", str(db)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, run.stderr
    assert f"{csv_file}: line 3: amount: is not a number" in run.stderr
    assert f"{csv_file}: line 4: status: must be one of" in run.stderr
    assert f"{csv_file}: line 5: member_id: is required for a new order" in run.stderr
    assert f"{csv_file}: line 6: pay_by: is not an ISO 8601 time" in run.stderr
    assert "imported 2, already there 1, older than the stored status 0, bad rows 4" in run.stdout
    again = subprocess.run([sys.executable, "-m", "bot", "orders", "import", str(csv_file), "--config", str(config),
                            "--db", str(db)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert "imported 0, already there 3" in again.stdout  # a second import changes nothing

    import asyncio

    async def check() -> None:
        async with Harness(cfg(), f"sqlite+aiosqlite:///{db}") as h:
            async with h.app.services.sessions() as s:
                rows = {o.id: o for o in (await s.execute(select(Order))).scalars()}
            assert sorted(rows) == ["A1", "A6"]
            assert rows["A1"].items == ["草莓", "牛奶"] and rows["A1"].amount_cents == 5990
            job = await h.app.scheduler.get("order:A1:unpaid")
            assert job.status == "active" and job.next_run_at == datetime(2030, 1, 1, 11, 30, tzinfo=TZ)

    asyncio.run(check())


def import_file(csv_file: Path, db: Path, config: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bot", "orders", "import", str(csv_file), "--config", str(config),
                           "--db", str(db)], cwd=ROOT, capture_output=True, text=True, timeout=120)


def stored_orders(db: Path) -> dict[str, Order]:
    import asyncio

    async def read() -> dict[str, Order]:
        async with Harness(cfg(), f"sqlite+aiosqlite:///{db}") as h:
            async with h.app.services.sessions() as s:
                return {o.id: o for o in (await s.execute(select(Order))).scalars()}

    return asyncio.run(read())


def test_csv_import_reports_what_hand_edits_break_and_keeps_every_good_row(tmp_path):
    """A 200 KB field, year 9999 and year 1, an unclosed quote in the middle (the csv module let it swallow the
    rows after it), full-width ids: each bad row reported by line and field, every good row imported."""
    config = tmp_path / "config.toml"
    config.write_text('[bot]\nskills = ["orders"]\n', encoding="utf-8")
    csv_file = tmp_path / "orders.csv"
    csv_file.write_text(
        "order_id,member_id,items,amount,status,pay_by\n"
        "B1,u1,草莓,10,paid,\n"
        f"B2,u2,\"{'米' * 200_000}\",10,paid,\n"
        "B3,u3,面包,10,created,9999-12-31T23:00:00-08:00\n"
        "B4,u4,面包,10,created,0001-01-01T00:00:00+08:00\n"
        "B5,u5,\"牛奶,10,paid,\n"
        "B6,u6,蛋糕,10,paid,\n"
        "ＢＸ１２３,ｕ７,米,5,paid,\n"
        "BX123,u7,米,5,paid,\n"
        "B8,u8,\"苹果\",8,paid,\n"
        "B9,u9,\"鸡蛋\n面粉\",6,paid,\n"
        ",,,,,\n", encoding="utf-8")
    run = import_file(csv_file, tmp_path / "bot.db", config)
    assert run.returncode == 1, run.stderr
    assert "Traceback" not in run.stderr
    problems = [line for line in run.stderr.splitlines() if line.startswith(str(csv_file))]
    assert problems == [
        f"{csv_file}: line 3: items: is longer than 10000 characters",
        f"{csv_file}: line 4: pay_by: must be between 2000 and 2100",
        f"{csv_file}: line 5: pay_by: must be between 2000 and 2100",
        f"{csv_file}: line 6: items: the quote opened on this line is not closed; the row is skipped and the lines "
        "after it are read as rows"]
    assert "imported 5, already there 1, older than the stored status 0, bad rows 4 (read as UTF-8)" in run.stdout
    rows = stored_orders(tmp_path / "bot.db")
    assert sorted(rows) == ["B1", "B6", "B8", "B9", "BX123"]
    assert rows["BX123"].member_id == "u7" and rows["B8"].items == ["苹果"] and rows["B9"].items == ["鸡蛋", "面粉"]


def test_csv_import_reads_a_gbk_file_from_excel(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('[bot]\nskills = ["orders"]\n', encoding="utf-8")
    csv_file = tmp_path / "orders.csv"
    csv_file.write_text("order_id,member_id,items,amount,status\r\n"
                        "G1,u1,草莓;牛奶,59.9,paid\r\n"
                        "G2,u2,面包,abc,paid\r\n", encoding="gbk")
    run = import_file(csv_file, tmp_path / "bot.db", config)
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
    assert f"{csv_file}: line 3: amount: is not a number" in run.stderr
    assert "imported 1, already there 0, older than the stored status 0, bad rows 1 (read as GB18030)" in run.stdout
    assert stored_orders(tmp_path / "bot.db")["G1"].items == ["草莓", "牛奶"]


def test_csv_encodings_utf8_with_bom_and_mixed_files():
    from skills.orders.csv_import import decode

    assert decode("\ufefforder_id\n草莓\n".encode("utf-8")) == ("order_id\n草莓\n", "UTF-8 with BOM", [])
    assert decode("order_id\n草莓\n".encode("gbk"))[:2] == ("order_id\n草莓\n", "GB18030")
    # a GBK row pasted into a UTF-8 file: skipped and said, the rest read as UTF-8 (not all of it as nonsense)
    data = "order_id,items\nA1,草莓\nA2,牛奶\n".encode() + "A3,面包\n".encode("gbk")
    text, encoding, problems = decode(data)
    assert (text, encoding) == ("order_id,items\nA1,草莓\nA2,牛奶\n\n", "UTF-8")
    assert [(p.line, p.field) for p in problems] == [(4, "file")] and "not valid UTF-8" in problems[0].message
    assert decode("order_id\n".encode("utf-16"))[2][0].message.startswith("is UTF-16 text")


def test_csv_an_unclosed_quote_at_the_end_and_quoted_line_breaks():
    from skills.orders.csv_import import Problem, read_rows

    rows = list(read_rows('order_id,items,status\nA1,"a\nb",paid\nA2,"c,paid\nA3,d,paid\nA4,e,paid\n'))
    assert rows[0] == (2, {"order_id": "A1", "items": "a\nb", "status": "paid"})
    assert rows[1] == Problem(4, "items", "the quote opened on this line is not closed; the row is skipped and the "
                                          "lines after it are read as rows")
    assert rows[2:] == [(5, {"order_id": "A3", "items": "d", "status": "paid"}),
                        (6, {"order_id": "A4", "items": "e", "status": "paid"})]
    # the quote runs to the end of the file: the rows after it are still read
    rows = list(read_rows('order_id,items,status,tracking\nA1,x,paid,"SF1\nA2,y,paid\n'))
    assert [r.line if isinstance(r, Problem) else r[0] for r in rows] == [2, 3]
    assert rows[1] == (3, {"order_id": "A2", "items": "y", "status": "paid"})


def test_times_outside_2000_to_2100_are_field_errors():
    base = {"order_id": "T1", "status": "created"}
    for at in ("9999-12-31T23:00:00-08:00", "0001-01-01T00:00:00+08:00", "1999-12-31T23:59:59+00:00",
               "2100-01-01T08:00:00+08:00"):
        with pytest.raises(OrderFieldError) as exc:
            parse_order(base | {"pay_by": at})
        assert (exc.value.field, exc.value.message) == ("pay_by", "must be between 2000 and 2100")
    assert parse_order(base | {"pickup_by": "2099-12-31T23:59:59+00:00"}).pickup_by.year == 2099


def test_ids_are_nfkc_normalised_and_bounded_by_their_columns():
    from skills.orders.input import parse_binding

    upd = parse_order({"order_id": " ＡＢ１２３ ", "status": "paid", "member_id": "ｗｘｉｄ＿１",
                       "external_member_id": "ＶＩＰ－００１", "group_buy_id": "ＧＢ１"})
    assert (upd.order_id, upd.member_id, upd.external_member_id, upd.group_buy_id) == (
        "AB123", "wxid_1", "VIP-001", "GB1")
    assert parse_binding("ＶＩＰ－００１", "wxid_1") == ("VIP-001", "wxid_1")
    for field, value in [("order_id", "A" * 65), ("group_buy_id", "G" * 65), ("member_id", "u" * 129),
                         ("external_member_id", "x" * 129), ("room", "r" * 129), ("member_id", "u\x00")]:
        with pytest.raises(OrderFieldError) as exc:
            parse_order({"order_id": "A1", "status": "paid"} | {field: value})
        assert exc.value.field == field


async def test_the_live_scheduler_picks_up_reminders_another_process_wrote(db_url):
    """The CSV import runs beside the bot: its jobs are rows the bot's timer knows nothing about; the live
    scheduler looks for new jobs every poll_s."""
    from bot.app import BotApp

    async with Harness(cfg(), db_url) as h:
        h.app.scheduler.stop()
        await h.app.scheduler.start(h.app.services, poll_s=60.0)

        async def refuse(message):
            raise AssertionError("the importing process sends nothing")

        importer = BotApp(cfg(), h.clock, refuse, db_url=db_url)
        await importer.start(serve=False)
        await apply_order(importer.services, parse_order({"order_id": "X1", "member_id": "u1", "amount": 5,
                                                           "status": "shipped", "tracking": "EMS1"}), "csv")
        await importer.activity.aclose()
        await importer.engine.dispose()
        await h.clock.advance(30)
        assert h.sent == []
        await h.clock.advance(40)
        await h.settle()
        assert len(dms(h)) == 1 and "EMS1" in dms(h)[0][1]


def test_orders_bind_merges_the_member_the_shop_id_named_before_once(tmp_path):
    """``orders bind`` rebinding a shop's member id to another WeChat id merges the old member into the new one
    (storage/identity.py ``merge``, as /绑定会员 does): ids and points move through the ledger, in one transaction,
    exactly once; nothing is left in a wallet no id names."""
    import asyncio

    from storage import identity
    from storage.points import balance, change_points, ledger_sum

    db = tmp_path / "bot.db"
    config = tmp_path / "config.toml"
    config.write_text('[bot]\nskills = ["orders"]\n', encoding="utf-8")

    def bind(wechat_id: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "bot", "orders", "bind", "SHOP-1", wechat_id, "--config",
                               str(config), "--db", str(db)], cwd=ROOT, capture_output=True, text=True, timeout=120)

    first = bind("wxid_old")
    assert first.returncode == 0, first.stderr
    assert "SHOP-1 named no other member: nothing to merge" in first.stdout

    async def state(give: dict[str, int] | None = None) -> dict:
        async with Harness(cfg(), f"sqlite+aiosqlite:///{db}") as h:
            async with h.app.services.sessions() as s:
                for member, amount in (give or {}).items():
                    await change_points(s, member, amount, reason="商城赠送", source="admin", at=h.clock.now(),
                                        ref_id=f"gift-{member}")
                await s.commit()
                return {"balances": {m: (await balance(s, m), await ledger_sum(s, m)) for m in
                                     ("wxid_old", "wxid_new")},
                        "shop": await identity.resolve(s, "shop", "SHOP-1"),
                        "old": await identity.resolve(s, "wechat", "wxid_old")}

    asyncio.run(state({"wxid_old": 40, "wxid_new": 10}))
    second = bind("wxid_new")
    assert second.returncode == 0, second.stderr
    assert "merged member wxid_old into wxid_new" in second.stdout
    assert "40 points moved through the ledger, balance now 50" in second.stdout
    after = asyncio.run(state())
    assert after == {"balances": {"wxid_old": (0, 0), "wxid_new": (50, 50)}, "shop": "wxid_new", "old": "wxid_new"}
    again = bind("wxid_new")  # idempotent: nothing moves twice
    assert again.returncode == 0 and "nothing to merge" in again.stdout
    assert asyncio.run(state()) == after
