"""Annotation documents of ANNOTATION_GUIDE.md: data model, JSONL I/O, validation, BIO views.

Every error names the file, the line and the entity or relation it is about, so an
annotator can jump straight to the fault.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from edupair.schema import ENTITY_LABELS, RELATION_ENDS, RELATION_LABELS


@dataclass(frozen=True)
class Entity:
    """A labelled span of the normalized text; `end` is exclusive."""

    id: str
    start: int
    end: int
    label: str
    text: str


@dataclass(frozen=True)
class Relation:
    """A typed link from one entity id to another."""

    head: str
    tail: str
    label: str


@dataclass
class Document:
    """One annotated document or paragraph."""

    id: str
    text: str
    entities: list[Entity] = field(default_factory=list)
    relations: list[Relation] = field(default_factory=list)

    def entity(self, entity_id: str) -> Entity:
        """The entity with this id (KeyError if absent)."""
        for ent in self.entities:
            if ent.id == entity_id:
                return ent
        raise KeyError(entity_id)

    def to_dict(self) -> dict:
        """The guide's JSON object for this document."""
        return {
            "id": self.id,
            "text": self.text,
            "entities": [asdict(e) for e in self.entities],
            "relations": [asdict(r) for r in self.relations],
        }


def join_documents(docs: list[Document], sep: str = "\n") -> Document:
    """One page holding several documents one after another (entity ids prefixed by position),
    so short annotated documents can stand in for the long pages predict windows mid-text."""
    if len(docs) == 1:
        return docs[0]
    text, entities, relations = "", [], []
    for k, doc in enumerate(docs):
        if k:
            text += sep
        offset = len(text)
        entities += [Entity(f"{k}.{e.id}", e.start + offset, e.end + offset, e.label, e.text) for e in doc.entities]
        relations += [Relation(f"{k}.{r.head}", f"{k}.{r.tail}", r.label) for r in doc.relations]
        text += doc.text
    return Document("+".join(d.id for d in docs), text, entities, relations)


def pages(docs: list[Document], max_chars: int) -> list[Document]:
    """Consecutive documents joined into pages of at most `max_chars` (a longer one stays alone)."""
    out: list[Document] = []
    run: list[Document] = []
    size = 0  # characters in `run`, each followed by its separator
    for doc in docs:
        if run and size + len(doc.text) > max_chars:
            out.append(join_documents(run))
            run, size = [], 0
        run.append(doc)
        size += len(doc.text) + 1
    if run:
        out.append(join_documents(run))
    return out


class AnnotationError(ValueError):
    """A fault in an annotation file, located by file, line and id."""

    def __init__(self, source: str, line: int, what: str, message: str) -> None:
        self.source, self.line, self.what, self.detail = source, line, what, message
        super().__init__(f"{source}:{line}: {what}: {message}")


def _require(obj: dict, key: str, kind: type, source: str, line: int, what: str):
    """Field `key` of `obj`, checked to be of `kind`."""
    if key not in obj:
        raise AnnotationError(source, line, what, f"missing field '{key}'")
    value = obj[key]
    if kind is int and isinstance(value, bool) or not isinstance(value, kind):
        raise AnnotationError(source, line, what, f"field '{key}' must be {kind.__name__}")
    return value


def document_from_dict(obj: object, source: str = "<memory>", line: int = 1) -> Document:
    """Build a Document from the guide's JSON object, checking field presence and types."""
    if not isinstance(obj, dict):
        raise AnnotationError(source, line, "document", "line is not a JSON object")
    doc_id = _require(obj, "id", str, source, line, "document")
    text = _require(obj, "text", str, source, line, f"document {doc_id}")
    entities = []
    for raw in obj.get("entities", []):
        what = f"entity {raw.get('id', '?')}" if isinstance(raw, dict) else "entity"
        if not isinstance(raw, dict):
            raise AnnotationError(source, line, what, "entity is not a JSON object")
        entities.append(Entity(
            id=_require(raw, "id", str, source, line, what),
            start=_require(raw, "start", int, source, line, what),
            end=_require(raw, "end", int, source, line, what),
            label=_require(raw, "label", str, source, line, what),
            text=_require(raw, "text", str, source, line, what),
        ))
    relations = []
    for raw in obj.get("relations", []):
        if not isinstance(raw, dict):
            raise AnnotationError(source, line, "relation", "relation is not a JSON object")
        what = f"relation {raw.get('head', '?')}->{raw.get('tail', '?')}"
        relations.append(Relation(
            head=_require(raw, "head", str, source, line, what),
            tail=_require(raw, "tail", str, source, line, what),
            label=_require(raw, "label", str, source, line, what),
        ))
    return Document(doc_id, text, entities, relations)


def validation_errors(doc: Document, source: str = "<memory>", line: int = 1) -> list[AnnotationError]:
    """Every violation of the guide in one document: spans, overlaps, labels, relation ends."""
    errors: list[AnnotationError] = []

    def err(what: str, message: str) -> None:
        errors.append(AnnotationError(source, line, what, message))

    by_id: dict[str, Entity] = {}
    for ent in doc.entities:
        what = f"entity {ent.id}"
        if ent.id in by_id:
            err(what, "duplicate entity id")
        by_id[ent.id] = ent
        if ent.label not in ENTITY_LABELS:
            err(what, f"unknown label '{ent.label}' (expected one of {', '.join(ENTITY_LABELS)})")
        if not 0 <= ent.start < ent.end <= len(doc.text):
            err(what, f"span [{ent.start}, {ent.end}) outside text of length {len(doc.text)}")
        elif doc.text[ent.start:ent.end] != ent.text:
            err(what, f"text '{ent.text}' does not match text[{ent.start}:{ent.end}] "
                      f"'{doc.text[ent.start:ent.end]}'")
    ordered = sorted(doc.entities, key=lambda e: (e.start, e.end))
    for left, right in zip(ordered, ordered[1:], strict=False):
        if right.start < left.end:
            err(f"entity {right.id}", f"span [{right.start}, {right.end}) overlaps entity "
                                      f"{left.id} [{left.start}, {left.end})")
    for rel in doc.relations:
        what = f"relation {rel.head}->{rel.tail}"
        if rel.label not in RELATION_LABELS:
            err(what, f"unknown label '{rel.label}' (expected one of {', '.join(RELATION_LABELS)})")
            continue
        missing = [end for end in (rel.head, rel.tail) if end not in by_id]
        if missing:
            err(what, f"{rel.label} refers to unknown entity id '{missing[0]}'")
            continue
        ends = (by_id[rel.head].label, by_id[rel.tail].label)
        if ends not in RELATION_ENDS[rel.label]:
            err(what, f"{rel.label} cannot link {ends[0]} to {ends[1]}")
    return errors


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, object]]:
    """(line number, parsed JSON) for each non-blank line; bad JSON raises AnnotationError."""
    with open(path, encoding="utf-8") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                yield number, json.loads(raw)
            except json.JSONDecodeError as exc:
                raise AnnotationError(str(path), number, "document", f"invalid JSON: {exc.msg}") from exc


def read_jsonl(path: str | Path, validate: bool = True) -> list[Document]:
    """Read an annotation file; with `validate`, raise the first guide violation found."""
    docs = []
    seen: set[str] = set()
    for number, obj in iter_jsonl(path):
        doc = document_from_dict(obj, str(path), number)
        if validate:
            problems = validation_errors(doc, str(path), number)
            if doc.id in seen:
                problems.insert(0, AnnotationError(str(path), number, f"document {doc.id}",
                                                   "duplicate document id"))
            if problems:
                raise problems[0]
        seen.add(doc.id)
        docs.append(doc)
    return docs


def write_jsonl(docs: Iterable[Document], path: str | Path) -> None:
    """Write documents atomically (temporary file, then rename) as the guide's JSONL."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        for doc in docs:
            handle.write(json.dumps(doc.to_dict(), ensure_ascii=False) + "\n")
    os.replace(tmp, path)


@dataclass
class FileReport:
    """What `validate` found in one file: counts and every error."""

    path: str
    documents: int = 0
    characters: int = 0
    entity_counts: Counter = field(default_factory=Counter)
    relation_counts: Counter = field(default_factory=Counter)
    errors: list[AnnotationError] = field(default_factory=list)


def check_file(path: str | Path) -> FileReport:
    """Validate every line of a file, collecting all errors instead of stopping at the first."""
    report = FileReport(str(path))
    seen: set[str] = set()
    try:
        for number, obj in iter_jsonl(path):
            try:
                doc = document_from_dict(obj, str(path), number)
            except AnnotationError as exc:
                report.errors.append(exc)
                continue
            if doc.id in seen:
                report.errors.append(AnnotationError(str(path), number, f"document {doc.id}",
                                                     "duplicate document id"))
            seen.add(doc.id)
            report.errors.extend(validation_errors(doc, str(path), number))
            report.documents += 1
            report.characters += len(doc.text)
            report.entity_counts.update(e.label for e in doc.entities)
            report.relation_counts.update(r.label for r in doc.relations)
    except (AnnotationError, OSError, UnicodeDecodeError) as exc:
        report.errors.append(exc if isinstance(exc, AnnotationError)
                             else AnnotationError(str(path), 0, "file", str(exc)))
    return report


def bio_tags(doc: Document) -> list[str]:
    """One BIO tag per character of the text (the flat view seqeval scores)."""
    tags = ["O"] * len(doc.text)
    for ent in doc.entities:
        tags[ent.start] = f"B-{ent.label}"
        for i in range(ent.start + 1, ent.end):
            tags[i] = f"I-{ent.label}"
    return tags


def entities_from_bio(text: str, tags: list[str]) -> list[Entity]:
    """Entities read back from a BIO sequence (stray I- tags start a new span, as seqeval does)."""
    spans: list[Entity] = []
    start, label = None, None
    for i, tag in enumerate([*tags, "O"]):
        prefix, _, kind = tag.partition("-")
        continues = prefix == "I" and kind == label and start is not None
        if start is not None and not continues:
            spans.append(Entity(f"T{len(spans) + 1}", start, i, label, text[start:i]))
            start, label = None, None
        if prefix in ("B", "I") and not continues:
            start, label = i, kind
    return spans
