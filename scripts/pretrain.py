"""Pretrain the embedded Chinese encoder: `python scripts/pretrain.py [key=value ...]`."""

from __future__ import annotations

import json

import hydra
from omegaconf import DictConfig

from edupair.pretraining import run


@hydra.main(config_path="../configs", config_name="pretrain", version_base="1.3")
def main(cfg: DictConfig) -> None:
    print(json.dumps(run(cfg), indent=1))


if __name__ == "__main__":
    main()
