"""PNG plots: learning curves from metrics.jsonl, attention heatmaps, gradient flow through time.

matplotlib is imported on first use only (``import nmt`` never loads it), with the Agg backend.
"""
from __future__ import annotations

import os
from typing import Dict, List, Optional, Sequence


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _series(records: List[Dict], kind: str, key: str):
    pts = [(r["step"], r[key]) for r in records if r.get("kind") == kind and r.get(key) is not None]
    return [p[0] for p in pts], [p[1] for p in pts]


def _smooth(values: Sequence[float], window: int) -> List[float]:
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def _save(fig, path: str, written: List[str]) -> None:
    """Written whole or not at all (``atomic_output``)."""
    from .outputs import atomic_output
    fig.tight_layout()
    try:
        with atomic_output(path, "wb") as f:
            fig.savefig(f, dpi=100, format="png")
    finally:
        _plt().close(fig)
    written.append(path)


def learning_curves(records: List[Dict], out_dir: str, clip_norm: float = 0.0) -> List[str]:
    """loss.png (train cross-entropy without label smoothing against valid), bleu.png,
    grad_norm.png (with the clipping threshold and the share of clipped updates), lr.png and
    teacher_forcing.png (only when they change); returns the paths written."""
    plt = _plt()
    os.makedirs(out_dir, exist_ok=True)
    written: List[str] = []
    steps, nll = _series(records, "train", "nll")
    if not steps:  # runs logged before train/nll existed
        steps, nll = _series(records, "train", "loss")
    vsteps, vloss = _series(records, "valid", "loss")
    if steps or vsteps:
        fig, ax = plt.subplots(figsize=(7, 4))
        if steps:
            ax.plot(steps, _smooth(nll, 50), label="train (smoothed over 50 updates)", lw=1)
        if vsteps:
            ax.plot(vsteps, vloss, "o-", label="valid")
        ax.set_title("cross-entropy per target token (no label smoothing)")
        ax.set_xlabel("update"), ax.set_ylabel("nats"), ax.legend(), ax.grid(alpha=0.3)
        _save(fig, os.path.join(out_dir, "loss.png"), written)
    xs, ys = _series(records, "valid", "bleu")
    if xs:
        fig, ax = plt.subplots(figsize=(7, 4))
        ax.plot(xs, ys, "o-", lw=1)
        ax.set_title("validation BLEU"), ax.set_xlabel("update"), ax.set_ylabel("BLEU"), ax.grid(alpha=0.3)
        _save(fig, os.path.join(out_dir, "bleu.png"), written)
    xs, ys = _series(records, "train", "grad_norm")
    if xs:
        fig, ax = plt.subplots(figsize=(7, 4))
        ax.plot(xs, ys, lw=0.8, label="pre-clip norm")
        title = "gradient norm"
        if clip_norm > 0:
            clipped = sum(1 for y in ys if y > clip_norm)
            ax.axhline(clip_norm, color="red", ls="--", lw=1, label=f"clip threshold {clip_norm:g}")
            title += f": {100 * clipped / len(ys):.1f}% of {len(ys)} updates clipped"
        ax.set_yscale("log"), ax.set_title(title), ax.set_xlabel("update"), ax.legend(), ax.grid(alpha=0.3)
        _save(fig, os.path.join(out_dir, "grad_norm.png"), written)
    for key, name, label in (("lr", "lr.png", "learning rate"), ("tf_ratio", "teacher_forcing.png",
                                                                 "teacher-forcing ratio")):
        xs, ys = _series(records, "train", key)
        if xs and max(ys) != min(ys):  # a constant is said in the log, not drawn
            fig, ax = plt.subplots(figsize=(7, 4))
            ax.plot(xs, ys, lw=1)
            ax.set_title(label), ax.set_xlabel("update"), ax.set_ylabel(label), ax.grid(alpha=0.3)
            _save(fig, os.path.join(out_dir, name), written)
    flows = [r for r in records if r.get("kind") == "grad_flow"]
    if flows:
        grad_flow(flows, os.path.join(out_dir, "grad_flow.png"))
        written.append(os.path.join(out_dir, "grad_flow.png"))
    return written


def grad_flow(records: List[Dict], path: str, labels: Optional[List[str]] = None) -> None:
    """Gradient norm against distance (log scale), encoder and decoder side by side, one curve per
    record (``{"step", "encoder": [...], "decoder": [...]}``, index = distance)."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    cmap = plt.get_cmap("viridis")
    for i, r in enumerate(records):
        label = labels[i] if labels else f"update {r['step']}"
        color = cmap(i / max(1, len(records) - 1))
        for ax, side in zip(axes, ("encoder", "decoder")):
            values = r.get(side) or []
            pts = [(d, v) for d, v in enumerate(values) if v is not None and v > 0]
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], lw=1.2, color=color, label=label)
    axes[0].set_title("encoder states: distance from where the final state is read")
    axes[1].set_title("decoder states: distance from the end of the target")
    for ax in axes:
        ax.set_yscale("log"), ax.set_xlabel("distance (positions)"), ax.grid(alpha=0.3)
    axes[0].set_ylabel("mean ||dLoss / dh||")
    axes[1].legend(fontsize=7)
    _save(fig, path, [])


def attention_heatmap(weights, src_pieces: Sequence[str], tgt_pieces: Sequence[str], path: str,
                      title: str = "") -> None:
    """weights: (tgt_len, src_len) array-like (a CPU tensor too); rows are target pieces, columns source pieces."""
    import numpy as np
    weights = np.asarray(weights)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(4.5, 0.4 * len(src_pieces) + 3), max(3, 0.4 * len(tgt_pieces) + 1.8)))
    image = ax.imshow(weights, cmap="viridis", aspect="auto", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, label="attention weight")
    ax.set_xticks(range(len(src_pieces)), labels=src_pieces, rotation=90, fontsize=8)
    ax.set_yticks(range(len(tgt_pieces)), labels=tgt_pieces, fontsize=8)
    ax.set_xlabel("source"), ax.set_ylabel("target")
    if title:
        ax.set_title(title, fontsize=9)
    _save(fig, path, [])
