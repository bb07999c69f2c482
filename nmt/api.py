"""The Python API: ``nmt.load`` a checkpoint (or an ensemble) and translate or score with it;
``nmt.train`` a model exactly as ``nmt-train`` does."""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, List, Mapping, Optional, Sequence, Tuple, Union

from .config import InferenceSettings
from .guides import CONSTRAINTS, FACTORS, PREFIX
from .search import SearchOptions, decoding_options

if TYPE_CHECKING:  # importing nmt.api loads no torch
    import torch


def _lines(value, name: str, what: str = "sentences") -> List[str]:
    """``value`` as a list of str, or a TypeError naming the argument and the first bad item."""
    items = _listed(value, name, what)
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise TypeError(f"{name}[{i}] must be a str, got {type(item).__name__} ({item!r:.40})")
    return items


def _listed(value, name: str, what: str) -> list:
    """``value`` as a list (of ``what``), or a TypeError naming the argument."""
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be a list of {what}, not a single {type(value).__name__}; wrap it in a list")
    try:
        return list(value)
    except TypeError:
        raise TypeError(f"{name} must be a list of {what}, got {type(value).__name__}") from None


def _positive_int(value, name: str, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    return value


class Model:
    """A loaded model (or ensemble, or exported bundle) with its tokenizer: raw text in, detokenized
    text out. ``src_prefix`` (the tag before every source) and ``max_src_len`` (sources cut to it)
    are the model's ``data.src_prefix`` and ``data.max_len``."""

    def __init__(self, model, tokenizer, config, paths: Sequence[str], device, shortlist=None,
                 precision: str = InferenceSettings.precision):
        self.model, self.tokenizer, self.config, self.device = model, tokenizer, config, device
        self.paths = tuple(paths)  # the checkpoint files or bundles (several for an ensemble)
        self.shortlist = shortlist  # the checkpoint's lexical shortlist, if it has one
        if config is None:  # an exported bundle (nmt.deploy): fp32 over ONNX Runtime, settings in its manifest
            from .config import Precision
            self.precision, manifest = Precision.fp32, model.manifest
            self.src_prefix, self.max_src_len = manifest.src_prefix, manifest.max_src_len
        else:
            from .precision import inference_precision
            self.precision = inference_precision(precision, config, device)  # as the model trained, by default
            self.src_prefix, self.max_src_len = config.data.src_prefix, config.data.max_len

    def translate(self, lines: Sequence[str], beam: int = SearchOptions.beam_size, nbest: int = SearchOptions.nbest,
                  greedy: bool = False, batch_size: int = InferenceSettings.batch_size,
                  shortlist: int = InferenceSettings.shortlist,
                  shortlist_frequent: int = InferenceSettings.shortlist_frequent,
                  prefix: Optional[Sequence[str]] = None, constraints: Optional[Sequence[Sequence[str]]] = None,
                  factors: Optional[Mapping[str, Sequence[str]]] = None,
                  **search) -> Union[List[str], List[List[Tuple[str, float]]]]:
        """Translations of ``lines`` in order: a list of strings, or with ``nbest`` > 1 a list of
        n-best lists of (text, score). ``shortlist=K`` searches over each source token's K likeliest
        target tokens and the ``shortlist_frequent`` most frequent ones (as ``nmt-translate
        --shortlist K``). ``search`` takes any other ``SearchOptions`` field (``alpha``, ``penalty``,
        ``max_len_a``, ``min_len``, ``no_repeat_ngram``, ``top_p``, ...). ``prefix``: per line, {prefix}.
        ``constraints``: per line, a list of {constraints}. ``factors``: {{name: per line, its values}},
        {factors}."""
        from .search.options import check_min_len
        from .translator import Translator, check_one_line
        lines = _lines(lines, "lines")
        check_one_line(lines, "lines")
        if prefix is not None:
            prefix = _lines(prefix, "prefix")
            check_one_line(prefix, "prefix")
            if len(prefix) != len(lines):
                raise ValueError(f"prefix has {len(prefix)} entries for {len(lines)} lines")
        if constraints is not None:
            constraints = [_lines(c, f"constraints[{k}]", "phrases")
                           for k, c in enumerate(_listed(constraints, "constraints", "phrase lists"))]
            for k, phrases in enumerate(constraints):
                check_one_line(phrases, f"constraints[{k}]")
            if len(constraints) != len(lines):
                raise ValueError(f"constraints has {len(constraints)} entries for {len(lines)} lines")
        for name, value, low in (("beam", beam, 1), ("nbest", nbest, 1), ("batch_size", batch_size, 1),
                                 ("shortlist", shortlist, 0), ("shortlist_frequent", shortlist_frequent, 0)):
            _positive_int(value, name, low)
        options = decoding_options(beam, greedy=greedy, nbest=nbest, **search)
        check_min_len(options, self.max_src_len, "min_len")
        short = self.shortlist_table(shortlist, shortlist_frequent)
        translator = Translator(self.model, self.tokenizer, options, batch_size=batch_size, shortlist=short,
                                precision=self.precision, src_prefix=self.src_prefix, max_src_len=self.max_src_len)
        out = translator.translate(lines, prefix, constraints, self._factors(factors, len(lines)))
        return [n[0][0] for n in out] if nbest == 1 else out

    translate.__doc__ = (translate.__doc__ or "").format(prefix=PREFIX.help, constraints=CONSTRAINTS.help,
                                                         factors=FACTORS.help)

    def _factors(self, factors: Optional[Mapping[str, Sequence[str]]], n: int) -> Optional[List[List[str]]]:
        """``factors`` ({name: one line of values per sentence}) checked, in the model's factor order."""
        from .data.factors import factor_columns
        from .translator import check_one_line
        if factors is not None and not isinstance(factors, Mapping):
            raise TypeError(f"factors must be a dict {{name: [one line of values per sentence]}}, got "
                            f"{type(factors).__name__}")
        given = {name: _lines(v, f"factors[{name!r}]", "lines of factor values")
                 for name, v in (factors or {}).items()}
        for name, values in given.items():
            check_one_line(values, f"factors[{name!r}]")
            if len(values) != n:
                raise ValueError(f"factors[{name!r}] has {len(values)} entries for {n} sentences")
        columns = factor_columns(self.tokenizer.factors, given, "factors",
                                 "factors={name: [one line of values per sentence]}")
        return None if columns is None else [list(c) for c in columns]

    def shortlist_table(self, size: int, frequent: int, flag: str = "shortlist="):
        """The shortlist table chosen (``search.shortlist.select``), or None; an exported model has none
        (``size`` > 0 refused, naming ``flag``: ``shortlist=`` in the API, ``--shortlist `` on the
        command line)."""
        if self.config is None:
            if size:
                from .errors import ConfigError
                raise ConfigError(f"{flag}{size}: {self.path} is an exported model, which decodes over its whole "
                                  f"vocabulary")
            return None
        from .search.shortlist import select
        return select(self.shortlist, size, frequent, self.path)

    def score(self, sources: Sequence[str], targets: Sequence[str],
              batch_size: int = InferenceSettings.batch_size,
              factors: Optional[Mapping[str, Sequence[str]]] = None) -> List[float]:
        """Per pair, the log-probability (natural log, summed over the target's pieces and EOS) of
        the target given the source (``factors``: the sources' factor values, as ``translate``)."""
        return [s for s, _ in self.score_tokens(sources, targets, batch_size, factors)]

    def score_tokens(self, sources: Sequence[str], targets: Sequence[str],
                     batch_size: int = InferenceSettings.batch_size,
                     factors: Optional[Mapping[str, Sequence[str]]] = None) -> List[Tuple[float, int]]:
        """Per pair, (log-probability, number of target pieces + EOS)."""
        translator, sources, targets = self._forced(sources, targets, batch_size)
        return translator.score(sources, targets, factors=self._factors(factors, len(sources)))

    def align(self, sources: Sequence[str], targets: Sequence[str],
              batch_size: int = InferenceSettings.batch_size,
              factors: Optional[Mapping[str, Sequence[str]]] = None) -> List[str]:
        """Per pair, the word alignment of a given translation (Pharaoh ``"src-tgt ..."``, whitespace
        words from 0): where the model attends while it reads the target (as ``nmt-score --alignment``)."""
        translator, sources, targets = self._forced(sources, targets, batch_size)
        return translator.align(sources, targets, factors=self._factors(factors, len(sources)))

    def _forced(self, sources, targets, batch_size: int):
        """(a Translator for given pairs, the sources, the targets), both lists checked."""
        from .errors import ConfigError
        from .translator import Translator
        sources, targets = _lines(sources, "sources"), _lines(targets, "targets")
        if len(sources) != len(targets):
            raise ConfigError(f"sources has {len(sources)} sentences but targets has {len(targets)}")
        _positive_int(batch_size, "batch_size")
        return Translator(self.model, self.tokenizer, batch_size=batch_size, precision=self.precision,
                          src_prefix=self.src_prefix, max_src_len=self.max_src_len), sources, targets

    @property
    def path(self) -> str:
        """The checkpoint or bundle, for messages (an ensemble's joined with ", ")."""
        return ", ".join(self.paths)

    def __repr__(self) -> str:
        return f"nmt.Model({self.path!r})"


def load(path: Union[str, Sequence[str]], device: Union[str, torch.device] = InferenceSettings.device,
         precision: str = InferenceSettings.precision, int8: bool = InferenceSettings.int8,
         fp16_weights: bool = InferenceSettings.fp16_weights, threads: int = InferenceSettings.threads) -> Model:
    """A checkpoint file, a run directory (its checkpoints/best.pt), a list of them (an ensemble), or
    an exported bundle (``nmt-export``; run by ONNX Runtime without torch, ``threads`` intra-op
    threads, 0: one per CPU): the one loader of every program that translates or scores.
    ``precision``: checkpoint (what the model trained with, as ``nmt-translate`` defaults to), auto,
    fp32 or bf16; ``int8`` or ``fp16_weights``: its weights compressed (CPU), as ``nmt-translate
    --int8`` / ``--fp16-weights``.
    ``device``: a name (cpu, cuda, auto; checked here) or a ``torch.device`` a program already chose."""
    from .deploy.bundle import is_bundle
    if isinstance(path, (str, os.PathLike)) and is_bundle(os.fspath(path)):
        return _load_bundle([os.fspath(path)], device, precision, int8, fp16_weights, threads)
    if isinstance(path, os.PathLike):
        path = os.fspath(path)
    if not isinstance(path, str):
        if isinstance(path, (bytes, dict)) or not hasattr(path, "__iter__"):
            raise TypeError(f"path must be a checkpoint path, a run directory or a list of them, got "
                            f"{type(path).__name__}")
        path = [os.fspath(p) if isinstance(p, os.PathLike) else p for p in path]
        if not path:
            raise ValueError("path is an empty list: give at least one checkpoint")
        bad = [p for p in path if not isinstance(p, str)]
        if bad:
            raise TypeError(f"path must list checkpoint paths (str), got {type(bad[0]).__name__} ({bad[0]!r:.40})")
        if any(is_bundle(p) for p in path):  # exported models, run without torch (an ensemble of them too)
            return _load_bundle(path, device, precision, int8, fp16_weights, threads)
        if len(path) == 1:
            path = path[0]
    import torch

    from .checkpoint import load_models
    from .precision import compress_weights
    from .runtime import pick_device
    if not isinstance(device, (str, torch.device)):
        raise TypeError(f"device must be a str such as 'cpu' or 'cuda', got {type(device).__name__}")
    dev = device if isinstance(device, torch.device) else pick_device(device, key="device")
    model, tok, cfg, resolved, shortlist = load_models([path] if isinstance(path, str) else list(path), dev)
    return Model(compress_weights(model, int8, fp16_weights, dev), tok, cfg, resolved, dev, shortlist, precision)


def _load_bundle(paths: List[str], device, precision: str, int8: bool, fp16_weights: bool, threads: int) -> Model:
    """Exported bundles over ONNX Runtime on the CPU, in fp32 (or int8 where exported so): one model,
    or several as an ensemble (all of them bundles of one vocabulary)."""
    from .config import FROM_CHECKPOINT
    from .deploy.bundle import is_bundle
    from .deploy.runtime import OnnxEnsemble, OnnxModel
    from .errors import ConfigError
    from .runtime import pick_threads
    mixed = [p for p in paths if not is_bundle(p)]
    if mixed:
        raise ConfigError(f"{mixed[0]} is a checkpoint and {next(p for p in paths if is_bundle(p))} an exported model: "
                          f"an ensemble is all checkpoints or all exported models")
    if str(device) not in ("cpu", "auto"):
        raise ConfigError(f"device {device}: an exported model runs on the CPU (ONNX Runtime); translate the "
                          f"checkpoint itself on a GPU")
    if precision not in (FROM_CHECKPOINT, "fp32", "auto") or int8 or fp16_weights:
        raise ConfigError("an exported model computes as it was exported (fp32, or int8 with nmt-export --int8); "
                          "leave precision, int8 and fp16_weights at their defaults")
    threads = pick_threads(threads, key="threads", torch_threads=False)
    members = [OnnxModel(p, threads) for p in paths]
    model = members[0] if len(members) == 1 else OnnxEnsemble(members)
    return Model(model, model.tokenizer(), None, paths, "cpu")


def train(overrides: Sequence[str] = (), config_name: str = "train") -> dict:
    """Train as ``nmt-train OVERRIDES`` would (same configs, checks and run directory); returns the
    summary: steps, epochs, best_bleu, best_step, stop_reason, run_dir, minutes, test."""
    import time

    from .config import compose
    from .training.loop import fit
    from .training.preflight import resumed_config
    config = resumed_config(compose(list(overrides), config_name), list(overrides), config_name)
    run_dir = config.run_dir or os.path.join("outputs", time.strftime("%Y-%m-%d"), time.strftime("%H-%M-%S"))
    return fit(config, run_dir)  # which runs the start-up checks first
