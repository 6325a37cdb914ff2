"""Rule baseline: gazetteer regions, suffix-pattern schools and programs, cn2an-checked numbers,
trigger-word relations. A competitor for the model in the benchmarks, with the same record output.
"""

from __future__ import annotations

import re

import cn2an

from edupair.inference import Link, Span, record
from edupair.regions import Gazetteer
from edupair.text import normalize, split_sentences

COUNTRIES = ("中国", "英国", "美国", "法国", "德国", "日本", "韩国", "俄罗斯", "澳大利亚", "新西兰", "加拿大",
             "新加坡", "意大利", "西班牙", "芬兰", "瑞典", "荷兰", "比利时", "爱尔兰", "泰国", "马来西亚", "越南", "老挝",
             "柬埔寨", "印度尼西亚", "菲律宾", "蒙古", "哈萨克斯坦", "白俄罗斯", "乌克兰", "匈牙利", "波兰", "捷克", "奥地利",
             "瑞士", "葡萄牙", "希腊", "埃及", "南非", "巴西", "阿根廷", "智利", "墨西哥", "以色列", "土耳其", "巴基斯坦")
_CJK = r"[\u4e00-\u9fff]"
_LEFT_STOP = set("与和、，,。；;：:在到的赴同及等是由为将对向从与并于了和经让使把被给跟暨即（(“\"《》” \n")
_SCHOOL_SUFFIX = re.compile(r"(?:小学|中学|学校|幼儿园|大学|学院|中专|职高|附中|附小|实小|一小|二小|三小|一中|二中|三中|"
                            r"四中|五中|六中|七中|八中|九中|十中|教育集团|进修学校)")
_FOREIGN_SCHOOL = re.compile(r"(?:[A-Z][A-Za-z'’.&-]*\s+){1,6}(?:School|College|Academy|University|Institute|"
                             r"Gymnasium|Lycée|Grammar School|High School)")
_PROGRAM_HEAD = r"(?:工程|计划|项目|行动|共同体|联盟|论坛|课程|实验班|协议|方案|备忘录)"
_QUOTED_PROGRAM = re.compile(rf"“[^”]{{2,20}}”{_PROGRAM_HEAD}|《([^》]{{2,40}}{_PROGRAM_HEAD})》")
_BARE_PROGRAM = re.compile(rf"{_CJK}{{2,14}}?{_PROGRAM_HEAD}")
_GENERIC_PROGRAM = {"合作协议", "框架协议", "合作项目", "帮扶项目", "帮扶计划", "工作方案", "实施方案", "共同体", "联盟"}
_NUMBER = re.compile(r"(?<!第)(?:近|约|超过|逾)?(?:\d+(?:\.\d+)?|[一二三四五六七八九十百千万两]+)(?:余|多)?"
                     r"(?:万|亿)?(?:所|名|人次|人|个|项|场|次|元|对|批|家|支|节|门|本|套|位|期|篇|%)(?:以上|左右)?")
_PAIR_TRIGGER = re.compile(r"结对|对口|帮扶|友好|姊妹|签约|签订|签署|协作|托管|结为|结成|合作")
_JOIN_TRIGGER = re.compile(r"加入|参与|参加|签约|签订|签署|承办|举办|成为|牵头|实施|开展|启动|纳入|共建|组建|成立")


class RuleBaseline:
    """Extracts spans and links with rules only (no learning)."""

    def __init__(self, gazetteer: Gazetteer) -> None:
        self.names = {n for n, divs in gazetteer.by_name.items()
                      if len(n) >= 2 and any(d.level <= 3 for d in divs)}
        self.names.update(COUNTRIES)
        self.max_len = max(map(len, self.names))

    def regions(self, text: str) -> list[Span]:
        """Longest gazetteer matches, adjacent matches chained into one span (四川省广元市昭化区)."""
        spans, i = [], 0
        while i < len(text):
            for j in range(min(len(text), i + self.max_len), i + 1, -1):
                if text[i:j] in self.names:
                    if spans and spans[-1].end == i and spans[-1].label == "REGION":
                        spans[-1] = Span(spans[-1].start, j, "REGION", 0.5)
                    else:
                        spans.append(Span(i, j, "REGION", 0.5))
                    i = j
                    break
            else:
                i += 1
        return spans

    @staticmethod
    def _left_extend(text: str, end: int, start_limit: int, max_chars: int = 16) -> int:
        """The start of a name ending at `end`: walk left over CJK/Latin chars until a stop char."""
        start = end
        while start > start_limit and end - start < max_chars and text[start - 1] not in _LEFT_STOP:
            start -= 1
        return start

    def schools(self, text: str) -> list[Span]:
        spans = [Span(m.start(), m.end(), "SCHOOL", 0.5) for m in _FOREIGN_SCHOOL.finditer(text)]
        for m in _SCHOOL_SUFFIX.finditer(text):
            start = self._left_extend(text, m.start(), 0)
            if m.end() - start >= 3:
                spans.append(Span(start, m.end(), "SCHOOL", 0.5))
        return spans

    def programs(self, text: str) -> list[Span]:
        spans = []
        for m in _QUOTED_PROGRAM.finditer(text):
            start, end = (m.start(1), m.end(1)) if m.group(1) else (m.start(), m.end())
            spans.append(Span(start, end, "PROGRAM", 0.5))
        for m in _BARE_PROGRAM.finditer(text):
            start = self._left_extend(text, m.end() - 2, 0, 14)
            if text[start:m.end()] not in _GENERIC_PROGRAM and m.end() - start >= 4:
                spans.append(Span(start, m.end(), "PROGRAM", 0.4))
        return spans

    @staticmethod
    def numbers(text: str) -> list[Span]:
        spans = []
        for m in _NUMBER.finditer(text):
            digits = re.match(r"(?:近|约|超过|逾)?([\d.]+|[一二三四五六七八九十百千万两]+)", m.group())
            try:
                cn2an.cn2an(digits.group(1).replace("两", "二"), "smart")
            except (ValueError, KeyError, AttributeError):
                continue
            if m.end() < len(text) and text[m.end()] in "年月日号":
                continue
            spans.append(Span(m.start(), m.end(), "NUMBER", 0.5))
        return spans

    def extract(self, text: str) -> tuple[list[Span], list[Link]]:
        """Flat spans (longer and more specific first) and trigger-based links per sentence."""
        candidates = self.schools(text) + self.programs(text) + self.numbers(text) + self.regions(text)
        kept: list[Span] = []
        for sp in sorted(candidates, key=lambda s: (-(s.end - s.start), s.start)):
            if all(sp.end <= k.start or k.end <= sp.start for k in kept):
                kept.append(sp)
        kept.sort(key=lambda s: s.start)
        links: list[Link] = []
        for s_start, s_end in split_sentences(text):
            inside = [k for k in kept if s_start <= k.start and k.end <= s_end]
            links += self._sentence_links(text, inside)
        return kept, links

    @staticmethod
    def _sentence_links(text: str, spans: list[Span]) -> list[Link]:
        links = []
        parties = [s for s in spans if s.label in ("REGION", "SCHOOL")]
        for a, b in zip(parties, parties[1:], strict=False):
            between = text[a.end:b.start]
            after = text[b.end:b.end + 30]
            if a.label == b.label and re.fullmatch(r"\s*(与|和|同|跟)\s*", between) and _PAIR_TRIGGER.search(after):
                links.append(Link(a, "paired_with", b, 0.5))
        for prog in (s for s in spans if s.label == "PROGRAM"):
            if _JOIN_TRIGGER.search(text[max(0, prog.start - 20):prog.start]):
                for party in parties:
                    if party.end <= prog.start:
                        links.append(Link(party, "participates_in", prog, 0.4))
        for num in (s for s in spans if s.label == "NUMBER"):
            owners = [s for s in spans if s.label != "NUMBER" and s.end <= num.start
                      and not re.search(r"[，,；;]", text[s.end:num.start])]
            if owners:
                links.append(Link(owners[-1], "quantity", num, 0.4))
        return links

    def predict_texts(self, items: list[tuple[str, str]]) -> list[dict]:
        """Records in the predict output contract, one per (id, raw text)."""
        out = []
        for doc_id, raw in items:
            norm = normalize(raw)
            spans, links = self.extract(norm.text)
            out.append(record(doc_id, norm, spans, links))
        return out
