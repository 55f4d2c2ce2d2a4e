"""Checking a lottery from what was published: the revealed seed against the commitment, the entrant list against
its announced SHA-256, and the winners redone by the procedure of skills/lottery/draw.py. In the group
(``/lottery verify``) and on the server (``python -m bot lottery verify``)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, TextIO

from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Config
from skills.lottery import store
from skills.lottery.draw import commitment, draw_winners, entrants_digest
from skills.lottery.store import Entrant
from skills.lottery.texts import ticket_label


@dataclass(frozen=True)
class Verification:
    lottery: Any  # the stored row
    entrants: list[Entrant]
    recomputed: list[str]  # member ids: the winners (drawn) or who would have won (cancelled); [] while open
    commitment_ok: bool
    entrants_hash: str | None  # recomputed from the stored aliases; None for a legacy lottery

    @property
    def legacy(self) -> bool:
        return self.lottery.nonce is None

    @property
    def revealed(self) -> bool:
        return self.lottery.status != "open" and self.lottery.seed is not None

    @property
    def entrants_ok(self) -> bool:
        return self.legacy or self.entrants_hash == self.lottery.entrants_hash

    @property
    def winners_ok(self) -> bool:
        return self.recomputed == list(self.lottery.winner_ids or [])

    @property
    def ok(self) -> bool:
        """Everything published checks out (a cancelled lottery: its seed and list; it has no winners)."""
        if not self.revealed or not (self.commitment_ok and self.entrants_ok):
            return False
        return self.lottery.status == "cancelled" or self.winners_ok


async def verify(session: AsyncSession, lottery_id: int) -> Verification | None:
    lot = await store.lottery(session, lottery_id)
    if lot is None:
        return None
    entrants = await store.entrants(session, lottery_id)
    legacy = lot.nonce is None
    tickets = {(e.member_id if legacy else e.alias): e.member_id for e in entrants
               if legacy or e.alias is not None}
    digest = None if legacy else entrants_digest(tickets)
    if lot.status == "open" or lot.seed is None:
        return Verification(lot, entrants, [], False, digest)
    recomputed = [tickets[t] for t in draw_winners(lot.seed, tickets, lot.winners)]
    return Verification(lot, entrants, recomputed, commitment(lot.seed) == lot.commitment, digest)


def verify_text(v: Verification) -> str:
    lot = v.lottery
    if lot.status == "open":
        return (f"抽奖 #{lot.id} 还没开奖，种子保密中。承诺（SHA-256）：{lot.commitment}，"
                f"开奖后再来验证吧。")
    if not v.revealed:
        return f"抽奖 #{lot.id} 已取消，种子无法公开（服务器的抽奖密钥缺失或已更换），无法验证。"
    yes, no = "✅", "❌"
    by_id = {e.member_id: e for e in v.entrants}
    shown = "、".join(ticket_label(by_id[w]) for w in v.recomputed) or "（无人参与）"
    lines = [f"抽奖 #{lot.id}「{lot.prize}」验证：", f"种子：{lot.seed}",
             f"SHA-256(种子) 与开始时的承诺{'一致' + yes if v.commitment_ok else '不一致' + no}"]
    if not v.legacy:
        when = "开奖" if lot.status == "drawn" else "取消"
        lines.append(f"参与名单 {len(v.entrants)} 人，SHA-256 {v.entrants_hash}，"
                     f"{'与' + when + '时公布的一致' + yes if v.entrants_ok else '与' + when + '时公布的不一致' + no}")
    if lot.status == "cancelled":
        lines.append(f"本次已取消，没有开奖；按取消时的 {len(v.entrants)} 位参与者复算，本会中奖：{shown}")
        lines.append(f"结论：{'种子和名单都与公布的一致。' if v.ok else '验证未通过！请联系管理员。'}")
        return "\n".join(lines)
    lines.append(f"按公开规则用 {len(v.entrants)} 位参与者复算，中奖：{shown}，"
                 f"{'与公布结果一致' + yes if v.winners_ok else '与公布结果不一致' + no}")
    lines.append(f"结论：{'验证通过，结果公平可查。' if v.ok else '验证未通过！请联系管理员。'}")
    return "\n".join(lines)


async def verify_cli(config: Config, db_url: str | None, lottery_id: int, out: TextIO = sys.stdout) -> int:
    """``python -m bot lottery verify ID``: 0 when what was published checks out, 1 when it does not, 2 when it
    can't tell (unknown, still open, or cancelled without its seed)."""
    from storage.db import create_engine, session_factory

    engine = create_engine(db_url or config.storage.url)
    try:
        async with session_factory(engine)() as session:
            v = await verify(session, lottery_id)
    except (OperationalError, ProgrammingError) as exc:  # no such table: not a bot database, or never migrated
        print(f"cannot read lotteries from the database: {exc.orig}", file=sys.stderr)
        return 2
    finally:
        await engine.dispose()
    if v is None:
        print(f"lottery {lottery_id}: not found", file=sys.stderr)
        return 2
    lot = v.lottery
    print(f"lottery #{lot.id} in room {lot.room_id}: {lot.status}{' (legacy procedure)' if v.legacy else ''}",
          file=out)
    print(f"prize: {lot.prize}", file=out)
    print(f"commitment: {lot.commitment}", file=out)
    if lot.status == "open":
        print("not drawn: the seed stays secret, nothing to verify", file=out)
        return 2
    if not v.revealed:
        print("cancelled without its seed (the key was missing or changed): nothing to verify", file=out)
        return 2
    print(f"seed: {lot.seed}", file=out)
    print(f"sha256(seed) == commitment: {'yes' if v.commitment_ok else 'NO'}", file=out)
    if v.legacy:
        print(f"entrants ({len(v.entrants)}, sorted ids): {' '.join(e.member_id for e in v.entrants)}", file=out)
    else:
        aliases = sorted(e.alias for e in v.entrants if e.alias)
        print(f"entrants ({len(aliases)}, sorted aliases): {' '.join(aliases)}", file=out)
        print(f"sha256(entrants): {v.entrants_hash}", file=out)
        print(f"sha256(entrants) == announced: {'yes' if v.entrants_ok else 'NO'} ({lot.entrants_hash})", file=out)
    if lot.status == "cancelled":
        print(f"cancelled; would have won: {' '.join(v.recomputed)}", file=out)
    else:
        print(f"winners announced:  {' '.join(lot.winner_ids or [])}", file=out)
        print(f"winners recomputed: {' '.join(v.recomputed)}", file=out)
    print(f"result: {'MATCH' if v.ok else 'MISMATCH'}", file=out)
    return 0 if v.ok else 1
