"""Shared fixtures: tiny documents built here, never copied from ../shared."""

from __future__ import annotations

from pathlib import Path

import pytest

from edupair.annotations import Document, Entity, Relation

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def make_doc(doc_id: str = "fx-1") -> Document:
    """A document with all four entity types and all three relations."""
    text = "成都市温江区与重庆市巴南区签订协议，光华实小与巴南实验小学结对，两地共有12所学校加入“山海同行”计划。"
    spans = [("成都市温江区", "REGION"), ("重庆市巴南区", "REGION"), ("光华实小", "SCHOOL"),
             ("巴南实验小学", "SCHOOL"), ("12所", "NUMBER"), ("“山海同行”计划", "PROGRAM")]
    entities = []
    for i, (surface, label) in enumerate(spans, start=1):
        start = text.index(surface)
        entities.append(Entity(f"T{i}", start, start + len(surface), label, surface))
    relations = [Relation("T1", "T2", "paired_with"), Relation("T3", "T4", "paired_with"),
                 Relation("T3", "T6", "participates_in"), Relation("T6", "T5", "quantity")]
    return Document(doc_id, text, entities, relations)


@pytest.fixture
def doc() -> Document:
    return make_doc()


@pytest.fixture
def docs() -> list[Document]:
    second = make_doc("fx-2")
    second.relations = []
    empty = Document("fx-3", "两校开展线上教研活动。")
    return [make_doc(), second, empty]
