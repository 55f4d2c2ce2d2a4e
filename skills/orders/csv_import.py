"""The CSV import (``python -m bot orders import FILE.csv``): a file as operators export it from Excel or a shop
system, read into order updates; the good rows are applied, every problem is reported by line and field.

Read here rather than by the csv module alone, so that what Excel and hand edits produce costs no good row:

- the text is UTF-8 (with or without BOM) or else GB18030 (a superset of GBK, Excel's default on Chinese Windows);
- a field longer than ``MAX_FIELD`` is refused with its line (no process-wide ``csv.field_size_limit``);
- an unclosed quote, which the csv module lets swallow every line up to the next quote (or the end), is reported
  at the line where it opened, and the lines after that one are read as rows again. A quoted field may still
  span lines (Excel's line breaks in a cell), unless a line it would take in reads as a whole row by itself.

The fields are split as the csv module's default (excel) dialect does: ``,``, ``"`` quoting with ``""`` for a
quote, a quote elsewhere in a field taken as it is.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bot.context import Services
from bot.http import FieldError
from skills.orders import apply_order
from skills.orders.input import FIELDS, parse_order

MAX_FIELD = 10_000  # characters: the longest valid field (50 items of 100 characters) is about half of it
# one physical line with its ending, split as open(newline="") does
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


@dataclass(frozen=True)
class Problem:
    line: int
    field: str  # a column, or "row", "header", "file"
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


@dataclass
class ImportReport:
    applied: int = 0
    duplicate: int = 0
    stale: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)  # (line number, "field: problem")
    encoding: str = "UTF-8"  # how the file was read

    @property
    def bad_rows(self) -> int:
        return sum(1 for line, _ in self.errors if line > 1)


# -- decoding -------------------------------------------------------------------------------------------------------

def decode(data: bytes) -> tuple[str, str, list[Problem]]:
    """(text, encoding, problems): UTF-8 when the whole file is; else the encoding most of its non-ASCII lines are
    in, UTF-8 or GB18030. A line in neither, or in the other one (a GBK row pasted into a UTF-8 file), is a problem
    and empty in the text (its line ending kept, so the line numbers stay): it would be read as nonsense."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "", "UTF-16", [Problem(1, "file", 'is UTF-16 text: save it as "CSV UTF-8" (or CSV) instead')]
    bom = data.startswith(codecs.BOM_UTF8)
    if bom:
        data = data[len(codecs.BOM_UTF8):]
    try:
        return data.decode("utf-8"), "UTF-8 with BOM" if bom else "UTF-8", []
    except UnicodeDecodeError:
        pass
    lines = data.splitlines(keepends=True)
    utf8 = [not raw.isascii() and _is_utf8(raw) for raw in lines]
    not_utf8 = [not raw.isascii() and not ok for raw, ok in zip(lines, utf8)]
    if bom or sum(utf8) >= sum(not_utf8):  # a UTF-8 file with a few bad lines
        encoding, name, wrong = "utf-8", "UTF-8 with BOM" if bom else "UTF-8", not_utf8
        why = "is not valid UTF-8 while the rest of the file is"
    else:
        encoding, name, wrong = "gb18030", "GB18030", utf8
        why = "is UTF-8 while the rest of the file is GB18030 (GBK)"
    problems: list[Problem] = []
    text = []
    for number, (raw, skip) in enumerate(zip(lines, wrong), 1):
        line = None if skip else _decoded(raw, encoding)
        if line is None:
            message = why if skip else "is neither UTF-8 nor GB18030 (GBK) text"
            problems.append(Problem(number, "file", f"{message}: the row is skipped (save the whole file as "
                                                    "CSV UTF-8)"))
            line = raw[len(raw.rstrip(b"\r\n")):].decode("ascii")
        text.append(line)
    return "".join(text), name, problems


def _decoded(raw: bytes, encoding: str) -> str | None:
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError:
        return None


def _is_utf8(raw: bytes) -> bool:
    return _decoded(raw, "utf-8") is not None


# -- records --------------------------------------------------------------------------------------------------------

class _Unclosed(Exception):
    def __init__(self, line_index: int, column: int) -> None:
        self.line_index, self.column = line_index, column


def _fields_alone(body: str) -> int:
    """How many fields one line has read by itself (an open quote runs to its end)."""
    count, quoted, at_start, after_quote = 1, False, True, False
    for ch in body:
        if quoted:
            if after_quote:
                after_quote = False
                if ch == '"':
                    continue
                quoted = False
            elif ch == '"':
                after_quote = True
                continue
            else:
                continue
        if ch == ",":
            count, at_start = count + 1, True
        elif ch == '"' and at_start:
            quoted, at_start = True, False
        else:
            at_start = False
    return count


def _record(lines: list[str], start: int, width: int) -> tuple[list[str], int]:
    """The fields of the record that begins at ``lines[start]`` and the index of the line after it. Raises
    _Unclosed when a quoted field runs to the end of the file, past MAX_FIELD, or into a line that reads as a
    whole row by itself."""
    fields: list[str] = []
    current: list[str] = []
    quoted = after_quote = False
    at_start = True
    opened = (start, 0)  # (line index, column) of the quote being read
    i = start
    while i < len(lines):
        line = lines[i]
        body = line.rstrip("\r\n")
        if not quoted and '"' not in body:  # most lines: no quoting at all
            current.append(body)
            fields += "".join(current).split(",")
            return fields, i + 1
        for ch in body:
            if quoted:
                if after_quote:
                    after_quote = False
                    if ch == '"':  # "" inside quotes: one quote
                        current.append(ch)
                        continue
                    quoted = False  # the quote closed the field: ch is read as outside quotes
                elif ch == '"':
                    after_quote = True
                    continue
                else:
                    current.append(ch)
                    continue
            if ch == ",":
                fields.append("".join(current))
                current, at_start = [], True
            elif ch == '"' and at_start:
                quoted, at_start, opened = True, False, (i, len(fields))
            else:
                current.append(ch)
                at_start = False
        if quoted and after_quote:  # the field's closing quote ended the line
            quoted = after_quote = False
        if not quoted:
            fields.append("".join(current))
            return fields, i + 1
        current.append(line[len(body):])  # the line break is part of the quoted field
        i += 1
        if (i == len(lines) or len(current) > MAX_FIELD  # pieces: characters and line breaks
                or (width > 1 and _fields_alone(lines[i].rstrip("\r\n")) >= width)):
            raise _Unclosed(*opened)
    raise _Unclosed(*opened)  # pragma: no cover  (the loop raises before running out)


def read_rows(text: str) -> Iterator[tuple[int, dict[str, str]] | Problem]:
    """The rows of a CSV text with a header, each (line number, {column: stripped value}), and its problems."""
    lines = _LINE.findall(text)
    i = 0
    while i < len(lines) and not lines[i].strip():
        i += 1
    header_line = i + 1
    try:
        header, i = _record(lines, i, 0) if i < len(lines) else ([], i)
    except _Unclosed as exc:
        yield Problem(exc.line_index + 1, "header", "has an unclosed quote")
        return
    columns = [name.strip() for name in header]
    if "order_id" not in columns:
        yield Problem(header_line, "header", f"must name the columns ({', '.join(FIELDS)})")
        return
    unknown = [c for c in columns if c and c not in FIELDS]
    if unknown:
        yield Problem(header_line, "header", f"unknown columns ignored: {', '.join(unknown)}")
    width = len(columns)
    while i < len(lines):
        start = i
        try:
            values, i = _record(lines, start, width)
        except _Unclosed as exc:
            name = columns[exc.column] if exc.column < width else "row"
            yield Problem(exc.line_index + 1, name, "the quote opened on this line is not closed; the row is "
                                                    "skipped and the lines after it are read as rows")
            i = exc.line_index + 1
            continue
        if not any(v.strip() for v in values):  # a blank line, or Excel's empty row of commas
            continue
        if len(values) > width:
            yield Problem(start + 1, "row", "more values than columns")
            continue
        too_long = next((n for n, v in enumerate(values) if len(v) > MAX_FIELD), None)
        if too_long is not None:
            name = columns[too_long] or f"column {too_long + 1}"
            yield Problem(start + 1, name, f"is longer than {MAX_FIELD} characters")
            continue
        yield start + 1, {name: value.strip() for name, value in zip(columns, values) if name}


# -- importing ------------------------------------------------------------------------------------------------------

async def import_csv(services: Services, path: str | Path) -> ImportReport:
    """Import a CSV with a header row (columns as in the API; items separated by ;). Good rows are applied,
    bad ones reported by line; each row is idempotent like a webhook. Raises OSError when the file can't be read."""
    text, encoding, problems = decode(Path(path).read_bytes())
    report = ImportReport(encoding=encoding, errors=[(p.line, str(p)) for p in problems])
    for item in read_rows(text):
        if isinstance(item, Problem):
            report.errors.append((item.line, str(item)))
            continue
        line, row = item
        try:
            result = await apply_order(services, parse_order(row), "csv")
        except FieldError as exc:
            report.errors.append((line, str(exc)))
            continue
        setattr(report, result.outcome, getattr(report, result.outcome) + 1)
    report.errors.sort(key=lambda e: e[0])
    return report
