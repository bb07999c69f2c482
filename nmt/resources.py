"""What the machine can hold: checked before work that would not fit, so a setting too large for
memory stops with the setting named instead of dying in the allocator."""
from __future__ import annotations

import os


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
