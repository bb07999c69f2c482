"""A run directory's layout: which file of a training run lives where. Imports nothing heavy, so the
command-line programs read it before torch loads."""
from __future__ import annotations

import os
import re
from typing import List


class RunPaths:
    """Where a training run keeps its files; the one place that spells the layout out::

        RUN_DIR/checkpoints/last.pt      the latest training checkpoint (what resume=true continues)
        RUN_DIR/checkpoints/best.pt      a hard link to the best one on validation (what tools load)
        RUN_DIR/checkpoints/step_N.pt    hard links to earlier ones, as many as train.keep_last says
        RUN_DIR/test/hyp.txt             the final test translation
        RUN_DIR/test/scores.json         its scores
        RUN_DIR/summary.json             the run's outcome (steps, best BLEU, test scores, stop reason)

    The lock and the marker that make a directory a run are ``training.rundir``'s."""

    def __init__(self, root: str):
        self.root = root

    @classmethod
    def of_checkpoint(cls, path: str) -> RunPaths:
        """The run a checkpoint file belongs to (the directory above its ``checkpoints/``)."""
        return cls(os.path.dirname(os.path.dirname(os.path.abspath(path))))

    @property
    def checkpoints(self) -> str:
        return os.path.join(self.root, "checkpoints")

    @property
    def last(self) -> str:
        return os.path.join(self.checkpoints, "last.pt")

    @property
    def best(self) -> str:
        return os.path.join(self.checkpoints, "best.pt")

    def step(self, step: int) -> str:
        return os.path.join(self.checkpoints, f"step_{step}.pt")

    def steps(self) -> List[str]:
        """The ``step(N)`` files there are, oldest step first."""
        try:
            names = os.listdir(self.checkpoints)
        except (FileNotFoundError, NotADirectoryError):
            return []
        found = sorted((int(m.group(1)), name) for name in names if (m := re.fullmatch(r"step_(\d+)\.pt", name)))
        return [os.path.join(self.checkpoints, name) for _, name in found]

    @property
    def test(self) -> str:
        return os.path.join(self.root, "test")

    @property
    def test_hyp(self) -> str:
        return os.path.join(self.test, "hyp.txt")

    @property
    def test_scores(self) -> str:
        return os.path.join(self.test, "scores.json")

    @property
    def summary(self) -> str:
        return os.path.join(self.root, "summary.json")
