"""The project's annotated corpus: compile sources, check consistency, split, write statistics.

`build_corpus` turns `data/annotations/src/*.txt` into normalized `train/dev/test.jsonl`
(split by document, no 13-character sequence shared across splits) and refreshes the
statistics table of `data/annotations/README.md`. Batches written after the split was fixed
(`TRAIN_ONLY_BATCHES`) go to train only, so dev and test stay the same sets across model versions.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from edupair.annotations import Document, Entity, validation_errors, write_jsonl
from edupair.authoring import compile_source
from edupair.schema import ENTITY_LABELS, RELATION_LABELS
from edupair.text import Boilerplate, normalize

SPLITS = ("train", "dev", "test")
TRAIN_ONLY_BATCHES = ("h", "i", "j", "k", "l")  # document id prefixes ("h-1001") that only ever join the train split
STATS_BEGIN, STATS_END = "<!-- stats:begin -->", "<!-- stats:end -->"
_SUSPICIOUS_NUMBER = re.compile(
    r"^第|^首|[年月日号]$|^\d{4}[-—~～至]\d{4}|^\d{2,4}[-—]\d{3,}|\d{7,}|^[xX×]+|^为期|(年|周|天|个月)$")


@dataclass
class Finding:
    """One consistency problem: `kind`, where, and what."""

    kind: str
    doc_id: str
    message: str

    def __str__(self) -> str:
        return f"{self.doc_id}: {self.kind}: {self.message}"


@dataclass
class Consistency:
    """Errors (must be zero) and warnings (reviewed) of the corpus checker."""

    errors: list[Finding] = field(default_factory=list)
    warnings: list[Finding] = field(default_factory=list)


def normalize_document(doc: Document) -> Document:
    """The document on its normalized text (clean sources: no boilerplate detection), spans remapped."""
    norm = normalize(doc.text, Boilerplate())
    entities = []
    for ent in doc.entities:
        start, end = norm.from_raw(ent.start, ent.end)
        entities.append(Entity(ent.id, start, end, ent.label, norm.text[start:end]))
    return Document(doc.id, norm.text, entities, list(doc.relations))


def check_consistency(docs: list[Document], allowed: dict[str, set[str]] | None = None) -> Consistency:
    """Label conflicts across the corpus, annotated strings left unannotated in a document,
    relation-end violations and date/ordinal-like NUMBER spans. `allowed` maps a string to
    labels it may carry besides its majority label (reviewed exceptions)."""
    out = Consistency()
    labels: dict[str, Counter] = defaultdict(Counter)
    for doc in docs:
        for ent in doc.entities:
            labels[ent.text][ent.label] += 1
        out.errors.extend(Finding("guide", doc.id, str(e)) for e in validation_errors(doc, "corpus", 0))
        for ent in doc.entities:
            if ent.label == "NUMBER" and _SUSPICIOUS_NUMBER.search(ent.text):
                out.errors.append(Finding("number", doc.id, f"'{ent.text}' looks like a date, ordinal or code"))
        out.warnings.extend(_unannotated(doc))
    allowed = allowed or {}
    for text, counts in labels.items():
        if len(counts) > 1 and not set(counts) <= allowed.get(text, set()) | {counts.most_common(1)[0][0]}:
            where = [d.id for d in docs for e in d.entities if e.text == text]
            out.errors.append(Finding("label-conflict", where[0],
                                      f"'{text}' labelled {dict(counts)} (docs {', '.join(sorted(set(where))[:5])})"))
    return out


def _unannotated(doc: Document) -> list[Finding]:
    """Occurrences of a document's annotated strings that no entity covers."""
    findings = []
    covered = [(e.start, e.end) for e in doc.entities]
    for surface in sorted({e.text for e in doc.entities}):
        for match in re.finditer(re.escape(surface), doc.text):
            s, e = match.span()
            if not any(a < e and s < b for a, b in covered):
                findings.append(Finding("unannotated", doc.id, f"'{surface}' at {s} is not annotated"))
    return findings


def _bucket(doc_id: str) -> float:
    """A stable number in [0, 1) from a document id."""
    return int(hashlib.sha1(doc_id.encode("utf-8")).hexdigest()[:8], 16) / 16**8


def split_documents(docs: list[Document], ratios: tuple[float, float, float] = (0.8, 0.1, 0.1),
                    ngram: int = 13) -> dict[str, list[Document]]:
    """Split by document; documents sharing any `ngram`-character sequence stay together."""
    parent = list(range(len(docs)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: dict[str, int] = {}
    for i, doc in enumerate(docs):
        for k in range(len(doc.text) - ngram + 1):
            gram = doc.text[k:k + ngram]
            if gram in first:
                parent[find(i)] = find(first[gram])
            else:
                first[gram] = i
    groups: dict[int, list[int]] = defaultdict(list)
    for i in range(len(docs)):
        groups[find(i)].append(i)
    # Big groups go first (to train); the rest fill dev and test towards their share.
    order = sorted(groups.values(), key=lambda g: (-len(g), _bucket(docs[g[0]].id)))
    targets = {name: r * len(docs) for name, r in zip(SPLITS, ratios, strict=True)}
    out: dict[str, list[Document]] = {name: [] for name in SPLITS}
    for group in order:
        name = max(SPLITS, key=lambda s: (targets[s] - len(out[s])) / max(targets[s], 1)
                   if len(out[s]) + len(group) <= targets[s] + 1 or s == "train" else -1.0)
        out[name].extend(docs[i] for i in group)
    for name in SPLITS:
        out[name].sort(key=lambda d: d.id)
    return out


def _grams(text: str, ngram: int) -> set[str]:
    return {text[k:k + ngram] for k in range(len(text) - ngram + 1)}


def add_train_only(splits: dict[str, list[Document]], extra: list[Document], ngram: int = 13
                   ) -> tuple[dict[str, list[Document]], list[str]]:
    """Add supplement documents to train; one sharing an `ngram` with dev or test is held out
    (its id returned) so no near duplicate crosses the split."""
    held = set().union(*(_grams(d.text, ngram) for name in SPLITS[1:] for d in splits[name]))
    kept = [d for d in extra if not _grams(d.text, ngram) & held]
    out = dict(splits, train=sorted(splits["train"] + kept, key=lambda d: d.id))
    kept_ids = {d.id for d in kept}
    return out, [d.id for d in extra if d.id not in kept_ids]


def statistics(docs: list[Document], province_of=None) -> dict:
    """Counts the issue asks for: documents, characters, mentions and relations per label, variety."""
    ents = Counter(e.label for d in docs for e in d.entities)
    rels = Counter(r.label for d in docs for r in d.relations)
    strings = {label: {e.text for d in docs for e in d.entities if e.label == label} for label in ENTITY_LABELS}
    foreign = {s for s in strings["SCHOOL"] if re.search(r"[A-Za-z]{3,}", s)}
    stats = {
        "documents": len(docs),
        "characters": sum(len(d.text) for d in docs),
        "entities": sum(ents.values()),
        **{f"entity {k}": ents[k] for k in ENTITY_LABELS},
        "relations": sum(rels.values()),
        **{f"relation {k}": rels[k] for k in RELATION_LABELS},
        **{f"distinct {k}": len(v) for k, v in strings.items()},
        "foreign schools (Latin names)": len(foreign),
        "documents without relation": sum(1 for d in docs if not d.relations),
        "documents without entity": sum(1 for d in docs if not d.entities),
    }
    if province_of is not None:
        provinces = {p for s in strings["REGION"] if (p := province_of(s))}
        stats["provinces covered (REGION strings)"] = len(provinces)
    return stats


def _stats_table(per_split: dict[str, dict]) -> str:
    """A markdown table, one column per split plus the total."""
    keys = list(next(iter(per_split.values())))
    head = "| | " + " | ".join(per_split) + " |\n|---|" + "---:|" * len(per_split) + "\n"
    rows = "".join(f"| {k} | " + " | ".join(f"{s.get(k, '')}" for s in per_split.values()) + " |\n" for k in keys)
    return head + rows


def build_corpus(root: Path, gazetteer=None) -> tuple[dict[str, list[Document]], Consistency, dict]:
    """Compile, normalize, check and split the corpus under `root`; write splits and the stats table."""
    docs = [normalize_document(d) for src in sorted((root / "src").glob("*.txt")) for d in compile_source(src)]
    ids = Counter(d.id for d in docs)
    findings = check_consistency(docs)
    findings.errors.extend(Finding("duplicate-id", i, "document id used twice") for i, n in ids.items() if n > 1)
    late = {d.id for d in docs if d.id.split("-")[0] in TRAIN_ONLY_BATCHES}
    splits, held_out = add_train_only(split_documents([d for d in docs if d.id not in late]),
                                      [d for d in docs if d.id in late])
    findings.warnings.extend(Finding("held-out", i, "shares a 13-character sequence with dev or test; not used")
                             for i in held_out)
    for name, part in splits.items():
        write_jsonl(part, root / f"{name}.jsonl")

    def province_of(name: str) -> str | None:
        div = gazetteer.resolve(name) if gazetteer else None
        return div.province_code if div else None

    per_split = {name: statistics(part, province_of if gazetteer else None) for name, part in splits.items()}
    per_split["all"] = statistics([d for part in splits.values() for d in part], province_of if gazetteer else None)
    readme = root / "README.md"
    text = readme.read_text(encoding="utf-8") if readme.exists() else f"{STATS_BEGIN}\n{STATS_END}\n"
    before, _, rest = text.partition(STATS_BEGIN)
    _, _, after = rest.partition(STATS_END)
    readme.write_text(f"{before}{STATS_BEGIN}\n{_stats_table(per_split)}{STATS_END}{after}", encoding="utf-8")
    return splits, findings, per_split["all"]
