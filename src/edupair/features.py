"""Tokenization and label alignment: normalized text windows → token ids and pointer targets.

Spans are aligned through the fast tokenizer's `offset_mapping` (a span whose edges fall
inside a token cannot be aligned and is counted, never guessed by substring search).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from edupair.annotations import Document
from edupair.schema import SYMMETRIC_RELATIONS
from edupair.text import windows


@dataclass
class Feature:
    """One window of one document, tokenized, with its pointer targets in token positions."""

    doc_index: int
    char_offset: int                     # window start in the normalized text
    input_ids: list[int]
    offsets: list[tuple[int, int]]       # per token, char span within the window ((0, 0) for specials)
    entities: list[tuple[int, int, int]] = field(default_factory=list)        # (label, start tok, end tok)
    heads: list[tuple[int, int, int]] = field(default_factory=list)           # (relation, head start, tail start)
    tails: list[tuple[int, int, int]] = field(default_factory=list)           # (relation, head end, tail end)


@dataclass
class AlignmentStats:
    """How many spans could be placed on token boundaries."""

    aligned: int = 0
    unaligned: int = 0
    outside_window: int = 0


class Featurizer:
    """Turns documents into windowed features for a given tokenizer and label set."""

    def __init__(self, tokenizer, entity_labels: list[str], relation_labels: list[str],
                 max_length: int, window_chars: int, window_overlap: int) -> None:
        self.tokenizer = tokenizer
        self.entity_index = {label: i for i, label in enumerate(entity_labels)}
        self.relation_index = {label: i for i, label in enumerate(relation_labels)}
        self.max_length = max_length
        self.window_chars = min(window_chars, max_length - 2)
        self.window_overlap = window_overlap
        self.stats = AlignmentStats()

    def encode_text(self, text: str, doc_index: int = 0) -> list[Feature]:
        """Unlabelled features for inference: one per window of the text."""
        feats = []
        for start, end in windows(text, self.window_chars, self.window_overlap) if text else [(0, 0)]:
            enc = self.tokenizer(text[start:end], truncation=True, max_length=self.max_length,
                                 return_offsets_mapping=True)
            feats.append(Feature(doc_index, start, enc["input_ids"], [tuple(o) for o in enc["offset_mapping"]]))
        return feats

    def encode_document(self, doc: Document, doc_index: int = 0) -> list[Feature]:
        """Labelled features: entities and relation pointers inside each window."""
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
        tokens: dict[str, tuple[int, int]] = {}
        for ent in doc.entities:
            if ent.start < feat.char_offset or ent.end > window_end:
                continue
            if ent.start in starts and ent.end in ends:
                tokens[ent.id] = (starts[ent.start], ends[ent.end])
                feat.entities.append((self.entity_index[ent.label], *tokens[ent.id]))
                aligned.add(ent.id)
            else:
                misaligned.add(ent.id)
        for rel in doc.relations:
            if rel.head not in tokens or rel.tail not in tokens or rel.label not in self.relation_index:
                continue
            pairs = [(tokens[rel.head], tokens[rel.tail])]
            if rel.label in SYMMETRIC_RELATIONS:
                pairs.append(pairs[0][::-1])
            r = self.relation_index[rel.label]
            for (hs, he), (ts, te) in pairs:
                feat.heads.append((r, hs, ts))
                feat.tails.append((r, he, te))


def collate(features: list[Feature], pad_id: int, n_entity: int, n_relation: int,
            with_labels: bool = True) -> dict[str, torch.Tensor]:
    """Pad a batch; dense 0/1 targets of shape [batch, labels, length, length] when labelled."""
    length = max(len(f.input_ids) for f in features)
    batch = len(features)
    ids = torch.full((batch, length), pad_id, dtype=torch.long)
    mask = torch.zeros((batch, length), dtype=torch.long)
    for i, f in enumerate(features):
        ids[i, :len(f.input_ids)] = torch.tensor(f.input_ids)
        mask[i, :len(f.input_ids)] = 1
    out = {"input_ids": ids, "attention_mask": mask}
    if with_labels:
        ent = torch.zeros((batch, n_entity, length, length))
        head = torch.zeros((batch, n_relation, length, length))
        tail = torch.zeros((batch, n_relation, length, length))
        for i, f in enumerate(features):
            for target, items in ((ent, f.entities), (head, f.heads), (tail, f.tails)):
                for label, a, b in items:
                    target[i, label, a, b] = 1
        out.update(entity_labels=ent, head_labels=head, tail_labels=tail)
    return out
