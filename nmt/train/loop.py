"""The training loop: ``train_step`` (one update) and ``fit`` (everything around it)."""
from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import random
import signal
import time
from dataclasses import asdict, dataclass
from typing import Dict, List, Optional

import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from torch.nn.parallel import DistributedDataParallel as DDP
from tqdm import tqdm

from ..config import RESUMABLE_KEYS, Config
from ..data.batching import Batch, collate, make_batches, padding_fraction
from ..data.dataset import EncodedCorpus, encode, ensure_generated, read_split
from ..data.spm import PAD, Tokenizer
from ..eval.bleu import score as sacre_score
from ..models import build_model
from ..models.seq2seq import count_parameters
from ..translator import Translator, autocast
from . import plots
from .checkpoint import (FORMAT, CheckpointError, atomic_link, atomic_save, load_checkpoint, prune,
                         rng_state, set_rng_state, spm_to_tensor, step_checkpoints, tensor_to_spm)
from .distributed import Dist, pick_device
from .loss import Objective
from .metrics import MetricsLog, read_metrics
from .schedules import LRSchedule, build_optimizer, teacher_forcing_ratio

log = logging.getLogger("nmt.train")


class TrainingError(RuntimeError):
    pass


@dataclass
class TrainState:
    step: int = 0  # updates done
    epoch: int = 0
    position: int = 0  # index of the next batch in this epoch's batch order
    best_bleu: float = -1.0
    best_step: int = 0
    bad_validations: int = 0
    nonfinite: int = 0  # non-finite updates in a row


def train_step(objective, batches: List[Batch], optimizer, tf_ratio: float, feed: str = "argmax",
               clip_norm: float = 1.0, clip_value: float = 0.0, precision: str = "fp32"):
    """One update over ``batches`` (gradient accumulation): forward, token-level loss, backward,
    clipping, optimizer step. The loss is the mean over batches of each batch's per-token mean.

    ``objective`` is an ``Objective`` (possibly inside DistributedDataParallel).
    Returns (summed token loss, target tokens, pre-clip gradient norm, whether the update was applied).
    A non-finite loss or gradient skips the update.
    """
    objective.train()
    optimizer.zero_grad(set_to_none=True)
    device = batches[0].src.device
    loss_sum, tokens = 0.0, 0
    for i, batch in enumerate(batches):
        last = i == len(batches) - 1
        sync = objective.no_sync() if isinstance(objective, DDP) and not last else contextlib.nullcontext()
        with sync:
            with autocast(device, precision):
                loss = objective(batch.src, batch.src_lens, batch.tgt_in, batch.tgt_out, tf_ratio=tf_ratio, feed=feed)
            (loss / len(batches)).backward()
        n = batch.num_tgt_tokens
        loss_sum += loss.item() * n
        tokens += n
    params = [p for p in objective.parameters() if p.grad is not None]
    grad_norm = float(torch.nn.utils.clip_grad_norm_(params, clip_norm if clip_norm > 0 else float("inf")))
    finite = math.isfinite(grad_norm) and math.isfinite(loss_sum)
    if finite:
        if clip_value > 0:
            torch.nn.utils.clip_grad_value_(params, clip_value)
        optimizer.step()
    return loss_sum, tokens, grad_norm, finite


@torch.inference_mode()
def valid_loss(model, data: EncodedCorpus, device, max_tokens: int, precision: str) -> float:
    """Per-token cross-entropy of the gold targets (no label smoothing, no dropout)."""
    model.eval()
    total, tokens = 0.0, 0
    for idx in make_batches(data.src_lens, data.tgt_lens, max_tokens, shuffle=False):
        b = collate([data.src[i] for i in idx], [data.tgt[i] for i in idx], idx).to(device)
        with autocast(device, precision):
            logits, _ = model(b.src, b.src_lens, b.tgt_in)
        total += float(F.cross_entropy(logits.float().flatten(0, 1), b.tgt_out.flatten(), ignore_index=PAD,
                                       reduction="sum"))
        tokens += b.num_tgt_tokens
    return total / max(tokens, 1)


def _flatten(d: Dict, prefix: str = "") -> Dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def check_resume_config(saved: Dict, current: Dict, path: str) -> None:
    """Refuse to resume when a key outside ``RESUMABLE_KEYS`` changed, naming every such key."""
    a, b = _flatten(json.loads(json.dumps(saved))), _flatten(json.loads(json.dumps(current)))
    changed = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k) and k not in RESUMABLE_KEYS)
    if changed:
        details = ", ".join(f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in changed)
        raise TrainingError(f"cannot resume from {path}: these settings differ from the checkpoint's and may not "
                            f"change on resume: {details}")


def _setup_logging(run_dir: str, main: bool) -> list:
    """INFO to the console and RUN_DIR/train.log on rank 0 (Hydra may already provide both)."""
    logger = logging.getLogger("nmt")
    logger.setLevel(logging.INFO if main else logging.WARNING)
    path = os.path.abspath(os.path.join(run_dir, "train.log"))
    handlers, added = logging.getLogger().handlers + logger.handlers, []
    if main and not any(getattr(h, "baseFilename", None) == path for h in handlers):
        handler = logging.FileHandler(path)
        handler.setFormatter(logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"))
        added.append(handler)
    if not any(type(h) is logging.StreamHandler for h in handlers):
        stream = logging.StreamHandler()
        stream.setFormatter(logging.Formatter("[%(asctime)s] %(message)s", "%H:%M:%S"))
        added.append(stream)
    for h in added:
        logger.addHandler(h)
    return added


class _StopSignal:
    """First SIGINT/SIGTERM asks the loop to save and stop; a second SIGINT interrupts at once."""

    def __init__(self):
        self.requested, self._old = False, {}

    def _handle(self, signum, frame):
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        log.warning("received %s: saving last.pt and stopping after this update", signal.Signals(signum).name)

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread
                pass
        return self

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)


def _resume_checkpoint(ckpt_dir: str) -> Dict:
    path = os.path.join(ckpt_dir, "last.pt")
    if not os.path.exists(path):
        raise TrainingError(f"resume=true but there is no checkpoint at {path}; set run_dir= to the run to resume")
    try:
        return load_checkpoint(path)
    except CheckpointError as e:
        others = step_checkpoints(ckpt_dir)[::-1] + [p for p in [os.path.join(ckpt_dir, "best.pt")] if os.path.exists(p)]
        hint = (f"; the previous good checkpoints are {', '.join(others)}: copy one to {path} to resume from it"
                if others else "; no other checkpoint exists in that directory")
        raise TrainingError(f"{e}{hint}") from None


def _prepare_data(cfg: Config, ckpt: Optional[Dict], run_dir: str, dist: Dist):
    """Read the corpora, train (or restore) sentencepiece, encode; drop bad training pairs only."""
    d = cfg.data
    if dist.main:
        for prefix in (d.train, d.valid, d.test):
            ensure_generated(prefix, d.generate, d.src_lang, d.tgt_lang)
    dist.barrier()
    train_raw = read_split(d.train, "train", d.src_lang, d.tgt_lang)
    valid_raw = read_split(d.valid, "valid", d.src_lang, d.tgt_lang)
    if ckpt is not None:
        tok = Tokenizer(tensor_to_spm(ckpt["spm"]["src"]), tensor_to_spm(ckpt["spm"].get("tgt")))
    else:
        protos = None
        if dist.main:  # one model for every rank
            t = Tokenizer.train(train_raw.src, train_raw.tgt, d.spm.vocab_size, d.spm.model_type, d.spm.joint,
                                d.spm.character_coverage, d.spm.max_sentences, seed=cfg.train.seed)
            protos = (t.src_proto, None if t.joint else t.tgt_proto)
        tok = Tokenizer(*dist.broadcast(protos))
    if dist.main:
        tok.save(run_dir)
    train = encode(train_raw, tok, max_len=d.max_len, name=f"train ({train_raw.src_path})")
    valid = encode(valid_raw, tok)
    log.info("data: %d training pairs, %d validation pairs; vocab %d/%d", len(train), len(valid),
             tok.src_vocab_size, tok.tgt_vocab_size)
    return tok, train, valid


def _build(cfg: Config, tok: Tokenizer, device, ckpt: Optional[Dict]):
    """Model, optimizer, LR schedule and loop state, restored from ``ckpt`` when resuming."""
    model = build_model(cfg.encoder, cfg.attention, cfg.decoder, tok.src_vocab_size, tok.tgt_vocab_size).to(device)
    o = cfg.optim
    optimizer = build_optimizer(model.parameters(), o.name, o.lr, o.betas, o.momentum, o.weight_decay)
    scheduler = LRSchedule(optimizer, o.scheduler, o.warmup_steps, o.plateau_metric, o.plateau_factor,
                           o.plateau_patience, o.min_lr)
    state = TrainState()
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        state = TrainState(**ckpt["train_state"])
        set_rng_state(ckpt["rng"])
    scheduler.step_update(state.step)
    return model, optimizer, scheduler, state


def fit(cfg: Config, run_dir: str) -> Dict:
    """Train as ``cfg`` says, in ``run_dir``; returns a summary (steps, best BLEU, stop reason)."""
    device = pick_device(cfg.train.device, int(os.environ.get("LOCAL_RANK", "0")))
    dist = Dist.from_env(device)
    run_dir = dist.broadcast(os.path.abspath(run_dir))
    ckpt_dir = os.path.join(run_dir, "checkpoints")
    if dist.main:
        os.makedirs(ckpt_dir, exist_ok=True)
    dist.barrier()
    handlers = _setup_logging(run_dir, dist.main)
    try:
        return _fit(cfg, run_dir, ckpt_dir, device, dist)
    finally:
        for h in handlers:
            logging.getLogger("nmt").removeHandler(h)
            h.close()
        dist.close()


def _fit(cfg: Config, run_dir: str, ckpt_dir: str, device, dist: Dist) -> Dict:
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    cfg_dict = json.loads(json.dumps(asdict(cfg)))

    ckpt = None
    if cfg.resume:
        ckpt = _resume_checkpoint(ckpt_dir)
        check_resume_config(ckpt["config"], cfg_dict, os.path.join(ckpt_dir, "last.pt"))
    elif os.path.exists(os.path.join(ckpt_dir, "last.pt")):
        raise TrainingError(f"{run_dir} already holds a training run (checkpoints/last.pt); pass resume=true to "
                            f"continue it or choose another run_dir")
    if dist.main:
        OmegaConf.save(OmegaConf.create(cfg_dict), os.path.join(run_dir, "config.yaml"))

    torch.manual_seed(cfg.train.seed)
    random.seed(cfg.train.seed)
    tok, train, valid = _prepare_data(cfg, ckpt, run_dir, dist)
    model, optimizer, scheduler, state = _build(cfg, tok, device, ckpt)
    if ckpt is not None:
        log.info("resumed from %s at step %d (epoch %d)", os.path.join(ckpt_dir, "last.pt"), state.step, state.epoch)
    log.info("model: %s parameters", f"{count_parameters(model):,}")
    objective = Objective(model, cfg.train.label_smoothing)
    net = DDP(objective) if dist.enabled else objective
    metrics = MetricsLog(run_dir, cfg.train.tensorboard, resume_step=state.step if ckpt else -1) if dist.main else None
    t = cfg.train
    translator = Translator(model, tok, strategy="beam" if t.valid_beam > 1 else "greedy", beam_size=max(1, t.valid_beam),
                            max_len_a=t.valid_max_len_a, max_len_b=t.valid_max_len_b,
                            batch_size=t.valid_batch_size, precision=t.precision)
    spm_entry = {"src": spm_to_tensor(tok.src_proto), "tgt": None if tok.joint else spm_to_tensor(tok.tgt_proto)}

    def save(best: bool, step_copy: bool) -> None:
        if not dist.main:
            return
        last = os.path.join(ckpt_dir, "last.pt")
        atomic_save({"format": FORMAT, "model": model.state_dict(), "config": cfg_dict, "spm": spm_entry,
                     "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                     "train_state": asdict(state), "rng": rng_state(), "torch_version": str(torch.__version__)}, last)
        if step_copy and t.keep_last > 0:
            atomic_link(last, os.path.join(ckpt_dir, f"step_{state.step}.pt"))
            prune(ckpt_dir, t.keep_last)
        if best:
            atomic_link(last, os.path.join(ckpt_dir, "best.pt"))

    def validate() -> bool:
        """Validate on rank 0, checkpoint; True when early stopping says stop (same answer on all ranks)."""
        stop = False
        if dist.main:
            start = time.time()
            loss = valid_loss(model, valid, device, t.max_tokens, t.precision)
            hyps = [h[0][0] for h in translator.translate(valid.src_text)]
            scores = sacre_score(hyps, [valid.tgt_text])
            bleu = scores["bleu"]["score"]
            improved = bleu > state.best_bleu
            if improved:
                state.best_bleu, state.best_step, state.bad_validations = bleu, state.step, 0
            else:
                state.bad_validations += 1
            scheduler.step_valid(bleu, loss)
            metrics.write("valid", state.step, {"loss": loss, "ppl": math.exp(min(loss, 50)), "bleu": bleu,
                                                "chrf": scores["chrf"]["score"], "seconds": time.time() - start})
            metrics.flush()
            log.info("step %d | valid loss %.3f ppl %.2f | BLEU %.2f chrF %.2f | best BLEU %.2f at step %d%s",
                     state.step, loss, math.exp(min(loss, 50)), bleu, scores["chrf"]["score"], state.best_bleu,
                     state.best_step, "" if improved else f" ({state.bad_validations} without improvement)")
            stop = bool(t.patience) and state.bad_validations >= t.patience
            save(best=improved, step_copy=True)
            if t.plots:
                plots.learning_curves(read_metrics(metrics.path), os.path.join(run_dir, "plots"))
        if dist.enabled:  # a plateau schedule reacts to rank 0's validation: every rank follows it
            scheduler.load_state_dict(dist.broadcast(scheduler.state_dict()))
            scheduler.step_update(state.step)
        return dist.broadcast(stop)

    # ---- the loop
    per_update = dist.world * t.accum_steps
    src_lens, tgt_lens = train.src_lens, train.tgt_lens
    start_time, last_log, tokens_since = time.time(), time.time(), 0
    reason, validated_at = None, -1
    bar = tqdm(total=t.max_steps or None, initial=state.step, disable=True if not dist.main else None, unit="step",
               dynamic_ncols=True, leave=False)
    with _StopSignal() as stop_signal:
        while reason is None:
            if t.max_epochs and state.epoch >= t.max_epochs:
                reason = "max_epochs"
                break
            order = make_batches(src_lens, tgt_lens, t.max_tokens, t.max_sentences, t.seed, state.epoch)
            updates = len(order) // per_update
            if updates == 0:
                raise TrainingError(f"the training data gives {len(order)} batches, fewer than the {per_update} one "
                                    f"update needs (ranks x accum_steps); lower train.max_tokens")
            if state.position == 0:
                log.info("epoch %d: %d batches, padding %.1f%%", state.epoch + 1, len(order),
                         100 * padding_fraction(order, src_lens, tgt_lens))
            while state.position // per_update < updates:
                mine = order[state.position + dist.rank * t.accum_steps: state.position + (dist.rank + 1) * t.accum_steps]
                batches = [collate([train.src[i] for i in idx], [train.tgt[i] for i in idx], idx).to(device)
                           for idx in mine]
                tf = teacher_forcing_ratio(state.step, cfg.teacher_forcing.schedule, cfg.teacher_forcing.start,
                                           cfg.teacher_forcing.end, cfg.teacher_forcing.decay_steps,
                                           cfg.teacher_forcing.k)
                loss_sum, tokens, gnorm, finite = train_step(
                    net, batches, optimizer, tf, cfg.teacher_forcing.feed, t.clip_grad_norm, t.clip_grad_value,
                    t.precision)
                out_of_time = bool(t.max_minutes) and time.time() - start_time > 60 * t.max_minutes
                loss_sum, tokens, stop_votes = dist.all_sum([loss_sum, tokens, float(stop_signal.requested or out_of_time)])
                state.position += per_update
                state.step += 1
                lr = optimizer.param_groups[0]["lr"]
                scheduler.step_update(state.step)
                if finite:
                    state.nonfinite = 0
                else:
                    state.nonfinite += 1
                    log.warning("step %d: non-finite loss or gradient (loss %s, grad norm %s): update skipped",
                                state.step, loss_sum, gnorm)
                    if state.nonfinite >= t.max_nonfinite:
                        raise TrainingError(f"stopping at step {state.step}: {state.nonfinite} non-finite updates "
                                            f"in a row; lower optim.lr or check the data")
                tokens_since += tokens
                loss = loss_sum / max(tokens, 1)
                if dist.main:
                    metrics.write("train", state.step, {"loss": loss, "grad_norm": gnorm, "lr": lr, "tf_ratio": tf,
                                                        "tokens": tokens, "applied": int(finite)})
                    if state.step % t.log_every == 0 or state.step == 1:
                        now = time.time()
                        bar.set_postfix(loss=f"{loss:.3f}", tok_s=f"{tokens_since / max(now - last_log, 1e-9):.0f}",
                                        lr=f"{lr:.2e}", tf=f"{tf:.2f}", refresh=False)
                        last_log, tokens_since = now, 0
                        metrics.flush()
                    bar.update(1)
                if state.step % t.valid_every == 0:
                    validated_at = state.step
                    if validate():
                        reason = "early_stopping"
                if t.max_steps and state.step >= t.max_steps:
                    reason = reason or "max_steps"
                if stop_votes > 0:
                    reason = reason or ("signal" if stop_signal.requested else "max_minutes")
                if reason:
                    break
            else:
                state.epoch, state.position = state.epoch + 1, 0
        bar.close()
        if reason in ("max_steps", "max_epochs") and validated_at != state.step:
            validate()
        elif validated_at != state.step:
            save(best=False, step_copy=False)  # signal or time budget: keep every update
    summary = {"steps": state.step, "epochs": state.epoch, "best_bleu": state.best_bleu, "best_step": state.best_step,
               "stop_reason": reason, "run_dir": run_dir, "minutes": (time.time() - start_time) / 60}
    log.info("training stopped (%s) after %d steps; best valid BLEU %.2f at step %d; checkpoints in %s",
             reason, state.step, state.best_bleu, state.best_step, ckpt_dir)
    if dist.main:
        if t.plots:
            plots.learning_curves(read_metrics(metrics.path), os.path.join(run_dir, "plots"))
        metrics.close()
    return summary
