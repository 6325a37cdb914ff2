"""Batch prediction: `python scripts/predict.py input=FILE|DIR|JSONL|- output=OUT.jsonl [model=DIR] ...`.

Under `accelerate launch scripts/predict.py ...` the input is sharded across processes and one
merged, ordered output is written.
"""

from __future__ import annotations

import json
import sys

import hydra
from omegaconf import DictConfig

from edupair.batch import run_prediction


@hydra.main(config_path="../configs/inference", config_name="predict", version_base="1.3")
def main(cfg: DictConfig) -> None:
    try:
        result = run_prediction(str(cfg.input), str(cfg.output), str(cfg.model), batch_size=cfg.batch_size,
                                device=cfg.device, fmt=cfg.format, threshold=cfg.threshold,
                                chunk_docs=cfg.chunk_docs, resume=cfg.resume, facts=cfg.facts,
                                gazetteer=cfg.gazetteer, relation_threshold=cfg.relation_threshold,
                                quantize=cfg.quantize)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    if result:
        print(json.dumps(result), file=sys.stderr)


if __name__ == "__main__":
    main()
