"""Read the operators' knowledge files: Markdown and CSV entries, synonyms, the user dictionary.

Every problem is collected with its file and line (nothing stops at the first one), so `python -m bot kb check`
and `/kb reload` can list them all. The formats are documented in knowledge/README.md.
"""

from __future__ import annotations

import csv
import io
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from skills.faq.knowledge.entries import Entry, Problem
from skills.faq.knowledge.text import Synonyms, normalize

SYNONYMS_FILE = "synonyms.txt"
USERDICT_FILE = "userdict.txt"
NOT_ENTRIES = {"readme.md"}  # documentation, not knowledge
MAX_FILE_BYTES = 2_000_000  # the default of skills.faq.max_file_bytes

# "相似问法：a；b" and the like. Full-width and half-width colons both work.
_FIELD = re.compile(r"^\s*(相似问法|相似问题|相似|标签|适用群|编号)\s*[:：]\s*(.*)$")
_SPLIT = re.compile(r"\s*[；;|｜]\s*")
_TAG_SPLIT = re.compile(r"\s*[,，、；;\s]\s*")
CSV_COLUMNS = {"问题": "question", "question": "question", "相似问法": "similar", "similar": "similar",
               "答案": "answer", "answer": "answer", "标签": "tags", "tags": "tags", "适用群": "rooms",
               "rooms": "rooms", "编号": "id", "id": "id"}


@dataclass
class Knowledge:
    entries: list[Entry] = field(default_factory=list)
    synonyms: Synonyms = field(default_factory=Synonyms)
    user_words: list[tuple[str, int | None]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


def read_text(path: Path, name: str, problems: list[Problem], max_bytes: int = MAX_FILE_BYTES) -> str | None:
    """The file's text, or None with a problem. A file over ``max_bytes`` is refused by its size before anything
    is read, since parsing and indexing cost many times a file's size in memory (docs/benchmarks.md)."""
    try:
        with path.open("rb") as f:
            size = os.fstat(f.fileno()).st_size
            raw = f.read(size + 1) if size <= max_bytes else b""  # (read(n) allocates n bytes up front)
            if size < len(raw) <= max_bytes:  # it grew since its size was taken: read on, up to the bound
                raw += f.read(max_bytes + 1 - len(raw))
    except OSError as exc:
        problems.append(Problem(name, 0, f"读不了这个文件（{exc.strerror}）"))
        return None
    if size > max_bytes or len(raw) > max_bytes:  # (also if it grew between the size check and the read)
        problems.append(too_big(name, max(size, len(raw)), max_bytes))
        return None
    return decode(raw, name, problems)


def too_big(name: str, size: int, max_bytes: int) -> Problem:
    return Problem(name, 0, f"文件太大（{_megabytes(size)}），一个知识库文件最多 {_megabytes(max_bytes)}："
                            "请拆成几个文件（或调大 skills.faq.max_file_bytes）")


def _megabytes(n: int) -> str:
    return f"{n / 1_000_000:.1f} MB" if n >= 100_000 else f"{n:,} 字节"


def decode(raw: bytes, name: str, problems: list[Problem]) -> str | None:
    try:
        return raw.decode("utf-8-sig")  # Excel's "CSV UTF-8" starts with a BOM
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        problems.append(Problem(name, line, "不是 UTF-8 编码（Excel 请“另存为 CSV UTF-8”，记事本请选 UTF-8）"))
        return None


def field_name(line: str) -> str | None:
    """"相似问法" for "相似问法：a；b" and the like: a line that sets a field when it opens an entry's body."""
    m = _FIELD.match(line)
    return m.group(1) if m else None


def _split(text: str) -> tuple[str, ...]:
    return tuple(s for s in _SPLIT.split(text.strip()) if s)


def parse_markdown(text: str, name: str, problems: list[Problem]) -> list[Entry]:
    """One entry per `## ` heading: the heading is the standard question, then optional 相似问法/标签/适用群/编号
    lines, then the answer (everything up to the next heading). `# ` headings are section titles."""
    entries: list[Entry] = []
    stem = Path(name).stem
    current: dict | None = None

    def finish() -> None:
        if current is None:
            return
        answer = "\n".join(current["body"]).strip()
        if not current["question"]:
            problems.append(Problem(name, current["line"], "标题是空的：“## ”后面要写标准问题"))
        elif not answer:
            problems.append(Problem(name, current["line"], f"“{current['question']}”没有答案：标题下面要写答案"))
        else:
            entries.append(Entry(current["id"] or f"{stem}:{current['question']}", current["question"], answer,
                                 tuple(current["similar"]), tuple(current["tags"]), tuple(current["rooms"]),
                                 f"{name}:{current['line']}"))

    comment_from = 0  # the line an open <!-- comment started on; 0: not in a comment
    for n, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if comment_from or stripped.startswith("<!--"):  # operators' notes, never shown to members
            comment_from = 0 if "-->" in stripped else comment_from or n
            continue
        if line.startswith("## "):
            finish()
            current = {"question": line[3:].strip(), "line": n, "body": [], "similar": [], "tags": [], "rooms": [],
                       "id": "", "in_body": False}
            continue
        if line.startswith("# ") or line.rstrip() == "#":
            finish()
            current = None
            continue
        if current is None:
            if stripped and not line.startswith("#"):
                problems.append(Problem(name, n, "这段文字不属于任何问题：问题要用“## ”开头的标题来写"))
            continue
        m = _FIELD.match(line) if not current["in_body"] else None
        if m:
            key, value = m.group(1), m.group(2)
            if key.startswith("相似"):
                current["similar"].extend(_split(value))
            elif key == "标签":
                current["tags"].extend(t for t in _TAG_SPLIT.split(value) if t)
            elif key == "适用群":
                current["rooms"].extend(t for t in _TAG_SPLIT.split(value) if t)
            else:
                current["id"] = value.strip()
            continue
        if stripped:
            current["in_body"] = True
        current["body"].append(line.rstrip())
    finish()
    if comment_from:  # everything after it was swallowed: a problem, not a silent loss
        problems.append(Problem(name, comment_from, "注释“<!--”没有用“-->”结束：它后面的内容全被当成了注释，"
                                                    "请在注释末尾加上“-->”"))
    return entries


def parse_csv(text: str, name: str, problems: list[Problem]) -> list[Entry]:
    """Header row naming the columns (问题, 相似问法, 答案; optional 标签, 适用群, 编号), one entry per row."""
    stem = Path(name).stem
    reader = csv.reader(io.StringIO(text, newline=""))
    entries: list[Entry] = []
    try:
        header = next(reader, None)
        if header is None:
            return []
        columns = [CSV_COLUMNS.get(h.strip().lower()) for h in header]
        missing = {"question", "answer"} - set(columns)
        if missing:
            problems.append(Problem(name, 1, "第一行要写列名，至少有“问题”和“答案”两列（可选：相似问法、标签、适用群、编号）"))
            return []
        for row in reader:
            line = reader.line_num
            if not any(c.strip() for c in row):
                continue
            if len(row) != len(header):
                problems.append(Problem(name, line, f"这一行有 {len(row)} 列，表头有 {len(header)} 列（内容里的逗号要用英文双引号把整格括起来）"))
                continue
            cells = {col: cell.strip() for col, cell in zip(columns, row) if col}
            if not cells.get("question"):
                problems.append(Problem(name, line, "“问题”是空的"))
                continue
            if not cells.get("answer"):
                problems.append(Problem(name, line, f"“{cells['question']}”没有答案"))
                continue
            entries.append(Entry(cells.get("id") or f"{stem}:{cells['question']}", cells["question"], cells["answer"],
                                 _split(cells.get("similar", "")),
                                 tuple(t for t in _TAG_SPLIT.split(cells.get("tags", "")) if t),
                                 tuple(t for t in _TAG_SPLIT.split(cells.get("rooms", "")) if t), f"{name}:{line}"))
    except csv.Error as exc:
        problems.append(Problem(name, reader.line_num, f"CSV 格式有误（{exc}）"))
    return entries


def parse_synonyms(text: str, name: str, problems: list[Problem]) -> Synonyms:
    synonyms = Synonyms()
    seen: dict[str, int] = {}
    for n, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        words = [w.strip() for w in re.split(r"[=＝]", line) if w.strip()]
        if len(words) < 2:
            problems.append(Problem(name, n, "一行至少两个词，用 = 连接，例如：快递=物流"))
            continue
        short = [w for w in words if len(normalize(w)) < 2]
        if short:
            problems.append(Problem(name, n, f"“{short[0]}”只有一个字：单字会替换掉别的词里的字，请写成词"))
            continue
        clash = [w for w in words if normalize(w) in seen]
        if clash:
            problems.append(Problem(name, n, f"“{clash[0]}”已经在第 {seen[normalize(clash[0])]} 行出现过"))
            continue
        for w in words:
            seen.setdefault(normalize(w), n)
        synonyms.add_group(words)
    return synonyms


def parse_userdict(text: str, name: str, problems: list[Problem]) -> list[tuple[str, int | None]]:
    """jieba's format: one word a line, optionally its frequency (a whole number) and a part of speech."""
    words = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) > 3 or (len(parts) >= 2 and not parts[1].isdigit()):
            problems.append(Problem(name, n, "格式是：词 [词频] [词性]，例如：冷萃咖啡 10 n"))
            continue
        words.append((parts[0], int(parts[1]) if len(parts) >= 2 else None))
    return words


def load_knowledge(folder: Path, *, max_file_bytes: int = MAX_FILE_BYTES,
                   overrides: dict[str, str] | None = None) -> Knowledge:
    """Everything in ``folder``: *.md and *.csv entries (README.md excepted), synonyms.txt, userdict.txt.

    ``overrides``: file name → text to read instead of that file (which need not exist yet): how /kb add checks
    the knowledge base as it would be before writing anything."""
    kb = Knowledge()
    if not folder.is_dir():
        kb.problems.append(Problem(str(folder), 0, "知识库目录不存在"))
        return kb
    overrides = overrides or {}
    names = {p.name for p in folder.iterdir() if p.is_file()} | set(overrides)
    for name in sorted(names):
        lower = name.lower()
        if lower in NOT_ENTRIES or name.startswith("."):
            continue
        if lower.endswith((".md", ".csv")) or name in (SYNONYMS_FILE, USERDICT_FILE):
            kb.files.append(name)
            if name in overrides:
                size = len(overrides[name].encode("utf-8"))
                text = overrides[name] if size <= max_file_bytes else None
                if text is None:
                    kb.problems.append(too_big(name, size, max_file_bytes))
            else:
                text = read_text(folder / name, name, kb.problems, max_file_bytes)
            if text is None:
                continue
            if lower.endswith(".md"):
                kb.entries.extend(parse_markdown(text, name, kb.problems))
            elif lower.endswith(".csv"):
                kb.entries.extend(parse_csv(text, name, kb.problems))
            elif name == SYNONYMS_FILE:
                kb.synonyms = parse_synonyms(text, name, kb.problems)
            else:
                kb.user_words = parse_userdict(text, name, kb.problems)
    ids: dict[str, str] = {}
    for e in kb.entries:
        if e.id in ids:
            file, _, line = e.source.rpartition(":")
            kb.problems.append(Problem(file, int(line), f"编号“{e.id}”重复了（另一个在 {ids[e.id]}）"))
        ids.setdefault(e.id, e.source)
    return kb


def signature(folder: Path) -> tuple:
    """What changed on disk, cheaply: names, sizes and modification times (hot reload looks at this every few
    seconds). os.scandir: one stat per file and no pathlib objects, ~10x cheaper than Path.iterdir + stat."""
    try:
        with os.scandir(folder) as it:
            return tuple(sorted((e.name, (st := e.stat()).st_size, st.st_mtime_ns) for e in it
                                if not e.name.startswith(".") and e.is_file()))
    except OSError:
        return ()
