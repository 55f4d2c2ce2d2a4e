"""What the lottery says in the group: start, draw, cancellation, the entrant list. Pure: rows in, text out."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from bot.context import with_mentions
from bot.events import OutgoingMessage, Person
from skills.lottery.store import Entrant
from skills.tiers.store import TIER_NAMES

PAGE = 30  # entrants per message: a screenful on a phone
MAX_NAME = 20  # characters of a display name in the list

Local = Callable[[datetime], str]  # an instant as the group reads it ("11月23日 09:30")


def start_text(lot, local: Local) -> str:
    cost = f"，参与一次扣 {lot.cost} 积分（取消则退还）" if lot.cost else ""
    if lot.min_tier:
        cost += f"；仅限「{TIER_NAMES[lot.min_tier]}」及以上等级的会员"
    return (f"🎁 抽奖 #{lot.id} 开始啦！\n"
            f"奖品：{lot.prize}（{lot.winners} 名）\n"
            f"参与方式：在群里发送「{lot.keyword}」{cost}，每人一次，管理员不参与。\n"
            f"开奖时间：{local(lot.deadline)}（到点自动开奖，不会提前）\n"
            f"公平承诺：本次随机种子的 SHA-256 是 {lot.commitment}\n"
            f"开奖时公布种子和参与名单的 SHA-256：用 /lottery entrants {lot.id} 查看名单，"
            f"用 /lottery verify {lot.id} 验证结果。")


def shown_name(e: Entrant) -> str:
    """The display name for lists: never the WeChat id (stored as the name when the platform gave none)."""
    name = " ".join(e.name.split()) if e.name != e.member_id else ""
    if len(name) > MAX_NAME:
        name = name[:MAX_NAME - 1] + "…"
    return name or "（未显示昵称）"


def ticket_label(e: Entrant) -> str:
    return f"{shown_name(e)}（{e.alias}）" if e.alias else shown_name(e)


@dataclass(frozen=True)
class DrawResult:
    lottery_id: int
    room_id: str
    prize: str
    winners_wanted: int
    seed: str
    commitment: str
    entrants: list[Entrant]
    winners: list[str]  # member ids, in draw order
    entrants_hash: str | None  # None: a legacy lottery (no published list)


def draw_message(r: DrawResult) -> OutgoingMessage:
    by_id = {e.member_id: e for e in r.entrants}
    if r.entrants_hash is None:  # legacy: drawn over the sorted WeChat ids
        method = "把参与者 id 排序"
        listed = ""
    else:
        method = "把参与编号排序"
        listed = (f"参与名单（{len(r.entrants)} 人）的 SHA-256：{r.entrants_hash}，"
                  f"名单见 /lottery entrants {r.lottery_id}\n")
    proof = (f"随机种子：{r.seed}\n{listed}"
             f"验证方法：SHA-256(种子) 应等于开始时公布的承诺 {r.commitment}；{method}，"
             f"第 i 位（从 0 数）取 SHA-256(种子:i) 对剩余人数取余选出。发送 /lottery verify {r.lottery_id} 即可复算。")
    if not r.winners:
        return OutgoingMessage(f"抽奖 #{r.lottery_id}「{r.prize}」已截止，可惜没有人参与，本次没有中奖者。\n{proof}",
                               room_id=r.room_id)
    people = [Person(w, by_id[w].name if w in by_id else w) for w in r.winners]
    everyone = "参与人数不足，全部中奖！" if len(r.entrants) <= r.winners_wanted else ""
    body = (f"恭喜中奖🎉 抽奖 #{r.lottery_id}「{r.prize}」开奖啦！共 {len(r.entrants)} 人参与，"
            f"抽出 {len(r.winners)} 名。{everyone}\n"
            f"中奖名单：{'、'.join(ticket_label(by_id[w]) if w in by_id else w for w in r.winners)}\n{proof}")
    return OutgoingMessage(with_mentions(people, body), room_id=r.room_id, mentions=tuple(r.winners))


@dataclass(frozen=True)
class Cancelled:
    lottery_id: int
    room_id: str
    prize: str
    deadline: datetime
    cost: int
    refunded: int
    seed: str | None  # revealed; None when it can't be derived (the key is missing or changed)
    entrants_hash: str | None
    entrants: int


def cancel_text(c: Cancelled, *, missed: str | None = None) -> str:
    """``missed``: the bot was down past the draw (how long ago the deadline was)."""
    if missed:
        head = (f"抽奖 #{c.lottery_id}「{c.prize}」原定的开奖时间已过去 {missed}（机器人停机，错过了开奖），"
                f"为公平起见本次抽奖取消，不再开奖。")
    else:
        head = f"抽奖 #{c.lottery_id}「{c.prize}」已取消，不再开奖。"
    refund = f"已给 {c.refunded} 位参与者退还 {c.cost} 积分。" if c.refunded else ""
    if c.seed is None:
        proof = "\n本次的随机种子无法公开（服务器的抽奖密钥缺失或已更换）。"
    else:
        listed = f"，取消时 {c.entrants} 人参与，名单 SHA-256：{c.entrants_hash}" if c.entrants_hash else ""
        proof = f"\n公开随机种子：{c.seed}{listed}。可用 /lottery verify {c.lottery_id} 核对。"
    return head + refund + proof


def entrants_page(lot, entrants: list[Entrant], page: int) -> str:
    """One page of the published list: aliases in the order the draw sorts them, with display names."""
    if lot.nonce is None:
        return (f"抽奖 #{lot.id} 是升级前发起的，按旧规则开奖（参与者按微信 id 排序），没有公开名单；"
                f"共 {len(entrants)} 人参与。")
    if not entrants:
        return f"抽奖 #{lot.id}「{lot.prize}」还没有人参与。"
    listed = sorted(entrants, key=lambda e: e.alias or "")
    pages = (len(listed) + PAGE - 1) // PAGE
    page = min(page, pages)
    lines = [f"{e.alias} {shown_name(e)}" for e in listed[(page - 1) * PAGE:page * PAGE]]
    if lot.entrants_hash:
        digest = f"名单的 SHA-256（编号排序、每行一个、换行分隔）：{lot.entrants_hash}"
    else:
        digest = "名单的 SHA-256 在开奖时公布。"
    more = f"\n下一页：/lottery entrants {lot.id} {page + 1}" if page < pages else ""
    return (f"抽奖 #{lot.id}「{lot.prize}」参与名单：共 {len(listed)} 人，按编号排序，第 {page}/{pages} 页\n"
            + "\n".join(lines) + f"\n{digest}{more}")
