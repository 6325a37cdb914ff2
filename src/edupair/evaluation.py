"""Evaluation: mention-level (seqeval strict on the BIO view; exact relations) and document-level sets.

Both return the same `Evaluation` shape, which `edupair.reports` writes as report.json and
report.md.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from seqeval.metrics import classification_report
from seqeval.scheme import IOB2

from edupair.annotations import Document, bio_tags, document_from_dict, iter_jsonl, pages
from edupair.schema import ENTITY_LABELS, RELATION_LABELS, SYMMETRIC_RELATIONS


def prf(tp: int, fp: int, fn: int) -> dict[str, float]:
    """Precision, recall, F1 and support from counts."""
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(2 * p * r / (p + r) if p + r else 0.0, 4),
            "support": tp + fn}


@dataclass
class DocErrors:
    """What one document got wrong."""

    id: str
    misses: list[str] = field(default_factory=list)
    false_alarms: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.misses) + len(self.false_alarms)


@dataclass
class Evaluation:
    """Per-label scores for entities and relations, micro and macro, plus per-document errors."""

    level: str
    entities: dict[str, dict]
    relations: dict[str, dict]
    documents: list[DocErrors]

    def summary(self) -> dict[str, float]:
        return {"entity_f1": self.entities["micro"]["f1"], "relation_f1": self.relations["micro"]["f1"]}

    def to_dict(self) -> dict:
        return {"level": self.level, "entities": self.entities, "relations": self.relations,
                "documents": len(self.documents)}


def _score_sets(counts: dict[str, Counter], labels: Iterable[str]) -> dict[str, dict]:
    """Per-label, micro and macro scores from tp/fp/fn counters."""
    table = {label: prf(counts[label]["tp"], counts[label]["fp"], counts[label]["fn"]) for label in labels}
    total = Counter()
    for label in labels:
        total.update(counts[label])
    table["micro"] = prf(total["tp"], total["fp"], total["fn"])
    present = [table[label] for label in labels]
    table["macro"] = {k: round(sum(t[k] for t in present) / max(len(present), 1), 4)
                      for k in ("precision", "recall", "f1")} | {"support": table["micro"]["support"]}
    return table


def _compare(gold: set, pred: set, counts: dict[str, Counter], label_of, show, errors: DocErrors) -> None:
    """Add one document's set comparison to the counters and the error lists."""
    for item in gold & pred:
        counts[label_of(item)]["tp"] += 1
    for item in pred - gold:
        counts[label_of(item)]["fp"] += 1
        errors.false_alarms.append(show(item))
    for item in gold - pred:
        counts[label_of(item)]["fn"] += 1
        errors.misses.append(show(item))


def _relation_key(head, label: str, tail) -> tuple:
    """A relation as a comparable tuple; symmetric relations get a fixed end order."""
    if label in SYMMETRIC_RELATIONS and tail < head:
        head, tail = tail, head
    return (head, label, tail)


def mention_level(gold: list[Document], pred: list[Document]) -> Evaluation:
    """Strict span scores (seqeval, IOB2) and exact head+tail+label relation scores."""
    by_id = {d.id: d for d in pred}
    y_true, y_pred = [], []
    ent_counts: dict[str, Counter] = {label: Counter() for label in ENTITY_LABELS}
    rel_counts: dict[str, Counter] = {label: Counter() for label in RELATION_LABELS}
    documents = []
    for g in gold:
        p = by_id.get(g.id, Document(g.id, g.text))
        y_true.append(bio_tags(g) or ["O"])
        y_pred.append(bio_tags(p) or ["O"])
        errors = DocErrors(g.id)
        span = {e.id: (e.start, e.end) for e in g.entities}
        pspan = {e.id: (e.start, e.end) for e in p.entities}
        _compare({(e.start, e.end, e.label, e.text) for e in g.entities},
                 {(e.start, e.end, e.label, e.text) for e in p.entities}, ent_counts,
                 lambda x: x[2], lambda x: f"{x[2]} {x[3]}", errors)
        _compare({_relation_key(span[r.head], r.label, span[r.tail]) for r in g.relations},
                 {_relation_key(pspan[r.head], r.label, pspan[r.tail]) for r in p.relations}, rel_counts,
                 lambda x: x[1], lambda x, text=g.text: f"{text[x[0][0]:x[0][1]]} {x[1]} {text[x[2][0]:x[2][1]]}",
                 errors)
        documents.append(errors)
    entities = _seqeval_table(y_true, y_pred)
    return Evaluation("mention", entities, _score_sets(rel_counts, RELATION_LABELS), documents)


def _seqeval_table(y_true: list[list[str]], y_pred: list[list[str]]) -> dict[str, dict]:
    """seqeval's strict report as {label: {precision, recall, f1, support}} plus micro/macro."""
    report = classification_report(y_true, y_pred, mode="strict", scheme=IOB2, output_dict=True, zero_division=0)
    table = {}
    for label in ENTITY_LABELS:
        row = report.get(label, {"precision": 0.0, "recall": 0.0, "f1-score": 0.0, "support": 0})
        table[label] = {"precision": round(float(row["precision"]), 4), "recall": round(float(row["recall"]), 4),
                        "f1": round(float(row["f1-score"]), 4), "support": int(row["support"])}
    for key, name in (("micro avg", "micro"), ("macro avg", "macro")):
        row = report[key]
        table[name] = {"precision": round(float(row["precision"]), 4), "recall": round(float(row["recall"]), 4),
                       "f1": round(float(row["f1-score"]), 4), "support": int(row["support"])}
    return table


@dataclass
class GoldPage:
    """A document-level gold record: raw text, entity (label, text) and relation (head, label, tail) sets."""

    id: str
    text: str
    entities: set[tuple[str, str]]
    relations: set[tuple[str, str, str]]


def gold_page(obj: dict) -> GoldPage:
    """A real-page gold record (the eval README's format)."""
    return GoldPage(obj["id"], obj["text"], {(e["label"], e["text"]) for e in obj["entities"]},
                    {_relation_key(r["head"], r["label"], r["tail"]) for r in obj["relations"]})


def page_sets(record: dict) -> tuple[set[tuple[str, str]], set[tuple[str, str, str]]]:
    """(entity set, relation set) of one prediction record, in normalized strings."""
    ents = {(e["label"], e["text"]) for e in record.get("entities", [])}
    rels = {_relation_key(r["head"], r["label"], r["tail"]) for r in record.get("relations", [])}
    return ents, rels


def document_level(gold: list[GoldPage], records: list[dict]) -> Evaluation:
    """Set scores per document (guide's last section), micro-averaged per label and overall."""
    by_id = {r["id"]: r for r in records}
    ent_counts: dict[str, Counter] = {label: Counter() for label in ENTITY_LABELS}
    rel_counts: dict[str, Counter] = {label: Counter() for label in RELATION_LABELS}
    documents = []
    for g in gold:
        ents, rels = page_sets(by_id.get(g.id, {}))
        errors = DocErrors(g.id)
        _compare(g.entities, ents, ent_counts, lambda x: x[0], lambda x: f"{x[0]} {x[1]}", errors)
        _compare(g.relations, rels, rel_counts, lambda x: x[1], lambda x: f"{x[0]} {x[1]} {x[2]}", errors)
        documents.append(errors)
    return Evaluation("document", _score_sets(ent_counts, ENTITY_LABELS),
                      _score_sets(rel_counts, RELATION_LABELS), documents)


def records_to_documents(records: list[dict], gold: list[Document]) -> list[Document]:
    """Prediction records as annotation documents on the gold texts (for mention-level scoring)."""
    from edupair.inference import record_to_document

    texts = {d.id: d.text for d in gold}
    return [record_to_document(rec, texts.get(rec["id"], "")) for rec in records]


def read_records(path: str) -> list[dict]:
    """Prediction records from a JSONL file."""
    return [obj for _, obj in iter_jsonl(path)]


def run_evaluation(gold_path: str, pred_path: str | None, model: str | None, out_dir: str,
                   batch_size: int = 16, device: str = "auto", worst: int = 20,
                   pack_chars: int | None = None) -> dict:
    """Score predictions (read, or made with `model`) against a gold file and write the reports.
    `pack_chars` joins mention-level gold into pages of up to that many characters first."""
    from edupair.inference import Predictor
    from edupair.reports import write_report

    objects = [obj for _, obj in iter_jsonl(gold_path)]
    mention = bool(objects) and all("start" in e for o in objects for e in o.get("entities", []))
    if pack_chars:
        if not mention or pred_path:
            raise ValueError("pack_chars needs gold with offsets and model=DIR (predictions are made on the pages)")
        docs = [document_from_dict(o, gold_path, i + 1) for i, o in enumerate(objects)]
        objects = [d.to_dict() for d in pages(docs, pack_chars)]
    if pred_path:
        records = read_records(pred_path)
    elif model:
        records = Predictor(model, device=device, batch_size=batch_size).predict_texts(
            [(str(o["id"]), o["text"]) for o in objects])
    else:
        raise ValueError("give pred=FILE or model=DIR")
    if mention:
        gold = [document_from_dict(o, gold_path, i + 1) for i, o in enumerate(objects)]
        evaluation = mention_level(gold, records_to_documents(records, gold))
    else:
        evaluation = document_level([gold_page(o) for o in objects], records)
    meta = {"gold": gold_path + (f" (joined into pages of up to {pack_chars} characters)" if pack_chars else ""),
            "predictions": pred_path or f"model {model}"}
    return write_report(evaluation, out_dir, f"Evaluation of {pred_path or model} on {gold_path}", worst, meta)
