"""Small talk (闲聊): greetings, thanks, acknowledgements, emoji, "are you a bot", farewells.

Such a message is not a question for the knowledge base: it gets a short friendly answer (1-on-1, or in a group
when the bot is @-mentioned), never the handoff and never a miss. The phrases and answers are the operators', in
``knowledge/闲聊.txt`` (format in knowledge/README.md); without that file the defaults below apply.

A message is small talk only when all of it is one of the phrases (after punctuation, spaces, case and a few
trailing particles are ignored), or only emoji: "你好，怎么退货" is a question, not a greeting.
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from dataclasses import dataclass
from pathlib import Path

EMOJI_TOKEN = "<表情>"  # in a 说法 line: a message of emoji only
MAX_PHRASE = 20  # characters: longer is a sentence, not small talk
MAX_FILE_BYTES = 100_000

DEFAULT_TEXT = """\
[问候]
说法：你好；您好；你好呀；在吗；在么；在不在；有人吗；hi；hello；哈喽；嗨；早；早上好；中午好；下午好；晚上好
回答：你好呀～有什么想问的直接发给我就好。

[感谢]
说法：谢谢；多谢；谢啦；谢谢你；感谢；非常感谢；thx；thanks；thank you；3q
回答：不客气～还有问题随时问我。

[收到]
说法：好的；好；嗯；嗯嗯；收到；ok；okay；知道了；明白了；了解；好滴；好嘞；行
回答：好的～

[表情]
说法：<表情>
回答：😊

[是不是机器人]
说法：你是机器人吗；你是真人吗；是机器人吗；是真人吗；你是人吗；机器人吗；真人吗；你是谁
回答：我是自动回答的小助手（机器人）～常见问题可以直接问我，发 /help 看看我还能做什么。

[告别]
说法：再见；拜拜；拜；bye；byebye；晚安；下次见
回答：再见～有需要随时找我。
"""

_IGNORED = re.compile(r"[\s\u2005\u3000?？!！。，,.、~～…·:：;；\"'“”‘’()（）【】\[\]]+")
_PARTICLES = "呀啊哈啦呢哦噢嘛喔哇吖"
_SECTION = re.compile(r"^\[(.+)\]$")


@dataclass(frozen=True)
class Problem:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass(frozen=True)
class Group:
    name: str
    phrases: tuple[str, ...]
    answers: tuple[str, ...]
    emoji: bool = False  # answers messages of emoji only


def normalize(text: str) -> str:
    return _IGNORED.sub("", unicodedata.normalize("NFKC", text)).lower()


def is_emoji_only(text: str) -> bool:
    """Emoji (and their joiners, variation selectors, skin tones) and nothing else but spaces and punctuation."""
    seen = False
    for ch in text:
        cp = ord(ch)
        if ch.isspace() or cp in (0x200D, 0xFE0F, 0xFE0E, 0x20E3) or 0x1F3FB <= cp <= 0x1F3FF:
            continue
        if (0x1F000 <= cp <= 0x1FAFF or 0x2600 <= cp <= 0x27BF or 0x2B00 <= cp <= 0x2BFF
                or 0x2190 <= cp <= 0x21FF or 0x3297 <= cp <= 0x3299 or cp in (0x00A9, 0x00AE, 0x203C, 0x2049)):
            seen = True
            continue
        if ch in "[]":  # WeChat's own faces arrive as "[微笑]": handled below
            continue
        return False
    return seen


_WECHAT_FACE = re.compile(r"^(?:\[[\u4e00-\u9fffA-Za-z]{1,4}\]\s*)+$")  # [微笑][强] as WeChat sends its faces


class SmallTalk:
    """The parsed groups; ``answer(text, who)`` is the reply or None."""

    def __init__(self, groups: list[Group]) -> None:
        self.groups = groups
        self._by_phrase: dict[str, Group] = {}
        self._emoji: Group | None = None
        for g in groups:
            if g.emoji and self._emoji is None:
                self._emoji = g
            for p in g.phrases:
                self._by_phrase.setdefault(normalize(p), g)

    def match(self, text: str) -> Group | None:
        stripped = text.strip()
        if not stripped or len(stripped) > 2 * MAX_PHRASE:
            return None
        if self._emoji is not None and (is_emoji_only(stripped) or _WECHAT_FACE.match(stripped)):
            return self._emoji
        key = normalize(stripped)
        while key:
            group = self._by_phrase.get(key)
            if group is not None:
                return group
            if key[-1] not in _PARTICLES:
                return None
            key = key[:-1]  # 你好呀 → 你好, 好的哈 → 好的
        return None

    def answer(self, text: str, who: str) -> str | None:
        """Deterministic: the same member saying the same thing gets the same answer (no randomness)."""
        group = self.match(text)
        if group is None:
            return None
        return group.answers[zlib.crc32(f"{who}\n{text}".encode()) % len(group.answers)]


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def parse(text: str) -> tuple[SmallTalk, list[Problem]]:
    """Groups from the file's text: ``[名称]``, then ``说法：a；b`` and ``回答：…`` lines (several 回答 lines: one
    of them is picked per member and message)."""
    groups: list[Group] = []
    problems: list[Problem] = []
    owner: dict[str, tuple[str, int]] = {}
    current: dict | None = None

    def finish() -> None:
        if current is None:
            return
        if not current["phrases"] and not current["emoji"]:
            problems.append(Problem(current["line"], f"[{current['name']}] has no 说法 line"))
        elif not current["answers"]:
            problems.append(Problem(current["line"], f"[{current['name']}] has no 回答 line"))
        else:
            groups.append(Group(current["name"], tuple(current["phrases"]), tuple(current["answers"]),
                                current["emoji"]))

    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if _CONTROL.search(line):  # a NUL or another control character would reach members as it is
            problems.append(Problem(n, "contains a control character (such as NUL); line skipped"))
            continue
        m = _SECTION.match(line)
        if m:
            finish()
            current = {"name": m.group(1).strip(), "line": n, "phrases": [], "answers": [], "emoji": False}
            continue
        key, sep, value = line.replace("：", ":", 1).partition(":")
        key, value = key.strip(), value.strip()
        if current is None or not sep or key not in ("说法", "回答"):
            problems.append(Problem(n, "expected [名称], 说法：… or 回答：…"))
            continue
        if key == "回答":
            if not value:
                problems.append(Problem(n, "回答 is empty"))
            elif len(value) > 500:
                problems.append(Problem(n, "回答 is longer than 500 characters"))
            else:
                current["answers"].append(value)
            continue
        for phrase in (p.strip() for p in re.split(r"[；;|]", value)):
            if not phrase:
                continue
            if phrase == EMOJI_TOKEN:
                current["emoji"] = True
                continue
            key_ = normalize(phrase)
            if not key_:
                problems.append(Problem(n, f"说法 「{phrase}」 is only punctuation"))
            elif len(key_) > MAX_PHRASE:
                problems.append(Problem(n, f"说法 「{phrase[:30]}」 is longer than {MAX_PHRASE} characters"))
            elif key_ in owner and owner[key_][0] != current["name"]:
                problems.append(Problem(n, f"说法 「{phrase}」 is in [{owner[key_][0]}] too (line {owner[key_][1]})"))
            else:
                owner.setdefault(key_, (current["name"], n))
                current["phrases"].append(phrase)
    finish()
    return SmallTalk(groups), problems


def load(path: Path) -> tuple[SmallTalk, list[Problem]]:
    """The file's groups, or the defaults when it does not exist. A file with problems still serves its good
    groups; the problems are the operators' to fix (kb check, /kb reload)."""
    if not path.is_file():
        return parse(DEFAULT_TEXT)
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            return parse(DEFAULT_TEXT)[0], [Problem(0, f"larger than {MAX_FILE_BYTES} bytes; defaults used")]
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        return parse(DEFAULT_TEXT)[0], [Problem(0, "not UTF-8; defaults used")]
    except OSError as exc:
        return parse(DEFAULT_TEXT)[0], [Problem(0, f"cannot be read ({exc.strerror}); defaults used")]
    return parse(text)


def mtime(path: Path) -> int | None:
    """The file's modification time in nanoseconds (None: absent or unreadable), to see it changed."""
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None
