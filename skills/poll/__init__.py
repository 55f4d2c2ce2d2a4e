"""Group polls (群投票): an admin asks, members answer with the option's number, the bot tallies.

- ``/poll start 问题 | 选项1 | 选项2 [| …] [duration=1h]`` (``/投票 发起 …``; the room's admins, in a group): at most
  ``max_options`` options, one open poll per room; it closes at its deadline (a persisted job, so a restart
  doesn't lose it) or earlier with ``/poll close`` (``/投票 结束``), and the results are announced once.
- Members vote by sending the number (``1``, ``２``, ``第2个``) or ``/poll vote 2`` (``/投票 2``): one vote each; a
  second one is answered「你已经投过票了」and changes nothing. Confirmations in a group are coalesced.
- ``/poll results`` (``/投票 结果``): counts per option of the room's latest poll, at any time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.context import Context, Services, acknowledge_batch
from bot.events import MessageReceived, OutgoingMessage, Person, Priority, ProactiveKind
from bot.parser import strip_mentions
from bot.skill import Skill, UsageError
from bot.timefmt import zh_datetime
from skills.poll import store
from skills.poll.input import MAX_OPTIONS, InputError, parse_duration, parse_start, parse_vote

START_USAGE = "/poll start 问题 | 选项1 | 选项2 [| …] [duration=1h]（或 /投票 发起 问题 | 选项1 | 选项2）"
VOTE_USAGE = "/poll vote 编号（或 /投票 编号，或在群里直接发送编号，如 2、第2个）"


@dataclass(frozen=True)
class PollSettings:
    max_options: int = 9  # options a poll may have (2 to 20)
    duration: str = "1d"  # until the results, when /poll start gives no duration= (30m, 2h, 1d, 30分钟, 2小时, 1天)
    max_duration: str = "7d"  # the longest poll an admin may start
    confirm_window_s: float = 30.0  # vote confirmations in a group within this window go out as one message
    misfire_grace_s: int = 7 * 86400  # a bot back within this long after the deadline still closes and announces

    def __post_init__(self) -> None:
        if not 2 <= self.max_options <= MAX_OPTIONS:
            raise ValueError(f"max_options: must be between 2 and {MAX_OPTIONS}")
        for key in ("duration", "max_duration"):
            d = parse_duration(getattr(self, key))
            if d is None or d < timedelta(minutes=1):
                raise ValueError(f'{key}: must be a duration of at least a minute like "30m", "2h", "1d", '
                                 f"not {getattr(self, key)!r}")
        if parse_duration(self.duration) > parse_duration(self.max_duration):
            raise ValueError(f"duration: longer than max_duration ({self.max_duration})")


@dataclass
class PollState:
    # room → (open poll id, number of options): a chatter message in a room without a poll costs one dict lookup
    open_rooms: dict[str, tuple[int, int]] = field(default_factory=dict)


skill: Skill[PollSettings, PollState] = Skill("poll", "群投票", settings=PollSettings, state=PollState)


@skill.on_startup
async def load(services: Services) -> None:
    async with services.sessions() as session:
        skill.state_of(services).open_rooms.update(await store.open_polls(session))


def _forget(ctx: Context, room_id: str, poll_id: int) -> None:
    open_rooms = skill.state_of(ctx).open_rooms
    if open_rooms.get(room_id, (None,))[0] == poll_id:
        del open_rooms[room_id]


def _local(ctx: Context, when: datetime) -> str:
    t = ctx.services.clock.local(when)
    return zh_datetime(t)


def _argument_text(ctx: Context) -> str:
    """The text after the command's own words, as typed (quotes and ``key:value`` kept): ``ctx.args`` has the
    words split on spaces, quotes and options taken out — not what a question with "时间:3点" in it needs."""
    parsed = ctx.command
    if parsed is None:
        return ""
    extra = len(parsed.args) - len(ctx.args)  # "start" of "/poll start": the command's words after the first
    words = parsed.rest.split(" ", extra)
    return words[extra] if len(words) > extra else ""


# -- start ----------------------------------------------------------------------------------------------------------

@skill.command("poll start", aliases=("投票 发起",), usage=START_USAGE, help="发起投票", scope="room", where="room")
async def start(ctx: Context) -> None:
    cfg = skill.settings_of(ctx)
    try:
        request = parse_start(_argument_text(ctx), max_options=cfg.max_options,
                              default=parse_duration(cfg.duration), longest=parse_duration(cfg.max_duration))
    except InputError as exc:
        raise UsageError(str(exc)) from None
    session, room_id = ctx.session, ctx.room_id
    running = await store.open_in_room(session, room_id)
    if running is not None:
        ctx.reply(f"本群已经有一个进行中的投票（#{running.id}「{running.question}」），一个群同时只能有一个。"
                  "请等它结束，或先用 /poll close 结束它。")
        return
    now = ctx.now
    deadline = now + request.duration
    try:
        poll_id = await store.add_poll(session, room_id=room_id, question=request.question,
                                       options=list(request.options), created_by=ctx.sender.id, at=now,
                                       deadline=deadline)
    except store.AlreadyOpen:
        ctx.reply("本群刚刚已经有人发起了投票，一个群同时只能有一个。")
        return
    await ctx.services.scheduler.schedule(f"poll:{poll_id}:close", "poll.close", at=deadline,
                                          payload={"poll_id": poll_id}, session=session, room_id=room_id,
                                          misfire_grace_s=cfg.misfire_grace_s)
    ctx.record("poll_started", {"poll": poll_id, "options": len(request.options)})
    lines = [f"📊 投票 #{poll_id}：{request.question}"]
    lines += [f"{i}. {option}" for i, option in enumerate(request.options, start=1)]
    lines.append(f"直接在群里回复编号即可投票（如「1」或 /投票 1），每人一票。{_local(ctx, deadline)} 截止，"
                 "发送 /投票 结果 随时查看票数。")
    text, count, open_rooms = "\n".join(lines), len(request.options), skill.state_of(ctx).open_rooms

    def announce() -> None:
        open_rooms[room_id] = (poll_id, count)
        ctx.reply(text, mention=False)

    ctx.after_commit(announce)


# -- votes ----------------------------------------------------------------------------------------------------------

def _render_votes(room_id: str, items: list[tuple[str, Person, int]]) -> OutgoingMessage | None:
    """One message for a window of votes: who voted (and how many have), then who had voted already."""
    return acknowledge_batch(room_id, items, done=lambda n: f"投票成功✅ 目前共 {n} 人投票。",
                             again="你已经投过票了，每人一票哦～", again_in_window=True)


async def _cast(ctx: Context, poll_id: int, option: int) -> None:
    """Record ``ctx.sender``'s vote for ``option`` of the open poll ``poll_id`` and confirm it (coalesced)."""
    event = ctx.event
    assert isinstance(event, MessageReceived) and event.room_id is not None
    session = ctx.session
    poll = await store.poll(session, poll_id)
    if poll is None or poll.status != "open":
        _forget(ctx, event.room_id, poll_id)  # closed in another process meanwhile
        ctx.reply("本群现在没有进行中的投票。")
        return
    if event.at >= poll.deadline:
        ctx.reply("这个投票已经截止啦，结果马上公布～")
        return
    if not 1 <= option <= len(poll.options):
        ctx.reply(f"请回复 1 到 {len(poll.options)} 之间的编号哦～")
        return
    sender, room_id = event.sender, event.room_id
    key, window = f"poll:{poll_id}:votes", skill.settings_of(ctx).confirm_window_s

    def confirm(kind: str, n: int = 0) -> None:
        ctx.coalesce(key, (kind, sender, n), lambda items: _render_votes(room_id, items), window_s=window)

    if not await store.add_vote(session, poll_id, sender.id, option, event.at):
        confirm("again")  # one vote per member: nothing changes
        return
    ctx.record("poll_vote", {"poll": poll_id})
    n = await store.voters(session, poll_id)
    ctx.after_commit(lambda: confirm("new", n))


@skill.on_message(priority=150)  # after keywords (the lottery's 50), before the FAQ and chat points (200)
async def vote_by_number(ctx: Context) -> None:
    """Runs for every message the router didn't take: a room without an open poll costs one dict lookup."""
    event = ctx.event
    found = skill.state_of(ctx).open_rooms.get(event.room_id)
    if found is None:
        return
    assert isinstance(event, MessageReceived)
    if len(event.text) > 80 or event.sender.id == ctx.services.bot_id:
        return
    picked = parse_vote(strip_mentions(event.text)[0])
    if picked is None:
        return
    option, explicit = picked
    poll_id, count = found
    if not explicit and not 1 <= option <= count:
        return  # "100" in a poll of three options is chatter, not a vote
    ctx.addressed = True
    ctx.stop()  # the number was meant for the poll: no other skill acts on it
    await _cast(ctx, poll_id, option)


@skill.command("poll vote", aliases=("投票", "poll"), usage=VOTE_USAGE, help="给本群的投票投一票", where="room")
async def vote(ctx: Context) -> None:
    poll = await store.open_in_room(ctx.session, ctx.room_id)
    if not ctx.args:  # "/投票": what is open, and how to vote
        if poll is None:
            ctx.reply("本群现在没有进行中的投票。")
            return
        await _reply_results(ctx, poll, closed=False)
        return
    picked = parse_vote(" ".join(ctx.args), command=True)
    if picked is None:
        raise UsageError("请写选项的编号，例如 /投票 2。")
    if poll is None:
        ctx.reply("本群现在没有进行中的投票。")
        return
    await _cast(ctx, poll.id, picked[0])


# -- results and closing --------------------------------------------------------------------------------------------

def results_text(poll, counts: dict[int, int], *, closed: bool, deadline: str) -> str:
    total = sum(counts.values())
    head = (f"📊 投票 #{poll.id}「{poll.question}」{'结果' if closed else '当前票数'}"
            f"（共 {total} 人投票{'，已结束' if closed else '，' + deadline + ' 截止'}）：")
    lines = [head]
    for i, option in enumerate(poll.options, start=1):
        n = counts.get(i, 0)
        share = f"（{n * 100 // total}%）" if total else ""
        lines.append(f"{i}. {option} — {n} 票{share}")
    if closed:
        best = max(counts.values(), default=0)
        leaders = [poll.options[i - 1] for i in sorted(counts) if counts[i] == best and best]
        if not leaders:
            lines.append("没有人投票。")
        elif len(leaders) == 1:
            lines.append(f"最多票：{leaders[0]}")
        else:
            lines.append("并列最多：" + "、".join(leaders))
    return "\n".join(lines)


async def _reply_results(ctx: Context, poll, *, closed: bool) -> None:
    counts = await store.tally(ctx.session, poll.id)
    ctx.reply(results_text(poll, counts, closed=closed, deadline=_local(ctx, poll.deadline)), mention=False)


@skill.command("poll results", aliases=("投票 结果",), usage="/poll results（或 /投票 结果）",
               help="查看本群最近一次投票的票数", where="room")
async def results(ctx: Context) -> None:
    poll = await store.latest_in_room(ctx.session, ctx.room_id)
    if poll is None:
        ctx.reply("本群还没有发起过投票。")
        return
    await _reply_results(ctx, poll, closed=poll.status != "open")


async def _close(ctx: Context, poll_id: int, by: str | None) -> OutgoingMessage | None:
    """Close the poll if it is still open: the results message to announce once this commits, else None."""
    session = ctx.session
    if not await store.close(session, poll_id, ctx.now, by):
        return None
    poll = await store.poll(session, poll_id)
    counts = await store.tally(session, poll_id)
    ctx.record("poll_closed", {"poll": poll_id, "voters": sum(counts.values()), "by": by or "deadline"})
    text = results_text(poll, counts, closed=True, deadline=_local(ctx, poll.deadline))
    return OutgoingMessage(text, room_id=poll.room_id)


@skill.job("close")
async def close_at_deadline(ctx: Context) -> None:
    poll_id = int(ctx.payload["poll_id"])
    message = await _close(ctx, poll_id, None)
    if message is None:
        return  # closed early by an admin: announced then

    def announce() -> None:
        _forget(ctx, message.room_id, poll_id)
        # members are waiting for this: not "light", so the room's daily caps and gap don't hold it back
        ctx.send(message, priority=Priority.TRANSACTIONAL, kind=ProactiveKind.TRANSACTIONAL)

    ctx.after_commit(announce)


@skill.command("poll close", aliases=("投票 结束",), usage="/poll close（或 /投票 结束）", help="提前结束投票并公布结果",
               scope="room", where="room")
async def close_now(ctx: Context) -> None:
    poll = await store.open_in_room(ctx.session, ctx.room_id)
    if poll is None:
        ctx.reply("本群现在没有进行中的投票。")
        return
    message = await _close(ctx, poll.id, ctx.sender.id)
    if message is None:
        ctx.reply("这个投票已经结束了。")
        return
    await ctx.services.scheduler.cancel(f"poll:{poll.id}:close", session=ctx.session)
    poll_id = poll.id

    def announce() -> None:
        _forget(ctx, message.room_id, poll_id)
        ctx.send(message)  # the admin's command: a reply

    ctx.after_commit(announce)


from skills.poll import privacy  # noqa: E402  (what the skill keeps about a member: /我的数据, /删除我的数据)

skill.member_data(privacy)
