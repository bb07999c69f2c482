"""Learning-curve PNGs from metrics.jsonl, and attention heatmaps."""
from __future__ import annotations

import os
from typing import Dict, List, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


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


def learning_curves(records: List[Dict], out_dir: str) -> List[str]:
    """Write loss.png, bleu.png, grad_norm.png, teacher_forcing.png; return their paths."""
    os.makedirs(out_dir, exist_ok=True)
    written = []

    def save(fig, name):
        path = os.path.join(out_dir, name)
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)

    steps, loss = _series(records, "train", "loss")
    vsteps, vloss = _series(records, "valid", "loss")
    if steps or vsteps:
        fig, ax = plt.subplots(figsize=(7, 4))
        if steps:
            ax.plot(steps, _smooth(loss, 50), label="train (smoothed)", lw=1)
        if vsteps:
            ax.plot(vsteps, vloss, "o-", label="valid")
        ax.set_xlabel("step"), ax.set_ylabel("cross-entropy"), ax.legend(), ax.grid(alpha=0.3)
        save(fig, "loss.png")
    for kind, key, name, label in (("valid", "bleu", "bleu.png", "valid BLEU"),
                                   ("train", "grad_norm", "grad_norm.png", "gradient norm (pre-clip)"),
                                   ("train", "tf_ratio", "teacher_forcing.png", "teacher-forcing ratio"),
                                   ("train", "lr", "lr.png", "learning rate")):
        xs, ys = _series(records, kind, key)
        if xs:
            fig, ax = plt.subplots(figsize=(7, 4))
            ax.plot(xs, ys, "o-" if kind == "valid" else "-", lw=1)
            ax.set_xlabel("step"), ax.set_ylabel(label), ax.grid(alpha=0.3)
            save(fig, name)
    return written


def attention_heatmap(weights, src_pieces: Sequence[str], tgt_pieces: Sequence[str], path: str) -> None:
    """weights: (tgt_len, src_len) array-like; rows are target pieces, columns source pieces."""
    fig, ax = plt.subplots(figsize=(max(4, 0.4 * len(src_pieces) + 2), max(3, 0.4 * len(tgt_pieces) + 1.5)))
    ax.imshow(weights, cmap="viridis", aspect="auto", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(len(src_pieces)), labels=src_pieces, rotation=90, fontsize=8)
    ax.set_yticks(range(len(tgt_pieces)), labels=tgt_pieces, fontsize=8)
    ax.set_xlabel("source"), ax.set_ylabel("target")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
