"""Learning from what operators resolve: a miss linked to an existing entry, a member's confirmed choice accepted.

- ``/kb link 57 ship-when``: the question of miss 57 (the number ``/kb misses`` shows) becomes a 相似问法 of the
  entry ``ship-when`` (its 编号, as ``/kb test`` shows it).
- ``/kb candidates``: the questions members asked and then confirmed by picking an entry from a numbered choice,
  not yet among that entry's questions (skills/faq/knowledge/candidates.py); ``/kb accept 2`` adds the second.

Both write like ``/kb add``: the knowledge base as it would be is parsed first, then the one file is replaced
atomically, then reloaded (which refits the confidence on the new 相似问法). Global admins only: the knowledge base
is every room's.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from bot.context import Context
from bot.skill import UsageError
from skills.faq import skill, state, store
from skills.faq.knowledge.adding import Refused, check_similar, prepare_similar, write_atomically
from skills.faq.knowledge.candidates import Candidate, candidates
from skills.faq.knowledge.entries import Entry

log = logging.getLogger(__name__)

CANDIDATE_DAYS = 30  # confirmed choices looked at by /kb candidates and /kb accept
CANDIDATES_SHOWN = 10
LINK_USAGE = "/kb link 未命中编号 条目编号"


def _words(ctx: Context) -> list[str]:
    """The words after the command's name, as typed (an entry's default id has a colon, which ctx.args would
    take for an option)."""
    rest = ctx.command.rest if ctx.command else ""
    return rest.split(None, 2)[1:]


def _number(text: str, what: str) -> int:
    text = text.lstrip("#")
    if not text.isdigit() or not 0 < int(text) < 2**63:
        raise UsageError(f"{what}要写数字。")
    return int(text)


async def add_similar(ctx: Context, entry: Entry, question: str) -> str:
    """Write ``question`` as one more 相似问法 of ``entry`` and reload; the reply for the admin."""
    st = state(ctx.services)
    cfg = st.settings
    try:
        question = check_similar(question)
    except Refused as exc:
        return str(exc)
    if any(question == q for q in entry.questions):
        return f"「{entry.question}」已经有「{question}」这个问法了。"
    folder = Path(cfg.knowledge_dir)
    async with st.adding:  # one change at a time: each reads, checks and replaces a whole file
        current = st.kb.entry(entry.id) or entry  # its file may have moved on since the command was read
        name, content, problems = await asyncio.to_thread(prepare_similar, folder, current, question,
                                                          cfg.max_file_bytes)
        if problems:
            lines = [f"没有写入：改了 {name or '文件'} 后知识库会读不通，或者找不到这条问答（{len(problems)} 处问题）："]
            lines += [f"· {p}" for p in problems[:5]]
            return "\n".join(lines)
        try:
            await asyncio.to_thread(write_atomically, folder / name, content)
        except OSError as exc:
            log.error("faq: adding a similar question could not write %s: %s", folder / name, exc)
            return f"写入 {name} 失败（{exc.strerror}），请检查知识库目录的写权限。"
    result = await st.kb.reload()
    if not result.ok:
        return f"已写入 {name}，但知识库里还有别的问题，请运行 /kb reload 查看。"
    return f"已把「{question}」加为「{entry.question}」的相似问法（{name}）。"


@skill.command("kb link", aliases=("知识库 关联",), scope="global", usage=LINK_USAGE,
               help="把一个没答上来的问题（/kb misses 里的编号）加为已有条目的相似问法")
async def kb_link(ctx: Context) -> None:
    words = _words(ctx)
    if len(words) < 2:
        raise UsageError("要写未命中问题的编号（/kb misses 里 # 后面的数字）和条目的编号（/kb test 能查到）。")
    miss_id = _number(words[0], "未命中问题的编号")
    st = state(ctx.services)
    entry = st.kb.entry(words[1].strip())
    if entry is None:
        raise UsageError(f"没有编号为“{words[1].strip()[:40]}”的条目：用 /kb test 问题 可以看到条目的编号。")
    await ctx.services.activity.flush()  # the miss may still be waiting in the write buffer
    found = await store.miss(ctx.session, miss_id)
    if found is None:
        ctx.reply(f"没有编号为 {miss_id} 的未命中问题，请用 /kb misses 看看编号。")
        return
    ctx.reply(await add_similar(ctx, entry, found[0]))


async def _candidates(ctx: Context) -> list[Candidate]:
    await ctx.services.activity.flush()
    rows = await store.confirmed_choices(ctx.session, ctx.now, CANDIDATE_DAYS)
    return candidates(rows, state(ctx.services).kb.entries)


@skill.command("kb candidates", aliases=("知识库 候选",), scope="global", usage="/kb candidates",
               help="成员在“你是想问”里选过的问法，可以采纳为相似问法")
async def kb_candidates(ctx: Context) -> None:
    found = await _candidates(ctx)
    if not found:
        ctx.reply(f"最近 {CANDIDATE_DAYS} 天没有可以采纳的问法。")
        return
    lines = [f"最近 {CANDIDATE_DAYS} 天成员在“你是想问”里选过的问法（共 {len(found)} 条）："]
    lines += [f"{i}. 「{c.question}」→「{c.entry.question}」（{c.count} 次）"
              for i, c in enumerate(found[:CANDIDATES_SHOWN], 1)]
    if len(found) > CANDIDATES_SHOWN:
        lines.append(f"……还有 {len(found) - CANDIDATES_SHOWN} 条。")
    lines.append("用 /kb accept 序号 采纳为相似问法。")
    ctx.reply("\n".join(lines))


@skill.command("kb accept", aliases=("知识库 采纳",), scope="global", usage="/kb accept 序号",
               help="采纳 /kb candidates 里的一条问法，加为对应条目的相似问法")
async def kb_accept(ctx: Context) -> None:
    words = _words(ctx)
    if not words:
        raise UsageError("要写 /kb candidates 列出的序号。")
    n = _number(words[0], "序号")
    found = await _candidates(ctx)
    if not 1 <= n <= len(found):
        ctx.reply(f"没有第 {n} 条，现在可以采纳的有 {len(found)} 条，请先用 /kb candidates 看看。")
        return
    chosen = found[n - 1]
    ctx.reply(await add_similar(ctx, chosen.entry, chosen.question))
