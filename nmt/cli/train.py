"""nmt-train: a Hydra application over configs/ (shipped as the package ``nmt.configs``).

``--help`` is answered from the config schema without importing torch or composing anything.
"""
from __future__ import annotations

import os
import sys


def _groups() -> dict:
    import nmt.configs
    root = os.path.dirname(nmt.configs.__file__)
    return {g: sorted(f[:-5] for f in os.listdir(os.path.join(root, g)) if f.endswith(".yaml"))
            for g in sorted(os.listdir(root)) if os.path.isdir(os.path.join(root, g)) and not g.startswith("_")}


def _run_dir_override(argv) -> str:
    for arg in argv:
        for prefix in ("run_dir=", "+run_dir=", "++run_dir="):
            if arg.startswith(prefix):
                return arg[len(prefix):]
    return ""


def _preflight(argv) -> None:
    """Compose the config as Hydra will and run the start-up checks before Hydra writes anything
    (``.hydra/``, ``train.log``) into the run directory, so a refused start leaves it untouched."""
    from ..config import compose
    from ..errors import NmtError
    from ..training.preflight import preflight
    try:
        config = compose([a for a in argv if not a.lstrip("+~").startswith("hydra.")])
        if config.run_dir or _run_dir_override(argv):
            preflight(config, config.run_dir or _run_dir_override(argv),
                      run_dir_checks=os.environ.get("RANK", "0") == "0")
        else:
            preflight(config, ".", run_dir_checks=False)  # a fresh outputs/DATE/TIME folder
    except NmtError as e:
        sys.exit(f"nmt-train: error: {e}")


def _train(cfg) -> float:
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    from ..config import check_known_keys
    from ..errors import NmtError
    from ..training.loop import fit
    try:
        check_known_keys(OmegaConf.to_container(cfg, resolve=False))
        config = OmegaConf.to_object(cfg)
        summary = fit(config, config.run_dir or HydraConfig.get().runtime.output_dir)
    except NmtError as e:
        sys.exit(f"nmt-train: error: {e}")
    except KeyboardInterrupt:
        sys.exit("nmt-train: interrupted before training started (nothing to save yet)")
    except OSError as e:
        sys.exit(f"nmt-train: error: {e.strerror or e}{f': {e.filename}' if e.filename else ''}")
    except RuntimeError as e:
        if int(os.environ.get("WORLD_SIZE", "1")) > 1 and _lost_peer(e):
            sys.exit(f"nmt-train: error: rank {os.environ.get('RANK', '?')}: another process of the distributed "
                     f"run stopped ({str(e).strip().splitlines()[0][:200]}); the last checkpoint is intact: "
                     f"resume with resume=true")
        raise
    return summary["best_bleu"]  # what a sweeper optimises


def _lost_peer(e: RuntimeError) -> bool:
    import torch.distributed as torch_dist
    text = str(e).lower()
    return isinstance(e, getattr(torch_dist, "DistError", ())) or any(
        w in text for w in ("gloo", "nccl", "connection closed", "connection reset", "broken pipe", "timed out"))


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if "--help" in argv or "-h" in argv:
        from ..config import help_text
        print(help_text(_groups()))
        return
    if not any(arg.startswith("-") for arg in argv):  # a single run (not -m, --cfg, ...): check it first
        try:
            _preflight(argv)
        except KeyboardInterrupt:
            sys.exit("nmt-train: interrupted before training started")
    import hydra

    from ..config import register_configs
    register_configs()
    sys.argv = [sys.argv[0], *argv]
    hydra.main(version_base="1.3", config_path="pkg://nmt.configs", config_name="train")(_train)()


if __name__ == "__main__":
    main()
