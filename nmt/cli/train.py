"""nmt-train: a Hydra application over configs/ (shipped as the package ``nmt.configs``)."""
from __future__ import annotations

import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from ..config import register_configs
from ..data.corpus import CorpusError
from ..train.checkpoint import CheckpointError
from ..train.loop import TrainingError, fit

register_configs()


@hydra.main(version_base="1.3", config_path="pkg://nmt.configs", config_name="train")
def _train(cfg: DictConfig) -> float:
    config = OmegaConf.to_object(cfg)
    run_dir = config.run_dir or HydraConfig.get().runtime.output_dir
    try:
        summary = fit(config, run_dir)
    except (CorpusError, CheckpointError, TrainingError, ValueError) as e:
        sys.exit(f"nmt-train: error: {e}")
    return summary["best_bleu"]  # what a sweeper optimises


def main() -> None:
    _train()


if __name__ == "__main__":
    main()
