"""Command-line entry points: parse, build, call; nothing else."""
