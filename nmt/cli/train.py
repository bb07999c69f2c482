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
    except OSError as e:
        sys.exit(f"nmt-train: error: {e.strerror or e}{f': {e.filename}' if e.filename else ''}")
    return summary["best_bleu"]  # what a sweeper optimises


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if "--help" in argv or "-h" in argv:
        from ..config import help_text
        print(help_text(_groups()))
        return
    run_dir = _run_dir_override(argv)
    if run_dir and "-m" not in argv and "--multirun" not in argv:
        from ..training.rundir import RunDirError, check_writable
        try:
            check_writable(run_dir)  # before Hydra writes .hydra/ into it
        except RunDirError as e:
            sys.exit(f"nmt-train: error: {e}")
    import hydra

    from ..config import register_configs
    register_configs()
    sys.argv = [sys.argv[0], *argv]
    hydra.main(version_base="1.3", config_path="pkg://nmt.configs", config_name="train")(_train)()


if __name__ == "__main__":
    main()
