"""Command-line entry points: parse, build, call; nothing else.

The programs run on shared machines (laptops, servers, CI runners): unless the user chose one,
OpenMP threads wait passively instead of spinning, set here because the OpenMP runtime reads it
once, when torch is first imported. What a busy core costs either way is measured by
``scripts/benchmark.py --busy-core`` (README, Benchmarks).
"""
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def interrupted(program: str, detail: str = "") -> None:
    """Ctrl-C: one line on stderr, exit status 130 (128 + SIGINT), as shells report it; no traceback."""
    import sys
    print(f"{program}: interrupted{'; ' + detail if detail else ''}", file=sys.stderr)
    sys.exit(130)
