"""Evaluate predictions: `python scripts/evaluate.py gold=FILE (pred=FILE | model=DIR) out=DIR`.

Gold files with offsets are scored at mention level; real-page gold (label/text sets) at
document level. Writes DIR/report.json and DIR/report.md.
"""

from __future__ import annotations

import json
import sys

import hydra
from omegaconf import DictConfig

from edupair.evaluation import run_evaluation


@hydra.main(config_path="../configs/inference", config_name="evaluate", version_base="1.3")
def main(cfg: DictConfig) -> None:
    try:
        report = run_evaluation(str(cfg.gold), cfg.pred, cfg.model, str(cfg.out), cfg.batch_size, cfg.device,
                                cfg.worst, cfg.get("pack_chars"))
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    print(json.dumps({"level": report["level"], "entity_f1": report["entities"]["micro"]["f1"],
                      "relation_f1": report["relations"]["micro"]["f1"], "out": str(cfg.out)}))


if __name__ == "__main__":
    main()
