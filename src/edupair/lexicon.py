"""Rule matchers over normalized text: gazetteer regions, school and program name patterns,
cn2an-checked numbers.

The rule baseline decodes with them. The model reads their matches as per-character hint tags
(lexicon features, as in gazetteer-enhanced NER): a small encoder trained on little text then
knows where a place name may begin and end, and learns from context when a match is not an entity.
"""

from __future__ import annotations

import csv
import re
from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path

import cn2an

from edupair.regions import Division, Gazetteer

COUNTRIES = ("中国", "英国", "美国", "法国", "德国", "日本", "韩国", "俄罗斯", "澳大利亚", "新西兰", "加拿大",
             "新加坡", "意大利", "西班牙", "芬兰", "瑞典", "荷兰", "比利时", "爱尔兰", "泰国", "马来西亚", "越南", "老挝",
             "柬埔寨", "印度尼西亚", "菲律宾", "蒙古", "哈萨克斯坦", "白俄罗斯", "乌克兰", "匈牙利", "波兰", "捷克", "奥地利",
             "瑞士", "葡萄牙", "希腊", "埃及", "南非", "巴西", "阿根廷", "智利", "墨西哥", "以色列", "土耳其", "巴基斯坦")
_CJK = r"[\u4e00-\u9fff]"
_LEFT_STOP = set("与和、，,。；;：:在到的赴同及等是由为将对向从与并于了和经让使把被给跟暨即（(“\"《》” \n")
_SCHOOL_SUFFIX = re.compile(r"(?:小学|中学|学校|幼儿园|大学|学院|中专|职高|(?:附中|附小|实小|一小|二小|三小|一中|二中|三中|"
                            r"四中|五中|六中|七中|八中|九中|十中)(?!学)|教育集团|进修学校)")
# What is left of a school-like phrase after a region prefix when it names no school: counts and
# generic modifiers (14所学校, 友好学校, 海东市优质学校; guide: generic mentions are not entities).
_GENERIC_SCHOOL = re.compile(r"(?:\d+|[一二三四五六七八九十百千两几多]+)?(?:余|多)?所?"
                             r"(?:各|该|本|我|全|其他|相关|双方|对方|两地|当地|本地|各地|的|等|"
                             r"友好|姊妹|乡村|城乡|城区|城镇|农村|境外|海外|国际|帮扶|受援|援建|入选|覆盖|合作|结对|"
                             r"特色|成员|职业|中职|高职|优质|薄弱|改扩建|中外人文交流|专科|专业|职业技术|中小|对口|"
                             r"试点|示范|项目|学习|帮助|新建|民办|公办|普通|重点|部分|一批|一所|这所|远端|近端|主讲|"
                             r"接收|牵头|支援|联盟|集团|共同体|内地|港澳|香港|澳门|台湾|沿海|西部|东部)*"
                             r"(?:中小学|学校|小学|中学|幼儿园|大学|学院|高校|院校)")
_FOREIGN_SCHOOL = re.compile(r"(?:[A-Z][A-Za-z'’.&-]*\s+){1,6}(?:School|College|Academy|University|Institute|"
                             r"Gymnasium|Lycée|Grammar School|High School)")
_PROGRAM_HEAD = r"(?:工程|计划|项目|行动|共同体|联盟|论坛|课程|实验班|协议|方案|备忘录)"
_TITLE_HEAD = rf"(?:{_PROGRAM_HEAD[3:-1]}|课堂|工作室|营|班|周|讲堂)"  # heads after a quoted title
_QUOTED_PROGRAM = re.compile(rf"“[^”]{{2,20}}”{_CJK}{{0,8}}?{_TITLE_HEAD}|《([^》]{{2,40}}{_PROGRAM_HEAD})》")
# National programmes the guide names as PROGRAM when used as a name.
_NAMED_PROGRAM = re.compile(r"东西部协作|中外人文交流")
# A bare name whose words before the head are all generic names no program (培养计划, 根据协议).
_GENERIC_PROGRAM_NAME = re.compile(rf"(?:根据|按照|本届|该|本|各|相关|有关|双方|两地|两校|教师|学生|青年|骨干|培养|研学|"
                                   rf"研修|发展|特色|帮扶|成长|共享|校本|选修|联合|建设|培训|合作|交流|教育|基础|"
                                   rf"国际理解|城乡|学校|名校|校长|行动|对口|支援|结对|友好|专项|框架|实施|工作|年度|"
                                   rf"三年|五年|战略|全面|深化|推进|提升|能力|质量|课堂|教学|同步|在线|网络|远程|"
                                   rf"义务教育|职业教育|学前教育|高中|初中|小学|中小学|乡村|农村|县域|区域|"
                                   rf"跨区域|协同|协作|一体化|集团化|办学)*{_PROGRAM_HEAD}")
_BARE_PROGRAM = re.compile(rf"{_CJK}{{2,14}}?{_PROGRAM_HEAD}")
_GENERIC_PROGRAM = {"合作协议", "框架协议", "合作项目", "帮扶项目", "帮扶计划", "工作方案", "实施方案", "共同体", "联盟"}
_NUMBER = re.compile(r"(?<!第)(?:近|约|超过|逾)?(?:\d+(?:\.\d+)?|[一二三四五六七八九十百千万两]+)(?:余|多)?"
                     r"(?:万|亿)?(?:所|名|人次|人|个|项|场|次|元|对|批|家|支|节|门|本|套|位|期|篇|%)(?:以上|左右)?")

# Words a left walk over a school or program name must not keep: verbs and list fillers before the name.
_NAME_LEAD = re.compile(r".*(?:其中|还有|包括|以及|支持|推动|组织|通过|依托|带动|吸纳|新增|首批|一批|不少|一些|帮扶|支援|"
                          r"协作|托管|缔结|签署|签订|结对|结成|结为|加入|参与|参加|承办|举办|成为|牵头|实施|开展|"
                          r"启动|纳入|共建|组建|成立|援建|捐建|对接|携手|选派|派出|来自|走进|走访|前往|赴)")
# The same at the start of a bare program name only (inside one, 协作/结对 are part of the name).
_PROGRAM_LEAD = re.compile(r"(?:其中|还有|包括|以及|支持|推动|组织|通过|依托|带动|新增|首批|根据|按照|加入|参与|参加|承办|"
                           r"举办|成为|牵头|实施|开展|启动|纳入|签署|签订|续签|围绕|今年|接入|共同|联合|积极|深入)+")
PAIR_TRIGGER = re.compile(r"结对|对口|帮扶|友好|姊妹|签约|签订|签署|协作|托管|结为|结成|合作")
JOIN_TRIGGER = re.compile(r"加入|参与|参加|签约|签订|签署|承办|举办|成为|牵头|实施|开展|启动|纳入|共建|组建|成立")

Match = tuple[int, int, str, float]  # (start, end, label, rule confidence)

# Hint tags per character and channel: outside, begin, inside, end, single-character match.
HINT_TAGS: tuple[str, ...] = ("O", "B", "I", "E", "S")
# Entity candidates, then relation trigger words (结对, 加入 ...). A model stores the channels it was
# trained with; folders that predate the trigger channels read the first four.
HINT_CHANNELS: tuple[str, ...] = ("REGION", "SCHOOL", "PROGRAM", "NUMBER", "PAIR_TRIGGER", "JOIN_TRIGGER")
ENTITY_HINT_CHANNELS: tuple[str, ...] = HINT_CHANNELS[:4]


def _outermost(spans: list[Match]) -> list[Match]:
    """Matches not inside another one, one per (start, end), in text order (a sweep, not all pairs)."""
    out: list[Match] = []
    reach = -1
    for span in sorted(spans, key=lambda x: (x[0], -x[1], -x[3])):
        if span[1] <= reach:  # inside (or equal to) a match that starts no later and reaches further
            continue
        reach = span[1]
        out.append(span)
    return out


class RuleMatcher:
    """Candidate spans of each entity type found by the gazetteer and by name patterns."""

    def __init__(self, gazetteer: Gazetteer) -> None:
        self.names = {n for n, divs in gazetteer.by_name.items()
                      if len(n) >= 2 and any(d.level <= 3 for d in divs)}
        self.names.update(COUNTRIES)
        self.max_len = max(map(len, self.names))

    def regions(self, text: str) -> list[Match]:
        """Longest gazetteer matches, adjacent matches chained into one span (四川省广元市昭化区)."""
        spans: list[Match] = []
        i = 0
        while i < len(text):
            for j in range(min(len(text), i + self.max_len), i + 1, -1):
                if text[i:j] in self.names:
                    if spans and spans[-1][1] == i:
                        spans[-1] = (spans[-1][0], j, "REGION", 0.5)
                    else:
                        spans.append((i, j, "REGION", 0.5))
                    i = j
                    break
            else:
                i += 1
        return spans

    @staticmethod
    def _left_extend(text: str, end: int, max_chars: int = 16) -> int:
        """The start of a name ending at `end`: walk left over CJK/Latin chars until a stop char."""
        start = end
        while start > 0 and end - start < max_chars and (text[start - 1] not in _LEFT_STOP
                                                         or text[start - 1:start + 1] == "对口"):
            start -= 1
        return start

    def schools(self, text: str) -> list[Match]:
        """Latin school names and Chinese names ending in a school suffix (小学, 一中, 教育集团 ...);
        generic phrases (友好学校, 8所学校) are left out, and so is a name inside a longer one."""
        spans: list[Match] = [(m.start(), m.end(), "SCHOOL", 0.5) for m in _FOREIGN_SCHOOL.finditer(text)]
        for m in _SCHOOL_SUFFIX.finditer(text):
            start = self._region_start(text, self._left_extend(text, m.start()))
            lead = _NAME_LEAD.match(text, start, m.start())
            start = lead.end() if lead else start
            if m.end() - start >= 3 and not self._generic_school(text[start:m.end()]):
                spans.append((start, m.end(), "SCHOOL", 0.5))
        return _outermost(spans)

    def _region_start(self, text: str, start: int) -> int:
        """Move a name's start left when a region name (将乐县, 和平区) straddles it."""
        for back in (1, 2):
            i = start - back
            if i >= 0 and any(text[i:i + n] in self.names for n in range(back + 1, self.max_len + 1)):
                return i
        return start

    def _generic_school(self, name: str) -> bool:
        """True for a count or generic modifiers ending in a school word, after any region prefix."""
        for cut in range(min(len(name) - 1, self.max_len), 1, -1):  # strip the longest region prefix
            if name[:cut] in self.names:
                name = name[cut:]
                break
        return _GENERIC_SCHOOL.fullmatch(name) is not None

    def programs(self, text: str) -> list[Match]:
        """Quoted or 《》 titles with a program head word, and bare names ending in one."""
        spans: list[Match] = []
        for m in _QUOTED_PROGRAM.finditer(text):
            start, end = (m.start(1), m.end(1)) if m.group(1) else (m.start(), m.end())
            spans.append((start, end, "PROGRAM", 0.5))
        for m in _BARE_PROGRAM.finditer(text):
            start = self._left_extend(text, m.end() - 2, 14)
            lead = _PROGRAM_LEAD.match(text, start, m.end() - 2)
            start = lead.end() if lead else start
            name = text[start:m.end()]
            if name not in _GENERIC_PROGRAM and len(name) >= 4 and not _GENERIC_PROGRAM_NAME.fullmatch(name):
                spans.append((start, m.end(), "PROGRAM", 0.4))
        spans += [(m.start(), m.end(), "PROGRAM", 0.4) for m in _NAMED_PROGRAM.finditer(text)]
        return _outermost(spans)

    @staticmethod
    def numbers(text: str) -> list[Match]:
        """Counted amounts (12所, 1.5万元, 三百余名) whose numeral cn2an can read; dates left out."""
        spans: list[Match] = []
        for m in _NUMBER.finditer(text):
            digits = re.match(r"(?:近|约|超过|逾)?([\d.]+|[一二三四五六七八九十百千万两]+)", m.group())
            try:
                cn2an.cn2an(digits.group(1).replace("两", "二"), "smart")
            except (ValueError, KeyError, AttributeError):
                continue
            if m.end() < len(text) and text[m.end()] in "年月日号":
                continue
            spans.append((m.start(), m.end(), "NUMBER", 0.5))
        return spans

    def matches(self, text: str) -> list[Match]:
        """All candidates of all types (they may overlap)."""
        return self.schools(text) + self.programs(text) + self.numbers(text) + self.regions(text)

    @staticmethod
    def triggers(text: str) -> list[Match]:
        """Words that signal a pairing (结对, 帮扶 ...) or joining (加入, 承办 ...)."""
        return ([(m.start(), m.end(), "PAIR_TRIGGER", 0.5) for m in PAIR_TRIGGER.finditer(text)]
                + [(m.start(), m.end(), "JOIN_TRIGGER", 0.5) for m in JOIN_TRIGGER.finditer(text)])

    def hint_tags(self, text: str, channels: tuple[str, ...] = HINT_CHANNELS) -> list[tuple[int, ...]]:
        """Per character, one BIES tag index per channel (0 where nothing matched)."""
        tags = [[0] * len(channels) for _ in text]
        channel = {label: c for c, label in enumerate(channels)}
        for start, end, label, _ in self.matches(text) + self.triggers(text):
            c = channel.get(label)
            if c is None:
                continue
            if end - start == 1:
                tags[start][c] = 4
                continue
            tags[start][c], tags[end - 1][c] = 1, 3
            for i in range(start + 1, end - 1):
                tags[i][c] = 2
        return [tuple(t) for t in tags]


def packaged_gazetteer() -> Gazetteer:
    """Provinces, prefectures and counties from the table that ships inside the cpca package
    (National Bureau of Statistics codes), so that the model's hints need no data folder."""
    spec = find_spec("cpca")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError("the model's region hints need the cpca package: pip install cpca")
    rows = []
    with open(Path(spec.origin).parent / "resources" / "adcodes.csv", encoding="utf-8") as handle:
        for r in csv.DictReader(handle):
            code = r["adcode"][:6]
            level = 1 if code.endswith("0000") else 2 if code.endswith("00") else 3
            parent = None if level == 1 else code[:2] + "0000" if level == 2 else code[:4] + "00"
            rows.append(Division(code, r["name"], level, parent))
    return Gazetteer(rows)


@lru_cache(maxsize=4)
def hint_source(name: str) -> RuleMatcher:
    """The matcher a model's hints come from: "cpca" (the table inside the cpca package) or a folder
    of NBS division tables (provinces.csv, cities.csv, areas.csv)."""
    if name == "cpca":
        return RuleMatcher(packaged_gazetteer())
    if not Path(name).is_dir():
        raise FileNotFoundError(f"hint gazetteer {name!r} is neither 'cpca' nor a folder of division tables")
    return RuleMatcher(Gazetteer.from_folder(name, towns=False))
