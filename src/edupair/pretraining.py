"""Masked-LM pretraining of the compact Chinese encoder shipped under models/.

Builds a WordPiece vocabulary (each CJK character its own token, WordPiece for Latin script and
digits), packs paragraphs into fixed-length sequences and trains `BertForMaskedLM`, on CPU or
GPU (bf16), with checkpoints to resume from and a held-out masked-token accuracy.
"""

from __future__ import annotations

import hashlib
import json
import lzma
import os
import time
from collections.abc import Iterator
from pathlib import Path

import torch
from accelerate import Accelerator
from omegaconf import DictConfig, OmegaConf
from tokenizers import BertWordPieceTokenizer
from tqdm.auto import tqdm
from transformers import (
    BertConfig,
    BertForMaskedLM,
    BertTokenizerFast,
    DataCollatorForLanguageModeling,
    get_linear_schedule_with_warmup,
)


def _is_heldout(line: str, every: int) -> bool:
    """Deterministic held-out membership of a paragraph, by its hash."""
    return int(hashlib.md5(line.encode("utf-8")).hexdigest()[:8], 16) % every == 0


def read_paragraphs(cfg: DictConfig) -> tuple[list[str], list[str]]:
    """(train, held-out) paragraphs: the xz corpus up to `max_chars`, plus the project's texts."""
    train, heldout, seen = [], [], 0
    with lzma.open(cfg.corpus.path, "rt", encoding="utf-8") as handle:
        for line in handle:
            line = line.strip().replace("#idiom#", "")
            if len(line) < cfg.corpus.min_line_chars:
                continue
            (heldout if _is_heldout(line, cfg.corpus.heldout_every) else train).append(line)
            seen += len(line)
            if seen >= cfg.corpus.max_chars:
                break
    for path in cfg.corpus.extra_jsonl:
        if Path(path).exists():
            with open(path, encoding="utf-8") as handle:
                train.extend(json.loads(line)["text"] for line in handle if line.strip())
    return train, heldout


def build_tokenizer(paragraphs: list[str], cfg: DictConfig, out_dir: Path) -> BertTokenizerFast:
    """Train the WordPiece vocabulary and return it as a transformers fast tokenizer."""
    wp = BertWordPieceTokenizer(clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=False)
    budget, sample = cfg.vocab.sample_chars, []
    for text in paragraphs:
        sample.append(text)
        budget -= len(text)
        if budget <= 0:
            break
    wp.train_from_iterator(sample, vocab_size=cfg.vocab.size, min_frequency=cfg.vocab.min_frequency,
                           limit_alphabet=cfg.vocab.limit_alphabet, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    out_dir.mkdir(parents=True, exist_ok=True)
    wp.save_model(str(out_dir))
    tok = BertTokenizerFast(vocab=str(out_dir / "vocab.txt"), do_lower_case=False,
                            tokenize_chinese_chars=True, strip_accents=False)
    tok.save_pretrained(str(out_dir))
    return tok


def pack(paragraphs: list[str], tok: BertTokenizerFast, seq_len: int, batch: int = 2000) -> torch.Tensor:
    """Token ids of all paragraphs, joined by [SEP], cut into rows of `seq_len` with [CLS] in front."""
    body = seq_len - 1
    ids: list[int] = []
    for i in tqdm(range(0, len(paragraphs), batch), desc="tokenize", unit="batch"):
        for row in tok(paragraphs[i:i + batch], add_special_tokens=False)["input_ids"]:
            ids.extend(row)
            ids.append(tok.sep_token_id)
    rows = len(ids) // body
    data = torch.tensor(ids[:rows * body], dtype=torch.long).view(rows, body)
    cls = torch.full((rows, 1), tok.cls_token_id, dtype=torch.long)
    return torch.cat([cls, data], dim=1)


def batches(data: torch.Tensor, size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """Endless shuffled batches of rows."""
    while True:
        order = torch.randperm(len(data), generator=generator)
        for i in range(0, len(order) - size + 1, size):
            yield data[order[i:i + size]]


def mlm_logits(model: BertForMaskedLM, input_ids: torch.Tensor, labels: torch.Tensor):
    """Logits and targets at the masked positions only (the vocabulary projection is the costly
    part, so it is skipped where there is nothing to predict)."""
    hidden = model.bert(input_ids=input_ids).last_hidden_state
    mask = labels != -100
    return model.cls(hidden[mask]), labels[mask]


@torch.no_grad()
def masked_accuracy(model: BertForMaskedLM, data: torch.Tensor, collator, size: int, device) -> float:
    """Share of masked tokens predicted exactly, over the held-out rows (fixed masking seed)."""
    model.eval()
    state = torch.random.get_rng_state()
    torch.manual_seed(1234)
    right = total = 0
    for i in range(0, len(data), size):
        batch = collator([{"input_ids": row} for row in data[i:i + size]])
        logits, targets = mlm_logits(model, batch["input_ids"].to(device), batch["labels"].to(device))
        right += (logits.argmax(-1) == targets).sum().item()
        total += targets.numel()
    torch.random.set_rng_state(state)
    model.train()
    return right / max(total, 1)


def _save_checkpoint(path: Path, model, optimizer, scheduler, step: int, tokens: int, elapsed: float) -> None:
    """Write a resumable checkpoint atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "step": step, "tokens": tokens,
                "elapsed": elapsed, "rng": torch.random.get_rng_state()}, tmp)
    os.replace(tmp, path)


def run(cfg: DictConfig) -> dict:
    """Pretrain per `cfg`; writes the fp16 sharded model and its card to `cfg.output_dir`."""
    torch.manual_seed(cfg.train.seed)
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    accelerator = Accelerator(mixed_precision="bf16" if torch.cuda.is_available() else "no")
    out_dir, work = Path(cfg.output_dir), Path(cfg.work_dir)
    train_text, heldout_text = read_paragraphs(cfg)
    tok_dir = work / "tokenizer"
    tok = (BertTokenizerFast.from_pretrained(str(tok_dir)) if (tok_dir / "vocab.txt").exists() and cfg.resume
           else build_tokenizer(train_text, cfg, tok_dir))
    train_rows = pack(train_text, tok, cfg.train.seq_len)
    heldout_rows = pack(heldout_text, tok, cfg.train.seq_len)[: cfg.corpus.heldout_max_seqs]
    accelerator.print(f"train rows {len(train_rows)}, held-out rows {len(heldout_rows)}, vocab {len(tok)}")
    config = BertConfig(vocab_size=len(tok), pad_token_id=tok.pad_token_id, **OmegaConf.to_container(cfg.model))
    model = BertForMaskedLM(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)
    scheduler = get_linear_schedule_with_warmup(optimizer, cfg.train.warmup_steps, cfg.train.max_steps)
    step, tokens, elapsed = 0, 0, 0.0
    ckpt = work / "checkpoint.pt"
    if cfg.resume and ckpt.exists():
        state = torch.load(ckpt, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step, tokens, elapsed = state["step"], state["tokens"], state["elapsed"]
        torch.random.set_rng_state(state["rng"])
        accelerator.print(f"resumed from step {step}")
    model, optimizer = accelerator.prepare(model, optimizer)
    collator = DataCollatorForLanguageModeling(tok, mlm_probability=cfg.train.mlm_probability)
    gen = torch.Generator().manual_seed(cfg.train.seed + step)
    stream = batches(train_rows, cfg.train.batch_size, gen)
    log = work / "log.jsonl"
    start = time.time() - elapsed
    bar = tqdm(total=cfg.train.max_steps, initial=step, desc="pretrain", disable=not accelerator.is_main_process)
    acc = float("nan")
    model.train()
    while step < cfg.train.max_steps and (time.time() - start) < cfg.train.max_minutes * 60:
        batch = collator([{"input_ids": row} for row in next(stream)])
        with accelerator.autocast():
            logits, targets = mlm_logits(accelerator.unwrap_model(model), batch["input_ids"].to(accelerator.device),
                                         batch["labels"].to(accelerator.device))
            loss = torch.nn.functional.cross_entropy(logits.float(), targets)
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        step += 1
        tokens += batch["input_ids"].numel()
        bar.update(1)
        if step % 10 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}", tok_s=f"{tokens / max(time.time() - start, 1e-6):.0f}")
        if step % cfg.train.eval_every == 0:
            acc = masked_accuracy(accelerator.unwrap_model(model), heldout_rows, collator,
                                  cfg.train.batch_size, accelerator.device)
            with open(log, "a", encoding="utf-8") as handle:
                handle.write(json.dumps({"step": step, "loss": loss.item(), "heldout_acc": acc,
                                         "tokens": tokens, "minutes": (time.time() - start) / 60}) + "\n")
        if step % cfg.train.save_every == 0:
            _save_checkpoint(ckpt, accelerator.unwrap_model(model), optimizer, scheduler, step, tokens,
                             time.time() - start)
    bar.close()
    wall = time.time() - start
    _save_checkpoint(ckpt, accelerator.unwrap_model(model), optimizer, scheduler, step, tokens, wall)
    final = accelerator.unwrap_model(model)
    acc = masked_accuracy(final, heldout_rows, collator, cfg.train.batch_size, accelerator.device)
    stats = {"steps": step, "tokens_seen": tokens, "wall_minutes": round(wall / 60, 1),
             "heldout_masked_accuracy": round(acc, 4), "heldout_sequences": len(heldout_rows),
             "vocab_size": len(tok), "parameters": sum(p.numel() for p in final.parameters()),
             "device": torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU x{torch.get_num_threads()}",
             "train_paragraphs": len(train_text), "heldout_paragraphs": len(heldout_text)}
    if accelerator.is_main_process:
        save_encoder(final, tok, out_dir, cfg.shard_size, stats, cfg)
    return stats


def save_encoder(model: BertForMaskedLM, tok, out_dir: Path, shard_size: str, stats: dict, cfg: DictConfig) -> None:
    """fp16 sharded safetensors, tokenizer and model card, written to a temp folder then renamed."""
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    model.half().save_pretrained(str(tmp), max_shard_size=shard_size, safe_serialization=True)
    tok.save_pretrained(str(tmp))
    (tmp / "pretrain_stats.json").write_text(json.dumps(stats, indent=1), encoding="utf-8")
    (tmp / "README.md").write_text(model_card(stats, cfg), encoding="utf-8")
    if out_dir.exists():
        for child in out_dir.iterdir():
            child.unlink()
        out_dir.rmdir()
    os.replace(tmp, out_dir)


def model_card(stats: dict, cfg: DictConfig) -> str:
    """The model card: corpus, size, vocabulary, architecture, budget, accuracy, command."""
    m = cfg.model
    return f"""# edupair-zh-mini: compact Chinese BERT (masked-LM pretrained offline)

The default encoder of edupair. Load it offline with
`AutoModel.from_pretrained("models/edupair-zh-mini")` and `AutoTokenizer.from_pretrained(...)`.

| item | value |
|---|---|
| corpus | `corpora/pretrain_text.txt.xz` (modern formal Chinese; sources in its README), first {cfg.corpus.max_chars:,} characters, plus the project's own annotated train texts |
| paragraphs | {stats['train_paragraphs']:,} train / {stats['heldout_paragraphs']:,} held out (1 in {cfg.corpus.heldout_every} by hash, no paragraph in both) |
| vocabulary | {stats['vocab_size']:,} WordPiece entries (each CJK character its own token) |
| architecture | BertForMaskedLM, {m.num_hidden_layers} layers, hidden {m.hidden_size}, {m.num_attention_heads} heads, FFN {m.intermediate_size}; {stats['parameters'] / 1e6:.1f} M parameters, stored fp16 |
| training | {stats['steps']:,} steps of {cfg.train.batch_size} x {cfg.train.seq_len} tokens, {stats['tokens_seen'] / 1e6:.1f} M tokens seen, lr {cfg.train.lr}, MLM p={cfg.train.mlm_probability} |
| wall time / device | {stats['wall_minutes']} min on {stats['device']} |
| held-out masked-token accuracy | **{stats['heldout_masked_accuracy'] * 100:.1f} %** on {stats['heldout_sequences']} held-out sequences |

Command: `python scripts/pretrain.py` (config `configs/pretrain.yaml`).
"""
