"""BLEU, chrF and TER of detokenized text with sacrebleu, each with its signature."""
from __future__ import annotations

from typing import Dict, List, Sequence

from sacrebleu.metrics import BLEU, CHRF, TER


class LineCountError(ValueError):
    pass


def score(hyps: Sequence[str], refs: Sequence[Sequence[str]], metrics: Sequence[str] = ("bleu", "chrf"),
          names: Sequence[str] = ()) -> Dict[str, Dict]:
    """``{"bleu": {"score": .., "signature": .., "text": ..}, "chrf": {...}}`` for one or more reference sets.

    Different line counts between the hypotheses and any reference set are refused.
    """
    refs = [list(r) for r in refs]
    for i, r in enumerate(refs):
        if len(r) != len(hyps):
            hyp_name = names[0] if names else "hypotheses"
            ref_name = names[i + 1] if len(names) > i + 1 else f"reference {i + 1}"
            raise LineCountError(f"line counts differ: {hyp_name} has {len(hyps)} lines, {ref_name} has {len(r)}")
    makers = {"bleu": BLEU, "chrf": CHRF, "ter": TER}
    out = {}
    for name in metrics:
        if name not in makers:
            raise ValueError(f"unknown metric {name!r}; choose from {sorted(makers)}")
        metric = makers[name]()
        result = metric.corpus_score(list(hyps), refs)
        out[name] = {"score": round(float(result.score), 4), "signature": str(metric.get_signature()),
                     "text": str(result)}
    return out


def bleu(hyps: List[str], refs: List[str]) -> float:
    return score(hyps, [refs], metrics=("bleu",))["bleu"]["score"]
