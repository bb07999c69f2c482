"""``nmt-train --help``: every group and key with its default and help line."""
from __future__ import annotations

from .compose import iter_fields


def help_text(groups: dict) -> str:
    """``nmt-train --help``: usage, config groups and their options, every key with its default."""
    lines = [
        "nmt-train: train a recurrent encoder-decoder translation model.",
        "",
        "Usage: nmt-train [GROUP=OPTION ...] [KEY=VALUE ...]   (add -m to sweep: encoder=bigru,bilstm)",
        "       torchrun --nproc_per_node=N -m nmt.cli.train ...   (several processes)",
        "       nmt-train --cfg job [overrides]   (print the resolved config without training)",
        "",
        "Config groups:",
    ]
    for name, options in groups.items():
        lines.append(f"  {name:<16} {' | '.join(options)}")
    lines += ["", "Keys (schema default; experiment files set their own) description:"]
    for key, default, text in iter_fields():
        value = "null" if default is None else str(default).lower() if isinstance(default, bool) else str(default)
        lines.append(f"  {key:<32} ({value}) {text}")
    lines += ["", "A run directory gets checkpoints/{best,last,step_N}.pt, train.log, metrics.jsonl, plots/,",
              "tensorboard/ and test/{hyp.txt,scores.json}."]
    return "\n".join(lines)
