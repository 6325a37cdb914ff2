"""Train the joint entity + relation model: `python scripts/train.py [group=option] [key=value ...]`."""

from __future__ import annotations

import json

import hydra
from omegaconf import DictConfig

from edupair.training import train


@hydra.main(config_path="../configs", config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> float:
    result = train(cfg)
    print(json.dumps({k: v for k, v in result.items() if k != "history"}, indent=1))
    return result["best_dev_relation_f1"]


if __name__ == "__main__":
    main()
