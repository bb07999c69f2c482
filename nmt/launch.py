"""Where this process sits in a ``torchrun`` launch, read from the variables torchrun sets (``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``); a plain start is rank 0 of 1. The one place
that reads them; imports nothing heavy, so ``nmt-train`` asks before torch loads."""
from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Launch:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    local_world: int = 1

    @classmethod
    def from_env(cls) -> Launch:
        env = os.environ
        return cls(int(env.get("RANK", "0")), int(env.get("WORLD_SIZE", "1")), int(env.get("LOCAL_RANK", "0")),
                   int(env.get("LOCAL_WORLD_SIZE", "1")))

    @property
    def main(self) -> bool:
        """Rank 0: the process that owns the run directory and its I/O."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1
