"""metrics.jsonl and TensorBoard events in the run directory (written by rank 0 only)."""
from __future__ import annotations

import json
import logging
import os
from typing import Any, Dict, List, Optional

log = logging.getLogger(__name__)


def read_metrics(path: str) -> List[Dict]:
    if not os.path.isfile(path):
        return []
    records = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line:
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    break  # a line cut short by a kill: everything after it is unusable anyway
    return records


class MetricsLog:
    def __init__(self, run_dir: str, tensorboard: bool = True, resume_step: Optional[int] = None):
        """``resume_step``: the step of the checkpoint a resumed run continues from (None: a new run)."""
        self.path = os.path.join(run_dir, "metrics.jsonl")
        if resume_step is not None:
            # Forget what an interrupted run logged after the checkpoint we resume from.
            kept = [r for r in read_metrics(self.path) if r.get("step", 0) <= resume_step]
            with open(self.path, "w", encoding="utf-8") as f:
                f.writelines(json.dumps(r) + "\n" for r in kept)
        self.file = open(self.path, "a", encoding="utf-8")
        self.writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
                self.writer = SummaryWriter(os.path.join(run_dir, "tensorboard"),
                                            purge_step=None if resume_step is None else resume_step + 1)
            except ImportError:  # pragma: no cover - tensorboard is a dependency
                log.warning("tensorboard is not installed; no event files written")

    def write(self, kind: str, step: int, values: Dict[str, Any]) -> None:
        self.file.write(json.dumps({"kind": kind, "step": step, **values}) + "\n")
        if self.writer is not None:
            for key, value in values.items():
                if isinstance(value, (int, float)):
                    self.writer.add_scalar(f"{kind}/{key}", value, step)

    def flush(self) -> None:
        self.file.flush()
        if self.writer is not None:
            self.writer.flush()

    def close(self) -> None:
        self.flush()
        self.file.close()
        if self.writer is not None:
            self.writer.close()
