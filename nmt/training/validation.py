"""Validation during training (loss, BLEU, early stopping, best.pt), of the final weights however
a run stops, and the end-of-run test translation."""
from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import time
from typing import Dict, Optional

import torch

from ..checkpoint import load_model
from ..config import Precision
from ..data.batching import make_batches
from ..data.dataset import EncodedCorpus, read_split
from ..data.factors import read_factor_texts
from ..eval.bleu import score as sacre_score
from ..precision import autocast, resolve_precision
from ..search import end_of_run_options
from ..translator import Translator
from .logs import draw_plots
from .loss import loss_and_nll
from .run import Run
from .saving import save_checkpoint

log = logging.getLogger("nmt.train")


@torch.inference_mode()
def valid_loss(model, data: EncodedCorpus, device, max_tokens: int, precision: Precision) -> float:
    """Per-token cross-entropy of the gold targets (no label smoothing, no dropout)."""
    model.eval()
    total, tokens = 0.0, 0
    for idx in make_batches(data.src_lens, data.tgt_lens, max_tokens, shuffle=False):
        b = data.batch(idx).to(device)
        with autocast(device, precision):
            feats, _ = model.features(b.src, b.src_lens, b.tgt_in)
            _, nll = loss_and_nll(feats, model.decoder.output, b.tgt_out)  # the training loss's own nll
        total += float(nll) * b.num_tgt_tokens
        tokens += b.num_tgt_tokens
    return total / max(tokens, 1)


def run_validation(run: Run) -> bool:
    """Validate on rank 0 and checkpoint; True when early stopping says stop (same answer on all ranks)."""
    s, t = run.state, run.cfg.train
    stop = False
    updates, clipped_share = run.window.validated(s.step)  # on every rank: the final validation reads it
    if run.dist.main:
        start = time.time()
        log.info("step %d: validating on %d sentences", s.step, len(run.valid))
        with run.ema.applied(run.model) if run.ema is not None else contextlib.nullcontext():
            loss = valid_loss(run.model, run.valid, run.device, t.max_tokens, t.precision)
            src_text, tgt_text = run.valid.src_text, run.valid.tgt_text
            assert src_text is not None and tgt_text is not None  # a validation corpus keeps its text
            hyps = [h[0][0] for h in run.translator.translate(src_text, factors=run.valid.src_factor_text)]
        scores = sacre_score(hyps, [tgt_text])
        bleu = scores["bleu"]["score"]
        improved = s.validated(bleu)
        run.scheduler.step_valid(bleu, loss)
        run.records.write("valid", s.step, {"loss": loss, "ppl": math.exp(min(loss, 50)), "bleu": bleu,
                                            "chrf": scores["chrf"]["score"], "seconds": time.time() - start,
                                            "clipped_share": clipped_share})
        run.records.flush()
        log.info("step %d | valid loss %.3f ppl %.2f | BLEU %.2f chrF %.2f | best BLEU %.2f at step %d%s | "
                 "%.0f%% of %d updates clipped | %.1f s", s.step, loss, math.exp(min(loss, 50)), bleu,
                 scores["chrf"]["score"], s.best_bleu, s.best_step,
                 "" if improved else f" ({s.bad_validations} without improvement)", 100 * clipped_share,
                 updates, time.time() - start)
        stop = bool(t.patience) and s.bad_validations >= t.patience
        save_checkpoint(run, best=improved, step_copy=True)
        draw_plots(run)
    if run.dist.enabled:  # a plateau schedule reacts to rank 0's validation: every rank follows it
        run.scheduler.load_state_dict(run.dist.broadcast(run.scheduler.state_dict()))
        run.scheduler.step_update(s.step)
    return run.dist.broadcast(stop)


def validate_final(run: Run, reason: str) -> bool:
    """However training stopped (steps, epochs, time budget, signal), the final weights are validated,
    so best.pt and the test translation use them when they are the better ones. last.pt is saved
    first: a second Ctrl-C during this validation skips it (and the test) and loses no update.
    Returns False when interrupted."""
    s = run.state
    if run.window.validated_at == s.step or s.step == run.start_step:  # validated, or nothing new since the start
        return True
    if reason not in ("max_steps", "max_epochs"):
        save_checkpoint(run, best=False, step_copy=False)  # every update is kept, whatever happens next
        if reason == "signal":
            log.warning("validating the final weights (step %d) before stopping; Ctrl-C again to skip", s.step)
    try:
        run_validation(run)
    except KeyboardInterrupt:
        log.warning("final validation skipped (interrupted); last.pt holds step %d", s.step)
        return False
    if run.dist.main:
        log.info("final weights (step %d) %s: best.pt is step %d (valid BLEU %.2f)", s.step,
                 "are the best so far" if s.best_step == s.step else "did not beat the best", s.best_step,
                 s.best_bleu)
    return True


def translate_test(run: Run) -> Optional[Dict]:
    """best.pt translates data.test with beam search (``train.test_beam``, nmt-translate's other
    defaults); writes RUN_DIR/test/hyp.txt and RUN_DIR/test/scores.json and logs the scores."""
    d, t = run.cfg.data, run.cfg.train
    if not run.dist.main or not d.test:
        return None
    best, step = run.paths.best, run.state.best_step
    if not os.path.exists(best):
        best, step = run.paths.last, run.state.step
    test = read_split(d.test, "test", d.src_lang, d.tgt_lang)
    start = time.time()
    loaded = load_model(best, run.device)
    translator = Translator(loaded.model, loaded.tokenizer, end_of_run_options(t),
                            precision=t.precision, src_prefix=d.src_prefix)
    factors = read_factor_texts(d.test, d.src_lang, d.src_factors)
    hyps = [n[0][0] for n in translator.translate(test.src, factors=factors)]
    scores = sacre_score(hyps, [test.tgt])
    os.makedirs(run.paths.test, exist_ok=True)
    with open(run.paths.test_hyp, "w", encoding="utf-8") as f:
        f.writelines(h + "\n" for h in hyps)
    result = {"checkpoint": best, "step": step, "precision": resolve_precision(t.precision, run.device),
              "source": test.src_path, "reference": test.tgt_path, "beam": t.test_beam,
              "sentences": len(hyps), "seconds": round(time.time() - start, 2),
              **{k: {"score": v["score"], "signature": v["signature"]} for k, v in scores.items()}}
    with open(run.paths.test_scores, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2)
    run.records.write("test", run.state.step, {"bleu": scores["bleu"]["score"], "chrf": scores["chrf"]["score"]})
    log.info("test (%s, beam %d, %s of step %d, %s): %s | %s", test.src_path, t.test_beam, os.path.basename(best),
             step, result["precision"], scores["bleu"]["text"], scores["chrf"]["text"])
    log.info("test signatures: BLEU %s | chrF %s", scores["bleu"]["signature"], scores["chrf"]["signature"])
    return result
