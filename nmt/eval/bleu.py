"""BLEU, chrF and TER of detokenized text with sacrebleu, each with its signature."""
from __future__ import annotations

from typing import Dict, List, Sequence

from sacrebleu.metrics import BLEU, CHRF, TER

from ..errors import ConfigError, NmtError


class LineCountError(NmtError, ValueError):
    pass


MAKERS = {"bleu": BLEU, "chrf": CHRF, "ter": TER}


def _check(hyps: Sequence[str], refs: Sequence[Sequence[str]], metrics: Sequence[str], names: Sequence[str]):
    """Equal, non-zero line counts and known metrics, or an error naming the files."""
    refs = [list(r) for r in refs]
    hyp_name = names[0] if names else "hypotheses"
    for i, r in enumerate(refs):
        if len(r) != len(hyps):
            ref_name = names[i + 1] if len(names) > i + 1 else f"reference {i + 1}"
            raise LineCountError(f"line counts differ: {hyp_name} has {len(hyps)} lines, {ref_name} has {len(r)}")
    if not hyps:
        raise LineCountError(f"{hyp_name} and its references are empty: nothing to score")
    for name in metrics:
        if name not in MAKERS:
            raise ConfigError(f"unknown metric {name!r}; choose from {sorted(MAKERS)}")
    return refs


def score(hyps: Sequence[str], refs: Sequence[Sequence[str]], metrics: Sequence[str] = ("bleu", "chrf"),
          names: Sequence[str] = ()) -> Dict[str, Dict]:
    """``{"bleu": {"score": .., "signature": .., "text": ..}, "chrf": {...}}`` for one or more reference sets.

    Different line counts between the hypotheses and any reference set are refused.
    """
    refs = _check(hyps, refs, metrics, names)
    out = {}
    for name in metrics:
        metric = MAKERS[name]()
        result = metric.corpus_score(list(hyps), refs)
        out[name] = {"score": round(float(result.score), 4), "signature": str(metric.get_signature()),
                     "text": str(result)}
    return out


def sentence_scores(hyps: Sequence[str], refs: Sequence[Sequence[str]], metrics: Sequence[str] = ("bleu", "chrf"),
                    names: Sequence[str] = ()) -> List[Dict[str, float]]:
    """Per line, sacrebleu's sentence score of each metric (BLEU with its default smoothing)."""
    refs = _check(hyps, refs, metrics, names)
    scorers = {name: MAKERS[name](**({"effective_order": True} if name == "bleu" else {})) for name in metrics}
    return [{name: round(float(m.sentence_score(h, [r[i] for r in refs]).score), 4) for name, m in scorers.items()}
            for i, h in enumerate(hyps)]
