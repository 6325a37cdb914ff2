"""On-the-fly noise rendered from clean annotations, so the model meets what real pages look like.

Each transform rewrites the raw text piece by piece while tracking entity offsets; the result
is normalized exactly as predict does, and spans are mapped through the offset map. A sample
whose spans do not survive normalization intact falls back to the clean document.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from functools import lru_cache

from pypinyin import Style, pinyin

from edupair.annotations import Document, Entity, pages
from edupair.text import convert_char, normalize

_CJK = re.compile(r"[\u4e00-\u9fff]")
_BOILER_TOP = ["首页 > 教育新闻 > 正文", "当前位置：首页 > 区县动态", "来源：{region}教育局  作者：本站  浏览量：{n}",
               "发布时间：2023-0{m}-1{m} 09:3{m}", "【字体：大 中 小】 打印本页", "责任编辑：王{m}"]
_BOILER_END = ["版权所有 © 2024 {region}教育网 ICP备0{n}号", "相关新闻", "- {region}召开教育工作会议2023-0{m}-21",
               "- {region}举行开学典礼2022-09-0{m}", "分享到", "联系我们 | 关于我们 | 网站地图 | 友情链接"]
_WATERMARKS = ["dcK教育在线", "xW2教育网", "qz7新闻网"]


@dataclass
class AugmentConfig:
    """Probabilities of each transform (per document unless noted)."""

    p_traditional: float = 0.3
    p_gloss: float = 0.2
    gloss_rate: float = 0.08          # share of CJK characters glossed when a document is
    p_fullwidth: float = 0.2
    p_boilerplate: float = 0.3
    p_watermark: float = 0.15
    p_substitute: float = 0.3
    p_pack: float = 0.0               # share of documents joined with their neighbours into long pages
    pack_chars: int = 1500            # longest such page, in characters


@lru_cache(maxsize=65536)
def _gloss(char: str) -> str:
    return pinyin(char, style=Style.TONE)[0][0]


def _fullwidth(char: str) -> str:
    return chr(ord(char) + 0xFEE0) if char.isascii() and char.isalnum() else char


def render_pieces(doc: Document, rng: random.Random, cfg: AugmentConfig) -> tuple[str, list[tuple[int, int]]]:
    """Noisy raw text and each entity's raw span, from per-character pieces plus inserted lines."""
    trad = rng.random() < cfg.p_traditional
    gloss = rng.random() < cfg.p_gloss
    full = rng.random() < cfg.p_fullwidth
    pieces = []
    for char in doc.text:
        piece = char
        if _CJK.match(char):
            if trad:
                piece = convert_char(char, "s2t")
            if gloss and rng.random() < cfg.gloss_rate:
                piece += f"({_gloss(char)})"
        elif full:
            piece = _fullwidth(char)
        pieces.append(piece)
    if rng.random() < cfg.p_watermark:  # a token glued to each paragraph end and repeated on its own line
        mark = rng.choice(_WATERMARKS)
        for i, char in enumerate(doc.text):
            if char == "\n":
                pieces[i] = mark + "\n" + mark + "\n"
        pieces.append(mark + "\n" + mark)
    fill = {"region": rng.choice(["某市", "本县", "全区"]), "n": rng.randint(100, 999), "m": rng.randint(1, 9)}
    top = end = ""
    if rng.random() < cfg.p_boilerplate:
        top = "".join(line.format(**fill) + "\n" for line in rng.sample(_BOILER_TOP, 2))
        end = "".join("\n" + line.format(**fill) for line in rng.sample(_BOILER_END, 2))
    starts, pos = [], len(top)
    for piece in pieces[:len(doc.text)]:
        starts.append(pos)
        pos += len(piece)
    starts.append(pos)
    raw = top + "".join(pieces) + end
    spans = [(starts[e.start], starts[e.end - 1] + len(pieces[e.end - 1].split("(")[0])) for e in doc.entities]
    return raw, spans


def substitute_regions(doc: Document, names: list[str], rng: random.Random) -> Document:
    """Replace each distinct REGION string (all its mentions) by a random gazetteer name."""
    regions = sorted({e.text for e in doc.entities if e.label == "REGION"})
    if not regions or not names:
        return doc
    chosen = [r for r in regions if rng.random() < 0.5]
    fresh = [n for n in rng.sample(names, min(len(names), len(chosen) + len(regions))) if n not in regions]
    swap = dict(zip(chosen, fresh, strict=False))
    text, entities, cursor, shift = [], [], 0, 0
    for ent in sorted(doc.entities, key=lambda e: e.start):
        new = swap.get(ent.text, ent.text) if ent.label == "REGION" else ent.text
        text.append(doc.text[cursor:ent.start])
        start = ent.start + shift
        text.append(new)
        shift += len(new) - len(ent.text)
        cursor = ent.end
        entities.append(Entity(ent.id, start, start + len(new), ent.label, new))
    text.append(doc.text[cursor:])
    return Document(doc.id, "".join(text), entities, list(doc.relations))


def augment(doc: Document, rng: random.Random, cfg: AugmentConfig, region_names: list[str] = ()) -> Document:
    """A noisy rendering of `doc`, normalized back; the clean doc if spans did not survive."""
    if rng.random() < cfg.p_substitute:
        doc = substitute_regions(doc, list(region_names), rng)
    raw, spans = render_pieces(doc, rng, cfg)
    norm = normalize(raw)
    entities = []
    for ent, (raw_start, raw_end) in zip(doc.entities, spans, strict=True):
        start, end = norm.from_raw(raw_start, raw_end)
        if end <= start:
            return doc
        entities.append(Entity(ent.id, start, end, ent.label, norm.text[start:end]))
    if [e.text for e in entities] != [e.text for e in doc.entities]:
        return doc
    return Document(doc.id, norm.text, entities, list(doc.relations))


def pack(docs: list[Document], rng: random.Random, cfg: AugmentConfig) -> list[Document]:
    """Join a share of the documents, in order, into pages of up to `pack_chars`: real pages are long,
    so most windows predict reads start mid-page, which short training documents never show."""
    if cfg.p_pack <= 0:
        return docs
    joined = [rng.random() < cfg.p_pack for _ in docs]
    return [d for d, j in zip(docs, joined, strict=True) if not j] + pages(
        [d for d, j in zip(docs, joined, strict=True) if j], cfg.pack_chars)
