"""The state of a training run: what a checkpoint restores (``TrainState``), what an update reports
(``Update``), running totals between log lines (``Window``) and the live objects (``Run``)."""
from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

import torch

from ..config import Config
from ..data.dataset import EncodedCorpus
from ..data.mixture import TrainingData
from ..data.spm import Tokenizer
from ..data.subword import SubwordSampler
from ..runpaths import RunPaths
from ..translator import Translator
from .distributed import Dist
from .ema import EMA
from .metrics import MetricsLog
from .schedules import LRSchedule


@dataclass
class TrainState:
    """Everything about the loop's progress that a checkpoint must restore."""
    step: int = 0  # updates done
    epoch: int = 0
    position: int = 0  # index of the next batch in this epoch's batch order
    best_bleu: float = -1.0
    best_step: int = 0
    bad_validations: int = 0
    nonfinite: int = 0  # non-finite updates in a row
    blowups: int = 0  # updates in a row whose loss blew up
    overflows: int = 0  # fp16 updates skipped because their gradients overflowed (all so far)
    corpus: str = ""  # content hash of the training files (a resume over changed files is refused)
    run_id: str = ""  # the run directory's marker (a checkpoint of another run is refused on resume)

    # Every change of the state is one of these transitions; the loop, validation, logging and
    # saving call them and otherwise only read.
    def advance(self, batches: int) -> None:
        """One update done, over ``batches`` more batches of this epoch's order."""
        self.position += batches
        self.step += 1

    def next_epoch(self) -> None:
        self.epoch, self.position = self.epoch + 1, 0

    def validated(self, bleu: float) -> bool:
        """Record a validation's BLEU; True when it is the best so far."""
        if bleu > self.best_bleu:
            self.best_bleu, self.best_step, self.bad_validations = bleu, self.step, 0
            return True
        self.bad_validations += 1
        return False

    def skipped_update(self) -> int:
        """A non-finite update (not applied); returns how many in a row."""
        self.nonfinite += 1
        return self.nonfinite

    def overflowed(self) -> None:
        """An fp16 update skipped by the loss scaler (not a non-finite loss)."""
        self.overflows += 1

    def applied_update(self, blown_up: bool) -> int:
        """A finite update, its loss blown up or not; returns the blown-up updates in a row."""
        self.nonfinite = 0
        self.blowups = self.blowups + 1 if blown_up else 0
        return self.blowups


@dataclass
class Update:
    """What one update reports."""
    loss: float  # mean training loss per target token (with label smoothing)
    nll: float  # mean cross-entropy per target token (no smoothing)
    tokens: int
    grad_norm: float  # before clipping
    applied: bool  # finite: the optimizer stepped
    clipped: bool
    tf_ratio: float
    lr: float
    overflow: bool = False  # fp16: the gradients overflowed and the loss scaler skipped the update
    align: Optional[float] = None  # guided alignment: attention's cross-entropy against the alignments


@dataclass
class Window:
    """Running totals since the last log line (tokens, time) and the last validation (clipping)."""
    since: float = field(default_factory=time.time)
    tokens: int = 0
    updates: int = 0
    clipped: int = 0
    valid_updates: int = 0
    valid_clipped: int = 0
    recent: deque = field(default_factory=lambda: deque(maxlen=50))  # recent finite losses
    validated_at: int = -1  # step of the last validation

    def count(self, update: Update) -> None:
        """An update's share of both running totals."""
        self.tokens += update.tokens
        self.updates += 1
        self.clipped += int(update.clipped)
        self.valid_updates += 1
        self.valid_clipped += int(update.clipped)

    def logged(self, now: float) -> None:
        """A log line was written: the totals since the last one start again."""
        self.since, self.tokens, self.updates, self.clipped = now, 0, 0, 0

    def validated(self, step: int) -> Tuple[int, float]:
        """A validation at ``step``: returns the updates since the last one and the share of them
        clipped, then starts those counts again."""
        counts = self.valid_updates, self.valid_clipped / max(self.valid_updates, 1)
        self.validated_at, self.valid_updates, self.valid_clipped = step, 0, 0
        return counts


@dataclass
class Run:
    """The live objects of one training run."""
    cfg: Config
    run_dir: str
    device: torch.device
    dist: Dist
    tok: Tokenizer
    train: TrainingData
    valid: EncodedCorpus
    model: torch.nn.Module
    net: torch.nn.Module  # the Objective, inside DDP when distributed
    optimizer: torch.optim.Optimizer
    scheduler: LRSchedule
    state: TrainState
    metrics: Optional[MetricsLog]
    translator: Translator
    shortlist: Optional[Dict[str, torch.Tensor]] = None  # saved with every checkpoint (rank 0)
    ema: Optional[EMA] = None  # the moving average of the weights (train.ema_decay)
    scaler: torch.amp.GradScaler = field(default_factory=lambda: torch.amp.GradScaler(enabled=False))  # fp16
    subword: Optional[SubwordSampler] = None  # each epoch's sampled segmentation (data.spm.sampling_alpha)
    sampled: Optional[TrainingData] = None  # this epoch's, under subword sampling
    start_time: float = field(default_factory=time.time)
    start_step: int = 0  # the step this process started (or resumed) at
    window: Window = field(default_factory=Window)

    @property
    def records(self) -> MetricsLog:
        """Rank 0's metrics log (the other ranks keep none: only rank 0 writes records)."""
        assert self.metrics is not None, "only rank 0 writes metrics"
        return self.metrics

    @property
    def data(self) -> TrainingData:
        """The training data of this epoch: ``train`` in this epoch's segmentation."""
        return self.sampled if self.sampled is not None else self.train

    def begin_epoch(self) -> TrainingData:
        """The training data of the epoch ``state.epoch`` (under subword sampling, its segmentation)."""
        if self.subword is not None:
            self.sampled = self.subword.epoch(self.state.epoch)
        return self.data

    def close(self) -> None:
        """Stop background work (the next epoch's subword sampling) and remove its files."""
        if self.subword is not None:
            self.subword.close()

    @property
    def paths(self) -> RunPaths:
        return RunPaths(self.run_dir)
