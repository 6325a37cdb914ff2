"""Normalization: glosses, script, width, whitespace, boilerplate, and the exact offset map."""

from __future__ import annotations

import random
import re

import opencc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edupair.text import (
    GLOSS,
    Boilerplate,
    _is_boilerplate_line,
    detect_boilerplate,
    normalize,
    split_sentences,
    to_simplified,
    windows,
)

from .conftest import SHARED

SEEDS = sorted((SHARED / "seeds").glob("*.txt"))
needs_seeds = pytest.mark.skipif(not SEEDS, reason="../shared/seeds not present")


def assert_spans_round_trip(raw: str, count: int, rng: random.Random) -> int:
    """Random spans of the normalized text map to raw text that normalizes back to them."""
    profile = detect_boilerplate(raw)
    norm = normalize(raw, profile)
    candidates = [i for i, c in enumerate(norm.text) if not c.isspace()]
    checked = 0
    for _ in range(count):
        if len(candidates) < 2:
            break
        a, b = sorted(rng.sample(candidates, 2))
        b = min(b, a + rng.randint(1, 40))
        while norm.text[b].isspace():
            b -= 1
        raw_start, raw_end = norm.to_raw(a, b + 1)
        assert normalize(raw[raw_start:raw_end], profile, fragment=True).text == norm.text[a:b + 1]
        checked += 1
    return checked


def test_gloss_removed_and_mapped():
    norm = normalize("四川教育在線(xiàn)网，區(qū)内")
    assert norm.text == "四川教育在线网,区内"
    start = norm.text.index("线")
    assert norm.raw[slice(*norm.to_raw(start, start + 1))] == "線(xiàn)"


def test_gloss_after_replacement_character_removed():
    assert normalize("走廊區(qū)域?(qū)學校").text == "走廊区域?学校"


def test_fullwidth_and_whitespace():
    assert normalize("２０２２年　ＡＢＣ小学  \t 结对\n\n\n  下一段  ").text == "2022年 ABC小学 结对\n下一段"


def test_traditional_to_simplified():
    assert normalize("溫江區與巴南區結對").text == "温江区与巴南区结对"


def test_watermark_and_meta_lines_dropped():
    body = "温江区与巴南区结对。"
    raw = "\n".join(["首页 > 新闻 > 正文", "来源:某区教育局  作者:某人", body + "dcK教育在线",
                     "dcK教育在线", body + "dcK教育在线", "版权所有 © 2022 某某网", "相关新闻",
                     "- 某校举行开学典礼2022-11-15", "- 另一条短讯2022-11-11"])
    norm = normalize(raw)
    assert norm.text == body + "\n" + body


def test_from_raw_inverts_to_raw():
    norm = normalize("溫江(wēn)區與巴南區")
    start, end = norm.to_raw(2, 5)
    assert norm.from_raw(start, end) == (2, 5)


def test_sentences_and_windows():
    text = "甲乙结对。丙丁合作！戊己签约？\n庚辛加入"
    assert [text[s:e] for s, e in split_sentences(text)] == ["甲乙结对。", "丙丁合作！", "戊己签约？", "庚辛加入"]
    spans = windows("。".join(["甲乙丙丁"] * 30), max_chars=40, overlap=10)
    assert spans[0][0] == 0 and spans[-1][1] == len("。".join(["甲乙丙丁"] * 30))
    assert all(e - s <= 40 for s, e in spans)
    assert all(b[0] < a[1] for a, b in zip(spans, spans[1:], strict=False))


@needs_seeds
@pytest.mark.parametrize("path", SEEDS, ids=lambda p: p.name)
def test_seed_pages_clean(path):
    raw = path.read_text(encoding="utf-8")
    norm = normalize(raw)
    assert not GLOSS.search(norm.text)
    assert not re.search(r"[(][a-zāáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜü]{1,6}[)]", norm.text)
    assert all(to_simplified(c) == c for c in norm.text), "Traditional-only character left"
    assert opencc.OpenCC("t2s").convert(norm.text).count("\n") == norm.text.count("\n")
    profile = detect_boilerplate(raw)
    assert not any(token in norm.text for token in profile.watermarks)
    assert not any(_is_boilerplate_line(line) for line in norm.text.split("\n"))


@needs_seeds
def test_seed_offset_map_thousand_spans():
    rng = random.Random(13)
    checked = sum(assert_spans_round_trip(p.read_text(encoding="utf-8"), 200, rng) for p in SEEDS)
    assert checked == 200 * len(SEEDS)


_PIECES = st.sampled_from(["溫江區", "與", "結對", "學校", "線(xiàn)", "區(qū)", "?(qū)", "２０２２", "ＡＢ",
                           " ", "\u3000", "\t", "\n", "\n\n", "。", ",", "dcK教育在线", "(", ")", "abc",
                           "首页 > 新闻 > 正文\n", "来源:教育局\n", "🙂", "\x00", "é", "中"])


@settings(max_examples=150, deadline=None)
@given(st.lists(_PIECES, min_size=1, max_size=60), st.randoms(use_true_random=False))
def test_offset_map_round_trip_generated(pieces, rng):
    raw = "".join(pieces)
    assert_spans_round_trip(raw, 20, rng)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_offset_map_monotone_on_any_unicode(raw):
    norm = normalize(raw, Boilerplate())
    assert len(norm.starts) == len(norm.ends) == len(norm.text)
    for i, (s, e) in enumerate(zip(norm.starts, norm.ends, strict=True)):
        assert 0 <= s < e <= len(raw)
        if i:
            assert norm.ends[i - 1] <= s or norm.text[i] == "\n"
