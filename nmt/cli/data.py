"""nmt-data: write the embedded toy corpus, or fetch Multi30k (task 1, raw) for the recipes."""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import urllib.request
from typing import Optional

from ..data import toy
from ..data.corpus import CorpusError, iter_lines
from ..outputs import atomic_output
from . import prepare_process, reported, work_signals

MULTI30K_URL = "https://raw.githubusercontent.com/multi30k/dataset/master/data/task1/raw/{name}"
MULTI30K_SPLITS = {"train": 29000, "val": 1014, "test_2016_flickr": 1000}


def _count(path: str) -> int:
    return sum(1 for _ in iter_lines(path))


def _count_gzip(path: str, name: str) -> int:
    """Lines of a gzip file whatever its name ends with (the temporary file being written ends in
    ``.part``); a truncated or non-gzip file is refused, naming ``name``."""
    import gzip
    try:
        with gzip.open(path, "rb") as f:
            return sum(1 for _ in f)
    except (OSError, EOFError) as e:
        raise CorpusError(f"{name}: not a whole gzip file ({e})") from None


def _copy(source_dir: str, name: str, f) -> None:
    """``source_dir/NAME`` (gzip) copied as it is, or ``source_dir/NAME`` without ``.gz`` (plain
    text) compressed on the way."""
    import gzip
    if not os.path.isdir(source_dir):
        raise CorpusError(f"--from {source_dir}: not a directory")
    src = os.path.join(source_dir, name)
    plain = src[:-len(".gz")]
    if os.path.isfile(src):
        with open(src, "rb") as r:
            shutil.copyfileobj(r, f)
    elif os.path.isfile(plain):
        with open(plain, "rb") as r, gzip.GzipFile(fileobj=f, mode="wb", mtime=0) as z:
            shutil.copyfileobj(r, z)
    else:
        raise CorpusError(f"missing file: {src} (or {os.path.basename(plain)}, plain text) in --from {source_dir}")


def fetch_multi30k(out_dir: str, source_dir: Optional[str] = None, langs=("de", "en")) -> dict:
    """Copy (``source_dir``) or download the raw gzipped files, then check their line counts.

    Never overwrites: a file already in ``out_dir`` with the expected line count is kept as it is,
    any other file there stops the command with its name. Each file is written to a temporary name
    and renamed when complete and checked."""
    created = not os.path.exists(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    try:
        return _fetch(out_dir, source_dir, langs)
    except BaseException:
        if created and not os.listdir(out_dir):
            os.rmdir(out_dir)  # a failed first fetch leaves no empty folder behind
        raise


def _fetch(out_dir: str, source_dir: Optional[str], langs) -> dict:
    counts = {}
    for split, expected in MULTI30K_SPLITS.items():
        for lang in langs:
            name = f"{split}.{lang}.gz"
            dest = os.path.join(out_dir, name)
            if os.path.lexists(dest):
                try:
                    n = _count(dest)
                except CorpusError:
                    n = -1
                if n != expected:
                    raise CorpusError(f"{dest} exists and is not the Multi30k file ({expected} lines); not "
                                      f"overwriting it (move it away or choose another --out)")
                counts[name] = n
                continue
            with atomic_output(dest, "wb") as f:
                if source_dir:
                    _copy(source_dir, name, f)
                else:
                    url = MULTI30K_URL.format(name=name)
                    print(f"downloading {url}", file=sys.stderr)
                    with urllib.request.urlopen(url, timeout=60) as r:
                        shutil.copyfileobj(r, f)
                f.flush()
                n = _count_gzip(f.name, name)  # a truncated download fails here, before it gets the name
                if n != expected:
                    raise CorpusError(f"{name}: {n} lines, expected {expected}")
            counts[name] = n
    return counts


def main(argv=None) -> None:
    prepare_process()
    p = argparse.ArgumentParser(prog="nmt-data", description="Prepare corpora for the recipes.")
    sub = p.add_subparsers(dest="what", required=True)
    t = sub.add_parser("toy", help="write the embedded synthetic corpus (deterministic) and its gold word "
                                   "alignments (SPLIT.align)")
    t.add_argument("--out", default="data/toy")
    t.add_argument("--seed", type=int, default=7)
    m = sub.add_parser("multi30k", help="Multi30k task 1 (train, val, test_2016_flickr; de, en)")
    m.add_argument("--out", default="data/multi30k")
    m.add_argument("--from", dest="source", help="copy from this directory instead of downloading")
    args = p.parse_args(argv)
    with reported("nmt-data", "no partial file was left"):
        with work_signals():
            if args.what == "toy":
                counts = toy.generate(args.out, seed=args.seed)
            else:
                counts = fetch_multi30k(args.out, args.source)
    for name, n in counts.items():
        print(f"{name}: {n} lines")
    print(f"written under {args.out}")


if __name__ == "__main__":
    main()
