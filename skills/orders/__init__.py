"""Orders and reminders (订单提醒).

Orders come in by the HTTP API (``POST /api/orders``, skills/orders/api.py), the CSV import (``python -m bot orders
import``, skills/orders/cli.py and csv_import.py) and replay (``order`` lines); all three call ``apply_order`` with
a validated OrderUpdate (skills/orders/input.py). The queries are in skills/orders/store.py.
An update is idempotent on (order id, status): the same webhook twice changes nothing the second time. An update
older than the order's status (a late "paid" after "completed") is kept for the record but not applied.

Reminders are persisted scheduler jobs, each happening at most once per order and kind (the unique key of
``reminders_sent``, written in the same transaction as the job's bookkeeping; the message is handed to the
governor only once that is committed):

- unpaid: a DM at pay-by − ``unpaid_before_s`` (30 min) while the order is still ``created``;
- pickup_ready: a DM at once when the order is ``ready_for_pickup``; pickup_due: again ``pickup_before_s``
  (a day) before pickup-by if it is still not picked up;
- shipped: a DM with the tracking text;
- gb_cutoff: one message per room of a group buy, ``cutoff_before_s`` (1 h) before its cut-off.

A status change cancels the reminders that no longer apply. All reminders are transactional: the governor
keeps quiet hours for them (deferred to the morning) but no daily caps and no opt-out. Every status change is an
activity row of kind ``order``, every reminder one of kind ``reminder`` (the tiers issue reads both).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.context import Context, Services
from bot.events import OutgoingMessage, Priority, ProactiveKind
from bot.http import FieldError
from bot.skill import Skill, UsageError
from bot.timefmt import zh_datetime
from skills.orders import store
from skills.orders.input import OrderFieldError, OrderResult, OrderUpdate, parse_binding, parse_order
from storage import identity
from skills.orders.models import Order

log = logging.getLogger(__name__)

# How far along an order is: an update to an earlier stage than the order's is stale. shipped and
# ready_for_pickup are alternatives at the same stage.
STAGE = {"created": 0, "paid": 1, "shipped": 2, "ready_for_pickup": 2, "completed": 3, "cancelled": 3}
# Which reminders still make sense in each status; a change cancels the others.
APPLIES = {"created": ("unpaid",), "shipped": ("shipped",), "ready_for_pickup": ("pickup_ready", "pickup_due")}
ORDER_REMINDERS = ("unpaid", "pickup_ready", "pickup_due", "shipped")
STATUS_ZH = {"created": "待付款", "paid": "已付款", "shipped": "已发货", "ready_for_pickup": "待自提",
             "completed": "已完成", "cancelled": "已取消"}


@dataclass(frozen=True)
class OrderSettings:
    unpaid_before_s: int = 1800  # the unpaid reminder goes this long before pay-by
    pickup_before_s: int = 86400  # the second pickup reminder: this long before pickup-by ("the day before")
    cutoff_before_s: int = 3600  # group-buy cut-off reminder: this long before the cut-off
    misfire_grace_s: int = 6 * 3600  # a reminder due while the bot was down is still sent within this


skill: Skill[OrderSettings, None] = Skill("orders", "订单提醒", settings=OrderSettings)
_settings = skill.settings_of


def _yuan(cents: int) -> float:
    return round(cents / 100, 2)


# -- applying updates -----------------------------------------------------------------------------------------------

@skill.replay_input("order", parse=parse_order)
async def apply_replayed(services: Services, upd: OrderUpdate) -> None:
    await apply_order(services, upd, "replay")


async def apply_order(services: Services, upd: OrderUpdate, source: str = "api") -> OrderResult:
    """Apply one update in its own transaction. Raises OrderFieldError for a new order without member/amount."""
    for attempt in (1, 2):
        try:
            async with services.sessions() as s, s.begin():
                return await _apply(services, s, upd, source)
        except IntegrityError:
            # another request for the same order won a race (its insert committed first): look again, once —
            # this time we see its row and answer duplicate, or apply on top of it
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


async def _apply(services: Services, s: AsyncSession, upd: OrderUpdate, source: str) -> OrderResult:
    """Core statements, built once (an update is a few of them: the order, its event, its reminders' jobs)."""
    now = services.clock.now()
    found = await store.get_order(s, upd.order_id)
    order = found._asdict() if found is not None else None
    stale = order is not None and (STAGE[upd.status] < STAGE[order["status"]] or (
        STAGE[order["status"]] == 3 and upd.status != order["status"]))
    # the (order, status) event first: its unique key is what makes a repeated webhook a no-op
    if not await store.record_event(s, upd.order_id, upd.status, source, now, applied=not stale):
        return OrderResult("duplicate", upd.order_id, order["status"] if order else upd.status)
    if stale:
        return OrderResult("stale", upd.order_id, order["status"])  # type: ignore[index]
    is_new = order is None
    if order is None:
        if not upd.member_id and not upd.external_member_id:
            raise OrderFieldError("member_id", "is required for a new order (or external_member_id)")
        if upd.amount_cents is None:
            raise OrderFieldError("amount", "is required for a new order")
        order = {c: None for c in store.UPDATABLE} | {"id": upd.order_id, "created_at": now}
    for name in ("external_member_id", "items", "amount_cents", "pay_by", "pickup_by", "group_buy_id", "room_id",
                 "tracking"):
        value = getattr(upd, name)
        if value is not None:
            order[name] = list(value) if name == "items" else value
    if upd.member_id:
        order["member_id"] = upd.member_id
    elif order["member_id"] is None and order["external_member_id"]:
        order["member_id"] = await store.bound_wechat_id(s, order["external_member_id"])
    order["status"], order["updated_at"] = upd.status, now
    if is_new:
        await store.insert_order(s, order)
    else:
        await store.update_order(s, upd.order_id, order)
    if upd.group_buy_id and upd.cutoff_at is not None:
        await _group_buy(services, s, upd.group_buy_id, upd.cutoff_at, now)
    await _plan_reminders(services, s, upd.order_id, order, now, new=is_new)
    services.activity.record("order", member_id=order["member_id"], room_id=order["room_id"], skill="orders",
                             detail={"order_id": upd.order_id, "status": upd.status,
                                     "amount": _yuan(order["amount_cents"]), "group_buy": order["group_buy_id"]})
    return OrderResult("applied", upd.order_id, upd.status)


async def _plan_reminders(services: Services, s: AsyncSession, order_id: str, order: dict, now: datetime,
                          new: bool) -> None:
    cfg = _settings(services)
    scheduler = services.scheduler
    status = order["status"]
    wanted = APPLIES.get(status, ())
    if not new:  # a new order has no reminders to cancel yet
        await scheduler.cancel_many([f"order:{order_id}:{kind}" for kind in ORDER_REMINDERS if kind not in wanted], s)

    async def at(kind: str, when: datetime) -> None:
        await scheduler.schedule(f"order:{order_id}:{kind}", "orders.remind", at=max(when, now), session=s,
                                 payload={"order_id": order_id, "reminder": kind},
                                 misfire_grace_s=cfg.misfire_grace_s)

    pay_by, pickup_by = order["pay_by"], order["pickup_by"]
    if status == "created" and pay_by is not None and pay_by > now:
        await at("unpaid", pay_by - timedelta(seconds=cfg.unpaid_before_s))
    elif status == "shipped":
        await at("shipped", now)
    elif status == "ready_for_pickup":
        await at("pickup_ready", now)
        if pickup_by is not None and pickup_by - timedelta(seconds=cfg.pickup_before_s) > now:
            await at("pickup_due", pickup_by - timedelta(seconds=cfg.pickup_before_s))


async def _group_buy(services: Services, s: AsyncSession, gb_id: str, cutoff: datetime, now: datetime) -> None:
    gb = await store.group_buy(s, gb_id)
    if gb is not None and gb.cutoff_at == cutoff:
        return  # known, same cut-off: its reminder is planned already
    if gb is None:
        await store.add_group_buy(s, gb_id, cutoff)
    else:
        await store.move_group_buy_cutoff(s, gb_id, cutoff)
    when = cutoff - timedelta(seconds=_settings(services).cutoff_before_s)
    key = f"groupbuy:{gb_id}:cutoff"
    if when < now:  # "还有1小时截单" would be wrong by now
        await services.scheduler.cancel_many([key], s)
        return
    await services.scheduler.schedule(key, "orders.cutoff", at=when, session=s,
                                      payload={"group_buy_id": gb_id, "cutoff_at": cutoff.isoformat()},
                                      misfire_grace_s=_settings(services).cutoff_before_s // 2)


@dataclass(frozen=True)
class Binding:
    member_id: str  # the member the shop's id now names (the WeChat id's)
    orders: int  # waiting orders that got the WeChat id
    merged_from: str | None  # the member the shop's id named before, merged into member_id (None: no merge)
    merged: identity.Merged | None


async def bind_shop_member(services: Services, external_id: str, wechat_id: str) -> Binding:
    """``orders bind``: the shop's member id names the WeChat id's member; orders waiting for it get the WeChat id.
    If it named another member before (a wallet of its own), that member's ids and points move to the WeChat id's
    member through ``identity.merge`` (like /绑定会员): in this one transaction, balances equal to the ledger,
    exactly once (binding again moves nothing)."""
    async with services.sessions() as s, s.begin():
        now = services.clock.now()
        member = await identity.resolve(s, "wechat", wechat_id) or wechat_id
        before = await identity.resolve(s, "shop", external_id)
        merged = None
        if before is not None and before != member:
            merged = await identity.merge(s, before, member, now)
        orders = await store.bind_member(s, external_id, wechat_id, now, member_id=member)
    return Binding(member, orders, before if merged else None, merged)


async def bind_member(services: Services, external_id: str, wechat_id: str) -> int:
    """``bind_shop_member``; how many waiting orders got the WeChat id."""
    return (await bind_shop_member(services, external_id, wechat_id)).orders


# -- reminders ------------------------------------------------------------------------------------------------------

def _items(order: Order | Row) -> str:
    items = order.items or []
    text = "、".join(items[:3]) + (f" 等{len(items)}件" if len(items) > 3 else "")
    return text or "你的订单"


def reminder_text(services: Services, order: Order | Row, kind: str) -> str:
    def local(at: datetime | None) -> str:
        if at is None:
            return ""
        t = services.clock.local(at)
        return zh_datetime(t)

    if kind == "unpaid":
        return (f"【订单提醒】订单 {order.id}（{_items(order)}，¥{_yuan(order.amount_cents):.2f}）还没有付款，"
                f"请在 {local(order.pay_by)} 前完成支付，超时订单会自动取消哦～")
    if kind == "pickup_ready":
        by = f"，请在 {local(order.pickup_by)} 前取走" if order.pickup_by else ""
        return f"【到货提醒】订单 {order.id}（{_items(order)}）已到自提点{by}，取货时出示订单号即可～"
    if kind == "pickup_due":
        return f"【自提提醒】订单 {order.id}（{_items(order)}）还没有取，自提截止时间是 {local(order.pickup_by)}，别忘啦～"
    tracking = f"，物流信息：{order.tracking}" if order.tracking else ""
    return f"【发货提醒】订单 {order.id}（{_items(order)}）已发货{tracking}。收到后有任何问题随时找我～"


STILL_APPLIES = {"unpaid": "created", "pickup_ready": "ready_for_pickup", "pickup_due": "ready_for_pickup",
                 "shipped": "shipped"}


def _record_reminder(services: Services, detail: dict, member_id: str | None = None,
                     room_id: str | None = None) -> None:
    services.activity.record("reminder", member_id=member_id, room_id=room_id, skill="orders", detail=detail)


def _send_after_commit(ctx: Context, message: OutgoingMessage, detail: dict) -> None:
    """Send a reminder once the job's claim commits: ``ctx.send`` from the job commits the message with the claim
    (the outbox) and hands it to the governor after the commit."""
    services = ctx.services
    future = ctx.send(message, priority=Priority.TRANSACTIONAL, kind=ProactiveKind.TRANSACTIONAL)

    def done(f: asyncio.Future) -> None:
        outcome = f.result() if not f.cancelled() else None
        result = dict(detail)
        if outcome is not None and outcome.sent:
            result["outcome"] = "sent"
        else:
            result["outcome"], result["reason"] = "dropped", outcome.reason if outcome else "cancelled"
        _record_reminder(services, result, message.user_id, message.room_id)

    future.add_done_callback(done)


@skill.job("remind")
async def remind(ctx: Context) -> None:
    order_id, kind = ctx.payload["order_id"], ctx.payload["reminder"]
    s = ctx.session
    order = await store.get_order(s, order_id)
    detail = {"order_id": order_id, "reminder": kind}
    if order is None or order.status != STILL_APPLIES[kind]:
        _record_reminder(ctx.services, {**detail, "outcome": "skipped"}, order.member_id if order else None)
        return
    if order.member_id is None:
        log.info("reminder %s for order %s: no WeChat id bound to member %s", kind, order_id,
                 order.external_member_id)
        _record_reminder(ctx.services, {**detail, "outcome": "unbound"})
        return
    if not await store.claim_reminder(s, order_id, kind, f"user:{order.member_id}", ctx.now):
        return  # decided before: at most once
    _send_after_commit(ctx, OutgoingMessage(reminder_text(ctx.services, order, kind), user_id=order.member_id),
                       detail)


@skill.job("cutoff")
async def cutoff(ctx: Context) -> None:
    gb_id = ctx.payload["group_buy_id"]
    s = ctx.session
    gb = await store.group_buy(s, gb_id)
    if gb is None or gb.cutoff_at is None or gb.cutoff_at != datetime.fromisoformat(ctx.payload["cutoff_at"]):
        return  # the cut-off moved: its own job carries the new time
    rows = await store.group_buy_buyers(s, gb_id)
    rooms = {r.room_id for r in rows if r.room_id}
    members = {r.member_id for r in rows if r.member_id}
    if members and not rooms:  # orders without a room: the group buy's rooms are where its buyers are
        rooms = await store.active_rooms_of(s, members)
    t = ctx.services.clock.local(gb.cutoff_at)
    text = f"⏰ 团购「{gb_id}」还有1小时截单（{t:%H:%M} 截止），还没下单的朋友抓紧啦～"
    for room_id in sorted(rooms):
        if await store.claim_reminder(s, gb_id, "gb_cutoff", f"room:{room_id}", ctx.now):
            _send_after_commit(ctx, OutgoingMessage(text, room_id=room_id),
                               {"order_id": None, "group_buy": gb_id, "reminder": "gb_cutoff"})


# -- members ask ----------------------------------------------------------------------------------------------------

@skill.command("orders", aliases=("订单", "我的订单"), keywords=("我的订单", "查订单"), usage="/orders",
               help="查看我还没完成的订单")
async def my_orders(ctx: Context) -> None:
    if ctx.room_id is not None:
        ctx.reply("订单信息比较私密，请私聊我发送「我的订单」查看～")
        return
    orders = await store.open_orders(ctx.session, ctx.sender.id)
    if not orders:
        ctx.reply("你目前没有进行中的订单～")
        return
    lines = ["你进行中的订单："]
    for o in orders:
        extra = ""
        if o.status == "created" and o.pay_by:
            t = ctx.services.clock.local(o.pay_by)
            extra = f"，请在 {zh_datetime(t)} 前付款"
        elif o.status == "ready_for_pickup" and o.pickup_by:
            t = ctx.services.clock.local(o.pickup_by)
            extra = f"，{zh_datetime(t)} 前自提"
        elif o.status == "shipped" and o.tracking:
            extra = f"，物流：{o.tracking}"
        lines.append(f"· {o.id} {_items(o)} ¥{_yuan(o.amount_cents):.2f} {STATUS_ZH[o.status]}{extra}")
    ctx.reply("\n".join(lines))


# -- operators link identities -------------------------------------------------------------------------------------

@skill.command("member bind", aliases=("绑定会员", "会员 绑定"),
               usage="/绑定会员 客户ID（企业微信 external_userid 或 unionid） 会员号",
               help="把企业微信客户和商城会员认作同一个人（积分合并到一个钱包）", scope="global")
async def member_bind(ctx: Context) -> None:
    """A global admin says a WeCom customer and a shop member are one person: the shop's member id then names the
    customer's member; if both already are members of their own, the customer's ids and points move to the shop
    member (storage/identity.py ``merge``: through the ledger, in this one transaction, exactly once)."""
    if len(ctx.args) != 2:
        raise UsageError("请写客户ID和会员号。")
    try:
        shop_id, customer_id = parse_binding(ctx.args[1], ctx.args[0])
    except FieldError as exc:
        raise UsageError(f"ID 写法不对（{exc}）。") from None
    session = ctx.session
    customer = (await identity.resolve(session, "external_userid", customer_id)
                or await identity.resolve(session, "unionid", customer_id))
    if customer is None:
        ctx.reply(f"没有找到客户「{customer_id}」：请用企业微信客户的 external_userid 或 unionid"
                  "（客户添加员工、或在微信客服留言后才有记录）。")
        return
    member = await identity.resolve(session, "shop", shop_id)
    if member == customer:
        ctx.reply(f"客户「{customer_id}」和会员号 {shop_id} 已经是同一位会员，无需再绑定。")
        return
    if member is None:
        orders = await store.bind_member(session, shop_id, customer, ctx.now)
        ctx.record("member_bind", {"shop": shop_id, "member": customer, "merged": None, "orders": orders})
        ctx.reply(f"已绑定：会员号 {shop_id} → 客户「{customer_id}」" + (f"，{orders} 个订单已关联。" if orders else "。"))
        return
    merged = await identity.merge(session, customer, member, ctx.now, actor_id=ctx.sender.id)
    ctx.record("member_bind", {"shop": shop_id, "member": member, "merged": customer, "points": merged.moved})
    ctx.reply(f"已合并：客户「{customer_id}」和会员号 {shop_id} 是同一位会员，共用一个积分账户"
              f"（转入 {merged.moved} 积分，现有 {merged.balance} 积分）。")


from skills.orders import api, cli  # noqa: E402,F401  (their routes and subcommands register on `skill`)


from skills.orders import privacy  # noqa: E402  (what the skill keeps about a member: /我的数据, /删除我的数据)

skill.member_data(privacy)
