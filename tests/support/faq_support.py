"""Shared pieces for the FAQ tests: a small knowledge base on disk and a bot configured to read it."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from storage.models import Activity
from tests.support import make_config

M = "\u2005"

SHIPPING = """# 物流

## 下单后多久发货？
相似问法：什么时候发货；几天能发货
标签：物流
编号：ship-when

工作日 16:00 前付款当天发出。

## 怎么查物流？
相似问法：我的快递到哪了；快递单号在哪看
编号：ship-track

在「我的订单」里看快递单号。
"""

RETURNS_CSV = """编号,问题,相似问法,答案
return-policy,可以退货吗？,七天无理由退货；怎么申请退货,支持 7 天无理由退货。
refund-eta,退款多久到账？,钱什么时候退回来,验收后 1 个工作日内原路退款。
invoice,可以开发票吗？,怎么开发票,订单完成后在「我的订单」里申请开票。
"""


def write_kb(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "物流.md").write_text(SHIPPING, encoding="utf-8")
    (folder / "售后.csv").write_text(RETURNS_CSV, encoding="utf-8")
    (folder / "synonyms.txt").write_text("快递=物流\n", encoding="utf-8")
    (folder / "userdict.txt").write_text("提货码 10 n\n", encoding="utf-8")
    return folder


def faq_config(folder: Path, **faq):
    return make_config({
        "bot": {"admins": ["admin1"], "skills": ["ping", "faq"], "operators": ["op1"]},
        "governor": {"min_interval_s": 1.0, "jitter_s": 0.0, "chat_switch_interval_s": 1.0, "warmup_s": 0.0},
        "skills": {"faq": {"knowledge_dir": str(folder), **faq}},
    })


async def activity(h, kind: str) -> list[dict]:
    await h.app.activity.flush()
    async with h.app.services.sessions() as s:
        rows = (await s.execute(select(Activity).where(Activity.kind == kind).order_by(Activity.id))).scalars()
        return [r.detail for r in rows]
