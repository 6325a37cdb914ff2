"""Joint entity and relation model: one encoder, a GlobalPointer entity head and a pair scorer.

Entity pointer: (type, start, end), trained with multilabel categorical cross-entropy. Relations:
every candidate pair of spans in a sentence (gold spans in training, predicted ones at inference)
is scored per relation from its two span vectors, a pair-conditioned attention summary of its
sentence, and its types, token gap and the spans between — so one relation example teaches the
scorer directly instead of one cell in a length × length grid. Optionally GPLinker's per-relation
head/tail pointers are trained alongside as an auxiliary task (they sharpen span boundaries; the
pair scorer alone decodes relations). The model folder holds encoder config, tokenizer, head
config and sharded safetensors.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import torch
from huggingface_hub import save_torch_state_dict
from safetensors.torch import load_file
from torch import nn
from transformers import AutoConfig, AutoModel, AutoTokenizer

from edupair.features import GAP_EDGES, MAX_BETWEEN, N_ROLES

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
        valid = (mask[:, None, :, None] * mask[:, None, None, :]).bool()  # one mask, one pass over the grid
        if self.lower_triangle:
            valid = valid & torch.ones(logits.shape[-2:], dtype=torch.bool, device=logits.device).triu()
        return logits.masked_fill(~valid, NEG_INF)


def multilabel_categorical_crossentropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Su's multilabel CE over flattened pointer grids: log(1+Σneg e^s) + log(1+Σpos e^-s).
    The positive term is summed over the few positive cells only (a dense pass over the whole
    [batch, labels, length²] grid per term made this loss a third of a CPU training step)."""
    logits, positive = logits.flatten(2), targets.flatten(2) > 0
    neg = nn.functional.softplus(torch.logsumexp(logits.masked_fill(positive, NEG_INF), -1)).flatten()
    row, cell = positive.flatten(0, 1).nonzero(as_tuple=True)
    values = -logits.flatten(0, 1)[row, cell]
    top = values.new_full(neg.shape, NEG_INF).scatter_reduce(0, row, values, "amax", include_self=False).detach()
    total = values.new_zeros(neg.shape).index_add(0, row, (values - top[row]).exp())
    pos = torch.where(total > 0, nn.functional.softplus(top + total.clamp_min(1e-30).log()), 0.0)
    return (neg + pos).mean()


class PairScorer(nn.Module):
    """Relation logits per candidate pair: [head; tail; head*tail; attended sentence; pair features].
    With `roles`, the ends' coordination roles (features.ROLE_*) are pair features too."""

    def __init__(self, hidden: int, n_types: int, n_relations: int, size: int, dropout: float,
                 roles: bool = False) -> None:
        super().__init__()
        feat = size // 4
        self.span = nn.Linear(2 * hidden, size)
        self.query = nn.Linear(2 * size, hidden)
        self.context = nn.Linear(hidden, size)
        self.type_emb = nn.Embedding(n_types, feat)
        self.gap_emb = nn.Embedding(len(GAP_EDGES), feat)
        self.between_emb = nn.Embedding(MAX_BETWEEN + 1, feat)
        self.forward_emb = nn.Embedding(2, feat)
        self.role_emb = nn.Embedding(N_ROLES, feat) if roles else None
        n_feat = 7 if roles else 5
        self.mlp = nn.Sequential(nn.Linear(4 * size + n_feat * feat, size), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(size, n_relations))

    def _span(self, hidden: torch.Tensor, rows: torch.Tensor, start: torch.Tensor, end: torch.Tensor) -> torch.Tensor:
        return self.span(torch.cat([hidden[rows, start], hidden[rows, end]], -1))

    def forward(self, hidden: torch.Tensor, pairs: dict[str, torch.Tensor]) -> torch.Tensor:
        rows = pairs["rows"]
        if len(rows) == 0:
            return hidden.new_zeros((0, self.mlp[-1].out_features))
        head = self._span(hidden, rows, pairs["head_start"], pairs["head_end"])
        tail = self._span(hidden, rows, pairs["tail_start"], pairs["tail_end"])
        # attention of the pair over the tokens of its sentence(s): finds the trigger words
        query = self.query(torch.cat([head, tail], -1)) / math.sqrt(hidden.shape[-1])   # [P, H]
        pos = torch.arange(hidden.shape[1], device=rows.device)[None]
        inside = (pos >= pairs["context_start"][:, None]) & (pos <= pairs["context_end"][:, None])
        pooled = []
        for row in range(hidden.shape[0]):  # per window: memory stays [pairs, length], never [pairs, length, H]
            sel = (rows == row).nonzero().squeeze(-1)
            if len(sel):
                weights = (query[sel] @ hidden[row].T).masked_fill(~inside[sel], NEG_INF).softmax(-1)
                pooled.append((sel, weights @ hidden[row]))
        order = torch.cat([sel for sel, _ in pooled])
        summary = hidden.new_empty((len(rows), hidden.shape[-1])).index_copy(
            0, order, torch.cat([vec for _, vec in pooled]))
        context = self.context(summary)
        parts = [head, tail, head * tail, context, self.type_emb(pairs["head_type"]),
                 self.type_emb(pairs["tail_type"]), self.gap_emb(pairs["gap"]),
                 self.between_emb(pairs["between"]), self.forward_emb(pairs["forward"])]
        if self.role_emb is not None:
            parts += [self.role_emb(pairs["head_role"]), self.role_emb(pairs["tail_role"])]
        return self.mlp(torch.cat(parts, -1))


def pair_loss(logits: torch.Tensor, labels: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy over the (pair, relation) cells the pair's types allow."""
    if not allowed.any():
        return logits.sum() * 0.0
    return nn.functional.binary_cross_entropy_with_logits(logits[allowed], labels[allowed])


class EduPairModel(nn.Module):
    """Encoder + entity pointer + relation pair scorer."""

    def __init__(self, encoder: nn.Module, entity_labels: list[str], relation_labels: list[str],
                 head_size: int = 64, extra: dict | None = None, pair_size: int = 128,
                 pair_dropout: float = 0.1, aux_pointers: bool = False, hint_channels: int = 0,
                 hint_tags: int = 5) -> None:
        super().__init__()
        self.encoder = encoder
        self.entity_labels, self.relation_labels = list(entity_labels), list(relation_labels)
        self.head_size, self.pair_size, self.pair_dropout = head_size, pair_size, pair_dropout
        self.aux_pointers = aux_pointers
        self.extra = dict(extra or {})
        hidden = encoder.config.hidden_size
        self.entity_head = EfficientGlobalPointer(hidden, len(entity_labels), head_size, True, True)
        self.pair_head = PairScorer(hidden, len(entity_labels), len(relation_labels), pair_size, pair_dropout,
                                    roles=bool(self.extra.get("pair_roles")))
        self.hint_channels, self.hint_tags = hint_channels, hint_tags
        if hint_channels:  # rule hint tags (edupair.lexicon), added to the token embeddings
            self.hint_embedding = nn.Embedding(hint_channels * hint_tags, hidden)
            nn.init.normal_(self.hint_embedding.weight, std=getattr(encoder.config, "initializer_range", 0.02))
        if aux_pointers:  # GPLinker head/tail pointers: a training-only task that sharpens span boundaries
            self.head_head = EfficientGlobalPointer(hidden, len(relation_labels), head_size, False, False)
            self.tail_head = EfficientGlobalPointer(hidden, len(relation_labels), head_size, False, False)

    @classmethod
    def from_encoder(cls, encoder_name: str, entity_labels: list[str], relation_labels: list[str],
                     head_size: int, random_init: bool = False, extra: dict | None = None,
                     encoder_overrides: dict | None = None, pair_size: int = 128,
                     pair_dropout: float = 0.1, aux_pointers: bool = False, hint_channels: int = 0,
                     hint_tags: int = 5) -> EduPairModel:
        """A new model on a pretrained encoder (local folder or hub name), or on its config only."""
        config = AutoConfig.from_pretrained(encoder_name, **(encoder_overrides or {}))
        encoder = (AutoModel.from_config(config, dtype=torch.float32) if random_init
                   else AutoModel.from_pretrained(encoder_name, config=config, dtype=torch.float32))
        return cls(encoder, entity_labels, relation_labels, head_size, extra, pair_size, pair_dropout, aux_pointers,
                   hint_channels, hint_tags)

    def encoder_parameter_names(self) -> set[str]:
        """Parameters trained at the encoder's learning rate (the encoder and the hint embeddings)."""
        return {n for n, _ in self.named_parameters() if n.startswith(("encoder.", "hint_embedding."))}

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
               hints: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Token vectors and entity span logits of a batch; `hints` [batch, length, channels] are the
        rule hint tags a model trained with them needs."""
        if self.hint_channels:
            if hints is None:
                raise ValueError("this model reads rule hint tags: build features with inference.featurizer_for")
            shift = torch.arange(self.hint_channels, device=hints.device) * self.hint_tags
            embeds = self.encoder.get_input_embeddings()(input_ids) + self.hint_embedding(hints + shift).sum(2)
            hidden = self.encoder(inputs_embeds=embeds, attention_mask=attention_mask).last_hidden_state
        else:
            hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return {"hidden": hidden, "entity_logits": self.entity_head(hidden, attention_mask)}

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, entity_labels=None,
                pairs: dict[str, torch.Tensor] | None = None, head_labels=None, tail_labels=None,
                relation_weight: float = 1.0, hints: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        out = self.encode(input_ids, attention_mask, hints)
        if pairs is not None:
            out["pair_logits"] = self.pair_head(out["hidden"], pairs)
        if entity_labels is not None:
            grids = [(out["entity_logits"], entity_labels)]
            if self.aux_pointers and head_labels is not None:
                grids += [(self.head_head(out["hidden"], attention_mask), head_labels),
                          (self.tail_head(out["hidden"], attention_mask), tail_labels)]
            out["loss"] = sum(multilabel_categorical_crossentropy(g.float(), t) for g, t in grids) / len(grids)
            if pairs is not None and "labels" in pairs:
                out["loss"] = out["loss"] + relation_weight * pair_loss(
                    out["pair_logits"].float(), pairs["labels"], pairs["allowed"])
        return out

    def quantize_encoder(self) -> None:
        """Int8 dynamic quantization of the encoder's linear layers, for CPU inference (about 1.4x
        faster on 2 cores; dev F1 unchanged to the third decimal). Heads stay in float."""
        with warnings.catch_warnings():  # torch points eager-mode users to torchao; the API still works
            warnings.simplefilter("ignore")
            self.encoder = torch.ao.quantization.quantize_dynamic(self.encoder, {nn.Linear}, dtype=torch.qint8)

    def save(self, folder: str | Path, tokenizer, shard_size: str = "14MB", dtype: torch.dtype = torch.float16) -> None:
        """Encoder config, tokenizer, head config and sharded safetensors into `folder`."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.encoder.config.save_pretrained(str(folder))
        tokenizer.save_pretrained(str(folder))
        state = {k: v.detach().to(dtype).contiguous() for k, v in self.state_dict().items()}
        save_torch_state_dict(state, str(folder), max_shard_size=shard_size)
        meta = {"entity_labels": self.entity_labels, "relation_labels": self.relation_labels,
                "head_size": self.head_size, "pair_size": self.pair_size, "pair_dropout": self.pair_dropout,
                "aux_pointers": self.aux_pointers, "hint_channels": self.hint_channels, "hint_tags": self.hint_tags,
                **self.extra}
        (folder / HEAD_CONFIG).write_text(json.dumps(meta, ensure_ascii=False, indent=1), encoding="utf-8")

    @classmethod
    def load(cls, folder: str | Path, device: str | torch.device = "cpu") -> tuple[EduPairModel, object]:
        """The model (fp32, eval mode) and its tokenizer from a folder written by `save`."""
        folder = Path(folder)
        meta_path = folder / HEAD_CONFIG
        if not meta_path.exists():
            raise FileNotFoundError(f"{folder} is not an edupair model folder (no {HEAD_CONFIG})")
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if "pair_size" not in meta:
            raise ValueError(f"{folder} holds a model of an older edupair (relation pointers, no pair scorer); "
                             "retrain it with scripts/train.py")
        encoder = AutoModel.from_config(AutoConfig.from_pretrained(str(folder)), dtype=torch.float32)
        model = cls(encoder, meta.pop("entity_labels"), meta.pop("relation_labels"), meta.pop("head_size"), meta,
                    meta.pop("pair_size"), meta.pop("pair_dropout"), meta.pop("aux_pointers", False),
                    meta.pop("hint_channels", 0), meta.pop("hint_tags", 5))
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
