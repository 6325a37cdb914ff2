"""Training-time rendering: page packing keeps every span and relation intact."""

from __future__ import annotations

import random

from edupair.annotations import join_documents, pages, validation_errors
from edupair.augment import AugmentConfig, augment, pack


def test_join_documents_shifts_spans_and_keeps_relations(docs):
    page = join_documents(docs)
    assert page.text == "\n".join(d.text for d in docs)
    assert validation_errors(page) == []
    assert [e.text for e in page.entities] == [e.text for d in docs for e in d.entities]
    assert len(page.relations) == sum(len(d.relations) for d in docs)
    first = docs[0].relations[0]
    joined = page.relations[0]
    assert (page.entity(joined.head).text, page.entity(joined.tail).text) == (
        docs[0].entity(first.head).text, docs[0].entity(first.tail).text)


def test_pages_respect_the_limit(docs):
    limit = len(docs[0].text) + len(docs[1].text) + 1
    out = pages(docs, limit)
    assert [p.id for p in out] == [f"{docs[0].id}+{docs[1].id}", docs[2].id]
    assert all(len(p.text) <= limit for p in out)
    assert pages(docs, 1) == docs  # a page never splits a document


def test_pack_share_and_identity(docs):
    many = [d for _ in range(20) for d in docs]
    assert pack(many, random.Random(0), AugmentConfig(p_pack=0.0)) == many
    packed = pack(many, random.Random(0), AugmentConfig(p_pack=1.0, pack_chars=200))
    assert len(packed) < len(many)
    assert all(len(p.text) <= 200 for p in packed)
    assert sum(len(p.entities) for p in packed) == sum(len(d.entities) for d in many)
    assert all(validation_errors(p) == [] for p in packed)


def test_augmented_pages_keep_entity_texts(docs):
    rng = random.Random(3)
    cfg = AugmentConfig(p_traditional=1.0, p_boilerplate=1.0, p_pack=1.0, pack_chars=400)
    for page in pack([augment(d, rng, cfg) for d in docs * 5], rng, cfg):
        assert validation_errors(page) == []
        assert all(page.text[e.start:e.end] == e.text for e in page.entities)
