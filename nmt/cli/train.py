"""nmt-train: a Hydra application over configs/ (shipped as the package ``nmt.configs``).

``--help`` is answered from the config schema without importing torch or composing anything.
"""
from __future__ import annotations

import os
import sys
from typing import Dict, List, Optional, cast

from ..launch import Launch
from ..runpaths import RunPaths
from ..training.signals import interrupted_by_user, watch_sigint
from . import interrupted, prepare_process


def _groups() -> dict:
    import nmt.configs
    root = os.path.dirname(nmt.configs.__file__)
    groups = {}
    for dirpath, _, files in sorted(os.walk(root)):
        group = os.path.relpath(dirpath, root).replace(os.sep, "/")
        options = sorted(f[:-5] for f in files if f.endswith(".yaml"))
        if group != "." and options and not group.startswith("_"):
            groups[group] = options
    return groups


def _run_dir_override(argv) -> str:
    for arg in argv:
        for prefix in ("run_dir=", "+run_dir=", "++run_dir="):
            if arg.startswith(prefix):
                return arg[len(prefix):]
    return ""


# Whether this start creates its run directory: a start that fails before the first checkpoint then
# removes what it wrote there (Hydra's .hydra/, train.log, the sentencepiece model), leaving nothing.
_FRESH: Dict[str, Optional[str]] = {"run_dir": None}


def _preflight(argv) -> None:
    """Compose the config as Hydra will and run the start-up checks before Hydra writes anything
    (``.hydra/``, ``train.log``) into the run directory, so a refused start leaves it untouched."""
    from ..config import compose
    from ..errors import NmtError
    from ..training.preflight import preflight, resumed_config
    try:
        overrides = [a for a in argv if not a.lstrip("+~").startswith("hydra.")]
        config = resumed_config(compose(overrides), overrides)
        run_dir = config.run_dir if config.run_dir is not None else _run_dir_override(argv) or None
        if run_dir is not None:
            preflight(config, run_dir, run_dir_checks=Launch.from_env().main)
            _FRESH["run_dir"] = None if os.path.exists(run_dir) else os.path.abspath(run_dir)
        else:
            preflight(config, ".", run_dir_checks=False)  # a fresh outputs/DATE/TIME folder
            _FRESH["run_dir"] = "hydra"
    except NmtError as e:
        sys.exit(f"nmt-train: error: {e}")


MAX_CHECKED_JOBS = 500  # a larger sweep's jobs are checked as each starts


def _check_sweep(argv) -> None:
    """``-m``: every job's settings checked before the first job starts (a bad value in the last job
    of a sweep must not cost the first ones' training). Sweeps a sweeper draws itself (interval,
    Optuna) are checked by each job."""
    import itertools

    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    from ..config import compose
    from ..errors import NmtError
    from ..training.preflight import preflight
    overrides = [a for a in argv if not a.startswith("-") and not a.lstrip("+~").startswith("hydra.")]
    try:
        choices: List[List[str]] = []
        for o in OverridesParser.create().parse_overrides(overrides):
            if o.is_sweep_override():
                choices.append([f"{o.get_key_element()}={v}" for v in o.sweep_string_iterator()])
            else:
                choices.append([str(o.input_line)])
    except HydraException:
        return  # not a list or range sweep, or not valid: Hydra says so itself
    jobs = list(itertools.islice(itertools.product(*choices), MAX_CHECKED_JOBS))
    for number, job in enumerate(jobs):
        try:
            preflight(compose(list(job)), ".", run_dir_checks=False)
        except NmtError as e:
            sys.exit(f"nmt-train: error: job {number} of the sweep ({' '.join(job)}): {e}; no job was started")


def _remove_if_fresh(run_dir: str) -> None:
    """After a failed start: the run directory this start created, if it holds no checkpoint."""
    import shutil
    if _FRESH["run_dir"] in (os.path.abspath(run_dir), "hydra") and Launch.from_env().main and \
            not os.path.exists(RunPaths(run_dir).last):
        import logging
        for handler in logging.getLogger().handlers:  # Hydra's train.log handler: close before removing
            if getattr(handler, "baseFilename", "").startswith(os.path.abspath(run_dir) + os.sep):
                handler.close()
        shutil.rmtree(run_dir, ignore_errors=True)


def _train(cfg) -> float:
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    from ..errors import NmtError
    run_dir = cfg.run_dir or HydraConfig.get().runtime.output_dir
    try:
        from ..config import Config, check_known_keys
        from ..training.loop import fit
        from ..training.preflight import resumed_config
        check_known_keys(cast(dict, OmegaConf.to_container(cfg, resolve=False)))
        config = resumed_config(cast(Config, OmegaConf.to_object(cfg)), list(HydraConfig.get().overrides.task))
        summary = fit(config, run_dir)
    except NmtError as e:
        _remove_if_fresh(run_dir)
        sys.exit(f"nmt-train: error: {e}")
    except KeyboardInterrupt:
        _interrupted(run_dir)
    except Exception as e:
        _failed(e, run_dir)
    return summary["best_bleu"]  # what a sweeper optimises


def _interrupted(run_dir: str) -> None:
    """Ctrl-C in a run: the run directory this start created goes; before the first checkpoint the
    process leaves without the interpreter's shutdown (``interrupted``'s ``hard``)."""
    _remove_if_fresh(run_dir)
    started = os.path.exists(RunPaths(run_dir).last)
    interrupted("nmt-train", "checkpoints written so far are intact" if started else "before the first checkpoint",
                hard=not started)


def _failed(e: Exception, run_dir: str) -> None:
    """Any other error: after a Ctrl-C (which a library may have turned into another error), the
    interruption; an OS error, one line; a lost distributed peer, one line naming its cause."""
    if interrupted_by_user():
        _interrupted(run_dir)
    if isinstance(e, OSError):
        sys.exit(f"nmt-train: error: {e.strerror or e}{f': {e.filename}' if e.filename else ''}")
    if isinstance(e, RuntimeError):
        if Launch.from_env().distributed and _lost_peer(e):
            import re
            cause = re.sub(r"^\[[^\]]*\]\s*", "", str(e).strip().splitlines()[0]).split(". ")[0][:160]
            sys.exit(f"nmt-train: error: rank {Launch.from_env().rank}: another process of the distributed "
                     f"run stopped ({cause}); the last checkpoint is intact: resume with resume=true")
    raise e


def _lost_peer(e: RuntimeError) -> bool:
    import torch.distributed as torch_dist
    text = str(e).lower()
    return isinstance(e, getattr(torch_dist, "DistError", ())) or any(
        w in text for w in ("gloo", "nccl", "connection closed", "connection reset", "broken pipe", "timed out"))


def hydra_argv(argv: list, main_rank: bool) -> list:
    """What Hydra is given: on the other ranks of a distributed run (not ``main_rank``) nothing of Hydra's
    in the run directory, which rank 0 owns and checks (``.hydra/`` and ``train.log`` written there by a
    rank that started first would make rank 0 refuse the directory as a user's); their logs go to stderr."""
    if main_rank:
        return list(argv)
    extra = ["hydra.output_subdir=null"]
    if not any(a.lstrip("+~").startswith(("hydra/job_logging=", "hydra.job_logging")) for a in argv):
        extra.append("hydra/job_logging=stdout")  # train.yaml points its console handler at stderr
    return [*argv, *extra]


def main(argv=None) -> None:
    prepare_process()
    watch_sigint()
    argv = sys.argv[1:] if argv is None else argv
    import logging
    logging.raiseExceptions = False  # a full disk must not print a logging traceback: the checkpoint error says it
    if "--help" in argv or "-h" in argv:
        from ..config import help_text
        print(help_text(_groups()))
        return
    try:
        if not any(arg.startswith("-") for arg in argv):  # a single run (not -m, --cfg, ...): check it first
            _preflight(argv)
        elif "-m" in argv or "--multirun" in argv:
            _check_sweep(argv)
    except KeyboardInterrupt:
        interrupted("nmt-train", "before training started", hard=True)
    try:
        import hydra

        from ..config import register_configs
        register_configs()
        sys.argv = [sys.argv[0], *hydra_argv(argv, Launch.from_env().main)]
        hydra.main(version_base="1.3", config_path="pkg://nmt.configs", config_name="train")(_train)()
    except KeyboardInterrupt:
        interrupted("nmt-train", "before training started", hard=True)


if __name__ == "__main__":
    main()
