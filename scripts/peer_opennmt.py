#!/usr/bin/env python
"""Run OpenNMT-py side by side with nmt's recipe on Multi30k, as a measuring instrument; appends a
record to results/benchmarks.jsonl that ``scripts/benchmark.py --table`` lists beside nmt's runs.

  python scripts/peer_opennmt.py --onmt-bin /tmp/peer/venv/bin --budget-minutes 20

OpenNMT-py is never a dependency of nmt: it lives in a virtual environment of its own (``--onmt-bin``
names that environment's ``bin``; see docs/benchmarks.md for the set-up), and this script only runs
its programs. The settings are those of nmt's ``multi30k_de_en`` recipe where OpenNMT-py has them
(``peer_settings``: read from the experiment's config, with its overrides, so the recipe is
the one owner of every value). The clock starts before the sentencepiece
model is trained and the whole budget includes the peer's vocabulary, start-up and validation, as
``scripts/benchmark.py --budget-minutes`` counts nmt's whole process. At the deadline the training
gets SIGTERM and its last checkpoint (saved every ``--save-every`` updates; the averaged weights,
as ``average_decay`` saves them) translates val and test_2016_flickr with beam 5 and greedy;
``--curve`` also decodes val greedily at every 500th update for the per-update curve.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nmt.data.corpus import iter_lines  # noqa: E402
from nmt.data.spm import Tokenizer  # noqa: E402
from nmt.eval.bleu import score  # noqa: E402

# What OpenNMT-py sets that nmt has no key for (its defaults, or how this script runs it)
PEER_ONLY = {"encoder_type": "brnn", "decoder_type": "rnn", "global_attention": "general", "bridge": True,
             "normalization": "tokens", "batch_type": "tokens", "valid_batch_size": 64, "decay_method": "none",
             "start_decay_steps": 10 ** 9, "num_workers": 0, "report_every": 50,
             "bucket_size": 32768}  # the default bucket (262,144) holds 9 passes of Multi30k and fills slowly


def peer_settings(cfg) -> dict:
    """An nmt config's settings in OpenNMT-py's names, where OpenNMT-py has them: the recipe is their
    one owner. Refused where the config has something OpenNMT-py cannot run as nmt does."""
    e, a, d, o, t = cfg.encoder, cfg.attention, cfg.decoder, cfg.optim, cfg.train
    checks = {"encoder.cell == decoder.cell": str(e.cell) == str(d.cell), "encoder.bidirectional": e.bidirectional,
              "attention=luong_general": str(a.kind) == "luong_general", "decoder.input_feeding=false":
              not d.input_feeding, "decoder.tie_embeddings=false": not d.tie_embeddings,
              "encoder.embed_size == decoder.embed_size": e.embed_size == d.embed_size,
              "decoder.attentional_size == decoder.hidden_size": d.attentional_size == d.hidden_size,
              "optim.scheduler=constant or cosine": str(o.scheduler) in ("constant", "cosine")}
    missing = [k for k, ok in checks.items() if not ok]
    if missing:
        raise SystemExit(f"OpenNMT-py cannot run this config as nmt does: it needs {', '.join(missing)}")
    return {**PEER_ONLY, "rnn_type": str(e.cell).upper(), "word_vec_size": e.embed_size,
            "enc_hid_size": 2 * e.hidden_size, "dec_hid_size": d.hidden_size, "enc_layers": e.num_layers,
            "dec_layers": d.num_layers, "input_feed": 0, "dropout": [d.dropout], "param_init": d.init_scale,
            "optim": str(o.name), "adam_beta1": o.betas[0], "adam_beta2": o.betas[1], "learning_rate": o.lr,
            "max_grad_norm": t.clip_grad_norm, "label_smoothing": t.label_smoothing, "batch_size": t.max_tokens,
            "average_decay": round(1 - t.ema_decay, 6) if t.ema_decay else 0.0, "seed": t.seed}


SPLITS = {"train": "train", "val": "val", "test": "test_2016_flickr"}


def write_pieces(tok: Tokenizer, data: str, split: str, out: Path, keep_long: bool, max_len: int) -> tuple:
    """Both sides of a split as space-separated pieces (training pairs over nmt's ``data.max_len``
    dropped, as nmt drops them); the raw target lines (the references)."""
    src = list(iter_lines(f"{data}/{split}.de.gz"))
    tgt = list(iter_lines(f"{data}/{split}.en.gz"))
    s_ids, t_ids = tok.encode_src(src), tok.encode_tgt(tgt)
    kept = [(s, t) for s, t in zip(s_ids, t_ids) if keep_long or (0 < len(s) <= max_len and 0 < len(t) <= max_len)]
    for side, k in (("src", 0), ("tgt", 1)):
        with open(out / f"{split}.{side}", "w", encoding="utf-8") as f:
            f.writelines(" ".join(tok.src_id_pieces(p[k]) if side == "src" else tok.tgt_pieces(p[k])) + "\n"
                         for p in kept)
    return len(kept), tgt


def yaml_config(settings: dict, work: Path, steps: int, save_every: int) -> str:
    cfg = {"save_data": str(work / "onmt"), "src_vocab": str(work / "vocab"), "share_vocab": True,
           "data": {"corpus_1": {"path_src": str(work / "train.src"), "path_tgt": str(work / "train.tgt")},
                    "valid": {"path_src": str(work / "val.src"), "path_tgt": str(work / "val.tgt")}},
           "save_model": str(work / "model"), "train_steps": steps, "valid_steps": 500,
           "save_checkpoint_steps": save_every, "keep_checkpoint": -1, "world_size": 1, "gpu_ranks": [],
           "log_file": str(work / "train.log"), **settings}
    return json.dumps(cfg, indent=1)  # JSON is YAML


def translate(bin_dir: str, model: str, src: Path, out: Path, beam: int, env: dict) -> float:
    start = time.time()
    subprocess.run([f"{bin_dir}/onmt_translate", "-model", model, "-src", str(src), "-output", str(out),
                    "-beam_size", str(beam), "-batch_size", "64", "-batch_type", "sents", "-max_length", "160",
                    "-gpu", "-1"], check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.time() - start


def detok(tok: Tokenizer, path: Path) -> list:
    return [tok.tgt.decode(line.split()) for line in path.read_text(encoding="utf-8").splitlines()]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--onmt-bin", required=True, help="bin/ of the virtual environment OpenNMT-py is installed in")
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "multi30k"))
    p.add_argument("--budget-minutes", type=float, default=20.0)
    p.add_argument("--save-every", type=int, default=100)
    p.add_argument("--work", default=str(ROOT / "runs" / "peer"))
    p.add_argument("--label", default="OpenNMT-py 3.5.1 with the recipe's settings")
    p.add_argument("--experiment", default="multi30k_de_en", help="the nmt experiment whose settings the peer gets")
    p.add_argument("overrides", nargs="*", help="Hydra overrides of that experiment (e.g. optim.lr=1e-3)")
    p.add_argument("--curve", action="store_true", help="also decode val greedily at every 500th update")
    p.add_argument("--results", default=str(ROOT / "results" / "benchmarks.jsonl"))
    args = p.parse_args()
    sys.path.insert(0, str(ROOT / "scripts"))
    import torch
    from benchmark import cpu_flags, peak_gemm_gflops
    torch.set_num_threads(2)
    peak = peak_gemm_gflops()
    from benchmark import compose
    cfg, _ = compose(args.experiment, args.data, args.overrides)
    settings = peer_settings(cfg)
    sp = cfg.data.spm
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1", "OMP_NUM_THREADS": "2"}
    start = time.time()  # the budget: everything from here to the stop of training
    train_src = list(iter_lines(f"{args.data}/train.de.gz"))
    train_tgt = list(iter_lines(f"{args.data}/train.en.gz"))
    tok = Tokenizer.train(train_src, train_tgt, sp.vocab_size, str(sp.model_type), joint=sp.joint)
    tok.save(str(work / "spm"))
    pairs, _ = write_pieces(tok, args.data, "train", work, False, cfg.data.max_len)
    write_pieces(tok, args.data, "val", work, True, cfg.data.max_len)
    config = work / "config.yaml"
    config.write_text(yaml_config(settings, work, 10 ** 6, args.save_every))
    subprocess.run([f"{args.onmt_bin}/onmt_build_vocab", "-config", str(config), "-n_sample", "-1"], check=True,
                   env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = start + 60 * args.budget_minutes
    with open(work / "train.stderr", "w") as log:
        proc = subprocess.Popen([f"{args.onmt_bin}/onmt_train", "-config", str(config)], env=env, stdout=log,
                                stderr=subprocess.STDOUT)
        while proc.poll() is None and time.time() < deadline:
            time.sleep(1)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=120)
    minutes = (time.time() - start) / 60
    ckpts = sorted(glob.glob(str(work / "model_step_*.pt")), key=lambda c: int(re.findall(r"(\d+)\.pt$", c)[0]))
    if not ckpts:
        raise SystemExit(f"no checkpoint in {work}: see {work / 'train.stderr'}")
    last = ckpts[-1]
    steps = int(re.findall(r"(\d+)\.pt$", last)[0])
    refs = {}
    for split in ("val", "test"):
        write_pieces(tok, args.data, SPLITS[split], work, True, cfg.data.max_len)
        refs[split] = list(iter_lines(f"{args.data}/{SPLITS[split]}.en.gz"))
    decode, valid = {}, {}
    for beam, name in ((5, "beam5"), (1, "greedy")):
        seconds = translate(args.onmt_bin, last, work / "test_2016_flickr.src", work / f"test.{name}.hyp", beam, env)
        s = score(detok(tok, work / f"test.{name}.hyp"), [refs["test"]])
        decode[name] = {"bleu": round(s["bleu"]["score"], 4), "chrf": round(s["chrf"]["score"], 4),
                        "bleu_signature": s["bleu"]["signature"], "decode_seconds": round(seconds, 2)}
        translate(args.onmt_bin, last, work / "val.src", work / f"val.{name}.hyp", beam, env)
        valid[name] = round(score(detok(tok, work / f"val.{name}.hyp"), [refs["val"]])["bleu"]["score"], 4)
    curve = {}
    if args.curve:
        for c in ckpts:
            step = int(re.findall(r"(\d+)\.pt$", c)[0])
            if step % 500 == 0:
                translate(args.onmt_bin, c, work / "val.src", work / "val.curve.hyp", 1, env)
                curve[step] = round(score(detok(tok, work / "val.curve.hyp"), [refs["val"]])["bleu"]["score"], 2)
    import importlib.metadata as md
    try:
        version = md.version("OpenNMT-py")  # in this environment, if installed here too
    except md.PackageNotFoundError:
        version = subprocess.run([f"{args.onmt_bin}/python", "-c", "import onmt; print(onmt.__version__)"],
                                 capture_output=True, text=True).stdout.strip()
    record = {"experiment": f"OpenNMT-py {version}", "overrides": [f"peer=OpenNMT-py {version}",
                                                                   f"experiment={args.experiment}", *args.overrides],
              "peer": {"toolkit": "OpenNMT-py", "version": version, "settings": settings, "training_pairs": pairs},
              "time": time.strftime("%Y-%m-%d %H:%M:%S"), "torch": torch.__version__, "threads": 2,
              "cpu": cpu_flags(), "peak_gemm_gflops": round(peak, 1),
              "budget": {"minutes": round(minutes, 2), "updates": steps, "epochs": 0,
                         "best_valid_bleu": valid["greedy"], "best_step": steps, "scored": os.path.basename(last),
                         "valid_beam5": valid["beam5"],
                         "valid_curve_greedy": curve, "run_dir": str(work)},
              "decode_split": "test_2016_flickr", "checkpoint": last, "label": args.label, "decode": decode}
    print(json.dumps(record))
    with open(args.results, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
