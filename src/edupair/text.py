"""Text normalization (ANNOTATION_GUIDE.md "Text before annotation") with an exact offset map.

Raw web text becomes normalized text: boilerplate lines and watermark tokens dropped, pinyin
glosses removed, Traditional converted to Simplified (OpenCC, character by character so the
map stays exact and context-free), full-width ASCII made half-width, whitespace collapsed.
Every normalized character records the raw range it came from.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left, bisect_right
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache

import opencc

_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_TONED = "a-zāáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜüńňǹḿ\u0300-\u036f"
# A gloss: a parenthesised lowercase Latin syllable right after a CJK char, '?' or U+FFFD.
GLOSS = re.compile(rf"(?<=[{_CJK}?\ufffd])[(（][{_TONED}]{{1,8}}[)）]")

_NAV = re.compile(r"(>>|»|\s>\s.*\s>\s|^(首页|返回首页|当前位置|您的位置|位置)\s*[:>])")
_META = re.compile(
    r"^[(]?\s*(本文|文章)?(来源|来源于|作者|编辑|责编|责任编辑|审核|审校|通讯员|投稿|投稿邮箱|热线|电话|邮箱|"
    r"浏览|点击|日期|发布时间|发布日期|字号|说明)\s*[:]"
    r"|(发布时间|发布日期|浏览量|阅读量|责任编辑|责编)\s*[:]|^[(]责任编辑"
    r"|\d{4}年\d{2}月\d{2}日\d{2}:\d{2}\s*\|"
)
_COPYRIGHT = re.compile(r"(版权所有|copyright|©|ICP备|备案号|技术支持|联系我们|关于我们|网站地图|许可证|"
                        r"本站|广告联系|QQ\d{5,}|QQ群)", re.I)
_RELATED_HEAD = re.compile(r"^\s*[-·•]?\s*(相关|推荐|延伸|最新|最火|热点|热门|更多|往期|一周热点|进入|你可能|"
                           r"没有相关)\S{0,12}(新闻|阅读|文章|链接|报道|推荐|图文|视频|资讯|喜欢)")
_LIST_ITEM = re.compile(r"^\s*[-·•▪►]\s*")
_TRAILING_DATE = re.compile(r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}\s*$")
_FILE_NAME = re.compile(r"^\S+\.(jpe?g|png|gif|bmp|webp)$", re.I)
_UI_WORDS = frozenset({"小字号", "大字号", "中字号", "打印", "关闭", "分享到", "分享", "返回顶部", "扫一扫",
                       "打印本页", "关闭窗口", "收藏", "top", "-", "|", "分享让更多人看到"})
_MASTHEAD = re.compile(r"^\S{1,10}(网|在线|频道|门户|新闻网|教育网)$")
_SENTENCE_END = "。！？!?；;"


@lru_cache(maxsize=4)
def _converter(config: str) -> opencc.OpenCC:
    """An OpenCC converter (built once per config, e.g. t2s or s2t)."""
    return opencc.OpenCC(config)


@lru_cache(maxsize=131072)
def convert_char(char: str, config: str = "t2s") -> str:
    """One character converted by OpenCC, or itself when the conversion would change its length."""
    out = _converter(config).convert(char)
    return out if len(out) == 1 else char


def to_simplified(char: str) -> str:
    """One character converted to Simplified (context-free, so offsets stay exact)."""
    return convert_char(char, "t2s")


def to_halfwidth(char: str) -> str:
    """Full-width ASCII (U+FF01–FF5E) and the ideographic space mapped to half-width."""
    code = ord(char)
    if 0xFF01 <= code <= 0xFF5E:
        return chr(code - 0xFEE0)
    return " " if char == "\u3000" else char


@dataclass(frozen=True)
class Boilerplate:
    """What a page's boilerplate is: whole lines to drop and watermark tokens to cut out."""

    lines: frozenset[str] = frozenset()
    watermarks: tuple[str, ...] = ()


def _is_boilerplate_line(line: str) -> bool:
    """Navigation, meta, copyright, link-list and UI lines (one stripped line of raw text)."""
    if line.lower() in _UI_WORDS or _FILE_NAME.match(line) or line.count("|") >= 3:
        return True
    if _NAV.search(line) or _META.search(line) or _COPYRIGHT.search(line) or _MASTHEAD.match(line):
        return True
    if _RELATED_HEAD.match(line) and len(line) <= 30:
        return True
    short_link = len(line) <= 80 and not any(p in line for p in _SENTENCE_END)
    return short_link and bool(_TRAILING_DATE.search(line) or _LIST_ITEM.match(line))


def detect_boilerplate(raw: str, min_repeats: int = 3, min_watermark: int = 5,
                       max_watermark: int = 40) -> Boilerplate:
    """Find a page's boilerplate: watermark tokens (a short line that also recurs at the end of
    other lines, `min_repeats` times in all), meta and navigation lines, link lists."""
    stripped = [line.strip() for line in raw.splitlines()]
    whole = Counter(line for line in stripped if min_watermark <= len(line) <= max_watermark
                    and not any(p in line for p in _SENTENCE_END))
    watermarks = tuple(sorted(
        (t for t in whole if sum(line.endswith(t) for line in stripped) >= min_repeats),
        key=len, reverse=True))
    drop: set[str] = set()
    in_related = False
    for line in stripped:
        cleaned = _rule_view(line, watermarks)
        if not cleaned:
            continue
        if _RELATED_HEAD.match(cleaned) and len(cleaned) <= 30:
            in_related = True
        elif in_related and (len(cleaned) > 80 or any(p in cleaned for p in _SENTENCE_END)):
            in_related = False
        if in_related or _is_boilerplate_line(cleaned):
            drop.add(line)
    return Boilerplate(frozenset(drop), watermarks)


def _rule_view(line: str, watermarks: tuple[str, ...]) -> str:
    """A raw line as the boilerplate rules see it: no watermarks or glosses, Simplified, half-width."""
    line = GLOSS.sub("", _cut_watermarks(line, watermarks))
    return "".join(to_simplified(to_halfwidth(c)) for c in line).strip()


def _cut_watermarks(line: str, watermarks: tuple[str, ...]) -> str:
    """The line with every watermark token removed."""
    for token in watermarks:
        line = line.replace(token, "")
    return line


@dataclass
class Normalized:
    """Normalized text plus, per character, the raw range [starts[i], ends[i]) it came from."""

    raw: str
    text: str
    starts: list[int] = field(repr=False)
    ends: list[int] = field(repr=False)

    def to_raw(self, start: int, end: int) -> tuple[int, int]:
        """Raw offsets of the normalized span [start, end)."""
        if not 0 <= start < end <= len(self.text):
            raise ValueError(f"span [{start}, {end}) outside normalized text of length {len(self.text)}")
        return self.starts[start], self.ends[end - 1]

    def from_raw(self, raw_start: int, raw_end: int) -> tuple[int, int]:
        """Normalized offsets covering the raw span [raw_start, raw_end) (chars that were kept)."""
        start = bisect_right(self.ends, raw_start)
        end = bisect_left(self.starts, raw_end)
        return start, max(start, end)


class _Builder:
    """Accumulates normalized characters with their raw ranges."""

    def __init__(self) -> None:
        self.chars: list[str] = []
        self.starts: list[int] = []
        self.ends: list[int] = []

    def add(self, char: str, start: int, end: int) -> None:
        self.chars.append(char)
        self.starts.append(start)
        self.ends.append(end)

    def extend_last(self, end: int) -> None:
        """Let the last character's raw range swallow removed text (a gloss)."""
        if self.ends:
            self.ends[-1] = end

    def last(self) -> str:
        return self.chars[-1] if self.chars else ""


def _removed_ranges(line: str, watermarks: tuple[str, ...]) -> list[tuple[int, int, bool]]:
    """(start, end, is_gloss) ranges of a line to drop: watermark tokens and pinyin glosses."""
    ranges: list[tuple[int, int, bool]] = []
    for token in watermarks:
        pos = line.find(token)
        while pos >= 0:
            if not any(s < pos + len(token) and pos < e for s, e, _ in ranges):
                ranges.append((pos, pos + len(token), False))
            pos = line.find(token, pos + len(token))
    for match in GLOSS.finditer(line):
        if not any(s < match.end() and match.start() < e for s, e, _ in ranges):
            ranges.append((match.start(), match.end(), True))
    return sorted(ranges)


def _normalize_line(line: str, offset: int, watermarks: tuple[str, ...], out: _Builder) -> None:
    """Append one raw line's normalized characters (no leading/trailing or doubled spaces)."""
    removed = _removed_ranges(line, watermarks)
    pending_space: int | None = None
    i, r = 0, 0
    while i < len(line):
        if r < len(removed) and i == removed[r][0]:
            if removed[r][2]:
                out.extend_last(offset + removed[r][1])
            i, r = removed[r][1], r + 1
            continue
        char = to_halfwidth(line[i])
        if char.isspace() or unicodedata.category(char) in ("Cc", "Cf"):
            if char.isspace() and out.last() not in ("", "\n"):
                pending_space = offset + i if pending_space is None else pending_space
            i += 1
            continue
        if pending_space is not None:
            out.add(" ", pending_space, pending_space + 1)
            pending_space = None
        out.add(to_simplified(char), offset + i, offset + i + 1)
        i += 1


def normalize(raw: str, boilerplate: Boilerplate | None = None, fragment: bool = False) -> Normalized:
    """Normalize raw page text; `boilerplate` defaults to what `detect_boilerplate` finds in it.
    With `fragment`, `raw` is a piece cut from a page: its first and last lines may be partial,
    so they are never dropped as whole boilerplate lines."""
    profile = detect_boilerplate(raw) if boilerplate is None else boilerplate
    out = _Builder()
    offset = 0
    lines = raw.splitlines(keepends=True)
    for number, line in enumerate(lines):
        body = line.rstrip("\r\n")
        edge = fragment and number in (0, len(lines) - 1)
        if body.strip() and (edge or body.strip() not in profile.lines):
            if out.chars and out.last() != "\n":
                out.add("\n", offset - 1, offset)
            _normalize_line(body, offset, profile.watermarks, out)
            if out.last() == " ":
                for seq in (out.chars, out.starts, out.ends):
                    seq.pop()
        offset += len(line)
    if out.last() == "\n":
        for seq in (out.chars, out.starts, out.ends):
            seq.pop()
    return Normalized(raw, "".join(out.chars), out.starts, out.ends)


_SENTENCE = re.compile(rf"[^{_SENTENCE_END}\n]*(?:[{_SENTENCE_END}]+[”’\"')）》]*|\n|$)")


def split_sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence: split after 。！？；, and at line breaks."""
    spans = []
    for match in _SENTENCE.finditer(text):
        start, end = match.span()
        if text[start:end].strip():
            spans.append((start, end))
    return spans


def windows(text: str, max_chars: int, overlap: int) -> list[tuple[int, int]]:
    """Overlapping (start, end) windows of at most `max_chars`, cut at sentence ends where possible."""
    if max_chars <= overlap:
        raise ValueError(f"max_chars ({max_chars}) must exceed overlap ({overlap})")
    if len(text) <= max_chars:
        return [(0, len(text))]
    ends = sorted({end for _, end in split_sentences(text)} | {len(text)})
    spans: list[tuple[int, int]] = []
    start = 0
    while True:
        limit = start + max_chars
        if limit >= len(text):
            spans.append((start, len(text)))
            return spans
        cut = ends[bisect_right(ends, limit) - 1] if ends else limit
        end = cut if cut > start + overlap else limit
        spans.append((start, end))
        start = max(end - overlap, start + 1)
