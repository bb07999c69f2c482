"""The Python API: ``nmt.load`` a checkpoint (or an ensemble) and translate or score with it;
``nmt.train`` a model exactly as ``nmt-train`` does."""
from __future__ import annotations

from typing import List, Sequence, Tuple, Union

from .search import SearchOptions


class Model:
    """A loaded model (or ensemble) with its tokenizer: raw text in, detokenized text out."""

    def __init__(self, model, tokenizer, config, path: str, device, shortlist=None):
        self.model, self.tokenizer, self.config, self.path, self.device = model, tokenizer, config, path, device
        self.shortlist = shortlist  # the checkpoint's lexical shortlist, if it has one

    def translate(self, lines: Sequence[str], beam: int = 5, nbest: int = 1, greedy: bool = False,
                  batch_size: int = 64, shortlist: int = 0, shortlist_frequent: int = 100,
                  **search) -> Union[List[str], List[List[Tuple[str, float]]]]:
        """Translations of ``lines`` in order: a list of strings, or with ``nbest`` > 1 a list of
        n-best lists of (text, score). ``shortlist=K`` searches over each source token's K likeliest
        target tokens and the ``shortlist_frequent`` most frequent ones (as ``nmt-translate
        --shortlist K``). ``search`` takes any other ``SearchOptions`` field (``alpha``, ``penalty``,
        ``max_len_a``, ``min_len``, ...)."""
        from .search.shortlist import select
        from .translator import Translator
        if isinstance(lines, str):
            raise TypeError("translate() takes a list of sentences; wrap a single one in a list")
        options = SearchOptions(strategy="greedy" if greedy else search.pop("strategy", "beam"),
                                beam_size=beam, nbest=nbest, **search)
        short = select(self.shortlist, shortlist, shortlist_frequent, self.path)
        translator = Translator(self.model, self.tokenizer, options, batch_size=batch_size, shortlist=short)
        out = translator.translate(list(lines))
        return [n[0][0] for n in out] if nbest == 1 else out

    def score(self, sources: Sequence[str], targets: Sequence[str], batch_size: int = 64) -> List[float]:
        """Per pair, the log-probability (natural log, summed over the target's pieces and EOS) of
        the target given the source."""
        return [s for s, _ in self.score_tokens(sources, targets, batch_size)]

    def score_tokens(self, sources: Sequence[str], targets: Sequence[str], batch_size: int = 64
                     ) -> List[Tuple[float, int]]:
        """Per pair, (log-probability, number of target pieces + EOS)."""
        from .translator import Translator
        return Translator(self.model, self.tokenizer, batch_size=batch_size).score(list(sources), list(targets))

    def __repr__(self) -> str:
        return f"nmt.Model({self.path!r})"


def load(path: Union[str, Sequence[str]], device: str = "cpu") -> Model:
    """A checkpoint file, a run directory (its checkpoints/best.pt), or a list of them (an ensemble)."""
    from .checkpoint import load_ensemble, load_model
    from .training.distributed import pick_device
    dev = pick_device(device, key="device")
    if isinstance(path, str):
        model, tok, cfg, resolved, shortlist = load_model(path, dev)
        return Model(model, tok, cfg, resolved, dev, shortlist)
    model, tok, cfg = load_ensemble(list(path), dev)
    return Model(model, tok, cfg, ", ".join(path), dev)


def train(overrides: Sequence[str] = (), config_name: str = "train") -> dict:
    """Train as ``nmt-train OVERRIDES`` would (same configs, checks and run directory); returns the
    summary: steps, epochs, best_bleu, best_step, stop_reason, run_dir, minutes, test."""
    import os
    import time

    from hydra import compose, initialize_config_module
    from omegaconf import OmegaConf

    from .config import check_known_keys, register_configs
    from .training.loop import fit
    register_configs()
    with initialize_config_module(config_module="nmt.configs", version_base="1.3"):
        cfg = compose(config_name=config_name, overrides=list(overrides))
    check_known_keys(OmegaConf.to_container(cfg, resolve=False))
    config = OmegaConf.to_object(cfg)
    run_dir = config.run_dir or os.path.join("outputs", time.strftime("%Y-%m-%d"), time.strftime("%H-%M-%S"))
    return fit(config, run_dir)
