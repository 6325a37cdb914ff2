"""Inline authoring format for annotators, compiled to the guide's JSONL (no offsets typed by hand).

A source file holds documents like this::

    === doc-id
    [温江区](REGION:a)与[巴南区](REGION:b)[11所](NUMBER:n)学校结对。
    @paired_with a b
    @quantity b n

`[text](LABEL)` marks a span; `:key` names it for relation lines `@label head tail`.
Text lines of one document are joined with a newline; lines starting with `#` outside a
document's text are comments.
"""

from __future__ import annotations

import re
from pathlib import Path

from edupair.annotations import AnnotationError, Document, Entity, Relation, validation_errors
from edupair.schema import ENTITY_LABELS

SPAN = re.compile(r"\[([^\[\]]+)\]\(([A-Z]+)(?::([A-Za-z0-9_]+))?\)")
HEADER = re.compile(r"^===\s*(\S+)\s*$")
RELATION_LINE = re.compile(r"^@(\w+)\s+(\w+)\s+(\w+)\s*$")


def _parse_text_line(line: str, offset: int, keys: dict[str, str], entities: list[Entity],
                     source: str, number: int) -> str:
    """Plain text of one marked-up line; spans are appended to `entities` with absolute offsets."""
    out: list[str] = []
    pos = 0
    for match in SPAN.finditer(line):
        out.append(line[pos:match.start()])
        surface, label, key = match.groups()
        if label not in ENTITY_LABELS:
            raise AnnotationError(source, number, f"span [{surface}]", f"unknown label '{label}'")
        start = offset + sum(map(len, out))
        ent = Entity(f"T{len(entities) + 1}", start, start + len(surface), label, surface)
        entities.append(ent)
        if key:
            if key in keys:
                raise AnnotationError(source, number, f"span [{surface}]", f"key '{key}' used twice")
            keys[key] = ent.id
        out.append(surface)
        pos = match.end()
    out.append(line[pos:])
    plain = "".join(out)
    if "](" in plain or re.search(r"\[[^\]]*\]\(", line[pos:]):
        raise AnnotationError(source, number, "markup", f"unparsed markup in '{line.strip()}'")
    return plain


def _compile_one(doc_id: str, lines: list[tuple[int, str]], source: str, header_line: int) -> Document:
    """Compile the body lines of one document."""
    keys: dict[str, str] = {}
    entities: list[Entity] = []
    texts: list[str] = []
    rel_lines: list[tuple[int, str]] = []
    for number, line in lines:
        if line.startswith("@"):
            rel_lines.append((number, line))
        elif line.strip():
            offset = sum(len(t) + 1 for t in texts)
            texts.append(_parse_text_line(line.strip(), offset, keys, entities, source, number))
    relations = []
    for number, line in rel_lines:
        match = RELATION_LINE.match(line.strip())
        if not match:
            raise AnnotationError(source, number, "relation", f"cannot read '{line.strip()}'")
        label, head, tail = match.groups()
        for key in (head, tail):
            if key not in keys:
                raise AnnotationError(source, number, f"relation {head}->{tail}", f"unknown key '{key}'")
        relations.append(Relation(keys[head], keys[tail], label))
    doc = Document(doc_id, "\n".join(texts), entities, relations)
    problems = validation_errors(doc, source, header_line)
    if problems:
        raise problems[0]
    return doc


def compile_source(path: str | Path) -> list[Document]:
    """All documents of one authoring file, validated against the guide."""
    source = str(path)
    docs: list[Document] = []
    current: tuple[str, int] | None = None
    body: list[tuple[int, str]] = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        header = HEADER.match(line)
        if header:
            if current:
                docs.append(_compile_one(current[0], body, source, current[1]))
            current, body = (header.group(1), number), []
        elif line.startswith("#") or current is None:
            if line.strip() and not line.startswith("#"):
                raise AnnotationError(source, number, "document", "text before the first '=== id' header")
        else:
            body.append((number, line))
    if current:
        docs.append(_compile_one(current[0], body, source, current[1]))
    return docs
