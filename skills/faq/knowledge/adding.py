"""One entry added from chat (``/kb add 问题 | 答案``), without ever leaving a file the loader can't read.

The entry is cleaned and checked line by line (nothing that the Markdown format would read as a heading, a
comment, a table or an entry's field line); then the file as it would be is built in memory and the whole
knowledge base is parsed with it (files.load_knowledge, the loader itself). Only if that has no problem and the
new entry is there is the file replaced, atomically: a temporary file beside it, then os.replace.
"""

from __future__ import annotations

import os
import re
import tempfile
import unicodedata
from contextlib import suppress
from pathlib import Path

from skills.faq.knowledge.entries import Problem
from skills.faq.knowledge.files import field_name, load_knowledge, read_text

MAX_QUESTION = 100  # characters
MAX_ANSWER = 1000  # characters; longer answers belong in a file edited with care
HEADER = "# 群里用 /kb add 添加的问答\n\n<!-- 可以直接编辑这个文件，保存后几秒内生效。 -->\n"

_LINE_STARTS = (  # what a line must not start with, and why, for the admin
    ("#", "会被当成标题"),
    ("<!--", "会被当成注释，成员看不到"),
    ("|", "会被当成表格"),
)


class Refused(ValueError):
    """The entry can't be added as it is; the message says why, in Chinese, for the admin."""


def clean(text: str) -> str:
    """Every kind of line break as "\\n"; control characters (NUL …) and lone surrogates out (a lone surrogate
    can't even be written as UTF-8)."""
    text = "\n".join(text.splitlines())  # the loader splits on these same breaks (\\u2028, \\x1c …)
    return "".join(c for c in text if c in "\n\t" or unicodedata.category(c) not in ("Cc", "Cs"))


def check_entry(question: str, answer: str) -> tuple[str, str]:
    """The cleaned question and answer, or Refused."""
    question = clean(question).strip()
    answer = "\n".join(line.rstrip() for line in clean(answer).strip().split("\n"))
    if not question or not answer:
        raise Refused("问题和答案都要写，中间用 | 隔开。")
    if "\n" in question or len(question) > MAX_QUESTION:
        raise Refused(f"问题要写在一行里，不超过 {MAX_QUESTION} 个字。")
    if question.startswith("#"):
        raise Refused("问题开头不能是“#”。")
    if len(answer) > MAX_ANSWER:
        raise Refused(f"答案太长了（{len(answer)} 个字），在群里添加最多 {MAX_ANSWER} 个字；更长的请直接编辑知识库文件。")
    for n, line in enumerate(answer.split("\n")):
        start = line.lstrip()
        for prefix, why in _LINE_STARTS:
            if start.startswith(prefix):
                where = "答案" if n == 0 else f"答案第 {n + 1} 行"
                raise Refused(f"{where}不能以“{prefix}”开头：在知识库文件里{why}。请改一下开头（比如前面加个字）再添加。")
    field = field_name(answer.split("\n")[0])
    if field is not None:
        raise Refused(f"答案不能以“{field}：”开头：在知识库文件里会被当成这条问答的设置。请换个说法开头再添加。")
    return question, answer


def _note(text: str) -> str:
    """Who added it, for the comment line: one line, and no "--" that could end the comment early."""
    return re.sub(r"-{2,}", "-", " ".join(clean(text).split()))[:80]


def render_block(question: str, answer: str, who: str, who_id: str, stamp: str) -> str:
    return f"\n## {question}\n<!-- {_note(f'{who}（{who_id}）{stamp}')} 用 /kb add 添加 -->\n{answer}\n"


def prepare(folder: Path, name: str, block: str, question: str, answer: str,
            max_file_bytes: int) -> tuple[str, list[Problem]]:
    """The file ``name`` as it would be with ``block`` appended, and the problems of the whole knowledge base
    read with it (none: safe to write). CPU and disk: run it in a thread."""
    path = folder / name
    problems: list[Problem] = []
    existing = read_text(path, name, problems, max_file_bytes) if path.is_file() else HEADER
    if existing is None:
        return "", problems
    content = existing + block
    kb = load_knowledge(folder, max_file_bytes=max_file_bytes, overrides={name: content})
    problems = list(kb.problems)
    if not problems and not any(e.source.startswith(f"{name}:") and e.question == question and e.answer == answer
                                for e in kb.entries):
        problems.append(Problem(name, 0, f"写进文件后读不出「{question}」这一条"))
    return content, problems


def write_atomically(path: Path, text: str) -> None:
    """Readers see the old file or the new one, never half of it. The temporary file's name starts with a dot,
    so a reload meanwhile ignores it."""
    try:
        mode = path.stat().st_mode & 0o777
    except FileNotFoundError:
        mode = 0o644
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp)
        raise

