"""Annotation I/O and validation: every failure mode with its exact message."""

from __future__ import annotations

import json

import pytest

from edupair.annotations import (
    AnnotationError,
    bio_tags,
    check_file,
    entities_from_bio,
    read_jsonl,
    write_jsonl,
)


def write_lines(path, objects):
    path.write_text("".join(json.dumps(o, ensure_ascii=False) + "\n" for o in objects), encoding="utf-8")
    return path


def base():
    return {"id": "d1", "text": "温江区与巴南区11所学校结对。",
            "entities": [{"id": "T1", "start": 0, "end": 3, "label": "REGION", "text": "温江区"},
                         {"id": "T2", "start": 4, "end": 7, "label": "REGION", "text": "巴南区"},
                         {"id": "T3", "start": 7, "end": 10, "label": "NUMBER", "text": "11所"}],
            "relations": [{"head": "T1", "tail": "T2", "label": "paired_with"},
                          {"head": "T2", "tail": "T3", "label": "quantity"}]}


def test_round_trip(tmp_path, docs):
    path = tmp_path / "a.jsonl"
    write_jsonl(docs, path)
    assert read_jsonl(path) == docs


def mutate(fn):
    obj = base()
    fn(obj)
    return obj


CASES = [
    ("span_mismatch", lambda o: o["entities"][0].update(text="温江"),
     "entity T1: text '温江' does not match text[0:3] '温江区'"),
    ("out_of_range", lambda o: o["entities"][2].update(end=99),
     "entity T3: span [7, 99) outside text of length 15"),
    ("overlap", lambda o: o["entities"][1].update(start=2, text="区与巴南区"),
     "entity T2: span [2, 7) overlaps entity T1 [0, 3)"),
    ("unknown_entity_label", lambda o: o["entities"][0].update(label="CITY"),
     "entity T1: unknown label 'CITY' (expected one of REGION, SCHOOL, PROGRAM, NUMBER)"),
    ("unknown_relation_label", lambda o: o["relations"][0].update(label="sister_of"),
     "relation T1->T2: unknown label 'sister_of' (expected one of paired_with, participates_in, quantity)"),
    ("wrong_end_type", lambda o: o["relations"][0].update(tail="T3"),
     "relation T1->T3: paired_with cannot link REGION to NUMBER"),
    ("dangling_id", lambda o: o["relations"][1].update(head="T9"),
     "relation T9->T3: quantity refers to unknown entity id 'T9'"),
    ("duplicate_entity_id", lambda o: o["entities"][1].update(id="T1"),
     "entity T1: duplicate entity id"),
    ("missing_field", lambda o: o["entities"][0].pop("start"),
     "entity T1: missing field 'start'"),
    ("bad_type", lambda o: o["entities"][0].update(start="0"),
     "entity T1: field 'start' must be int"),
]


@pytest.mark.parametrize("name,change,message", CASES, ids=[c[0] for c in CASES])
def test_validation_message(tmp_path, name, change, message):
    path = write_lines(tmp_path / "bad.jsonl", [{"id": "ok", "text": "无实体。"}, mutate(change)])
    with pytest.raises(AnnotationError) as info:
        read_jsonl(path)
    assert str(info.value) == f"{path}:2: {message}"
    report = check_file(path)
    assert str(report.errors[0]) == f"{path}:2: {message}"


def test_invalid_json_and_duplicate_document(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": "a", "text": "x"}\n{"id": "a", "text": "y"}\n{not json\n', encoding="utf-8")
    report = check_file(path)
    messages = [str(e) for e in report.errors]
    assert messages[0] == f"{path}:2: document a: duplicate document id"
    assert messages[1].startswith(f"{path}:3: document: invalid JSON: ")


def test_not_an_object(tmp_path):
    path = write_lines(tmp_path / "bad.jsonl", [["a", "list"]])
    with pytest.raises(AnnotationError, match=r"bad.jsonl:1: document: line is not a JSON object$"):
        read_jsonl(path)


def test_check_file_counts(tmp_path):
    path = write_lines(tmp_path / "ok.jsonl", [base()])
    report = check_file(path)
    assert report.errors == []
    assert (report.documents, report.characters) == (1, 15)
    assert report.entity_counts == {"REGION": 2, "NUMBER": 1}
    assert report.relation_counts == {"paired_with": 1, "quantity": 1}


def test_bio_round_trip(doc):
    tags = bio_tags(doc)
    assert len(tags) == len(doc.text)
    assert tags[0] == "B-REGION" and tags[1] == "I-REGION"
    back = entities_from_bio(doc.text, tags)
    assert [(e.start, e.end, e.label, e.text) for e in back] == [
        (e.start, e.end, e.label, e.text) for e in doc.entities]
