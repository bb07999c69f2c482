"""Training: schedules, checkpoints, the loop, and distributed helpers."""
