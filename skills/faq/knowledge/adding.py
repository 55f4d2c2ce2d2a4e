"""Changes from chat, without ever leaving a file the loader can't read: one entry added (``/kb add 问题 | 答案``),
or one more 相似问法 for an existing entry (``/kb link``, ``/kb accept``: a line under its heading in Markdown, its
相似问法 cell in CSV, the rest of the file byte for byte as it was).

The entry is cleaned and checked line by line (nothing that the Markdown format would read as a heading, a
comment, a table or an entry's field line); then the file as it would be is built in memory and the whole
knowledge base is parsed with it (files.load_knowledge, the loader itself). Only if that has no problem and the
new entry is there is the file replaced, atomically: a temporary file beside it, then os.replace.
"""

from __future__ import annotations

import csv
import io
import os
import re
import tempfile
import unicodedata
from contextlib import suppress
from pathlib import Path

from skills.faq.knowledge.entries import Entry, Problem
from skills.faq.knowledge.files import CSV_COLUMNS, field_name, load_knowledge, read_text

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



# -- one more 相似问法 for an existing entry (/kb link, /kb accept) ----------------------------------------------------

_SEPARATORS = re.compile(r"[；;|｜]")


def check_similar(question: str) -> str:
    """The cleaned question, fit to be one 相似问法, or Refused."""
    question = " ".join(clean(question).split())
    if not question:
        raise Refused("这个问题是空的。")
    if len(question) > MAX_QUESTION:
        raise Refused(f"问题超过 {MAX_QUESTION} 个字，不适合做相似问法。")
    if _SEPARATORS.search(question):
        raise Refused("问题里有“；”或“|”：在知识库文件里它们用来分隔相似问法。")
    return question


def with_similar(text: str, name: str, line: int, question: str) -> str | None:
    """The file's text with ``question`` as one more 相似问法 of the entry at ``line`` (its heading in a Markdown
    file; the last line of its row in a CSV file). None when the file has no place for it (a CSV without a
    相似问法 column, or the entry is not where its source says)."""
    if name.lower().endswith(".md"):
        lines = text.splitlines(keepends=True)
        if not 1 <= line <= len(lines) or not lines[line - 1].startswith("## "):
            return None
        heading = lines[line - 1]
        ending = heading[len(heading.rstrip("\r\n")):] or "\n"
        if heading is lines[-1] and not heading.endswith(("\n", "\r")):
            lines[line - 1] = heading + ending  # the heading was the file's last line, without a line break
        # a line of its own right under the heading: the format allows several 相似问法 lines
        lines.insert(line, f"相似问法：{question}{ending}")
        return "".join(lines)
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None:
        return None
    columns = [CSV_COLUMNS.get(h.strip().lower()) for h in header]
    if "similar" not in columns:
        return None
    start = reader.line_num + 1
    for row in reader:
        end = reader.line_num
        if end == line:
            at = columns.index("similar")
            row[at] = f"{row[at].strip()}；{question}" if row[at].strip() else question
            out = io.StringIO()
            csv.writer(out, lineterminator="").writerow(row)
            lines = text.splitlines(keepends=True)
            ending = lines[end - 1][len(lines[end - 1].rstrip("\r\n")):]
            return "".join(lines[:start - 1]) + out.getvalue() + ending + "".join(lines[end:])
        start = end + 1
    return None


def prepare_similar(folder: Path, entry: Entry, question: str,
                    max_file_bytes: int) -> tuple[str, str, list[Problem]]:
    """(file name, its text with the new 相似问法, the problems of the whole knowledge base read with it). Nothing
    is written; no problems: safe to write. CPU and disk: run it in a thread."""
    name, _, line = entry.source.rpartition(":")
    problems: list[Problem] = []
    path = folder / name
    text = read_text(path, name, problems, max_file_bytes) if name and path.is_file() else None
    if text is None:
        return name, "", problems or [Problem(name or entry.source, 0, "找不到这条问答所在的文件")]
    content = with_similar(text, name, int(line or 0), question)
    if content is None:
        why = ("这个 CSV 文件没有“相似问法”列，请直接编辑文件" if name.lower().endswith(".csv")
               else "文件刚刚改过，这条问答不在原来的位置了，请稍后再试")
        return name, "", [Problem(name, int(line or 0), why)]
    kb = load_knowledge(folder, max_file_bytes=max_file_bytes, overrides={name: content})
    problems = list(kb.problems)
    if not problems and not any(e.id == entry.id and question in e.similar for e in kb.entries):
        problems.append(Problem(name, int(line or 0), f"写进文件后「{entry.question}」没有多出「{question}」这个问法"))
    return name, content, problems
