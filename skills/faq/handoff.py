"""The FAQ's handoff to people (人工接管): tickets, the operators' /reply and /close, the re-notification job.

Why inside the FAQ skill and not a skill of its own: a ticket exists only because the FAQ could not answer, and
"stay quiet while a person has it" is a step of the FAQ's own decision (answer, choice, handoff); a separate skill
would need a way for one skill to call another, which the core does not offer (a skill imports no other skill).

- A handoff opens a ticket and tells the operators (``bot.operators`` 1-on-1, ``bot.operators_room``) with its
  number, the member, where, the question and the chat's last lines. Without operators there is no ticket and no
  promise: the member is told the bot can't answer and pointed to /help or the group's admin.
- While the member's ticket in that chat is open (or answered within ``follow_up_window``), every question of
  theirs there that the FAQ would not answer outright is added to the ticket and told to the operators: no
  second handoff, no guess.
- ``/reply 12 文字`` (or ``#12 文字`` in the operators' room) answers the member through the bot, where they asked
  (1-on-1, or in the room with an @); ``/close 12`` closes it; ``/tickets`` lists the waiting ones.
- Who: global admins (``bot.admins``), the configured operators, and anyone in the operators' room (configured
  as a room of staff). The router's scope is "member" (operators are not admins); the handler checks. The
  commands are hidden from /help (members would only be refused); the operators' notes say how to answer.
- A ticket still waiting after ``renotify_after`` is told once more (the ``faq.renotify`` job).
"""

from __future__ import annotations

import re
from datetime import timedelta

from bot.context import Context, with_mentions
from bot.events import MessageReceived, OutgoingMessage, Person, Priority, ProactiveKind
from bot.parser import strip_mentions
from bot.skill import UsageError
from skills.faq import skill, store
from skills.faq.models import Ticket


MAX_REPLY = 1500  # characters of an operator's reply relayed to a member
REFUSED = "只有运营同学（bot.operators）和总管理员可以处理人工接管的问题。"
_OPERATORS_ROOM_REPLY = re.compile(r"^#\s*(\d{1,12})\s+(.+)$", re.DOTALL)
# the reply as the operator typed it (the parsed command collapses spaces and makes ：ASCII): what follows the number
_VERBATIM_AFTER_NUMBER = re.compile(r"[#＃]?\s*\d{1,12}[\s\u2005]+(.*)$", re.DOTALL)
_REPLY_WORD = re.compile(r"[/／]\s*(?:reply|回复)", re.IGNORECASE)


def verbatim_reply(raw: str, fallback: str) -> str:
    """The text after the ticket number in the message as sent (line breaks and full-width punctuation kept)."""
    word = _REPLY_WORD.search(raw)
    m = _VERBATIM_AFTER_NUMBER.search(raw, word.end() if word else 0)
    return m.group(1).strip() if m and m.group(1).strip() else fallback


def operators(ctx: Context) -> tuple[str, ...]:
    """``bot.operators``, plus the deprecated ``[skills.faq] operators`` while configs still have it."""
    legacy = skill.settings_of(ctx).operators
    return tuple(dict.fromkeys((*ctx.config.bot.operators, *legacy)))


def has_operators(ctx: Context) -> bool:
    return ctx.has_operators or bool(skill.settings_of(ctx).operators)


def notify(ctx: Context, text: str) -> bool:
    """Tell every operator (durable, committed with the ticket); False when nobody is configured."""
    told = ctx.notify_operators(text)
    for person in skill.settings_of(ctx).operators:
        if person not in ctx.config.bot.operators:
            ctx.send(OutgoingMessage(text, user_id=person), priority=Priority.TRANSACTIONAL,
                     kind=ProactiveKind.TRANSACTIONAL)
            told = True
    return told


def may_handle(ctx: Context) -> bool:
    sender = ctx.sender
    if sender is None:
        return False
    room = ctx.config.bot.operators_room
    return ctx.is_global_admin or sender.id in operators(ctx) or bool(room and ctx.room_id == room)


def _where(ticket: Ticket) -> str:
    return f"群「{ticket.room_topic or ticket.room_id}」" if ticket.room_id else "私聊"


def _how_to_answer(ctx: Context, ticket_id: int) -> str:
    extra = "，或在运营群里发 #%d 回复内容" % ticket_id if ctx.config.bot.operators_room else ""
    return f"回复：/reply {ticket_id} 回复内容{extra}；关闭：/close {ticket_id}"


def _renotify_key(ticket_id: int) -> str:
    return f"faq:ticket:{ticket_id}:renotify"


async def _schedule_renotify(ctx: Context, ticket_id: int) -> None:
    after = skill.settings_of(ctx).handoff.renotify_s
    if after is None:
        return
    await ctx.services.scheduler.schedule(_renotify_key(ticket_id), "faq.renotify",
                                          at=ctx.now + timedelta(seconds=after), payload={"ticket": ticket_id}, session=ctx.session,
                                          misfire_grace_s=7 * 86400)


async def hand_off(ctx: Context, event: MessageReceived, question: str) -> int | None:
    """Open a ticket for the member's question and tell the operators; the ticket's number. None when no
    operator is configured (no ticket: nobody would take it)."""
    if not has_operators(ctx):
        return None
    cfg = skill.settings_of(ctx).handoff
    lines: list[store.ChatLine] = []
    if cfg.chat_lines:
        # the chat's last lines may still wait in the write buffer; the flush needs the connection (SQLite has one)
        await ctx.release_session()
        await ctx.services.activity.flush()
        lines = await store.recent_chat(ctx.session, event.room_id, event.sender.id, ctx.now, cfg.chat_minutes,
                                        cfg.chat_lines)
    ticket = await store.create_ticket(ctx.session, member_id=event.sender.id, member_name=event.sender.name,
                                       room_id=event.room_id, room_topic=event.room_topic or "", question=question,
                                       now=ctx.now)
    who = event.sender.name or event.sender.id
    text = [f"【待人工回复 #{ticket.id}】{who}（{event.sender.id}）在{_where(ticket)}问：", question[:300]]
    if lines:
        text.append("最近的聊天：")
        for line in lines:
            speaker = "机器人" if line.from_bot else (who if line.member_id == event.sender.id else line.member_id)
            text.append(f"{ctx.services.clock.local(line.at):%H:%M} {speaker}：{line.text[:80]}")
    text.append(_how_to_answer(ctx, ticket.id))
    notify(ctx, "\n".join(text))
    await _schedule_renotify(ctx, ticket.id)
    ctx.record("faq_ticket", {"ticket": ticket.id, "event": "opened"})
    return ticket.id


async def live_ticket(ctx: Context, event: MessageReceived) -> Ticket | None:
    cfg = skill.settings_of(ctx).handoff
    return await store.live_ticket(ctx.session, event.sender.id, event.room_id, ctx.now, cfg.follow_up_s)


async def follow_up(ctx: Context, ticket: Ticket, event: MessageReceived, question: str) -> None:
    """The member asks more while a person has their question: add it to the ticket, tell the operators, and
    say nothing to the member (no second handoff, no guess)."""
    reopened = await store.add_follow_up(ctx.session, ticket, question, ctx.now)
    who = event.sender.name or event.sender.id
    notify(ctx, f"【#{ticket.id} 补充】{who} 又问：\n{question[:300]}\n{_how_to_answer(ctx, ticket.id)}")
    if reopened:
        await _schedule_renotify(ctx, ticket.id)
    ctx.record("faq_ticket", {"ticket": ticket.id, "event": "follow_up"})


def _to_member(ticket: Ticket, text: str) -> OutgoingMessage:
    if ticket.room_id is None:
        return OutgoingMessage(text, user_id=ticket.member_id)
    return OutgoingMessage(with_mentions([Person(ticket.member_id, ticket.member_name)], text),
                           room_id=ticket.room_id, mentions=(ticket.member_id,))


async def _reply(ctx: Context, ticket_id: int, text: str) -> None:
    text = text.strip()[:MAX_REPLY]
    ticket = await store.get_ticket(ctx.session, ticket_id)
    if ticket is None:
        ctx.reply(f"没有 #{ticket_id} 这个问题单。")
        return
    if ticket.status == "closed":
        ctx.reply(f"#{ticket_id} 已经关闭了，没有发送。")
        return
    await store.mark_replied(ctx.session, ticket, ctx.sender.id, ctx.now)
    await ctx.services.scheduler.cancel(_renotify_key(ticket_id), session=ctx.session)
    # what the member waits for: durable (committed with the ticket's state), a transactional message
    ctx.send(_to_member(ticket, f"【工作人员回复】{text}"), priority=Priority.TRANSACTIONAL,
             kind=ProactiveKind.TRANSACTIONAL)
    ctx.record("faq_ticket", {"ticket": ticket_id, "event": "replied"})
    ctx.reply(f"已回复 #{ticket_id}（{ticket.member_name or ticket.member_id}，{_where(ticket)}）。"
              f"问题解决了就 /close {ticket_id}。")


def _ticket_number(raw: str) -> int:
    raw = raw.lstrip("#＃")
    if not raw.isascii() or not raw.isdigit() or len(raw) > 12:
        raise UsageError("请写问题单的编号（数字）。")
    return int(raw)


@skill.command("reply", aliases=("回复",), usage="/reply 编号 回复内容", hidden=True,  # not in members' /help
               help="（运营）回复转人工的问题，经机器人发给提问的群友")
async def reply_command(ctx: Context) -> None:
    if not may_handle(ctx):
        ctx.reply(REFUSED)
        return
    rest = ctx.command.rest.split(None, 1) if ctx.command else []
    if len(rest) < 2:
        raise UsageError("请写上编号和回复内容。")
    ticket_id = _ticket_number(rest[0])
    await _reply(ctx, ticket_id, verbatim_reply(ctx.event.text, rest[1]))


@skill.command("close", aliases=("关闭",), usage="/close 编号", help="（运营）关闭一个转人工的问题", hidden=True)
async def close_command(ctx: Context) -> None:
    if not may_handle(ctx):
        ctx.reply(REFUSED)
        return
    if not ctx.args:
        raise UsageError("请写上问题单的编号。")
    ticket_id = _ticket_number(ctx.args[0])
    if await store.get_ticket(ctx.session, ticket_id) is None:
        ctx.reply(f"没有 #{ticket_id} 这个问题单。")
        return
    if not await store.close_ticket(ctx.session, ticket_id, ctx.sender.id, ctx.now):
        ctx.reply(f"#{ticket_id} 已经是关闭的了。")
        return
    await ctx.services.scheduler.cancel(_renotify_key(ticket_id), session=ctx.session)
    ctx.record("faq_ticket", {"ticket": ticket_id, "event": "closed"})
    ctx.reply(f"已关闭 #{ticket_id}。")


@skill.command("tickets", aliases=("工单",), usage="/tickets", help="（运营）等待人工回复的问题", hidden=True)
async def tickets_command(ctx: Context) -> None:
    if not may_handle(ctx):
        ctx.reply(REFUSED)
        return
    waiting = await store.open_tickets(ctx.session, limit=10)
    if not waiting:
        ctx.reply("现在没有等待人工回复的问题 👍")
        return
    lines = ["等待人工回复的问题（最早的在前）："]
    for t in waiting:
        minutes = int((ctx.now - t.waiting_since).total_seconds() // 60)
        lines.append(f"#{t.id} {t.member_name or t.member_id}（{_where(t)}，等了 {minutes} 分钟）：{t.question[:40]}")
    lines.append("回复：/reply 编号 回复内容")
    ctx.reply("\n".join(lines))


@skill.on_message(priority=40)  # before every keyword: a staff room's "#12 …" is a reply, nothing else
async def operators_room_reply(ctx: Context) -> None:
    event = ctx.event
    room = ctx.config.bot.operators_room
    if not room or not isinstance(event, MessageReceived) or event.room_id != room:
        return
    text, _ = strip_mentions(event.text)
    m = _OPERATORS_ROOM_REPLY.match(text.strip().replace("＃", "#", 1))
    if m is None or event.sender.id == ctx.services.bot_id:
        return
    ctx.addressed = True
    ctx.stop()
    await _reply(ctx, int(m.group(1)), verbatim_reply(event.text, m.group(2)))


@skill.job("renotify")
async def renotify(ctx: Context) -> None:
    ticket = await store.claim_renotify(ctx.session, int(ctx.payload["ticket"]), ctx.now)
    if ticket is None:
        return  # answered or closed meanwhile, or already re-notified
    minutes = int((ctx.now - ticket.waiting_since).total_seconds() // 60)
    notify(ctx, f"【仍在等待 #{ticket.id}】{ticket.member_name or ticket.member_id}（{_where(ticket)}）"
                f"已经等了 {minutes} 分钟：\n{ticket.question[:300]}\n{_how_to_answer(ctx, ticket.id)}")
