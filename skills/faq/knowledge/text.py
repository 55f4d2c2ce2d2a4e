"""Text analysis for retrieval: normalise, apply the operators' synonyms, cut words, drop particles, char n-grams.

Questions are short and phrased a hundred ways, so one text gives two views that the index fuses:
- words: jieba tokens (with the operators' user dictionary) minus question particles and filler;
- chars: character unigrams and bigrams of what is left, which survive segmentation mistakes and typos in one
  character of a word (花呗怀款 still shares 花呗 and 款 with 花呗还款).
A third view, pinyin bigrams for homophone typos, was tried: it moved no figure on the dev split and pypinyin
costs 55 MB of memory at import, so it was left out.
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

import jieba

jieba.setLogLevel(logging.WARNING)  # its "Building prefix dict" chatter is not ours to log

# Question particles, politeness and filler: they tell us a message is a question, not what it is about.
PARTICLES = frozenset("""
吗 嘛 么 呢 吧 啊 呀 哇 哦 噢 喔 哈 啦 嘞 咯 诶 欸 额 嗯 哎 唉 了 的 地 得 着 过 请问 请 问下 问一下 问问
一下 下 麻烦 您好 你好 在吗 亲 亲亲 谢谢 多谢 您 你 我 我们 你们 咱 咱们 他 她 它 俺 这个 那个 这 那 就 都
也 又 才 很 挺 蛮 吧 一个 个 呐 哟 想 想要 要 能 能够 会 可以 可 帮 帮忙 帮我 给 把 被 让 跟 和 与 及 或
我要 我想 想问 请教 有没有 是不是 怎么 怎么样 怎样 咋 咋样 如何 啥 什么 为什么 为啥 怎么办 是 有 在 到 去 用 可不可以 能不能 会不会
""".split())

_PUNCT = re.compile(r"[\s\W_]+", re.UNICODE)



def normalize(text: str) -> str:
    """NFKC (full-width to half-width), lower case, punctuation and spaces out."""
    return _PUNCT.sub("", unicodedata.normalize("NFKC", text).lower())


@dataclass
class Synonyms:
    """Groups of interchangeable words; the first of a group is what all of them become."""

    canonical: dict[str, str] = field(default_factory=dict)
    _pattern: re.Pattern | None = None

    def add_group(self, words: Iterable[str]) -> None:
        words = [normalize(w) for w in words if normalize(w)]
        for w in words[1:]:
            if w != words[0]:
                self.canonical[w] = words[0]
        self._pattern = None

    def apply(self, text: str) -> str:
        if not self.canonical:
            return text
        if self._pattern is None:  # longest first, so 顺丰快递 wins over 快递
            alts = sorted(self.canonical, key=len, reverse=True)
            self._pattern = re.compile("|".join(map(re.escape, alts)))
        return self._pattern.sub(lambda m: self.canonical[m.group(0)], text)


_lock = threading.Lock()  # guards the one tokenizer: jieba's Tokenizer is not documented as thread-safe
_tokenizer: jieba.Tokenizer | None = None
_base_total = 0
_applied: dict[str, int | None] = {}  # user words added, with what jieba's dictionary had for them before


def _base_tokenizer() -> jieba.Tokenizer:
    """jieba's own dictionary, loaded once per process (about half a second and 65 MB)."""
    global _tokenizer, _base_total
    with _lock:
        if _tokenizer is None:
            tok = jieba.Tokenizer()
            tok.initialize()
            _tokenizer, _base_total = tok, tok.total
        return _tokenizer


def set_user_words(words: Iterable[tuple[str, int | None]]) -> jieba.Tokenizer:
    """Make the process's tokenizer jieba's dictionary plus exactly ``words``: the previous user words are put
    back as they were, so a reload with a shorter user dictionary really forgets the removed ones. One shared
    tokenizer, not a copy per knowledge base: a copy of the dictionary costs 15 MB, twice during a reload.
    (Queries on the old index during a reload may see the new words: harmless for the moment it lasts.)"""
    tok = _base_tokenizer()
    with _lock:
        for word, before in _applied.items():
            if before is None:
                tok.FREQ[word] = 0  # jieba's own way to delete a word (del_word); its prefixes stay, harmlessly
            else:
                tok.FREQ[word] = before
        _applied.clear()
        tok.total = _base_total
        for word, freq in words:
            if word not in _applied:
                _applied[word] = tok.FREQ.get(word) or None
            tok.add_word(word, freq)
    return tok


@dataclass(frozen=True, slots=True)
class Analysed:
    text: str  # normalised, synonyms applied
    words: tuple[str, ...]
    chars: tuple[str, ...]


class Analyzer:
    def __init__(self, synonyms: Synonyms | None = None, user_words: Iterable[tuple[str, int | None]] = ()) -> None:
        self.synonyms = synonyms or Synonyms()
        words = list(user_words) + [(w, None) for w in sorted(set(self.synonyms.canonical.values()))]
        self.tokenizer = set_user_words(words)

    def analyse(self, text: str) -> Analysed:
        norm = self.synonyms.apply(normalize(text))
        with _lock:
            tokens = self.tokenizer.lcut(norm, HMM=False)
        return _finish(norm, tokens)

    def analyse_many(self, texts: list[str]) -> list[Analysed]:
        """Many texts with one jieba call over all of them, a line each (normalised text has no whitespace, so
        the line breaks come back as separate tokens): jieba's per-call overhead was a quarter of a build."""
        norms = [self.synonyms.apply(normalize(t)) for t in texts]
        with _lock:
            tokens = self.tokenizer.lcut("\n".join(norms), HMM=False)
        out: list[Analysed] = []
        start = 0
        for i, tok in enumerate(tokens):
            if tok == "\n":
                out.append(_finish(norms[len(out)], tokens[start:i]))
                start = i + 1
        out.append(_finish(norms[len(out)], tokens[start:]))
        assert len(out) == len(texts), "a line break inside normalised text"
        return out


def _finish(norm: str, tokens: list[str]) -> Analysed:
    words = [t for t in tokens if t not in PARTICLES]
    if not words:  # a question made only of particles ("是什么") keeps them rather than become nothing
        words = tokens
    rest = "".join(words)
    chars = (*rest, *map(str.__add__, rest, rest[1:]))
    return Analysed(norm, tuple(words), chars)


def plain_chars(texts: list[str]) -> list[tuple[str, ...]]:
    """The ``chars`` view of each (normalised) text without synonyms, with the process's tokenizer as it is:
    unlike an Analyzer, this leaves the user words of the knowledge base in service alone. One jieba call."""
    if not texts:
        return []
    tok = _base_tokenizer()
    with _lock:
        tokens = tok.lcut("\n".join(texts), HMM=False)
    out: list[tuple[str, ...]] = []
    start = 0
    for i, t in enumerate(tokens):
        if t == "\n":
            out.append(_finish("", tokens[start:i]).chars)
            start = i + 1
    out.append(_finish("", tokens[start:]).chars)
    assert len(out) == len(texts), "a line break inside normalised text"
    return out
