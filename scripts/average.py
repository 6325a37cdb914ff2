"""Average trained models into one (a model soup) and choose its cut-offs on dev:
`python scripts/average.py models=[A,B,...] output_dir=DIR`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig

from edupair.annotations import read_jsonl
from edupair.training import average_models, calibrate_thresholds, save_model


@hydra.main(config_path="../configs", config_name="average", version_base="1.3")
def main(cfg: DictConfig) -> None:
    t = cfg.trainer
    if t.threads:
        torch.set_num_threads(t.threads)
    out = Path(cfg.output_dir)
    try:
        model, tokenizer = average_models([Path(f) for f in cfg.models])
        save_model(model, tokenizer, out, cfg.shard_size)
        chosen = calibrate_thresholds(out, read_jsonl(cfg.data.dev), list(t.calibrate_threshold),
                                      list(t.calibrate_relation_threshold), t.eval_batch_size, "cpu")
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    print(json.dumps({"models": list(cfg.models), "output_dir": str(out), **chosen}, indent=1))


if __name__ == "__main__":
    main()
