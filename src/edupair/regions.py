"""Administrative divisions of China: look up REGION mentions and resolve them to full names and codes.

Reads the National Bureau of Statistics tables (provinces/cities/areas/streets CSV, as in
modood/Administrative-divisions-of-China). Short forms (温江 for 温江区, 四川 for 四川省) and
chained forms (四川省广元市昭化区) are understood; the other regions of a document break ties.
"""

from __future__ import annotations

import csv
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

# Longest first, so 壮族自治区 is stripped before 区.
_SUFFIXES = sorted(["省", "市", "自治区", "壮族自治区", "回族自治区", "维吾尔自治区", "特别行政区", "地区",
                    "自治州", "盟", "区", "县", "自治县", "旗", "自治旗", "林区", "新区"], key=len, reverse=True)
_ETHNIC = re.compile(r"(蒙古族|藏族|彝族|羌族|苗族|土家族|侗族|瑶族|壮族|回族|布依族|哈尼族|傣族|白族|黎族|"
                     r"朝鲜族|满族|达斡尔族|哈萨克族|柯尔克孜族|土族|撒拉族|仡佬族|水族|畲族|纳西族|傈僳族|"
                     r"景颇族|拉祜族|佤族|怒族|独龙族|普米族|阿昌族|德昂族|布朗族|基诺族|锡伯族|塔吉克族|"
                     r"裕固族|东乡族|保安族|鄂温克族|鄂伦春族|毛南族|仫佬族|各族)+(自治州|自治县|自治旗)$")
_GENERIC = frozenset({"市辖区", "县", "省直辖县级行政区划", "自治区直辖县级行政区划"})


@dataclass(frozen=True)
class Division:
    """One administrative unit; `code` is padded to 6 digits (9 for towns)."""

    code: str
    name: str
    level: int  # 1 province, 2 prefecture, 3 county, 4 town
    parent: str | None

    @property
    def province_code(self) -> str:
        return self.code[:2] + "0000"


def short_forms(name: str, level: int) -> set[str]:
    """Forms a name is written in when it stands alone: 温江区 → 温江, 凉山彝族自治州 → 凉山."""
    forms = set()
    stem = _ETHNIC.sub("", name)
    if stem != name and len(stem) >= 2:
        forms.add(stem)
    if level <= 3:
        for suffix in _SUFFIXES:
            if name.endswith(suffix) and len(name) - len(suffix) >= 2:
                forms.add(name[: -len(suffix)])
                break
    return forms - {name}


class Gazetteer:
    """All divisions, indexed by full and short names."""

    def __init__(self, divisions: list[Division]) -> None:
        self.by_code: dict[str, Division] = {}
        for div in divisions:  # a county row reusing its city's code (东莞, 中山) keeps the city
            self.by_code.setdefault(div.code, div)
        divisions = [d for d in divisions if self.by_code[d.code] is d]
        self.by_name: dict[str, list[Division]] = defaultdict(list)
        for div in divisions:
            if div.name in _GENERIC:
                continue
            self.by_name[div.name].append(div)
            for form in short_forms(div.name, div.level):
                self.by_name[form].append(div)
        self.max_len = max(map(len, self.by_name)) if self.by_name else 0
        self._memo: dict[str, list[Division]] = {}

    @classmethod
    def from_folder(cls, folder: str | Path, towns: bool = True) -> Gazetteer:
        """Load provinces.csv, cities.csv, areas.csv (and streets.csv) from a folder."""
        folder = Path(folder)
        rows: list[Division] = []

        def read(name: str):
            with open(folder / name, encoding="utf-8") as handle:
                yield from csv.DictReader(handle)

        for r in read("provinces.csv"):
            rows.append(Division(r["code"].ljust(6, "0"), r["name"], 1, None))
        for r in read("cities.csv"):
            rows.append(Division(r["code"].ljust(6, "0"), r["name"], 2, r["provinceCode"].ljust(6, "0")))
        for r in read("areas.csv"):
            rows.append(Division(r["code"], r["name"], 3, r["cityCode"].ljust(6, "0")))
        if towns and (folder / "streets.csv").exists():
            for r in read("streets.csv"):
                rows.append(Division(r["code"], r["name"], 4, r["areaCode"]))
        return cls(rows)

    def ancestors(self, div: Division) -> list[Division]:
        """The chain from the province down to `div` (inclusive)."""
        chain = [div]
        while chain[-1].parent and chain[-1].parent in self.by_code and len(chain) < 5:
            chain.append(self.by_code[chain[-1].parent])
        return chain[::-1]

    def full_name(self, div: Division) -> str:
        """Province + prefecture + county (+ town), skipping placeholder levels (市辖区)."""
        return "".join(d.name for d in self.ancestors(div) if d.name not in _GENERIC)

    def _is_below(self, child: Division, parent: Division) -> bool:
        return any(a.code == parent.code for a in self.ancestors(child)[:-1])

    def candidates(self, mention: str) -> list[Division]:
        """Divisions a mention can name, reading chained forms left to right (memoized)."""
        if mention not in self._memo:
            self._memo[mention] = self._candidates(mention)
        return self._memo[mention]

    def _candidates(self, mention: str) -> list[Division]:
        if mention in self.by_name:
            return list(self.by_name[mention])
        found: list[Division] = []
        for cut in range(min(len(mention) - 1, self.max_len), 1, -1):
            heads = self.by_name.get(mention[:cut])
            if not heads:
                continue
            tails = self.candidates(mention[cut:])
            found = [t for t in tails if any(self._is_below(t, h) for h in heads)]
            if found:
                return found
        return found

    def resolve(self, mention: str, context: list[str] = ()) -> Division | None:
        """The division a mention names, preferring ones under the document's other regions."""
        options = self.candidates(mention)
        if not options:
            return None
        if len(options) == 1:
            return options[0]
        context_codes = {c.code for m in context if m != mention for c in self._context(m)}

        def score(div: Division) -> tuple[int, int, int]:
            near = sum(a.code in context_codes for a in self.ancestors(div)[:-1])
            related = sum(self._is_below(self.by_code[c], div) for c in context_codes if c in self.by_code)
            return near + related, -div.level, -int(div.code)

        return max(options, key=score)

    def _context(self, mention: str) -> list[Division]:
        """A context mention's divisions, if it is specific enough (at most 3 readings) to help."""
        options = self.candidates(mention)
        return options if len(options) <= 3 else []
