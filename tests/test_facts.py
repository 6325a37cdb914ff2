"""Analyst outputs: canonical regions, document triples, pairing network and the HTML report."""

from __future__ import annotations

import csv
import shutil
import subprocess

import networkx as nx
import pytest

from edupair.facts import add_facts
from edupair.regions import Gazetteer

from .conftest import SHARED

GAZ_DIR = SHARED / "corpora" / "gazetteers" / "admin_divisions_cn"
needs_gazetteer = pytest.mark.skipif(not GAZ_DIR.exists(), reason="gazetteer not present")
TEXT = "成都市与重庆市巴南区签约。温江与巴南区结对，光华实小与巴南实验小学结对。"


def entity(i: int, label: str, text: str, start: int) -> dict:
    return {"id": f"T{i}", "label": label, "text": text, "raw_text": text, "start": start,
            "end": start + len(text), "raw_start": start, "raw_end": start + len(text), "score": 0.9}


def make_record() -> dict:
    spans = [("REGION", "成都市"), ("REGION", "重庆市巴南区"), ("REGION", "温江"), ("REGION", "巴南区"),
             ("SCHOOL", "光华实小"), ("SCHOOL", "巴南实验小学")]
    ents, cursor = [], 0
    for i, (label, text) in enumerate(spans, start=1):
        start = TEXT.index(text, cursor)
        ents.append(entity(i, label, text, start))
        cursor = start + len(text)
    rel = [("T1", "T2"), ("T3", "T4"), ("T5", "T6")]
    by_id = {e["id"]: e for e in ents}
    relations = [{"head": by_id[h]["text"], "head_label": by_id[h]["label"], "head_id": h, "label": "paired_with",
                  "tail": by_id[t]["text"], "tail_label": by_id[t]["label"], "tail_id": t, "score": 0.8}
                 for h, t in rel]
    return {"id": "doc1", "entities": ents, "relations": relations, "error": None}


@pytest.fixture(scope="module")
def gazetteer() -> Gazetteer:
    if not GAZ_DIR.exists():
        pytest.skip("gazetteer not present")
    return Gazetteer.from_folder(GAZ_DIR)


@needs_gazetteer
def test_canonical_regions_use_document_context(gazetteer):
    rec = add_facts(make_record(), TEXT, gazetteer)
    canon = {e["text"]: e["canonical"] for e in rec["entities"] if e["label"] == "REGION"}
    assert canon["温江"] == {"name": "四川省成都市温江区", "code": "510115", "resolved": True}
    assert canon["重庆市巴南区"]["code"] == canon["巴南区"]["code"] == "500113"
    schools = {e["text"]: e["region"] for e in rec["entities"] if e["label"] == "SCHOOL"}
    assert schools["巴南实验小学"]["code"] == "500113" and schools["巴南实验小学"]["from"] == "name"
    assert schools["光华实小"]["from"] == "context"


@needs_gazetteer
def test_doc_relations_merge_aliases(gazetteer):
    rec = add_facts(make_record(), TEXT, gazetteer)
    facts = {(f["head"], f["tail"]): f for f in rec["doc_relations"]}
    assert ("四川省成都市温江区", "重庆市巴南区") in facts or ("重庆市巴南区", "四川省成都市温江区") in facts
    key = next(k for k in facts if "重庆市巴南区" in k and "四川省成都市温江区" in k)
    assert facts[key]["mentions"] == 1 and facts[key]["evidence"] == ["温江与巴南区结对，光华实小与巴南实验小学结对。"]
    assert len(rec["doc_relations"]) == 3


def test_unresolved_region_says_so():
    gaz = Gazetteer([])
    rec = add_facts(make_record(), TEXT, gaz)
    assert rec["entities"][0]["canonical"] == {"name": None, "code": None, "resolved": False, "mention": "成都市"}


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium not installed")
def test_graph_png_and_html_rendered_in_chromium(tmp_path):
    from edupair.corpus_view import write_corpus_view

    rec = add_facts(make_record(), TEXT, None)
    result = write_corpus_view([rec], {"doc1": TEXT}, tmp_path)
    assert result["edges"] == 3
    with open(tmp_path / "edges.csv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert {r["relation"] for r in rows} == {"paired_with"} and len(rows) == 3
    assert nx.read_graphml(tmp_path / "graph.graphml").number_of_nodes() == 6
    assert (tmp_path / "graph.png").read_bytes()[:4] == b"\x89PNG"
    dom = subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                          "--no-first-run", "--disable-background-networking", "--disable-component-update",
                          "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
                          (tmp_path / "report.html").as_uri()], capture_output=True, text=True, timeout=120).stdout
    for ent in rec["entities"]:
        assert f'data-label="{ent["label"]}" data-id="{ent["id"]}"' in dom
    assert dom.count('<mark class="ent') == len(rec["entities"])
