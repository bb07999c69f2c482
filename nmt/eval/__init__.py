"""Scoring with sacrebleu."""
from .bleu import score  # noqa: F401
