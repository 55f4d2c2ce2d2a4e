"""A skill whose ``erase`` fails after the other skills' have run: the whole erasure must be undone."""

from __future__ import annotations

from bot.skill import Skill

skill = Skill("broken_privacy", "测试用")


@skill.member_data  # the decorator form: a class with both as static methods
class _Data:
    @staticmethod
    async def export(session, member_id: str) -> dict[str, object]:
        return {"测试数据": "1 条"}

    @staticmethod
    async def erase(session, member_id: str, pseudonym: str) -> int:
        raise RuntimeError("the disk is full (test)")
