"""Tokenization and label alignment: normalized text windows → token ids, span targets and
candidate entity pairs for the relation scorer.

Spans are aligned through the fast tokenizer's `offset_mapping` (a span whose edges fall
inside a token cannot be aligned and is counted, never guessed by substring search).
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from edupair.annotations import Document
from edupair.schema import RELATION_ENDS, SYMMETRIC_RELATIONS
from edupair.text import split_sentences, windows

# Token gaps between the two ends of a pair, bucketed (bucket = index of the last edge <= gap).
GAP_EDGES: tuple[int, ...] = (0, 1, 2, 3, 5, 8, 12, 17, 25, 35, 50, 70, 100)
MAX_BETWEEN = 6  # entities lying between the two ends, capped
# Role bits of a span in its sentence's coordination: `A与B、C与D` (pairs listed) reads
# A=LEFT, B=RIGHT|LISTED, C=LISTED|LEFT, D=RIGHT; `A与B、C` (a list distributing) ends C=LISTED.
ROLE_LEFT, ROLE_RIGHT, ROLE_LISTED = 1, 2, 4
N_ROLES = 8


@dataclass
class Feature:
    """One window of one document, tokenized, with its targets in token positions."""

    doc_index: int
    char_offset: int                     # window start in the normalized text
    input_ids: list[int]
    offsets: list[tuple[int, int]]       # per token, char span within the window ((0, 0) for specials)
    sentence_ids: list[int] = field(default_factory=list)                   # per token, sentence index
    breaks: list[bool] = field(default_factory=list)     # per token, holds a character no entity contains
    list_marks: list[bool] = field(default_factory=list)  # per token, is a list separator (、)
    conjunctions: list[bool] = field(default_factory=list)  # per token, is a pair conjunction (与, 和)
    quotes: list[tuple[int, ...]] = field(default_factory=list)  # per token, openers minus closers per quote pair
    hints: list[tuple[int, ...]] = field(default_factory=list)  # per token, rule hint tag per channel
    entities: list[tuple[int, int, int]] = field(default_factory=list)      # (label, start tok, end tok)
    relations: list[tuple[int, int, int]] = field(default_factory=list)     # (relation, head ent, tail ent)


@dataclass
class Pair:
    """A candidate (head, tail) pair of spans in one window, with the relations its types allow."""

    head: int                            # index into the window's span list
    tail: int
    allowed: list[bool]                  # per relation label
    gap: int                             # bucketed token gap between the two spans
    between: int                         # spans lying between them (capped)
    forward: int                         # 1 when the head comes first in the text
    context: tuple[int, int]             # token range (inclusive) of the sentences holding both
    head_role: int = 0                   # ROLE_* bits of the head span
    tail_role: int = 0


@dataclass
class AlignmentStats:
    """How many spans could be placed on token boundaries."""

    aligned: int = 0
    unaligned: int = 0
    outside_window: int = 0


class Featurizer:
    """Turns documents into windowed features and candidate pairs for a tokenizer and label set."""

    def __init__(self, tokenizer, entity_labels: list[str], relation_labels: list[str],
                 max_length: int, window_chars: int, window_overlap: int,
                 relation_ends: dict[str, frozenset[tuple[str, str]]] | None = None,
                 sentence_gap: int = 0, max_pairs: int = 1024, span_breaks: str = "",
                 hinter: Callable[[str], list[tuple[int, ...]]] | None = None, hint_channels: int = 0,
                 list_mark: str = "", list_unpaired: tuple[str, ...] = (), list_unowned: tuple[str, ...] = (),
                 span_balanced: tuple[str, ...] = (), span_breaks_unquoted: str = "",
                 conjunctions: str = "") -> None:
        self.tokenizer = tokenizer
        self.entity_labels, self.relation_labels = list(entity_labels), list(relation_labels)
        self.entity_index = {label: i for i, label in enumerate(entity_labels)}
        self.relation_index = {label: i for i, label in enumerate(relation_labels)}
        ends = relation_ends or RELATION_ENDS
        self.ends = [{(self.entity_index[h], self.entity_index[t]) for h, t in ends.get(label, ())}
                     for label in relation_labels]
        self.symmetric = [label in SYMMETRIC_RELATIONS for label in relation_labels]
        self.max_length = max_length
        self.window_chars = min(window_chars, max_length - 2)
        self.window_overlap = window_overlap
        self.sentence_gap, self.max_pairs = sentence_gap, max_pairs
        self.span_breaks = frozenset(span_breaks)
        self.span_balanced = tuple(span_balanced)  # opener+closer pairs ("“”") a span must hold balanced
        self.span_breaks_unquoted = frozenset(span_breaks_unquoted)  # breaks too, except inside those quotes
        self._quote_chars = frozenset("".join(self.span_balanced))
        self._no_quotes = (0,) * len(self.span_balanced)
        self.hinter = hinter  # text -> per character hint tags, one per channel (edupair.lexicon), or None
        self.hint_channels = hint_channels
        # Lists (A、B、C of one type): no `list_unpaired` relation between two members, no
        # `list_unowned` relation headed by a member (guide: lists distribute; joint totals stay unlinked).
        self.list_mark = list_mark
        self.list_unpaired = [label in list_unpaired for label in relation_labels]
        self.list_unowned = [label in list_unowned for label in relation_labels]
        self.conjunctions = frozenset(conjunctions)  # one-token words joining two parties (与, 和)
        self.stats = AlignmentStats()

    def encode_text(self, text: str, doc_index: int = 0) -> list[Feature]:
        """Unlabelled features for inference: one per window of the text."""
        feats = []
        char_hints = self.hinter(text) if self.hinter else None
        blank = (0,) * self.hint_channels  # the tags of special tokens
        for start, end in windows(text, self.window_chars, self.window_overlap) if text else [(0, 0)]:
            piece = text[start:end]
            enc = self.tokenizer(piece, truncation=True, max_length=self.max_length, return_offsets_mapping=True)
            offsets = [tuple(o) for o in enc["offset_mapping"]]
            sentence_ends = [e for _, e in split_sentences(piece)]
            sentence_ids = [bisect_right(sentence_ends, s) if e > s else -1 for s, e in offsets]
            depth = self._quote_depth(piece)
            breaks = [not self.span_breaks.isdisjoint(piece[s:e])
                      or (e > s and depth[s] == 0 and not self.span_breaks_unquoted.isdisjoint(piece[s:e]))
                      for s, e in offsets]
            marks = [bool(self.list_mark) and piece[s:e] == self.list_mark for s, e in offsets]
            quotes = [self._quote_delta(piece[s:e]) for s, e in offsets]
            conj = [e == s + 1 and piece[s] in self.conjunctions for s, e in offsets]
            feat = Feature(doc_index, start, enc["input_ids"], offsets, sentence_ids, breaks, marks, conj, quotes)
            if char_hints is not None:  # a token takes the tags of its first character
                feat.hints = [char_hints[start + s] if e > s else blank for s, e in offsets]
            feats.append(feat)
        return feats

    def _quote_delta(self, token: str) -> tuple[int, ...]:
        """Openers minus closers of each `span_balanced` pair in one token's text."""
        if self._quote_chars.isdisjoint(token):
            return self._no_quotes
        return tuple(token.count(q[0]) - token.count(q[1]) for q in self.span_balanced)

    def _quote_depth(self, piece: str) -> list[int]:
        """Per character, how many quote pairs (`span_balanced`) are open before it (never below 0)."""
        if not self.span_breaks_unquoted:
            return [0] * len(piece)
        opens = {q[0] for q in self.span_balanced}
        closes = {q[1] for q in self.span_balanced}
        depth, level = [], 0
        for ch in piece:
            depth.append(level)
            level = level + 1 if ch in opens else max(0, level - 1) if ch in closes else level
        return depth

    def encode_document(self, doc: Document, doc_index: int = 0) -> list[Feature]:
        """Labelled features: entities and relations inside each window."""
        feats = self.encode_text(doc.text, doc_index)
        aligned: set[str] = set()
        misaligned: set[str] = set()
        for feat in feats:
            self._label(feat, doc, aligned, misaligned)
        self.stats.aligned += len(aligned)
        self.stats.unaligned += len(misaligned - aligned)
        self.stats.outside_window += len(doc.entities) - len(aligned | misaligned)
        return feats

    def _label(self, feat: Feature, doc: Document, aligned: set[str], misaligned: set[str]) -> None:
        """Add the targets of the entities and relations that lie inside this window."""
        starts = {s + feat.char_offset: i for i, (s, e) in enumerate(feat.offsets) if e > s}
        ends = {e + feat.char_offset: i for i, (s, e) in enumerate(feat.offsets) if e > s}
        window_end = feat.char_offset + max((e for _, e in feat.offsets), default=0)
        index: dict[str, int] = {}
        for ent in doc.entities:
            if ent.start < feat.char_offset or ent.end > window_end:
                continue
            if ent.start in starts and ent.end in ends:
                index[ent.id] = len(feat.entities)
                feat.entities.append((self.entity_index[ent.label], starts[ent.start], ends[ent.end]))
                aligned.add(ent.id)
            else:
                misaligned.add(ent.id)
        for rel in doc.relations:
            if rel.head in index and rel.tail in index and rel.label in self.relation_index:
                feat.relations.append((self.relation_index[rel.label], index[rel.head], index[rel.tail]))

    def candidate_pairs(self, feat: Feature, spans: list[tuple[int, int, int]]) -> list[Pair]:
        """Ordered pairs of (label, start tok, end tok) spans whose types some relation allows, within
        `sentence_gap` sentences; a symmetric relation is offered once, head first in the text.
        At most `max_pairs`, nearest first, so a noisy window cannot blow up the scorer."""
        order = sorted(range(len(spans)), key=lambda k: spans[k][1:])
        rank = {k: r for r, k in enumerate(order)}
        sid = feat.sentence_ids
        first_tok: dict[int, int] = {}
        last_tok: dict[int, int] = {}
        for i, s in enumerate(sid):
            if s >= 0:
                first_tok.setdefault(s, i)
                last_tok[s] = i
        group = self.list_groups(feat, spans, order)
        listed = {g for g, n in Counter(group.values()).items() if n > 1}
        roles = self.roles(feat, spans, order, group, listed)
        pairs = []
        for a, (ta, sa, ea) in enumerate(spans):
            for b, (tb, sb, eb) in enumerate(spans):
                if a == b or abs(sid[sa] - sid[sb]) > self.sentence_gap:
                    continue
                forward = (sa, ea) < (sb, eb)
                same_list = group[a] == group[b]
                allowed = [(ta, tb) in ends and (forward or not sym) and not (unpaired and same_list)
                           and not (unowned and group[a] in listed)
                           for ends, sym, unpaired, unowned in zip(self.ends, self.symmetric, self.list_unpaired,
                                                                   self.list_unowned, strict=True)]
                if not any(allowed):
                    continue
                (_, first_end), (second_start, _) = sorted([(sa, ea), (sb, eb)])
                gap = max(0, second_start - first_end - 1)
                context = (first_tok[min(sid[sa], sid[sb])], last_tok[max(sid[sa], sid[sb])])
                pairs.append(Pair(a, b, allowed, bisect_right(GAP_EDGES, gap) - 1,
                                  min(abs(rank[a] - rank[b]) - 1, MAX_BETWEEN), int(forward), context,
                                  roles[a], roles[b]))
        pairs.sort(key=lambda p: p.gap)
        return pairs[: self.max_pairs]

    def list_groups(self, feat: Feature, spans: list[tuple[int, int, int]], order: list[int]) -> dict[int, int]:
        """Span index -> list id: neighbours of one type with only a list mark between them share one."""
        group: dict[int, int] = {}
        marks = feat.list_marks
        for r, k in enumerate(order):
            if r and self._joined(spans[order[r - 1]], spans[k], marks):
                group[k] = group[order[r - 1]]
            else:
                group[k] = k
        return group

    def roles(self, feat: Feature, spans: list[tuple[int, int, int]], order: list[int], group: dict[int, int],
              listed: set[int]) -> list[int]:
        """ROLE_* bits per span: LEFT/RIGHT when one conjunction token joins it to the next/previous
        span of its type, LISTED when it belongs to a list of two or more."""
        roles = [ROLE_LISTED if group[k] in listed else 0 for k in range(len(spans))]
        conj = feat.conjunctions
        for prev, k in zip(order, order[1:], strict=False):
            (tp, _, ep), (tk, sk, _) = spans[prev], spans[k]
            if tp == tk and sk == ep + 2 and conj and conj[ep + 1]:
                roles[prev] |= ROLE_LEFT
                roles[k] |= ROLE_RIGHT
        return roles

    @staticmethod
    def _joined(first: tuple[int, int, int], second: tuple[int, int, int], marks: list[bool]) -> bool:
        """True when two spans of one type are separated by exactly one list-mark token."""
        return first[0] == second[0] and second[1] == first[2] + 2 and bool(marks) and marks[first[2] + 1]

    def pair_targets(self, feat: Feature, pairs: list[Pair]) -> list[list[float]]:
        """0/1 per (pair, relation) from the window's gold relations (symmetric ones in either order)."""
        gold = set()
        for r, h, t in feat.relations:
            gold.add((r, h, t))
            if self.symmetric[r]:
                gold.add((r, t, h))
        return [[float((r, p.head, p.tail) in gold) for r in range(len(self.relation_labels))] for p in pairs]


def pair_batch(items: list[tuple[int, list[tuple[int, int, int]], list[Pair]]], n_relation: int
               ) -> dict[str, torch.Tensor]:
    """Tensors for the relation scorer from (batch row, spans, pairs) per window."""
    cols: dict[str, list] = {k: [] for k in ("rows", "head_start", "head_end", "tail_start", "tail_end",
                                             "head_type", "tail_type", "gap", "between", "forward",
                                             "context_start", "context_end", "head_role", "tail_role",
                                             "allowed")}
    for row, spans, pairs in items:
        for p in pairs:
            (th, hs, he), (tt, ts, te) = spans[p.head], spans[p.tail]
            for key, value in (("rows", row), ("head_start", hs), ("head_end", he), ("tail_start", ts),
                               ("tail_end", te), ("head_type", th), ("tail_type", tt), ("gap", p.gap),
                               ("between", p.between), ("forward", p.forward), ("context_start", p.context[0]),
                               ("context_end", p.context[1]), ("head_role", p.head_role),
                               ("tail_role", p.tail_role), ("allowed", p.allowed)):
                cols[key].append(value)
    out = {k: torch.tensor(v, dtype=torch.long) for k, v in cols.items() if k != "allowed"}
    out["allowed"] = torch.tensor(cols["allowed"], dtype=torch.bool).reshape(len(cols["rows"]), n_relation)
    return out


def pointer_targets(features: list[Feature], symmetric: list[bool], length: int) -> dict[str, torch.Tensor]:
    """GPLinker head-start→tail-start and head-end→tail-end grids [batch, relations, length, length]
    (symmetric relations both ways), the targets of the auxiliary pointer heads."""
    head = torch.zeros((len(features), len(symmetric), length, length))
    tail = torch.zeros_like(head)
    for i, f in enumerate(features):
        for r, h, t in f.relations:
            (_, hs, he), (_, ts, te) = f.entities[h], f.entities[t]
            head[i, r, hs, ts] = tail[i, r, he, te] = 1
            if symmetric[r]:
                head[i, r, ts, hs] = tail[i, r, te, he] = 1
    return {"head_labels": head, "tail_labels": tail}


def collate(features: list[Feature], pad_id: int, n_entity: int, featurizer: Featurizer | None = None,
            pointers: bool = False) -> dict[str, torch.Tensor]:
    """Pad a batch. With a featurizer (training): dense 0/1 span targets [batch, labels, length, length],
    the gold-span candidate pairs with their relation targets under "pairs", and with `pointers`
    the auxiliary head/tail pointer grids."""
    length = max(len(f.input_ids) for f in features)
    batch = len(features)
    ids = torch.full((batch, length), pad_id, dtype=torch.long)
    mask = torch.zeros((batch, length), dtype=torch.long)
    for i, f in enumerate(features):
        ids[i, :len(f.input_ids)] = torch.tensor(f.input_ids)
        mask[i, :len(f.input_ids)] = 1
    out: dict = {"input_ids": ids, "attention_mask": mask}
    if features[0].hints:
        hints = torch.zeros((batch, length, len(features[0].hints[0])), dtype=torch.long)
        for i, f in enumerate(features):
            hints[i, :len(f.hints)] = torch.tensor(f.hints, dtype=torch.long)
        out["hints"] = hints
    if featurizer is not None:
        ent = torch.zeros((batch, n_entity, length, length))
        items, targets = [], []
        for i, f in enumerate(features):
            for label, a, b in f.entities:
                ent[i, label, a, b] = 1
            pairs = featurizer.candidate_pairs(f, f.entities)
            items.append((i, f.entities, pairs))
            targets.extend(featurizer.pair_targets(f, pairs))
        n_rel = len(featurizer.relation_labels)
        pairs = pair_batch(items, n_rel)
        pairs["labels"] = torch.tensor(targets, dtype=torch.float).reshape(len(pairs["rows"]), n_rel)
        out.update(entity_labels=ent, pairs=pairs)
        if pointers:
            out.update(pointer_targets(features, featurizer.symmetric, length))
    return out
