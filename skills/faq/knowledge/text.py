"""Text analysis for retrieval: normalise, apply the operators' synonyms, cut words, drop particles, char n-grams.

Questions are short and phrased a hundred ways, so one text gives three views that the index fuses:
- words: jieba tokens (with the operators' user dictionary) minus question particles and filler;
- chars: character unigrams and bigrams of what is left, which survive segmentation mistakes and typos in one
  character of a word (花呗怀款 still shares 花呗 and 款 with 花呗还款);
- forms: every token but pure filler, question words included (在哪买 is not 怎么买), for the re-ranker only.
A view of pinyin bigrams for homophone typos was tried: it moved no figure on the dev split and pypinyin costs
55 MB of memory at import, so it was left out. Everyday Chinese is met instead where a query is read:
- colloquial words become the knowledge base's (看/瞅 → 查, 咋 → 怎么), sentence-final 不/没 (包邮不) are particles;
- Chinese numbers before a measure word become digits (三天 → 3天), on both sides;
- whole Latin words people type for Chinese ones (jd, wx, zfb) become those words;
- a query's run of characters that is no dictionary word and sounds like a word of the knowledge base becomes that
  word (推货 → 退货, 运废 → 运费): ``Lexicon``, from a 22 KB pinyin table of the GB 2312 characters (pinyin.txt,
  generated from pypinyin by scripts/make_pinyin_table.py; pypinyin is not needed to run);
- place names the knowledge base never mentions are dropped from a query (寄到北京要几天 asks how long delivery takes;
  operators map places the answers single out, 新疆 → 偏远地区, in synonyms.txt).
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import jieba

jieba.setLogLevel(logging.WARNING)  # its "Building prefix dict" chatter is not ours to log

# Question particles, politeness and filler: they tell us a message is a question, not what it is about.
PARTICLES = frozenset("""
吗 嘛 么 呢 吧 啊 呀 哇 哦 噢 喔 哈 啦 嘞 咯 诶 欸 额 嗯 哎 唉 了 的 地 着 过 请问 请 问下 问一下 问问
一下 下 麻烦 您好 你好 在吗 亲 亲亲 谢谢 多谢 您 你 我 我们 你们 咱 咱们 他 她 它 俺 这个 那个 这 那 就 都
也 又 才 很 挺 蛮 吧 一个 个 呐 哟 想 想要 要 能 能够 会 可以 可 帮 帮忙 帮我 给 把 被 让 跟 和 与 及 或
我要 我想 想问 请教 有没有 是不是 怎么 怎么样 怎样 咋 咋样 如何 啥 什么 为什么 为啥 怎么办 是 有 在 到 去 可不可以 能不能 会不会
支持 咋办 咋整 咋弄 咋搞 怎么弄 怎么搞 怎么整 弄 搞 行不行 好不好 可以吗 能吗 行吗 呗 不咯
""".split())

# What says nothing about a question even beside the others: the "forms" view keeps everything else (question
# words and light verbs: 怎么得积分 is not 积分有什么用, 在哪买 not 怎么买).
FILLER = frozenset("""
吗 嘛 么 呢 吧 啊 呀 哇 哦 噢 喔 哈 啦 嘞 咯 诶 欸 额 嗯 哎 唉 了 的 请问 请 问下 问一下 问问 一下 下 麻烦 您好 你好
在吗 亲 亲亲 谢谢 多谢 您 你 我 我们 你们 咱 咱们 俺 呗 呐 哟 就 都 也 又 才 很 挺 蛮 一个 个
""".split())

_SINGLE_PARTICLES = frozenset(w for w in PARTICLES if len(w) == 1)

# Colloquial words as the knowledge base writes them (a token of the query or an entry becomes its value, split
# on spaces: jieba cuts 什么时候 in two, 啥时候 in one).
COLLOQUIAL = {"看": "查", "瞅": "查", "瞧": "查", "看看": "查", "查看": "查", "查查": "查", "查询": "查", "看下": "查",
              "咋": "怎么", "啥": "什么", "如何": "怎么", "怎样": "怎么", "咋办": "怎么办", "咋样": "怎么样",
              "拍": "下单", "拍下": "下单", "得": "获得", "拿": "取", "升": "升级",
              "干啥": "用", "干什么": "用", "干嘛": "用", "能干": "用", "啥时候": "什么 时候", "啥时": "什么 时候", "几时": "什么 时候", "多会儿": "什么 时候"}

_EXPAND = {k: tuple(v.split()) for k, v in COLLOQUIAL.items()}

# Latin words people type for Chinese ones; only a whole Latin word is replaced (so "vip" or "jdk" stay).
ABBREVIATIONS = {"jd": "京东", "wx": "微信", "vx": "微信", "tb": "淘宝", "zfb": "支付宝", "sf": "顺丰", "kd": "快递",
                 "xcx": "小程序", "gzh": "公众号", "kf": "客服", "yhq": "优惠券"}
_LATIN = re.compile(r"[a-z]+")

# Chinese numbers before a measure word: 三天 → 3天, 两件 → 2件, 十五块 → 15块 (not 个: 一个 is filler).
_CN_NUMBER = re.compile(r"([零一二两三四五六七八九十]{1,3})(?=[天次件元块号点年月周日包盒袋瓶张分小斤份])")
_CN_DIGIT = {c: i for i, c in enumerate("零一二三四五六七八九")} | {"两": 2}

# A question ending in 不/没/没有 is asking yes or no (包邮不 = 包邮吗); 对不/要不 and the like keep theirs.
_TAIL_NOT = re.compile(r"(?<=[\u4e00-\u9fff])(?<![对要是好行能可会还])(?:不|没|没有|否)$")

# Provinces and large cities: in a query they say where, rarely what. Dropped when the knowledge base has none of
# them (its operators name the places that matter, e.g. 新疆 → 偏远地区 in synonyms.txt).
PLACES = frozenset("""
北京 天津 上海 重庆 河北 山西 辽宁 吉林 黑龙江 江苏 浙江 安徽 福建 江西 山东 河南 湖北 湖南 广东 海南 四川 贵州 云南
陕西 甘肃 青海 台湾 内蒙古 内蒙 广西 西藏 宁夏 新疆 香港 澳门 广州 深圳 杭州 南京 苏州 成都 武汉 西安 长沙 郑州 青岛
济南 沈阳 大连 哈尔滨 长春 昆明 贵阳 南宁 福州 厦门 合肥 南昌 石家庄 太原 兰州 乌鲁木齐 拉萨 呼和浩特 银川 西宁 海口
三亚 宁波 无锡 东莞 佛山 珠海 温州 烟台 徐州 常州 南通 嘉兴 绍兴 台州 金华 泉州 唐山 保定 洛阳 北上广 江浙沪 外地 本地
""".split())

_PUNCT = re.compile(r"[\s\W_]+", re.UNICODE)



def normalize(text: str) -> str:
    """NFKC (full-width to half-width), lower case, punctuation and spaces out."""
    return _PUNCT.sub("", unicodedata.normalize("NFKC", text).lower())


def _cn_number(m: re.Match) -> str:
    s = m.group(1)
    if "零" in s or len(s) > 1 and "十" not in s:
        return s  # 一二 or 三零: not a number a person writes before a measure word
    if "十" in s:
        tens, _, ones = s.partition("十")
        if "十" in ones or (tens and tens not in _CN_DIGIT) or (ones and ones not in _CN_DIGIT):
            return s
        return str((_CN_DIGIT[tens] if tens else 1) * 10 + (_CN_DIGIT[ones] if ones else 0))
    return str(_CN_DIGIT[s])


def everyday(norm: str) -> str:
    """Normalised text as the knowledge base would write it: whole Latin abbreviations spelled out, Chinese
    numbers before a measure word as digits, a yes-or-no tail (包邮不) dropped."""
    if _LATIN.search(norm):
        norm = _LATIN.sub(lambda m: ABBREVIATIONS.get(m.group(0), m.group(0)), norm)
    norm = _CN_NUMBER.sub(_cn_number, norm)
    if len(norm) > 2:
        norm = _TAIL_NOT.sub("", norm)
    return norm


@functools.cache
def pinyin_of() -> dict[str, str]:
    """Character → toneless pinyin for the GB 2312 characters (pinyin.txt), read once."""
    table: dict[str, str] = {}
    for line in Path(__file__).with_name("pinyin.txt").read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            sound, _, chars = line.partition(" ")
            table.update(dict.fromkeys(chars, sound))
    return table


class Lexicon:
    """The words of one knowledge base, to read a query in its terms: a run of characters that is not a word
    (neither the knowledge base's nor jieba's dictionary's) but sounds exactly like one word of the knowledge base
    is that word typed with the wrong characters (推货 → 退货). Two words that sound the same are both left alone."""

    def __init__(self, words: Iterable[str], dictionary: dict[str, int]) -> None:
        table = pinyin_of()
        self.words = frozenset(words)
        self.dictionary = dictionary
        sounds: dict[tuple[str, ...], str | None] = {}
        for w in self.words:
            if 2 <= len(w) <= 4 and all(c in table for c in w):
                key = tuple(table[c] for c in w)
                sounds[key] = w if sounds.get(key, w) == w else None
        self.sounds = {k: w for k, w in sounds.items() if w is not None}

    def repair(self, tokens: list[str]) -> str | None:
        """The text of ``tokens`` with homophone typos replaced, or None when there is none. Only where jieba
        found no word (a run of single characters: 推/货) and never over a particle (店里有 is not 店理由)."""
        if not self.sounds:
            return None
        table = pinyin_of()
        out: list[str] = []
        changed = False
        i = 0
        while i < len(tokens):
            j = i
            while j < len(tokens) and len(tokens[j]) == 1:
                j += 1
            if j - i < 2:
                out.append(tokens[i])
                i += 1
                continue
            run = "".join(tokens[i:j])
            fixed = self._repair_run(run, table)
            changed = changed or fixed != run
            out.append(fixed)
            i = j
        return "".join(out) if changed else None

    def _repair_run(self, run: str, table: dict[str, str]) -> str:
        out: list[str] = []
        i = 0
        while i < len(run):
            for size in (4, 3, 2):
                part = run[i:i + size]
                if (len(part) < size or part in self.words or self.dictionary.get(part)
                        or any(c in _SINGLE_PARTICLES or c not in table for c in part)):
                    continue
                word = self.sounds.get(tuple(table[c] for c in part))
                if word is not None:
                    out.append(word)
                    i += size
                    break
            else:
                out.append(run[i])
                i += 1
        return "".join(out)


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
    forms: tuple[str, ...] = ()  # every token but filler: the question words too


class Analyzer:
    def __init__(self, synonyms: Synonyms | None = None, user_words: Iterable[tuple[str, int | None]] = ()) -> None:
        self.synonyms = synonyms or Synonyms()
        words = list(user_words) + [(w, None) for w in sorted(set(self.synonyms.canonical.values()))]
        self.tokenizer = set_user_words(words)

    def prepare(self, text: str) -> str:
        """Normalised, everyday forms and the operators' synonyms applied."""
        return self.synonyms.apply(everyday(normalize(text)))

    def analyse(self, text: str, lexicon: Lexicon | None = None) -> Analysed:
        norm = self.prepare(text)
        with _lock:
            tokens = self.tokenizer.lcut(norm, HMM=False)
            fixed = lexicon.repair(tokens) if lexicon is not None else None
            if fixed is not None:
                norm, tokens = fixed, self.tokenizer.lcut(fixed, HMM=False)
        return _finish(norm, tokens)

    def lexicon(self, words: Iterable[str]) -> Lexicon:
        return Lexicon(words, self.tokenizer.FREQ)

    def analyse_many(self, texts: list[str]) -> list[Analysed]:
        """Many texts with one jieba call over all of them, a line each (normalised text has no whitespace, so
        the line breaks come back as separate tokens): jieba's per-call overhead was a quarter of a build."""
        norms = [self.prepare(t) for t in texts]
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
    tokens = [w for t in tokens for w in _EXPAND.get(t, (t,))]
    words = [t for t in tokens if t not in PARTICLES]
    if not words:  # a question made only of particles ("是什么") keeps them rather than become nothing
        words = tokens
    return Analysed(norm, tuple(words), _chars(words), tuple(t for t in tokens if t not in FILLER) or tuple(words))


def _chars(words: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    rest = "".join(words)
    return (*rest, *map(str.__add__, rest, rest[1:]))


def without_places(q: Analysed, known: dict | frozenset) -> Analysed:
    """The query without the place names the knowledge base does not know (see PLACES)."""
    words = [w for w in q.words if w not in PLACES or w in known]
    if len(words) == len(q.words) or not words:
        return q
    forms = tuple(w for w in q.forms if w not in PLACES or w in known)
    return replace(q, words=tuple(words), chars=_chars(words), forms=forms or tuple(words))


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
