"""Shared fixtures: tiny documents built here, never copied from ../shared."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from edupair.annotations import Document, Entity, Relation, write_jsonl

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


ROOT = Path(__file__).resolve().parents[1]
ENCODER = Path(os.environ.get("EDUPAIR_TEST_ENCODER", ROOT / "models" / "edupair-zh-mini"))
needs_encoder = pytest.mark.skipif(not (ENCODER / "tokenizer.json").exists(), reason="embedded encoder missing")


def tiny_cfg(tmp_path: Path, *overrides: str):
    """The tiny training config on six fixture documents written under `tmp_path`."""
    data = tmp_path / "data"
    docs = [make_doc(f"fx-{i}") for i in range(6)]
    write_jsonl(docs, data / "train.jsonl")
    write_jsonl(docs[:2], data / "dev.jsonl")
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        return compose("train", overrides=[
            "model=tiny", f"model.encoder={ENCODER}", f"data.train={data / 'train.jsonl'}",
            f"data.dev={data / 'dev.jsonl'}", "data.gazetteer=null", "trainer.epochs=2", "trainer.batch_size=4",
            "trainer.threads=1", "trainer.group_by_length=2", f"output_dir={tmp_path / 'model'}",
            f"work_dir={tmp_path / 'work'}", *overrides])


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A tiny model trained for two epochs on the fixture documents (shared by the tests)."""
    if not (ENCODER / "tokenizer.json").exists():
        pytest.skip("embedded encoder missing")
    from edupair.training import train

    tmp = tmp_path_factory.mktemp("tiny")
    train(tiny_cfg(tmp))
    return tmp / "model"
