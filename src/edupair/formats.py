"""Conversion between the guide's documents and the formats annotators use.

Label Studio JSON (labels + relations), doccano JSONL (entities + relations) and brat
standoff (.txt + .ann). Entity ids `T<n>` survive every round trip; doccano stores the
number alone.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from edupair.annotations import Document, Entity, Relation

LS_FROM, LS_TO = "label", "text"


def _entity_number(entity_id: str, fallback: int) -> int:
    """The integer of an id `T<n>`, or `fallback` for other ids."""
    match = re.fullmatch(r"T(\d+)", entity_id)
    return int(match.group(1)) if match else fallback


# --- Label Studio -------------------------------------------------------------------------

def to_labelstudio(doc: Document, scores: dict[str, float] | None = None) -> dict:
    """A Label Studio task; with `scores` (entity id -> score) the result is a pre-annotation."""
    result: list[dict] = []
    for ent in doc.entities:
        item = {"id": ent.id, "from_name": LS_FROM, "to_name": LS_TO, "type": "labels",
                "value": {"start": ent.start, "end": ent.end, "text": ent.text, "labels": [ent.label]}}
        if scores is not None:
            item["score"] = scores.get(ent.id)
        result.append(item)
    for rel in doc.relations:
        result.append({"type": "relation", "from_id": rel.head, "to_id": rel.tail,
                       "direction": "right", "labels": [rel.label]})
    key = "predictions" if scores is not None else "annotations"
    return {"data": {"text": doc.text, "doc_id": doc.id}, key: [{"result": result}]}


def from_labelstudio(task: dict) -> Document:
    """A document from a Label Studio task (its last annotation, else its last prediction)."""
    data = task["data"]
    runs = task.get("annotations") or task.get("predictions") or [{"result": []}]
    entities, relations = [], []
    for item in runs[-1]["result"]:
        if item.get("type") == "relation":
            for label in item.get("labels", []):
                relations.append(Relation(item["from_id"], item["to_id"], label))
        elif item.get("type") == "labels":
            value = item["value"]
            text = value.get("text", data["text"][value["start"]:value["end"]])
            entities.append(Entity(item["id"], value["start"], value["end"], value["labels"][0], text))
    doc_id = str(data.get("doc_id", task.get("id", "")))
    return Document(doc_id, data["text"], sorted(entities, key=lambda e: e.start), relations)


def write_labelstudio(docs: list[Document], path: str | Path) -> None:
    """All documents as one Label Studio import file (a JSON list of tasks)."""
    tasks = [to_labelstudio(doc) for doc in docs]
    Path(path).write_text(json.dumps(tasks, ensure_ascii=False, indent=1), encoding="utf-8")


def read_labelstudio(path: str | Path) -> list[Document]:
    """Documents from a Label Studio JSON export."""
    return [from_labelstudio(task) for task in json.loads(Path(path).read_text(encoding="utf-8"))]


# --- doccano ------------------------------------------------------------------------------

def to_doccano(doc: Document) -> dict:
    """A doccano relation-extraction record."""
    numbers = {e.id: _entity_number(e.id, i + 1) for i, e in enumerate(doc.entities)}
    return {
        "id": doc.id,
        "text": doc.text,
        "entities": [{"id": numbers[e.id], "label": e.label, "start_offset": e.start,
                      "end_offset": e.end} for e in doc.entities],
        "relations": [{"id": i + 1, "from_id": numbers[r.head], "to_id": numbers[r.tail], "type": r.label}
                      for i, r in enumerate(doc.relations)],
    }


def from_doccano(record: dict) -> Document:
    """A document from a doccano relation-extraction record."""
    text = record["text"]
    entities = [Entity(f"T{e['id']}", e["start_offset"], e["end_offset"], e["label"],
                       text[e["start_offset"]:e["end_offset"]]) for e in record.get("entities", [])]
    relations = [Relation(f"T{r['from_id']}", f"T{r['to_id']}", r["type"]) for r in record.get("relations", [])]
    return Document(str(record["id"]), text, sorted(entities, key=lambda e: e.start), relations)


def write_doccano(docs: list[Document], path: str | Path) -> None:
    """Documents as doccano JSONL."""
    lines = [json.dumps(to_doccano(doc), ensure_ascii=False) for doc in docs]
    Path(path).write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def read_doccano(path: str | Path) -> list[Document]:
    """Documents from doccano JSONL."""
    with open(path, encoding="utf-8") as handle:
        return [from_doccano(json.loads(line)) for line in handle if line.strip()]


# --- brat ---------------------------------------------------------------------------------

def to_brat(doc: Document) -> tuple[str, str]:
    """The (.txt, .ann) contents of a document."""
    lines = [f"{e.id}\t{e.label} {e.start} {e.end}\t{e.text}" for e in doc.entities]
    lines += [f"R{i + 1}\t{r.label} Arg1:{r.head} Arg2:{r.tail}" for i, r in enumerate(doc.relations)]
    return doc.text, "".join(line + "\n" for line in lines)


def from_brat(doc_id: str, text: str, ann: str) -> Document:
    """A document from brat standoff text and annotations (T and R lines)."""
    entities, relations = [], []
    for line in ann.splitlines():
        if line.startswith("T"):
            ent_id, spec, _ = line.split("\t", 2)
            label, start, end = spec.split(" ")
            entities.append(Entity(ent_id, int(start), int(end), label, text[int(start):int(end)]))
        elif line.startswith("R"):
            _, spec = line.split("\t", 1)
            label, arg1, arg2 = spec.split()
            relations.append(Relation(arg1.split(":", 1)[1], arg2.split(":", 1)[1], label))
    return Document(doc_id, text, entities, relations)


def write_brat(docs: list[Document], folder: str | Path) -> None:
    """One `<id>.txt` and `<id>.ann` per document in `folder`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for doc in docs:
        text, ann = to_brat(doc)
        (folder / f"{doc.id}.txt").write_text(text, encoding="utf-8")
        (folder / f"{doc.id}.ann").write_text(ann, encoding="utf-8")


def read_brat(folder: str | Path) -> list[Document]:
    """Documents from every `.txt`/`.ann` pair of a folder, in name order."""
    docs = []
    for txt in sorted(Path(folder).glob("*.txt")):
        ann = txt.with_suffix(".ann")
        docs.append(from_brat(txt.stem, txt.read_text(encoding="utf-8"),
                              ann.read_text(encoding="utf-8") if ann.exists() else ""))
    return docs
