"""Training loop: accelerate (CPU, one or several GPUs), early stopping on dev relation F1,
checkpoints to resume from, per-epoch metrics in a JSON log, the best model saved atomically.
Dev scoring and the saved model use an exponential moving average of the weights (steadier than
the last step's); after training the entity and relation cut-offs are chosen on the dev split.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import time
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from omegaconf import DictConfig, OmegaConf
from torch.optim.lr_scheduler import LambdaLR
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm.auto import tqdm
from transformers import AutoTokenizer

from edupair.annotations import Document, Entity, Relation, read_jsonl
from edupair.augment import AugmentConfig, augment, pack
from edupair.evaluation import Evaluation, mention_level
from edupair.features import Featurizer, collate
from edupair.inference import featurizer_for, predict_spans
from edupair.lexicon import HINT_CHANNELS, HINT_TAGS
from edupair.model import HEAD_CONFIG, EduPairModel
from edupair.schema import ENTITY_LABELS, RELATION_LABELS


def region_names(gazetteer_dir: str | None, limit: int = 4000, seed: int = 0) -> list[str]:
    """County-level and higher names for entity substitution (empty when the table is absent)."""
    if not gazetteer_dir or not Path(gazetteer_dir).exists():
        return []
    from edupair.regions import Gazetteer

    gaz = Gazetteer.from_folder(gazetteer_dir, towns=False)
    names = sorted({d.name for d in gaz.by_code.values() if d.level <= 3 and d.name not in ("市辖区", "县")})
    random.Random(seed).shuffle(names)
    return names[:limit]


def hint_channels(m: DictConfig) -> list[str]:
    """The rule hint channels a model config asks for (none when `hints` is null)."""
    if not m.get("hints"):
        return []
    names = list(m.get("hint_channels") or HINT_CHANNELS)
    unknown = sorted(set(names) - set(HINT_CHANNELS))
    if unknown:
        raise ValueError(f"model.hint_channels: unknown channel(s) {unknown}; known: {list(HINT_CHANNELS)}")
    return names


def build_model(cfg: DictConfig) -> tuple[EduPairModel, object]:
    """The model and tokenizer a config asks for: pretrained encoder or its config at random init."""
    m = cfg.model
    channels = hint_channels(m)
    extra = {"max_length": m.max_length, "window_chars": m.window_chars, "window_overlap": m.window_overlap,
             "threshold": m.threshold, "relation_threshold": m.relation_threshold,
             "pair_sentence_gap": m.pair_sentence_gap, "max_pairs": m.max_pairs, "span_breaks": m.span_breaks,
             "span_balanced": list(m.get("span_balanced") or []),
             "span_breaks_unquoted": m.get("span_breaks_unquoted") or "",
             "hints": m.hints, "hint_channel_names": channels, "list_mark": m.get("list_mark") or "",
             "list_unpaired": list(m.get("list_unpaired") or []), "list_unowned": list(m.get("list_unowned") or []),
             "conjunctions": m.get("conjunctions") or "", "pair_roles": bool(m.get("pair_roles")),
             "encoder": str(m.encoder),
             "random_init": bool(m.random_init), "relation_ends": OmegaConf.to_container(m.relation_ends)}
    overrides = OmegaConf.to_container(m.encoder_overrides) if m.get("encoder_overrides") else None
    model = EduPairModel.from_encoder(str(m.encoder), list(ENTITY_LABELS), list(RELATION_LABELS), m.head_size,
                                      random_init=m.random_init, extra=extra, encoder_overrides=overrides,
                                      pair_size=m.pair_size, pair_dropout=m.pair_dropout,
                                      aux_pointers=m.aux_pointers,
                                      hint_channels=len(channels), hint_tags=len(HINT_TAGS))
    tokenizer = AutoTokenizer.from_pretrained(str(m.encoder))
    if m.get("init_from"):
        start_from(model, Path(m.init_from))
    return model, tokenizer


def differing_tensors(ours: dict, theirs: dict) -> list[str]:
    """Names of the tensors that one state dict lacks or holds in another shape."""
    return sorted(k for k in ours.keys() | theirs.keys()
                  if k not in ours or k not in theirs or ours[k].shape != theirs[k].shape)


def start_from(model: EduPairModel, folder: Path) -> None:
    """Copy a trained model folder's weights into `model` (fine-tune the shipped model on new
    annotations); the configs must describe the same architecture."""
    trained, _ = EduPairModel.load(folder)
    theirs = trained.state_dict()
    differ = differing_tensors(model.state_dict(), theirs)
    if differ:
        raise ValueError(f"model.init_from={folder}: its weights do not fit this model config "
                         f"({len(differ)} tensors differ, e.g. {differ[:3]}); use the config it was trained with")
    model.load_state_dict(theirs)


def _as_documents(docs: list[Document], found: list[tuple[list, list]], min_link_score: float = 0.0
                  ) -> list[Document]:
    """Predicted spans and links (those scoring above `min_link_score`) as annotation documents."""
    preds = []
    for doc, (spans, links) in zip(docs, found, strict=True):
        ids = {(s.start, s.end, s.label): f"T{i}" for i, s in enumerate(spans, start=1)}
        ents = [Entity(ids[(s.start, s.end, s.label)], s.start, s.end, s.label, doc.text[s.start:s.end])
                for s in spans]
        rels = [Relation(ids[(ln.head.start, ln.head.end, ln.head.label)],
                         ids[(ln.tail.start, ln.tail.end, ln.tail.label)], ln.label)
                for ln in links if ln.score > min_link_score]
        preds.append(Document(doc.id, doc.text, ents, rels))
    return preds


@torch.no_grad()
def evaluate_docs(model: EduPairModel, featurizer: Featurizer, docs: list[Document], pad_id: int,
                  batch_size: int, threshold: float, relation_threshold: float, device) -> Evaluation:
    """Mention-level scores of the model on annotated documents (normalized text)."""
    model.eval()
    found = predict_spans(model, featurizer, [d.text for d in docs], pad_id, batch_size, threshold,
                          relation_threshold, device)
    model.train()
    return mention_level(docs, _as_documents(docs, found))


@torch.no_grad()
def calibrate_thresholds(folder: Path, dev_docs: list[Document], entity_candidates: list[float],
                         relation_candidates: list[float], batch_size: int, device) -> dict:
    """Pick the entity logit and relation probability cut-offs with the best dev relation F1 (ties:
    better dev entity F1, then nearest the model's own) and write them into the model folder.
    One prediction pass per entity cut-off; relation cut-offs filter its link scores."""
    model, tokenizer = EduPairModel.load(folder, device)
    model.eval()
    featurizer = featurizer_for(model, tokenizer)
    own = (model.extra["threshold"], model.extra["relation_threshold"])
    scores: dict[tuple[float, float], tuple[float, float]] = {}
    relation_grid = sorted({*relation_candidates, own[1]})
    for t in sorted({*entity_candidates, own[0]}):
        found = predict_spans(model, featurizer, [d.text for d in dev_docs], tokenizer.pad_token_id, batch_size,
                              t, relation_grid[0], device)
        for c in relation_grid:
            ev = mention_level(dev_docs, _as_documents(dev_docs, found, c))
            scores[(t, c)] = (ev.relations["micro"]["f1"], ev.entities["micro"]["f1"])
    best = max(scores, key=lambda k: (*scores[k], -abs(k[0] - own[0]) - abs(k[1] - own[1])))
    meta_path = folder / HEAD_CONFIG
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta["threshold"], meta["relation_threshold"] = best
    tmp = meta_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(meta, ensure_ascii=False, indent=1), encoding="utf-8")
    os.replace(tmp, meta_path)
    return {"threshold": best[0], "relation_threshold": best[1],
            "dev_relation_f1": round(scores[best][0], 4), "dev_entity_f1": round(scores[best][1], 4),
            "grid": {f"{t}/{c}": round(f[0], 4) for (t, c), f in scores.items()}}


def average_models(folders: list[Path]) -> tuple[EduPairModel, object]:
    """One model whose weights are the mean of several trained models of one config (a "model
    soup": fine-tunes from one start, averaged, are often steadier off the training distribution
    than each alone). Head config and tokenizer come from the first folder."""
    if len(folders) < 2:
        raise ValueError(f"averaging needs at least two model folders, got {len(folders)}")
    model, tokenizer = EduPairModel.load(folders[0])
    first = model.state_dict()
    sums = {k: v.clone().double() for k, v in first.items() if v.is_floating_point()}
    for folder in folders[1:]:
        other = EduPairModel.load(folder)[0].state_dict()
        differ = differing_tensors(first, other)
        if differ:
            raise ValueError(f"{folder}: its weights do not fit those of {folders[0]} ({len(differ)} tensors "
                             f"differ, e.g. {differ[:3]}); only models of one config can be averaged")
        for k in sums:
            sums[k] += other[k].double()
    model.load_state_dict({k: (sums[k] / len(folders)).to(v.dtype) if k in sums else v for k, v in first.items()})
    return model, tokenizer


def budget_schedule(optimizer: torch.optim.Optimizer, warmup: int, total: int, spent) -> LambdaLR:
    """Linear warmup, then linear decay to zero by the last step or when `spent()` (the share of the
    time budget used) reaches 1, whichever comes first: a budgeted run ends its schedule on any machine."""
    def factor(step: int) -> float:
        if step < warmup:
            return step / max(1, warmup)
        return max(0.0, 1.0 - max((step - warmup) / max(1, total - warmup), spent()))

    return LambdaLR(optimizer, factor)


def length_grouped(order: list[int], lengths: list[int], batch_size: int, group: int,
                   rng: random.Random) -> list[int]:
    """A shuffled order whose batches hold windows of similar length (less padding; the way
    transformers' `group_by_length` does it): sort chunks of `group` batches by length, then shuffle
    the batches."""
    chunk = batch_size * group
    batches = []
    for c in range(0, len(order), chunk):
        part = sorted(order[c:c + chunk], key=lambda i: lengths[i], reverse=True)
        batches += [part[b:b + batch_size] for b in range(0, len(part), batch_size)]
    rng.shuffle(batches)
    return [i for batch in batches for i in batch]


def save_model(model: EduPairModel, tokenizer, folder: Path, shard_size: str) -> None:
    """Write the model folder next to its target, then swap it in."""
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save(tmp, tokenizer, shard_size)
    old = folder.with_name(folder.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if folder.exists():
        os.replace(folder, old)
    os.replace(tmp, folder)
    shutil.rmtree(old, ignore_errors=True)


def _save_checkpoint(path: Path, model, optimizer, scheduler, state: dict, ema: AveragedModel | None) -> None:
    """Resumable training state, written atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"model": model.state_dict(), "ema": ema.state_dict() if ema else None,
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "state": state,
                "rng": {"torch": torch.random.get_rng_state(), "python": random.getstate(),
                        "numpy": np.random.get_state()}}, tmp)
    os.replace(tmp, path)


def train(cfg: DictConfig) -> dict:
    """Train per `cfg`; returns the best dev metrics and where the model went."""
    t = cfg.trainer
    if t.threads:
        torch.set_num_threads(t.threads)
    accelerator = Accelerator(mixed_precision=t.mixed_precision if torch.cuda.is_available() else "no",
                              gradient_accumulation_steps=t.grad_accum)
    set_seed(cfg.seed)
    train_docs, dev_docs = read_jsonl(cfg.data.train), read_jsonl(cfg.data.dev)
    if cfg.data.get("limit"):
        train_docs, dev_docs = train_docs[: cfg.data.limit], dev_docs[: cfg.data.limit]
    model, tokenizer = build_model(cfg)
    m = cfg.model
    featurizer = featurizer_for(model, tokenizer)
    aug_cfg = AugmentConfig(**{k: v for k, v in OmegaConf.to_container(cfg.augment).items() if k != "enabled"})
    names = region_names(cfg.data.get("gazetteer")) if cfg.augment.enabled else []
    # without augmentation these are every epoch's features; with it they size the schedule (packed like an epoch)
    layout = pack(train_docs, random.Random(cfg.seed), aug_cfg) if cfg.augment.enabled else train_docs
    clean_features = [f for i, d in enumerate(layout) for f in featurizer.encode_document(d, i)]
    accelerator.print(f"train docs {len(train_docs)}, dev docs {len(dev_docs)}, windows {len(clean_features)}, "
                      f"spans aligned {featurizer.stats.aligned}, unaligned {featurizer.stats.unaligned}")
    slow = model.encoder_parameter_names()
    heads = [p for n, p in model.named_parameters() if n not in slow]
    enc = [p for n, p in model.named_parameters() if n in slow]
    optimizer = torch.optim.AdamW([{"params": enc, "lr": t.lr_encoder}, {"params": heads, "lr": t.lr_heads}],
                                  weight_decay=t.weight_decay)
    steps_per_epoch = max(1, -(-len(clean_features) // (t.batch_size * t.grad_accum)))
    budget = 60 * t.max_minutes if t.max_minutes else None
    start = time.time()  # moved back by the resumed run's elapsed time below; the schedule reads it then
    scheduler = budget_schedule(optimizer, int(t.warmup_ratio * steps_per_epoch * t.epochs), steps_per_epoch * t.epochs,
                                lambda: (time.time() - start) / budget if budget else 0.0)
    work = Path(cfg.work_dir)
    ckpt = work / "checkpoint.pt"
    state = {"epoch": 0, "best_f1": -1.0, "bad_epochs": 0, "history": [], "elapsed": 0.0}
    if cfg.resume and ckpt.exists():
        saved = torch.load(ckpt, weights_only=False)
        try:
            model.load_state_dict(saved["model"])
        except RuntimeError as exc:
            raise ValueError(f"{ckpt} was written by a different model config and cannot be resumed; "
                             f"delete it or pass resume=false ({str(exc).splitlines()[0]})") from exc
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        state = saved["state"]
        torch.random.set_rng_state(saved["rng"]["torch"])
        random.setstate(saved["rng"]["python"])
        np.random.set_state(saved["rng"]["numpy"])
        accelerator.print(f"resumed after epoch {state['epoch']}")
    ema = (AveragedModel(model, device=accelerator.device, multi_avg_fn=get_ema_multi_avg_fn(t.ema_decay),
                         use_buffers=True)
           if t.get("ema_decay") else None)
    if ema is not None and cfg.resume and ckpt.exists() and saved.get("ema"):
        ema.load_state_dict(saved["ema"])
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    n_ent = len(ENTITY_LABELS)
    out_dir = Path(cfg.output_dir)
    start = time.time() - state["elapsed"]
    log_path = work / "metrics.jsonl"
    work.mkdir(parents=True, exist_ok=True)
    if state["epoch"] == 0 and accelerator.is_main_process:
        log_path.unlink(missing_ok=True)  # a fresh run starts a fresh log (resume=false reuses the work dir)
    while state["epoch"] < t.epochs and state["bad_epochs"] < t.patience:
        epoch = state["epoch"]
        rng = random.Random(cfg.seed * 1000 + epoch)
        if cfg.augment.enabled:
            docs = pack([augment(d, rng, aug_cfg, names) for d in train_docs], rng, aug_cfg)
            features = [f for i, d in enumerate(docs) for f in featurizer.encode_document(d, i)]
        else:
            features = clean_features
        order = list(range(len(features)))
        rng.shuffle(order)
        if t.get("group_by_length"):
            order = length_grouped(order, [len(f.input_ids) for f in features], t.batch_size, t.group_by_length, rng)
        bar = tqdm(range(0, len(order), t.batch_size), desc=f"epoch {epoch + 1}/{t.epochs}",
                   disable=not accelerator.is_local_main_process)
        losses = []
        model.train()
        for b in bar:
            batch = collate([features[i] for i in order[b:b + t.batch_size]], tokenizer.pad_token_id, n_ent,
                            featurizer, pointers=m.aux_pointers)
            batch["pairs"] = {k: v.to(accelerator.device) for k, v in batch["pairs"].items()}
            with accelerator.accumulate(model):
                loss = model(**{k: v.to(accelerator.device) if torch.is_tensor(v) else v for k, v in batch.items()},
                             relation_weight=t.relation_weight)["loss"]
                accelerator.backward(loss)
                accelerator.clip_grad_norm_(model.parameters(), t.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
                if ema is not None and accelerator.sync_gradients:
                    ema.update_parameters(accelerator.unwrap_model(model))
            losses.append(loss.item())
            state["step"] = state.get("step", 0) + 1
            if t.get("debug_kill_at_step") and state["step"] == t.debug_kill_at_step:
                os.kill(os.getpid(), signal.SIGKILL)  # fault injection for the resume test
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
            if budget and time.time() - start > budget:
                break  # the schedule has reached zero: score this partial epoch and stop
        unwrapped = accelerator.unwrap_model(model)
        scored = ema.module if ema is not None else unwrapped
        dev = evaluate_docs(scored, featurizer, dev_docs, tokenizer.pad_token_id, t.eval_batch_size,
                            m.threshold, m.relation_threshold, accelerator.device)
        f1 = dev.relations["micro"]["f1"]
        state["epoch"] = epoch + 1
        state["elapsed"] = time.time() - start
        entry = {"epoch": epoch + 1, "loss": round(float(np.mean(losses)), 4), **dev.summary(),
                 "minutes": round(state["elapsed"] / 60, 2)}
        state["history"].append(entry)
        accelerator.print(json.dumps(entry))
        if accelerator.is_main_process:
            with open(log_path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(entry) + "\n")
            if f1 > state["best_f1"]:
                state["best_f1"], state["bad_epochs"] = f1, 0
                save_model(scored, tokenizer, out_dir, cfg.shard_size)
            else:
                state["bad_epochs"] += 1
            _save_checkpoint(ckpt, unwrapped, optimizer, scheduler, state, ema)
        if budget and state["elapsed"] > budget:
            accelerator.print(f"stopping: {t.max_minutes} minute budget spent")
            break
    calibrated = None
    grids = (list(t.get("calibrate_threshold") or []), list(t.get("calibrate_relation_threshold") or []))
    if accelerator.is_main_process and any(grids) and out_dir.exists():
        calibrated = calibrate_thresholds(out_dir, dev_docs, *grids, t.eval_batch_size, accelerator.device)
        accelerator.print(f"cut-offs chosen on dev: {json.dumps(calibrated)}")
    return {"best_dev_relation_f1": state["best_f1"], "epochs": state["epoch"], "model": str(out_dir),
            "calibrated": calibrated,
            "minutes": round(state["elapsed"] / 60, 2), "history": state["history"]}
