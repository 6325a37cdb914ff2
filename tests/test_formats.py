"""Lossless round trips through Label Studio, doccano and brat."""

from __future__ import annotations

from edupair import formats
from edupair.authoring import compile_source


def test_labelstudio_round_trip(tmp_path, docs):
    path = tmp_path / "ls.json"
    formats.write_labelstudio(docs, path)
    assert formats.read_labelstudio(path) == docs


def test_labelstudio_predictions_carry_scores(doc):
    task = formats.to_labelstudio(doc, scores={"T1": 0.9})
    assert task["predictions"][0]["result"][0]["score"] == 0.9
    assert formats.from_labelstudio(task) == doc


def test_doccano_round_trip(tmp_path, docs):
    path = tmp_path / "dc.jsonl"
    formats.write_doccano(docs, path)
    assert formats.read_doccano(path) == docs


def test_brat_round_trip(tmp_path, docs):
    formats.write_brat(docs, tmp_path / "brat")
    assert sorted(p.name for p in (tmp_path / "brat").iterdir())[:2] == ["fx-1.ann", "fx-1.txt"]
    assert formats.read_brat(tmp_path / "brat") == docs


def test_all_labels_present(doc):
    assert {e.label for e in doc.entities} == {"REGION", "SCHOOL", "PROGRAM", "NUMBER"}
    assert {r.label for r in doc.relations} == {"paired_with", "participates_in", "quantity"}


def test_authoring_compiles(tmp_path):
    src = tmp_path / "a.txt"
    src.write_text("# c\n=== x-1\n[温江区](REGION:a)与[巴南区](REGION:b)[11所](NUMBER:n)学校结对。\n"
                   "第二行[光华实小](SCHOOL)\n@paired_with a b\n@quantity b n\n", encoding="utf-8")
    (doc,) = compile_source(src)
    assert doc.text == "温江区与巴南区11所学校结对。\n第二行光华实小"
    assert [(e.text, e.start) for e in doc.entities] == [("温江区", 0), ("巴南区", 4), ("11所", 7), ("光华实小", 19)]
    assert [(r.head, r.tail, r.label) for r in doc.relations] == [("T1", "T2", "paired_with"), ("T2", "T3", "quantity")]
