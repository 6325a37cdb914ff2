"""GPLinker-style joint entity and relation model: one encoder, three GlobalPointer heads.

Entity pointer: (type, start, end). Per relation, a head-start→tail-start pointer and a
head-end→tail-end pointer. Trained with multilabel categorical cross-entropy; decoded in one
pass. The model folder holds encoder config, tokenizer, head config and sharded safetensors.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from huggingface_hub import save_torch_state_dict
from safetensors.torch import load_file
from torch import nn
from transformers import AutoConfig, AutoModel, AutoTokenizer

HEAD_CONFIG = "edupair_config.json"
NEG_INF = -1e12


def rotary(x: torch.Tensor) -> torch.Tensor:
    """Rotary position embedding over the last dimension of [batch, length, dim] (RoPE)."""
    length, dim = x.shape[1], x.shape[-1]
    pos = torch.arange(length, dtype=torch.float, device=x.device)[:, None]
    freq = torch.pow(10000.0, -torch.arange(0, dim, 2, dtype=torch.float, device=x.device) / dim)
    angle = pos * freq
    sin, cos = angle.sin().repeat_interleave(2, -1), angle.cos().repeat_interleave(2, -1)
    x2 = torch.stack([-x[..., 1::2], x[..., ::2]], dim=-1).reshape(x.shape)
    return x * cos.to(x.dtype) + x2 * sin.to(x.dtype)


class EfficientGlobalPointer(nn.Module):
    """Span scores s[type, i, j] = q_i·k_j (shared, with RoPE) + per-type start/end biases."""

    def __init__(self, hidden: int, n_types: int, head_size: int, use_rope: bool, lower_triangle: bool) -> None:
        super().__init__()
        self.n_types, self.head_size = n_types, head_size
        self.use_rope, self.lower_triangle = use_rope, lower_triangle
        self.qk = nn.Linear(hidden, head_size * 2)
        self.bias = nn.Linear(head_size * 2, n_types * 2)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        qk = self.qk(hidden)
        q, k = qk[..., ::2], qk[..., 1::2]
        if self.use_rope:
            q, k = rotary(q), rotary(k)
        scores = torch.einsum("bmd,bnd->bmn", q, k) / math.sqrt(self.head_size)
        bias = self.bias(qk).transpose(1, 2) / 2  # [batch, 2*types, length]
        logits = scores[:, None] + bias[:, ::2, None] + bias[:, 1::2, :, None]
        pad = (mask[:, None, :, None] * mask[:, None, None, :]).bool()
        logits = logits.masked_fill(~pad, NEG_INF)
        if self.lower_triangle:
            tri = torch.ones(logits.shape[-2:], dtype=torch.bool, device=logits.device).tril(-1)
            logits = logits.masked_fill(tri, NEG_INF)
        return logits


def multilabel_categorical_crossentropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Su's multilabel CE over flattened pointer grids: log(1+Σneg e^s) + log(1+Σpos e^-s)."""
    logits = logits.flatten(2)
    targets = targets.flatten(2)
    logits = (1 - 2 * targets) * logits
    neg = logits - targets * 1e12
    pos = logits - (1 - targets) * 1e12
    zeros = torch.zeros_like(logits[..., :1])
    loss = torch.logsumexp(torch.cat([neg, zeros], -1), -1) + torch.logsumexp(torch.cat([pos, zeros], -1), -1)
    return loss.mean()


class EduPairModel(nn.Module):
    """Encoder + entity pointer + relation head/tail pointers."""

    def __init__(self, encoder: nn.Module, entity_labels: list[str], relation_labels: list[str],
                 head_size: int = 64, extra: dict | None = None) -> None:
        super().__init__()
        self.encoder = encoder
        self.entity_labels, self.relation_labels = list(entity_labels), list(relation_labels)
        self.head_size = head_size
        self.extra = dict(extra or {})
        hidden = encoder.config.hidden_size
        self.entity_head = EfficientGlobalPointer(hidden, len(entity_labels), head_size, True, True)
        self.head_head = EfficientGlobalPointer(hidden, len(relation_labels), head_size, False, False)
        self.tail_head = EfficientGlobalPointer(hidden, len(relation_labels), head_size, False, False)

    @classmethod
    def from_encoder(cls, encoder_name: str, entity_labels: list[str], relation_labels: list[str],
                     head_size: int, random_init: bool = False, extra: dict | None = None,
                     encoder_overrides: dict | None = None) -> EduPairModel:
        """A new model on a pretrained encoder (local folder or hub name), or on its config only."""
        config = AutoConfig.from_pretrained(encoder_name, **(encoder_overrides or {}))
        encoder = (AutoModel.from_config(config, dtype=torch.float32) if random_init
                   else AutoModel.from_pretrained(encoder_name, config=config, dtype=torch.float32))
        return cls(encoder, entity_labels, relation_labels, head_size, extra)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, entity_labels=None,
                head_labels=None, tail_labels=None) -> dict[str, torch.Tensor]:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        out = {"entity_logits": self.entity_head(hidden, attention_mask),
               "head_logits": self.head_head(hidden, attention_mask),
               "tail_logits": self.tail_head(hidden, attention_mask)}
        if entity_labels is not None:
            out["loss"] = sum(multilabel_categorical_crossentropy(out[f"{k}_logits"].float(), t)
                              for k, t in (("entity", entity_labels), ("head", head_labels),
                                           ("tail", tail_labels))) / 3
        return out

    def save(self, folder: str | Path, tokenizer, shard_size: str = "14MB", dtype: torch.dtype = torch.float16) -> None:
        """Encoder config, tokenizer, head config and sharded safetensors into `folder`."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.encoder.config.save_pretrained(str(folder))
        tokenizer.save_pretrained(str(folder))
        state = {k: v.detach().to(dtype).contiguous() for k, v in self.state_dict().items()}
        save_torch_state_dict(state, str(folder), max_shard_size=shard_size)
        meta = {"entity_labels": self.entity_labels, "relation_labels": self.relation_labels,
                "head_size": self.head_size, **self.extra}
        (folder / HEAD_CONFIG).write_text(json.dumps(meta, ensure_ascii=False, indent=1), encoding="utf-8")

    @classmethod
    def load(cls, folder: str | Path, device: str | torch.device = "cpu") -> tuple[EduPairModel, object]:
        """The model (fp32, eval mode) and its tokenizer from a folder written by `save`."""
        folder = Path(folder)
        meta_path = folder / HEAD_CONFIG
        if not meta_path.exists():
            raise FileNotFoundError(f"{folder} is not an edupair model folder (no {HEAD_CONFIG})")
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        encoder = AutoModel.from_config(AutoConfig.from_pretrained(str(folder)), dtype=torch.float32)
        model = cls(encoder, meta.pop("entity_labels"), meta.pop("relation_labels"), meta.pop("head_size"), meta)
        state = {}
        for shard in sorted(folder.glob("model*.safetensors")):
            state.update(load_file(str(shard)))
        missing, unexpected = model.load_state_dict({k: v.float() for k, v in state.items()}, strict=False)
        missing = [k for k in missing if not k.endswith("position_ids")]
        if missing or unexpected:
            raise ValueError(f"{folder}: weights do not fit the model "
                             f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
        return model.to(device).eval(), tokenizer
