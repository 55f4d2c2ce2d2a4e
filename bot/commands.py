"""The command router: finds the command a message names, checks permission once, runs it, records the outcome.

This is the only place that checks permissions. Admins are stable WeChat ids from config (global and per room),
never display names.
"""

from __future__ import annotations

import difflib
import logging

from bot.context import Context
from bot.events import MessageReceived
from bot.parser import MAX_COMMAND_TEXT, normalize, parse_stripped, strip_mentions
from bot.skill import CommandSpec, Skill, UsageError

log = logging.getLogger(__name__)

REFUSED = "抱歉，这个命令只有管理员可以使用。"
ONLY_GLOBAL = "这个命令会影响所有群，只有总管理员可以使用。"  # to a room's admin trying a "global" command
ONLY_ROOM = "这个命令需要在群里使用哦。"
ONLY_DIRECT = "这个命令请私聊我使用哦。"
FAILED = "抱歉，处理时出了点问题，请稍后再试。"
MAX_LOGGED_ARGS = 200


class CommandRouter:
    def __init__(self) -> None:
        self._by_name: dict[str, CommandSpec] = {}
        self._by_keyword: dict[str, CommandSpec] = {}
        self.specs: list[CommandSpec] = []
        builtin = Skill("core", "基础")
        builtin.command("help", aliases=("帮助", "菜单"), keywords=("帮助",), usage="/help [命令]",
                        help="查看我能做什么")(self._help)
        self.add_skill(builtin)

    def add_skill(self, skill: Skill) -> None:
        for spec in skill.commands:
            self.specs.append(spec)
            for name in (spec.name, *spec.aliases):
                key = normalize(name).lower()
                if key in self._by_name:
                    raise ValueError(f"command {name!r} of skill {skill.name} is already taken by "
                                     f"{self._by_name[key].skill}")
                self._by_name[key] = spec
            for word in spec.keywords:
                key = normalize(word).lower()
                if key in self._by_keyword:
                    raise ValueError(f"keyword {word!r} of skill {skill.name} is already taken")
                self._by_keyword[key] = spec

    def lookup(self, words: list[str]) -> tuple[CommandSpec, int] | None:
        """Longest match first, so "lottery start" wins over "lottery"."""
        for n in (3, 2, 1):
            if len(words) >= n:
                spec = self._by_name.get(" ".join(words[:n]).lower())
                if spec is not None:
                    return spec, n
        return None

    async def handle(self, ctx: Context) -> bool:
        """Run the command in the message, if any. True when the message was a command (handled or refused)."""
        event = ctx.event
        assert isinstance(event, MessageReceived)
        text = event.text
        body, mentions = strip_mentions(text) if text and len(text) <= MAX_COMMAND_TEXT else ("", ())
        parsed = parse_stripped(body, mentions) if body else None
        if parsed is not None:
            words = [parsed.name, *parsed.args]
            found = self.lookup(words)
            if found is None:
                await self._unknown(ctx, parsed.name)
                return True
            spec, used = found
            args = tuple(words[used:])
        else:
            spec = self._by_keyword.get(body.lower()) if len(body) <= 64 else None
            if spec is None:
                return False
            args = ()
        ctx.command, ctx.spec, ctx.args = parsed, spec, args
        ctx.skill = spec.skill
        ctx.addressed = True
        await self._run(ctx, spec)
        return True

    async def _run(self, ctx: Context, spec: CommandSpec) -> None:
        event = ctx.event
        detail = {"command": spec.name, "args": " ".join(ctx.args)[:MAX_LOGGED_ARGS]}
        if not self._may_use(ctx, spec):
            room_admin = spec.scope == "global" and ctx.is_admin
            ctx.record("refused", {**detail, "reason": "not_global_admin" if room_admin else "not_admin"})
            ctx.reply(ONLY_GLOBAL if room_admin else REFUSED)
            return
        if spec.where == "room" and event.room_id is None:
            ctx.record("command", {**detail, "outcome": "wrong_place"})
            ctx.reply(ONLY_ROOM)
            return
        if spec.where == "direct" and event.room_id is not None:
            ctx.record("command", {**detail, "outcome": "wrong_place"})
            ctx.reply(ONLY_DIRECT)
            return
        try:
            await spec.handler(ctx)
        except UsageError as exc:
            ctx.record("command", {**detail, "outcome": "usage"})
            text = str(exc) or "参数不太对哦。"
            ctx.reply(f"{text}\n用法：{spec.usage}" if spec.usage else text)
            return
        except Exception:
            ctx.record("command", {**detail, "outcome": "error"})
            ctx.reply(FAILED)
            raise  # the dispatcher rolls the session back and reports to the error hook
        ctx.record("command", {**detail, "outcome": "ok"})

    async def _unknown(self, ctx: Context, name: str) -> None:
        ctx.addressed = True
        ctx.record("command", {"command": name[:64], "outcome": "unknown"})
        visible = sorted({n for n, s in self._by_name.items() if self._may_use(ctx, s) and not s.hidden})
        close = difflib.get_close_matches(name.lower(), visible, n=1, cutoff=0.6)
        hint = f"你是想用 /{close[0]} 吗？" if close else ""
        ctx.reply(f"没有 /{name[:20]} 这个命令。{hint}发送 /help 查看可用命令。")

    @staticmethod
    def _may_use(ctx: Context, spec: CommandSpec) -> bool:
        """The command's scope decides: anyone, this room's admins (and global ones), or global admins only."""
        if spec.scope == "member":
            return True
        if spec.scope == "global":
            return ctx.is_global_admin
        return ctx.is_admin

    async def _help(self, ctx: Context) -> None:
        mine = [s for s in self.specs if not s.hidden and self._may_use(ctx, s)]
        if ctx.args:
            found = self.lookup(list(ctx.args))
            if found is None or not self._may_use(ctx, found[0]):
                raise UsageError(f"没有找到命令 {' '.join(ctx.args)[:20]}。")
            spec = found[0]
            lines = [f"/{spec.name}：{spec.help}"]
            if spec.usage:
                lines.append(f"用法：{spec.usage}")
            if spec.aliases:
                lines.append("也可以用：" + "、".join(f"/{a}" for a in spec.aliases))
            if spec.keywords:
                lines.append("或直接发送：" + "、".join(spec.keywords))
            ctx.reply("\n".join(lines))
            return
        lines = ["我可以帮你："]
        for spec in mine:
            names = "/" + spec.name + "".join(f" /{a}" for a in spec.aliases[:1])
            mark = "（总管理员）" if spec.scope == "global" else "（管理员）" if spec.admin_only else ""
            lines.append(f"{names} {spec.help}{mark}")
        lines.append("发送 /help 命令名 查看详细用法。")
        if ctx.is_admin:  # what the connected account can do, so admins don't ask for what it can't
            lines.append(ctx.capabilities.summary_zh())
        ctx.reply("\n".join(lines))
