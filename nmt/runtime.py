"""The machine a program runs on: the device, the CPUs it may use, torch's threads, other work
competing for those CPUs. Shared by training, translation, scoring and the Python API."""
from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Optional, Sequence, Union

from .config import Device, choose
from .errors import ConfigError
from .launch import Launch

if TYPE_CHECKING:  # imported where used: a torch-free program (an exported model) picks threads too
    import torch


def pick_device(name: Union[str, Device], local_rank: int = 0, key: str = "train.device") -> torch.device:
    import torch
    name = choose(Device, name, key)
    if name is Device.auto:
        name = Device.cuda if torch.cuda.is_available() else Device.cpu
    if name is Device.cuda:
        if not torch.cuda.is_available():
            raise ConfigError(f"{key}=cuda, but no CUDA device is available (this torch "
                              f"{'has no CUDA support' if torch.version.cuda is None else 'finds no GPU'}); use cpu")
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask, e.g. under taskset or a container's cpuset)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def busy_cpus(cpus: Optional[Sequence[int]] = None, seconds: float = 0.2) -> float:
    """How many of ``cpus`` (default: this process's) other work keeps busy, measured over
    ``seconds`` from /proc/stat while this process sleeps; 0.0 where that cannot be read."""
    cpus = sorted(cpus if cpus is not None else os.sched_getaffinity(0))

    def sample():
        out = {}
        with open("/proc/stat") as f:
            for line in f:
                name, *fields = line.split()
                if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus:
                    v = [int(x) for x in fields]
                    out[int(name[3:])] = (sum(v), v[3] + (v[4] if len(v) > 4 else 0))  # (total, idle+iowait)
        return out
    try:
        before = sample()
        time.sleep(seconds)
        after = sample()
    except (OSError, ValueError, AttributeError):
        return 0.0
    busy = 0.0
    for cpu, (total, idle) in after.items():
        dt = total - before[cpu][0]
        busy += (dt - (idle - before[cpu][1])) / dt if dt > 0 else 0.0
    return busy


# more threads than this many per CPU only wait for each other; far more crash the OpenMP runtime
THREADS_PER_CPU = 4


def pick_threads(requested: int = 0, key: str = "--threads", torch_threads: bool = True) -> int:
    """Set torch's intra-op threads: ``requested``, or the CPUs this process may use, at most 8
    (one per CPU, shared by the ranks on one machine). Returns the number set. The default stays
    the same whatever the load (so runs and resumes compute the same numbers); ``check_busy``
    says when other work competes for those CPUs. More than ``THREADS_PER_CPU`` per CPU is refused,
    naming ``key``."""
    limit = THREADS_PER_CPU * available_cpus()
    if requested > limit:
        raise ConfigError(f"{key}{'=' if key.startswith('train') else ' '}{requested}: more than {THREADS_PER_CPU} "
                          f"threads per CPU this process may use ({available_cpus()}); at most {limit}")
    if requested <= 0:
        requested = max(1, min(8, available_cpus() // max(Launch.from_env().local_world, 1)))
    if torch_threads:  # else the caller gives the number to its own runtime (ONNX Runtime)
        import torch
        torch.set_num_threads(requested)
    return requested


def check_busy(threads: int, key: str = "train.threads") -> Optional[str]:
    """A warning when other processes keep so many of this process's CPUs busy that ``threads``
    threads would wait for each other (every op waits for its slowest thread); None otherwise."""
    if threads < 2 or Launch.from_env().local_world > 1:
        return None
    busy = busy_cpus()
    free = available_cpus() - busy
    if free >= threads - 0.5:
        return None
    return (f"other processes keep {busy:.1f} of this process's {available_cpus()} CPUs busy: {threads} threads "
            f"will wait for each other; {key}{'=' if key.startswith('train') else ' '}{max(1, int(free + 0.5))} "
            f"is likely faster")
