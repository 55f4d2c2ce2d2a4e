"""Parse what a member typed into a command: tolerant of how people really type on phones.

Copes with the full-width slash and colon (／ ：), full-width and odd spaces, quoted arguments (straight or curly
quotes, 「」), a leading @-mention of the bot and trailing @-mentions (WeChat ends each with U+2005), emoji and
very long text. It never raises: anything it can't make sense of is simply "not a command".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MAX_COMMAND_TEXT = 2000  # a command longer than this is not a command (protects the tokenizer from abuse)

_SPACES = re.compile(r"[\s\u3000\u2005\u2002\u2003\u00a0\u200b]+")
_TRANSLATE = str.maketrans({"／": "/", "：": ":", "＝": "=", "\u3000": " ", "\u2005": " ", "\u00a0": " "})
_QUOTES = {'"': '"', "'": "'", "“": "”", "‘": "’", "「": "」", "『": "』"}
# "@name" followed by the WeChat mention separator or a space, or at the end.
_TRAILING_MENTION = re.compile(r"(?:^|\s)@([^\s@]{1,64})\s*$")
_LEADING_MENTION = re.compile(r"^@([^\s@]{1,64})\s+")
_OPTION = re.compile(r"^([A-Za-z_\u4e00-\u9fff][\w\u4e00-\u9fff-]{0,31})[=:](.*)$", re.DOTALL)


@dataclass(frozen=True, slots=True)
class ParsedCommand:
    name: str  # lowercased, without the slash; "" if the text is not a slash command
    args: tuple[str, ...] = ()
    options: dict[str, str] = field(default_factory=dict)  # key=value / key:value tokens
    mentions: tuple[str, ...] = ()  # display names @-mentioned (ids come with the event)
    rest: str = ""  # the argument text after the command word, mentions removed
    slash: bool = False


def normalize(text: str) -> str:
    """Full-width punctuation to ASCII, any run of whitespace to one space, trimmed."""
    return _SPACES.sub(" ", text.translate(_TRANSLATE)).strip()


def strip_mentions(text: str) -> tuple[str, tuple[str, ...]]:
    """Remove a leading @-mention and trailing @-mentions; return the text and the names, in order."""
    raw = text.translate(_TRANSLATE)
    if "@" not in raw:  # most chatter: nothing to strip, and no regex scan to the end of the text
        return _SPACES.sub(" ", raw).strip(), ()
    names: list[str] = []
    lead = _LEADING_MENTION.match(raw.lstrip())
    if lead:
        names.append(lead.group(1))
        raw = raw.lstrip()[lead.end():]
    trailing: list[str] = []
    while (m := _TRAILING_MENTION.search(raw)) is not None:
        trailing.append(m.group(1))
        raw = raw[: m.start()]
    names.extend(reversed(trailing))
    return normalize(raw), tuple(names)


def tokenize(text: str) -> list[str]:
    """Split on spaces, keeping quoted parts together; an unclosed quote is taken literally."""
    tokens: list[str] = []
    buf: list[str] = []
    i, n = 0, len(text)
    in_token = False
    while i < n:
        ch = text[i]
        if ch == " ":
            if in_token:
                tokens.append("".join(buf))
                buf, in_token = [], False
            i += 1
            continue
        closing = _QUOTES.get(ch)
        if closing is not None:
            end = text.find(closing, i + 1)
            if end != -1:
                buf.append(text[i + 1 : end])
                in_token = True
                i = end + 1
                continue
        buf.append(ch)
        in_token = True
        i += 1
    if in_token:
        tokens.append("".join(buf))
    return tokens


def parse(text: str) -> ParsedCommand | None:
    """A slash command, or None when the text isn't one. Keywords are matched by the router on ``normalize``."""
    if not text or len(text) > MAX_COMMAND_TEXT:
        return None
    return parse_stripped(*strip_mentions(text))


def parse_stripped(body: str, mentions: tuple[str, ...]) -> ParsedCommand | None:
    """``parse`` for a text already through ``strip_mentions`` (the router strips once for commands and keywords)."""
    if not body.startswith("/"):
        return None
    body = body[1:].lstrip()
    if not body:
        return None
    # "/cmd:arg" — a colon straight after the command word separates like a space
    head, _, tail = body.partition(" ")
    if ":" in head and not head.startswith(":"):
        word, _, first = head.partition(":")
        head, tail = word, f"{first} {tail}".strip()
    name = head.lower()
    if not name or name.startswith("/"):
        return None
    rest = tail.strip()
    args: list[str] = []
    options: dict[str, str] = {}
    for token in tokenize(rest):
        m = _OPTION.match(token)
        if m and m.group(2):
            options[m.group(1).lower()] = m.group(2)
        else:
            args.append(token)
    return ParsedCommand(name=name, args=tuple(args), options=options, mentions=mentions, rest=rest, slash=True)
