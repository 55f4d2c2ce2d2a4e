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
