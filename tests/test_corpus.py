"""The committed corpus: compiled files match their sources, the checker finds no error, sizes hold."""

from __future__ import annotations

import shutil
from pathlib import Path

from edupair.annotations import Document, Entity, Relation, read_jsonl
from edupair.corpus import add_train_only, build_corpus, check_consistency, split_documents

ROOT = Path(__file__).resolve().parents[1] / "data" / "annotations"


def test_compiled_splits_match_sources_and_checker_is_clean(tmp_path):
    shutil.copytree(ROOT / "src", tmp_path / "src")
    shutil.copy(ROOT / "README.md", tmp_path / "README.md")
    splits, findings, stats = build_corpus(tmp_path)
    assert [str(f) for f in findings.errors] == []
    for name in ("train", "dev", "test"):
        assert read_jsonl(tmp_path / f"{name}.jsonl") == read_jsonl(ROOT / f"{name}.jsonl"), name
    assert stats["documents"] >= 1000 and stats["characters"] >= 150_000
    assert min(stats[f"entity {k}"] for k in ("REGION", "SCHOOL", "PROGRAM", "NUMBER")) >= 1500
    assert min(stats[f"relation {k}"] for k in ("paired_with", "participates_in", "quantity")) >= 400


def test_no_13_gram_shared_across_splits():
    grams = {}
    for name in ("train", "dev", "test"):
        for doc in read_jsonl(ROOT / f"{name}.jsonl"):
            for k in range(len(doc.text) - 12):
                grams.setdefault(doc.text[k:k + 13], set()).add(name)
    assert not [g for g, where in grams.items() if len(where) > 1]


def _doc(doc_id: str, text: str, spans: list[tuple[str, str]], rels=()) -> Document:
    ents = []
    for i, (surface, label) in enumerate(spans, start=1):
        start = text.index(surface, ents[-1].end if ents else 0)
        ents.append(Entity(f"T{i}", start, start + len(surface), label, surface))
    return Document(doc_id, text, ents, [Relation(*r) for r in rels])


def test_checker_findings():
    spans = [("温江区", "REGION"), ("巴南区", "REGION"), ("2023年", "NUMBER")]
    docs = [_doc("a", "温江区与巴南区结对，温江区派出2023年教师。", spans),
            _doc("b", "温江区实验小学。", [("温江区", "SCHOOL")])]
    found = check_consistency(docs)
    kinds = sorted(f.kind for f in found.errors)
    assert kinds == ["label-conflict", "number"]
    assert [str(w) for w in found.warnings] == ["a: unannotated: '温江区' at 10 is not annotated"]


def test_split_keeps_near_duplicates_together():
    shared = "两地学校在课程建设方面开展深度合作交流"
    docs = [_doc(f"d{i}", f"第{i}篇。" + (shared if i < 3 else f"独立内容{i}号文本"), []) for i in range(30)]
    splits = split_documents(docs)
    homes = {name for name, part in splits.items() for d in part if d.id in {"d0", "d1", "d2"}}
    assert len(homes) == 1
    assert sum(map(len, splits.values())) == 30


def test_train_only_batch_joins_train_unless_it_repeats_dev_or_test():
    docs = [_doc(f"a-{i:04d}", f"第{i}篇独立内容文本编号{i}。", []) for i in range(20)]
    splits = split_documents(docs)
    test_text = splits["test"][0].text
    extra = [_doc("h-1001", "全新的补充材料一篇,内容与其他文档不同。", []),
             _doc("h-1002", "开头不同。" + test_text, [])]
    merged, held = add_train_only(splits, extra)
    assert held == ["h-1002"]
    assert "h-1001" in {d.id for d in merged["train"]}
    assert merged["dev"] == splits["dev"] and merged["test"] == splits["test"]
