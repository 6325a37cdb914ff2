"""Model pipeline on a tiny random encoder: alignment, loss, training, resume, predict, evaluate."""

from __future__ import annotations

import json

import pytest
import torch

from edupair.batch import run_prediction
from edupair.evaluation import run_evaluation
from edupair.features import Featurizer, collate
from edupair.model import multilabel_categorical_crossentropy
from edupair.schema import ENTITY_LABELS, RELATION_LABELS
from edupair.training import train

from .conftest import ENCODER, make_doc, needs_encoder, tiny_cfg


@needs_encoder
def test_alignment_uses_offsets():
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(ENCODER))
    feat = Featurizer(tok, list(ENTITY_LABELS), list(RELATION_LABELS), 128, 100, 20)
    doc = make_doc()
    (f,) = feat.encode_document(doc)
    assert feat.stats.aligned == len(doc.entities) and feat.stats.unaligned == 0
    for label, s, e in f.entities:
        text = doc.text[f.offsets[s][0]:f.offsets[e][1]]
        assert text in {x.text for x in doc.entities if x.label == ENTITY_LABELS[label]}
    assert len(f.relations) == len(doc.relations)
    assert "head_labels" not in collate([f], tok.pad_token_id, 4, feat)
    batch = collate([f], tok.pad_token_id, 4, feat, pointers=True)
    assert batch["entity_labels"].sum().item() == len(doc.entities)
    # auxiliary GPLinker pointers: paired_with stored in both directions, the others once
    assert batch["head_labels"].sum().item() == batch["tail_labels"].sum().item() == 2 * 2 + 1 + 1
    # candidate pairs: every gold relation is a positive cell, each symmetric pair offered once
    pairs = batch["pairs"]
    assert pairs["labels"].sum().item() == len(doc.relations)
    assert not (pairs["labels"].bool() & ~pairs["allowed"]).any()
    sym = RELATION_LABELS.index("paired_with")
    offered = [(int(h), int(t)) for h, t, ok in zip(pairs["head_start"], pairs["tail_start"],
                                                      pairs["allowed"][:, sym], strict=True) if ok]
    assert offered and all(h < t for h, t in offered)
    assert int(pairs["allowed"][:, sym].sum()) == 2  # two REGIONs, two SCHOOLs: one pair each


def test_mcce_loss_small_when_right():
    target = torch.zeros(1, 1, 4, 4)
    target[0, 0, 1, 2] = 1
    good = torch.full((1, 1, 4, 4), -20.0)
    good[0, 0, 1, 2] = 20.0
    assert multilabel_categorical_crossentropy(good, target).item() < 1e-6
    assert multilabel_categorical_crossentropy(-good, target).item() > 10



def test_mcce_loss_matches_the_dense_formula():
    """The sparse positive term gives the loss and gradient of Su's dense formula, rows without
    positives included."""
    gen = torch.Generator().manual_seed(0)
    logits = (torch.randn(3, 2, 6, 6, generator=gen) * 4).requires_grad_()
    target = (torch.rand(3, 2, 6, 6, generator=gen) > 0.85).float()
    target[0, 1] = 0
    flat, t = logits.flatten(2), target.flatten(2)
    signed = (1 - 2 * t) * flat
    zeros = torch.zeros_like(signed[..., :1])
    dense = (torch.logsumexp(torch.cat([signed - t * 1e12, zeros], -1), -1)
             + torch.logsumexp(torch.cat([signed - (1 - t) * 1e12, zeros], -1), -1)).mean()
    expected = torch.autograd.grad(dense, logits)[0]
    loss = multilabel_categorical_crossentropy(logits, target)
    assert torch.allclose(loss, dense, atol=1e-5)
    assert torch.allclose(torch.autograd.grad(loss, logits)[0], expected, atol=1e-6)

@needs_encoder
def test_train_resume_predict_evaluate(tmp_path):
    cfg = tiny_cfg(tmp_path, "trainer.epochs=1")
    first = train(cfg)
    assert first["epochs"] == 1 and (tmp_path / "model" / "edupair_config.json").exists()
    again = train(tiny_cfg(tmp_path, "trainer.epochs=2"))
    assert [h["epoch"] for h in again["history"]] == [1, 2]
    # both cut-offs are chosen on dev among the configured candidates and stored with the model
    chosen = again["calibrated"]
    assert chosen["threshold"] in cfg.trainer.calibrate_threshold
    assert chosen["relation_threshold"] in cfg.trainer.calibrate_relation_threshold
    assert len(chosen["grid"]) == len(cfg.trainer.calibrate_threshold) * len(cfg.trainer.calibrate_relation_threshold)
    saved = json.loads((tmp_path / "model" / "edupair_config.json").read_text(encoding="utf-8"))
    assert (saved["threshold"], saved["relation_threshold"]) == (chosen["threshold"], chosen["relation_threshold"])
    assert saved["list_unpaired"] == ["paired_with"] and saved["span_balanced"] == ["“”", "《》"]
    assert "ema" in torch.load(tmp_path / "work" / "checkpoint.pt", weights_only=False)
    shards = list((tmp_path / "model").glob("*.safetensors"))
    assert shards and all(s.stat().st_size < 15_000_000 for s in shards)

    pages = tmp_path / "in.jsonl"
    pages.write_text('{"id": "p1", "text": "溫江區與巴南區結對。"}\n{broken\n{"id": "p3", "text": ""}\n',
                     encoding="utf-8")
    out = tmp_path / "pred.jsonl"
    result = run_prediction(str(pages), str(out), str(tmp_path / "model"), batch_size=2, device="cpu")
    assert result == {"documents": 3, "errors": 1, "output": str(out)}
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in records] == ["p1", "in:2", "p3"]
    assert set(records[0]) == {"id", "entities", "relations", "error"}
    assert records[1]["error"]["type"] == "InvalidJSON" and "in.jsonl:2" in records[1]["error"]["message"]
    for ent in records[0]["entities"]:
        assert set(ent) == {"id", "label", "text", "raw_text", "start", "end", "raw_start", "raw_end", "score"}
    for rel in records[0]["relations"]:
        assert set(rel) == {"head", "head_label", "head_id", "label", "tail", "tail_label", "tail_id", "score"}

    gold = tmp_path / "data" / "dev.jsonl"
    report = run_evaluation(str(gold), None, str(tmp_path / "model"), str(tmp_path / "eval"), device="cpu")
    assert report["level"] == "mention"
    assert set(report["entities"]) == {*ENTITY_LABELS, "micro", "macro"}
    assert "## The" in (tmp_path / "eval" / "report.md").read_text(encoding="utf-8")
    joined = run_evaluation(str(gold), None, str(tmp_path / "model"), str(tmp_path / "eval_pages"), device="cpu",
                            pack_chars=10_000)  # both dev documents on one page
    assert joined["entities"]["micro"]["support"] == report["entities"]["micro"]["support"]
    assert "pages of up to 10000" in (tmp_path / "eval_pages" / "report.md").read_text(encoding="utf-8")


@needs_encoder
def test_training_starts_from_a_trained_model_of_the_same_config(tmp_path, tiny_model):
    from edupair.model import EduPairModel
    from edupair.training import build_model

    trained, _ = EduPairModel.load(tiny_model)
    model, _ = build_model(tiny_cfg(tmp_path, f"model.init_from={tiny_model}"))
    for name, weight in trained.state_dict().items():
        assert torch.equal(model.state_dict()[name], weight), name
    with pytest.raises(ValueError, match="init_from.*do not fit"):
        build_model(tiny_cfg(tmp_path, f"model.init_from={tiny_model}", "model.head_size=8"))


@needs_encoder
def test_averaged_model_holds_the_mean_weights_and_gets_dev_cut_offs(tmp_path, tiny_model):
    from edupair.model import EduPairModel
    from edupair.training import average_models, build_model, calibrate_thresholds, save_model

    trained, tokenizer = EduPairModel.load(tiny_model)
    shifted = tmp_path / "shifted"
    with torch.no_grad():
        for weight in trained.parameters():
            weight.add_(0.5)
    save_model(trained, tokenizer, shifted, "14MB")
    original = EduPairModel.load(tiny_model)[0].state_dict()
    soup, _ = average_models([tiny_model, shifted])
    averaged = soup.state_dict()
    for name, _ in trained.named_parameters():
        assert torch.allclose(averaged[name], original[name] + 0.25, atol=2e-3), name
    save_model(soup, tokenizer, tmp_path / "soup", "14MB")
    chosen = calibrate_thresholds(tmp_path / "soup", [make_doc()], [0.0, -1.0], [0.4, 0.6], 4, "cpu")
    meta = json.loads((tmp_path / "soup" / "edupair_config.json").read_text(encoding="utf-8"))
    assert (meta["threshold"], meta["relation_threshold"]) == (chosen["threshold"], chosen["relation_threshold"])
    with pytest.raises(ValueError, match="at least two"):
        average_models([tiny_model])
    other, other_tok = build_model(tiny_cfg(tmp_path, "model.head_size=8"))
    save_model(other, other_tok, tmp_path / "other", "14MB")
    with pytest.raises(ValueError, match="only models of one config"):
        average_models([tiny_model, tmp_path / "other"])


@needs_encoder
def test_training_refuses_invalid_annotations(tmp_path):
    cfg = tiny_cfg(tmp_path)
    bad = tmp_path / "data" / "train.jsonl"
    obj = make_doc().to_dict()
    obj["entities"][0]["text"] = "错"
    bad.write_text(json.dumps(obj, ensure_ascii=False) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"train.jsonl:1: entity T1: text '错' does not match"):
        train(cfg)


@needs_encoder
def test_labelstudio_export_import_preserves_predictions(tmp_path, tiny_model):
    from edupair import formats

    src = tmp_path / "in.jsonl"
    src.write_text('{"id": "a", "text": "成都市温江区与重庆市巴南区结对，12所学校加入计划。"}\n', encoding="utf-8")
    run_prediction(str(src), str(tmp_path / "p.jsonl"), str(tiny_model), device="cpu", threshold=-2.0)
    run_prediction(str(src), str(tmp_path / "p.json"), str(tiny_model), device="cpu", threshold=-2.0,
                   fmt="labelstudio")
    (rec,) = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text(encoding="utf-8").splitlines()]
    (doc,) = formats.read_labelstudio(tmp_path / "p.json")
    assert rec["entities"], "the low threshold should give some spans to carry"
    assert [(e.id, e.start, e.end, e.label, e.text) for e in doc.entities] == [
        (e["id"], e["start"], e["end"], e["label"], e["text"]) for e in rec["entities"]]
    assert [(r.head, r.label, r.tail) for r in doc.relations] == [
        (r["head_id"], r["label"], r["tail_id"]) for r in rec["relations"]]


def test_decoding_keeps_quote_marks_balanced():
    from edupair.features import Feature
    from edupair.inference import decode_spans

    # tokens: [CLS] “ 甲 乙 ” 计 划 [SEP]; a span may hold both quote marks or neither, never one
    offsets = [(0, 0)] + [(i, i + 1) for i in range(6)] + [(0, 0)]
    quotes = [(0,), (1,), (0,), (0,), (-1,), (0,), (0,), (0,)]
    feat = Feature(0, 0, list(range(8)), offsets, quotes=quotes)
    logits = torch.full((4, 8, 8), -5.0)
    logits[2, 1, 3] = 9.0   # “甲乙: the opener without its closer
    logits[2, 2, 3] = 3.0   # 甲乙
    logits[2, 2, 6] = 2.0   # 甲乙”计划: the closer without its opener
    found = decode_spans(feat, logits, list(ENTITY_LABELS), threshold=0.0)
    assert [(span.start, span.end, span.label) for span, _ in found] == [(1, 3, "PROGRAM")]
    logits[2, 1, 6] = 1.0   # “甲乙”计划: an inner quote, kept
    logits[2, 2, 3] = -5.0
    assert [(span.start, span.end) for span, _ in decode_spans(feat, logits, list(ENTITY_LABELS), 0.0)] == [(0, 6)]


@needs_encoder
def test_lists_block_pairs_inside_them_and_quantities_of_their_members():
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(ENCODER))
    feat = Featurizer(tok, list(ENTITY_LABELS), list(RELATION_LABELS), 128, 100, 20, list_mark="、",
                      list_unpaired=("paired_with",), list_unowned=("quantity",))
    text = "甲县与乙县、丙县与丁县结对。戊县、己县共5所,庚县3所。"
    (f,) = feat.encode_text(text)
    start = {s: i for i, (s, e) in enumerate(f.offsets) if e > s}
    end = {e: i for i, (s, e) in enumerate(f.offsets) if e > s}
    names = ["甲县", "乙县", "丙县", "丁县", "戊县", "己县", "庚县", "5所", "3所"]
    spans = []
    for name in names:
        s = text.index(name)
        spans.append((ENTITY_LABELS.index("NUMBER" if "所" in name else "REGION"), start[s], end[s + len(name)]))
    offered = {(names[p.head], names[p.tail], RELATION_LABELS[r])
               for p in feat.candidate_pairs(f, spans) for r, ok in enumerate(p.allowed) if ok}
    assert ("甲县", "乙县", "paired_with") in offered and ("丙县", "丁县", "paired_with") in offered
    assert ("乙县", "丙县", "paired_with") not in offered   # members of one list
    assert ("戊县", "己县", "paired_with") not in offered
    assert ("戊县", "5所", "quantity") not in offered and ("己县", "5所", "quantity") not in offered
    assert ("庚县", "3所", "quantity") in offered and ("庚县", "5所", "quantity") in offered


@needs_encoder
def test_pair_roles_tell_listed_pairs_from_a_distributing_list():
    from transformers import AutoTokenizer

    from edupair.features import ROLE_LEFT, ROLE_LISTED, ROLE_RIGHT

    tok = AutoTokenizer.from_pretrained(str(ENCODER))
    feat = Featurizer(tok, list(ENTITY_LABELS), list(RELATION_LABELS), 128, 100, 20, list_mark="、",
                      conjunctions="与")
    text = "甲县与乙县、丙县与丁县结对。戊县与己县、庚县结对。"
    (f,) = feat.encode_text(text)
    start = {s: i for i, (s, e) in enumerate(f.offsets) if e > s}
    names = ["甲县", "乙县", "丙县", "丁县", "戊县", "己县", "庚县"]
    spans = [(0, start[text.index(n)], start[text.index(n)] + 1) for n in names]
    roles = {(names[p.head], names[p.tail]): (p.head_role, p.tail_role) for p in feat.candidate_pairs(f, spans)}
    assert roles[("甲县", "丙县")] == (ROLE_LEFT, ROLE_LISTED | ROLE_LEFT)    # C starts a pair of its own
    assert roles[("戊县", "庚县")] == (ROLE_LEFT, ROLE_LISTED)                # C shares A's partner
    assert roles[("丙县", "丁县")] == (ROLE_LISTED | ROLE_LEFT, ROLE_RIGHT)


@needs_encoder
def test_list_marks_break_spans_outside_quotes_only():
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(ENCODER))
    feat = Featurizer(tok, list(ENTITY_LABELS), list(RELATION_LABELS), 128, 100, 20,
                      span_balanced=("“”", "《》"), span_breaks_unquoted="、")
    text = "甲县、乙县参加“百校结对、千师交流”行动。"
    (f,) = feat.encode_text(text)
    marks = [text[s:e] == "、" for s, e in f.offsets]
    assert [b for b, m in zip(f.breaks, marks, strict=True) if m] == [True, False]


def test_decoding_keeps_spans_off_break_characters():
    from edupair.features import Feature
    from edupair.inference import decode_spans

    # tokens: [CLS] 天 , 荣 昌 区 [SEP]; the comma is a break character
    offsets = [(0, 0), (0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (0, 0)]
    feat = Feature(0, 10, list(range(7)), offsets, breaks=[False, False, True, False, False, False, False])
    logits = torch.full((4, 7, 7), -5.0)
    logits[0, 1, 5] = 9.0   # 天,荣昌区: crosses the comma
    logits[0, 3, 5] = 4.0   # 荣昌区
    found = decode_spans(feat, logits, list(ENTITY_LABELS), threshold=0.0)
    assert [(span.start, span.end, span.label) for span, _ in found] == [(12, 15, "REGION")]
    feat.breaks = [False] * 7
    assert [(span.start, span.end) for span, _ in decode_spans(feat, logits, list(ENTITY_LABELS), 0.0)] == [(10, 15)]


def test_older_model_folder_gets_a_clear_error(tmp_path):
    from edupair.model import HEAD_CONFIG, EduPairModel

    (tmp_path / HEAD_CONFIG).write_text(json.dumps({"entity_labels": list(ENTITY_LABELS),
                                                    "relation_labels": list(RELATION_LABELS), "head_size": 64}))
    with pytest.raises(ValueError, match="older edupair"):
        EduPairModel.load(tmp_path)


@needs_encoder
def test_cpu_predictor_quantizes_the_encoder_unless_told_not_to(tiny_model):
    from edupair.inference import Predictor

    def quantized(p: Predictor) -> bool:
        return any("quantized" in type(m).__module__ for m in p.model.encoder.modules())

    fast, exact = Predictor(str(tiny_model), device="cpu"), Predictor(str(tiny_model), device="cpu", quantize=False)
    assert quantized(fast) and not quantized(exact)
    text = make_doc().text
    assert fast.predict_texts([("a", text)])[0]["error"] is None
    with pytest.raises(ValueError, match="quantize"):
        Predictor(str(tiny_model), device="cpu", quantize="yes")


def test_length_grouped_batches_are_a_permutation_of_similar_lengths():
    import random

    from edupair.training import length_grouped

    draw = random.Random(3)
    lengths = [draw.randint(5, 250) for _ in range(100)]
    order = list(range(100))
    grouped = length_grouped(order, lengths, batch_size=4, group=25, rng=random.Random(0))
    assert sorted(grouped) == order
    batches = [grouped[b:b + 4] for b in range(0, 100, 4)]
    padded = sum(4 * max(lengths[i] for i in batch) for batch in batches)
    plain = sum(4 * max(lengths[i] for i in order[b:b + 4]) for b in range(0, 100, 4))
    assert padded < plain   # one chunk of 100 sorted: batches hold neighbours in length
    assert [lengths[i] for i in grouped] != sorted(lengths, reverse=True)  # batches come shuffled


def test_budget_schedule_ends_with_the_budget():
    from edupair.training import budget_schedule

    spent = {"share": 0.0}
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = budget_schedule(opt, warmup=2, total=12, spent=lambda: spent["share"])
    lrs = []
    for _ in range(7):
        opt.step()
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs[:3] == [0.5, 1.0, 0.9]  # warmup, then the step-based linear decay
    spent["share"] = 0.8  # most of the time budget gone: the decay follows the clock
    opt.step()
    sched.step()
    assert abs(opt.param_groups[0]["lr"] - 0.2) < 1e-9
    spent["share"] = 1.5
    opt.step()
    sched.step()
    assert opt.param_groups[0]["lr"] == 0.0
