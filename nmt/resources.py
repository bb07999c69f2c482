"""What the machine can hold: checked before work that would not fit, so a setting too large for
memory stops with the setting named instead of dying in the allocator."""
from __future__ import annotations

import os
from typing import Optional

from .errors import ConfigError


def available_memory() -> int:
    """Bytes of memory this process may still use: /proc/meminfo's MemAvailable (or the cgroup's
    limit, if lower); the physical size where that cannot be read."""
    avail = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        pass
    if avail is None:
        try:
            avail = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError, AttributeError):
            return 1 << 62
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path) as f:
                text = f.read().strip()
            if text.isdigit():
                avail = min(avail, int(text))
        except OSError:
            continue
    return avail


def gib(n: float) -> str:
    return f"{n / (1 << 30):.1f} GiB"


# Bytes the search holds per hypothesis and target-vocabulary entry: the output layer's logits,
# their normaliser and the top-k workspace, in fp32.
_BYTES_PER_LOGIT = 12


def search_batch_limit(beam: int, vocab: int, memory: Optional[int] = None) -> int:
    """The most sentences one search batch may hold so that its hypotheses' logits (sentences x
    ``beam`` (1 for greedy search and sampling) x target vocabulary) fit in a quarter of the available
    memory; a beam wider than the vocabulary, or one sentence that cannot fit at all, is refused with
    the setting named."""
    if beam > vocab:
        raise ConfigError(f"beam size {beam} is wider than the target vocabulary ({vocab} pieces): lower the beam")
    memory = available_memory() if memory is None else memory
    per_sentence = beam * vocab * _BYTES_PER_LOGIT
    if per_sentence > memory // 2:
        raise ConfigError(f"beam size {beam} needs about {gib(per_sentence)} per sentence (beam x {vocab} target "
                          f"pieces x {_BYTES_PER_LOGIT} bytes) but {gib(memory)} of memory is available: lower "
                          f"the beam")
    return max(1, (memory // 4) // per_sentence)
