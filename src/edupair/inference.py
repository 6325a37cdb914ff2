"""Inference: raw text → normalized windows → model → entities and relations on raw offsets.

`Predictor.predict_texts` returns one record per input, in input order, in the output
contract of the model issue; decoding is shared with evaluation during training.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import partial

import torch

from edupair.annotations import Document, Entity, Relation
from edupair.features import Feature, Featurizer, collate, pair_batch
from edupair.lexicon import ENTITY_HINT_CHANNELS, hint_source
from edupair.model import EduPairModel
from edupair.schema import ENTITY_LABELS, RELATION_ENDS, RELATION_LABELS, SYMMETRIC_RELATIONS
from edupair.text import Normalized, normalize


@dataclass(frozen=True)
class Span:
    """A predicted entity on the normalized text."""

    start: int
    end: int
    label: str
    score: float


@dataclass(frozen=True)
class Link:
    """A predicted relation between two spans."""

    head: Span
    label: str
    tail: Span
    score: float


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(min(x, 50.0), -50.0)))


def allowed_ends(model: EduPairModel) -> dict[str, frozenset[tuple[str, str]]]:
    """The (head type, tail type) pairs per relation declared in the model's config (else the guide's)."""
    declared = model.extra.get("relation_ends")
    if not declared:
        return dict(RELATION_ENDS)
    return {label: frozenset(tuple(pair) for pair in pairs) for label, pairs in declared.items()}


def _span_totals(per_token: torch.Tensor) -> torch.Tensor:
    """[start, end, ...]: the sum of per-token values over tokens start..end (inclusive)."""
    count = torch.cat([torch.zeros_like(per_token[:1]), per_token.cumsum(0)])
    return count[None, 1:] - count[:-1, None]


def decode_spans(feat: Feature, logits: torch.Tensor, entity_labels: list[str], threshold: float,
                 max_spans: int = 256) -> list[tuple[Span, tuple[int, int, int]]]:
    """Flat (non-overlapping, best score first) spans of one window with their (label, start tok,
    end tok). At most `max_spans` candidates are looked at, so an untrained model cannot blow up."""
    n_tok = len(feat.offsets)
    pad = [False] * (logits.shape[-1] - n_tok)
    valid = torch.tensor([e > s for s, e in feat.offsets] + pad)
    grid = logits.masked_fill(~(valid[None, :, None] & valid[None, None, :]), float("-inf"))
    if any(feat.breaks):  # no span may run across a character the featurizer marks as a break
        crossing = _span_totals(torch.tensor(feat.breaks + pad, dtype=torch.float)) > 0
        grid = grid.masked_fill(crossing[None], float("-inf"))
    if any(any(q) for q in feat.quotes):  # no span may hold an unmatched quote mark
        quotes = torch.tensor(feat.quotes + [(0,) * len(feat.quotes[0])] * len(pad), dtype=torch.float)
        unbalanced = (_span_totals(quotes) != 0).any(-1)
        grid = grid.masked_fill(unbalanced[None], float("-inf"))
    hits = (grid > threshold).nonzero()
    scores = grid[hits[:, 0], hits[:, 1], hits[:, 2]]
    order = scores.argsort(descending=True)[:max_spans]
    kept: list[tuple[Span, tuple[int, int, int]]] = []
    for t, s, e in hits[order].tolist():
        if all(e < ks or ke < s for _, (_, ks, ke) in kept):
            span = Span(feat.offsets[s][0] + feat.char_offset, feat.offsets[e][1] + feat.char_offset,
                        entity_labels[t], _sigmoid(logits[t, s, e].item()))
            kept.append((span, (t, s, e)))
    return sorted(kept, key=lambda x: x[1][1])


def featurizer_for(model: EduPairModel, tokenizer) -> Featurizer:
    """The featurizer a saved model was trained with (windows, allowed ends, pair limits)."""
    x = model.extra
    hinter = None
    if model.hint_channels:
        channels = tuple(x.get("hint_channel_names", ENTITY_HINT_CHANNELS))
        hinter = partial(hint_source(x["hints"]).hint_tags, channels=channels)
    return Featurizer(tokenizer, model.entity_labels, model.relation_labels, x["max_length"], x["window_chars"],
                      x["window_overlap"], allowed_ends(model), x["pair_sentence_gap"], x["max_pairs"],
                      x["span_breaks"], hinter, model.hint_channels, x.get("list_mark", ""),
                      tuple(x.get("list_unpaired", ())), tuple(x.get("list_unowned", ())),
                      tuple(x.get("span_balanced", ())), x.get("span_breaks_unquoted", ""),
                      x.get("conjunctions", ""))


def merge(spans: Iterable[Span], links: Iterable[Link]) -> tuple[list[Span], list[Link]]:
    """Merge windows: best score per (start, end, label), then flat non-overlapping spans by score,
    then links whose ends survived (symmetric links once, in text order)."""
    best: dict[tuple[int, int, str], Span] = {}
    for sp in spans:
        key = (sp.start, sp.end, sp.label)
        if key not in best or sp.score > best[key].score:
            best[key] = sp
    kept: list[Span] = []
    taken = bytearray(max((sp.end for sp in best.values()), default=0))  # characters already in a kept span
    for sp in sorted(best.values(), key=lambda x: (-x.score, x.start)):
        if not any(taken[sp.start:sp.end]):
            kept.append(sp)
            taken[sp.start:sp.end] = b"\x01" * (sp.end - sp.start)
    kept.sort(key=lambda x: (x.start, x.end))
    alive = {(k.start, k.end, k.label): k for k in kept}
    out: dict[tuple, Link] = {}
    for link in links:
        h, t = alive.get((link.head.start, link.head.end, link.head.label)), \
            alive.get((link.tail.start, link.tail.end, link.tail.label))
        if h is None or t is None:
            continue
        if link.label in SYMMETRIC_RELATIONS and (t.start, t.end) < (h.start, h.end):
            h, t = t, h
        key = (h.start, h.end, link.label, t.start, t.end)
        if key not in out or link.score > out[key].score:
            out[key] = Link(h, link.label, t, link.score)
    return kept, sorted(out.values(), key=lambda x: (x.head.start, x.tail.start, x.label))


@torch.no_grad()
def predict_features(model: EduPairModel, featurizer: Featurizer, features: list[Feature], pad_id: int,
                     batch_size: int, threshold: float, relation_threshold: float, device: torch.device
                     ) -> Iterator[tuple[Feature, list[Span], list[Link]]]:
    """Run the model over features in length-sorted batches: spans first, then the pair scorer on
    the candidate pairs of those spans; yields (feature, spans, links)."""
    order = sorted(range(len(features)), key=lambda i: len(features[i].input_ids))
    for b in range(0, len(order), batch_size):
        chunk = [features[i] for i in order[b:b + batch_size]]
        batch = collate(chunk, pad_id, len(model.entity_labels))
        out = model.encode(**{k: v.to(device) for k, v in batch.items()})
        logits = out["entity_logits"].float().cpu()
        decoded = [decode_spans(feat, logits[i], model.entity_labels, threshold) for i, feat in enumerate(chunk)]
        items = [(i, [tok for _, tok in found], featurizer.candidate_pairs(feat, [tok for _, tok in found]))
                 for i, (feat, found) in enumerate(zip(chunk, decoded, strict=True))]
        pairs = pair_batch(items, len(model.relation_labels))
        probs = model.pair_head(out["hidden"], {k: v.to(device) for k, v in pairs.items()}).float().sigmoid().cpu()
        hits = ((probs > relation_threshold) & pairs["allowed"]).nonzero().tolist()
        links: list[list[Link]] = [[] for _ in chunk]
        flat = [(i, p) for i, _, cands in items for p in cands]   # pair n of the batch -> (window, pair)
        for n, r in hits:
            i, p = flat[n]
            links[i].append(Link(decoded[i][p.head][0], model.relation_labels[r], decoded[i][p.tail][0],
                                 probs[n, r].item()))
        for i, feat in enumerate(chunk):
            yield feat, [span for span, _ in decoded[i]], links[i]


def predict_spans(model: EduPairModel, featurizer: Featurizer, texts: list[str], pad_id: int, batch_size: int,
                  threshold: float, relation_threshold: float, device: torch.device
                  ) -> list[tuple[list[Span], list[Link]]]:
    """Merged spans and links per normalized text (all windows of all texts batched together)."""
    features = [f for i, text in enumerate(texts) for f in featurizer.encode_text(text, i)]
    found: list[tuple[list[Span], list[Link]]] = [([], []) for _ in texts]
    for feat, spans, links in predict_features(model, featurizer, features, pad_id, batch_size, threshold,
                                               relation_threshold, device):
        found[feat.doc_index][0].extend(spans)
        found[feat.doc_index][1].extend(links)
    return [merge(spans, links) for spans, links in found]


def record(doc_id: str, norm: Normalized, spans: list[Span], links: list[Link]) -> dict:
    """One output line of the contract: entities with normalized and raw offsets, relations, error=None."""
    ids = {}
    entities = []
    for n, sp in enumerate(spans, start=1):
        raw_start, raw_end = norm.to_raw(sp.start, sp.end)
        ids[(sp.start, sp.end, sp.label)] = f"T{n}"
        entities.append({"id": f"T{n}", "label": sp.label, "text": norm.text[sp.start:sp.end],
                         "raw_text": norm.raw[raw_start:raw_end], "start": sp.start, "end": sp.end,
                         "raw_start": raw_start, "raw_end": raw_end, "score": round(sp.score, 4)})
    relations = [{"head": norm.text[ln.head.start:ln.head.end], "head_label": ln.head.label,
                  "head_id": ids[(ln.head.start, ln.head.end, ln.head.label)], "label": ln.label,
                  "tail": norm.text[ln.tail.start:ln.tail.end], "tail_label": ln.tail.label,
                  "tail_id": ids[(ln.tail.start, ln.tail.end, ln.tail.label)], "score": round(ln.score, 4)}
                 for ln in links]
    return {"id": doc_id, "entities": entities, "relations": relations, "error": None}


def record_to_document(rec: dict, text: str) -> Document:
    """A prediction record as an annotation document on its normalized text."""
    ents = [Entity(e["id"], e["start"], e["end"], e["label"], e["text"]) for e in rec["entities"]]
    rels = [Relation(r["head_id"], r["tail_id"], r["label"]) for r in rec["relations"]]
    return Document(rec["id"], text, ents, rels)


def error_record(doc_id: str, exc: BaseException) -> dict:
    """The record of a document that failed: no entities, and the error's type and message."""
    return {"id": doc_id, "entities": [], "relations": [],
            "error": {"type": getattr(exc, "kind", type(exc).__name__), "message": str(exc)}}


class Predictor:
    """A loaded model folder ready to turn raw texts into records."""

    def __init__(self, folder: str, device: str = "auto", batch_size: int = 16, threshold: float | None = None,
                 relation_threshold: float | None = None, quantize: bool | str = "auto") -> None:
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self.model, self.tokenizer = EduPairModel.load(folder, self.device)
        if quantize not in (True, False, "auto"):
            raise ValueError(f"quantize must be auto, true or false, not {quantize!r}")
        if quantize is True and self.device.type != "cpu":
            raise ValueError("quantize=true is for CPU inference (int8 dynamic quantization); use device=cpu")
        if quantize is True or (quantize == "auto" and self.device.type == "cpu"):
            self.model.quantize_encoder()
        if (self.model.entity_labels, self.model.relation_labels) != (list(ENTITY_LABELS), list(RELATION_LABELS)):
            raise ValueError(f"model folder {folder} was trained for labels {self.model.entity_labels} / "
                             f"{self.model.relation_labels}, not this package's {list(ENTITY_LABELS)} / "
                             f"{list(RELATION_LABELS)}")
        extra = self.model.extra
        self.threshold = extra["threshold"] if threshold is None else threshold
        self.relation_threshold = extra["relation_threshold"] if relation_threshold is None else relation_threshold
        self.batch_size = batch_size
        self.featurizer = featurizer_for(self.model, self.tokenizer)

    def predict_normalized(self, norms: list[Normalized]) -> list[tuple[list[Span], list[Link]]]:
        """Spans and links for already-normalized texts (one window batch run for all of them)."""
        return predict_spans(self.model, self.featurizer, [n.text for n in norms], self.tokenizer.pad_token_id,
                             self.batch_size, self.threshold, self.relation_threshold, self.device)

    def predict_texts(self, items: list[tuple[str, str]]) -> list[dict]:
        """Records for (id, raw text) pairs, in order; a failing document gets an error record."""
        return [rec for rec, _ in self.predict_with_texts(items)]

    def predict_with_texts(self, items: list[tuple[str, str]]) -> list[tuple[dict, str]]:
        """(record, normalized text) per (id, raw text) pair, so later stages need not normalize again."""
        norms: list[Normalized | None] = []
        errors: dict[int, BaseException] = {}
        for i, (_, raw) in enumerate(items):
            try:
                norms.append(normalize(raw))
            except Exception as exc:  # noqa: BLE001 - one bad document must not stop the batch
                norms.append(None)
                errors[i] = exc
        good = [i for i, n in enumerate(norms) if n is not None]
        try:
            results = dict(zip(good, self.predict_normalized([norms[i] for i in good]), strict=True))
        except Exception:  # noqa: BLE001 - fall back to one document at a time to isolate the failure
            results = {}
            for i in good:
                try:
                    results[i] = self.predict_normalized([norms[i]])[0]
                except Exception as exc:  # noqa: BLE001
                    errors[i] = exc
        out = []
        for i, (doc_id, _) in enumerate(items):
            text = norms[i].text if norms[i] is not None else ""
            out.append((error_record(doc_id, errors[i]) if i in errors else record(doc_id, norms[i], *results[i]),
                        text))
        return out
