"""Rule baseline: gazetteer regions, suffix-pattern schools and programs, cn2an-checked numbers,
trigger-word relations. A competitor for the model in the benchmarks, with the same record output.
"""

from __future__ import annotations

import re

from edupair.inference import Link, Span, record
from edupair.lexicon import JOIN_TRIGGER, PAIR_TRIGGER, RuleMatcher
from edupair.regions import Gazetteer
from edupair.text import normalize, split_sentences


class RuleBaseline:
    """Extracts spans and links with rules only (no learning)."""

    def __init__(self, gazetteer: Gazetteer) -> None:
        self.rules = RuleMatcher(gazetteer)

    def extract(self, text: str) -> tuple[list[Span], list[Link]]:
        """Flat spans (longer and more specific first) and trigger-based links per sentence."""
        candidates = [Span(*m) for m in self.rules.matches(text)]
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
            if a.label == b.label and re.fullmatch(r"\s*(与|和|同|跟)\s*", between) and PAIR_TRIGGER.search(after):
                links.append(Link(a, "paired_with", b, 0.5))
        for prog in (s for s in spans if s.label == "PROGRAM"):
            if JOIN_TRIGGER.search(text[max(0, prog.start - 20):prog.start]):
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
