"""torch.distributed set-up for ``torchrun``: gloo on CPU, nccl on GPU, rank 0 does the I/O."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..config import NODE_LOCAL_KEYS, differences, to_dict
from ..errors import ConfigError
from ..launch import Launch


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls, device: torch.device) -> Dist:
        launch = Launch.from_env()
        if not launch.distributed:
            return cls()
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        return cls(dist.get_rank(), dist.get_world_size(), launch.local_rank)

    def all_sum(self, values):
        """Sum a list of floats over ranks (identity on one process)."""
        if not self.enabled:
            return list(values)
        t = torch.tensor(list(values), dtype=torch.float64)
        dist.all_reduce(t)
        return t.tolist()

    def broadcast(self, obj):
        """Rank 0's ``obj`` on every rank."""
        if not self.enabled:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def close(self) -> None:
        if self.enabled and dist.is_initialized():
            dist.destroy_process_group()


def check_same_settings(cfg, dist_: Dist) -> None:
    """Every rank trains with rank 0's settings (``config.NODE_LOCAL_KEYS`` aside); a ConfigError on the rank
    whose differ, naming the keys (a machine started with other overrides, or ``resume=true`` on a
    machine that does not see the run directory and so cannot read the run's own settings)."""
    if not dist_.enabled:
        return
    mine = to_dict(cfg)
    changed = differences(dist_.broadcast(mine), mine, lambda key: key not in NODE_LOCAL_KEYS)
    if changed:
        details = ", ".join(f"{k}: {b!r} here, {a!r} on rank 0" for k, a, b in changed[:8])
        raise ConfigError(f"rank {dist_.rank}: settings differ from rank 0's: {details}. Start every machine with "
                          f"the same overrides (to resume, repeat the run's overrides where the machine does not "
                          f"see the run directory)")
