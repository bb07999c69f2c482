"""Word alignments for guided alignment training, from a well-kept aligner: eflomal (Östling &
Tiedemann 2016) in both directions, symmetrized with grow-diag-final-and (NLTK's).

    pip install eflomal nltk          # into the environment that runs this script; not nmt's dependencies
    python scripts/align_corpus.py --src-lang de --tgt-lang en --out aligned/ \\
        data/multi30k/train data/multi30k/val data/multi30k/test_2016_flickr

Every corpus prefix (PREFIX.SRC_LANG and PREFIX.TGT_LANG, plain or .gz) is aligned together with the
others (the aligner is unsupervised: more text, better links; held-out sets may join in) and written
to OUT/NAME.align, NAME the prefix's last part: Pharaoh ``i-j`` over the whitespace words of the lines
as given, one line per pair. Nothing is written beside the corpora; an existing output is refused.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nmt.data.corpus import read_parallel  # noqa: E402
from nmt.outputs import atomic_output  # noqa: E402


def symmetrized(src: str, tgt: str, forward: str, reverse: str) -> str:
    """grow-diag-final-and of one pair's two directional alignments (Pharaoh lines, both written
    source-target, as eflomal writes them and NLTK reads them), as a Pharaoh line."""
    from nltk.translate.gdfa import grow_diag_final_and
    n_src, n_tgt = len(src.split()), len(tgt.split())
    if not n_src or not n_tgt:
        return ""
    links = grow_diag_final_and(n_src, n_tgt, forward, reverse)
    return " ".join(f"{i}-{j}" for i, j in sorted(links))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("corpora", nargs="+", help="corpus prefixes (PREFIX.SRC_LANG, PREFIX.TGT_LANG)")
    p.add_argument("--src-lang", required=True)
    p.add_argument("--tgt-lang", required=True)
    p.add_argument("--out", required=True, help="directory for NAME.align (created)")
    args = p.parse_args()
    try:
        from eflomal import Aligner
    except ImportError:
        raise SystemExit("eflomal is not installed: pip install eflomal nltk") from None
    outputs = [os.path.join(args.out, os.path.basename(os.path.normpath(c)) + ".align") for c in args.corpora]
    taken = [o for o in outputs if os.path.exists(o)]
    if taken or len(set(outputs)) != len(outputs):
        raise SystemExit(f"{taken[0]} exists; not overwriting it" if taken else "two corpora share a name")
    corpora = [read_parallel(c, args.src_lang, args.tgt_lang) for c in args.corpora]
    src = [line for c in corpora for line in c.src]
    tgt = [line for c in corpora for line in c.tgt]
    os.makedirs(args.out, exist_ok=True)
    start = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        fwd, rev = os.path.join(tmp, "fwd"), os.path.join(tmp, "rev")
        Aligner().align(src, tgt, links_filename_fwd=fwd, links_filename_rev=rev, quiet=True)
        with open(fwd, encoding="utf-8") as f, open(rev, encoding="utf-8") as r:
            links = [symmetrized(s, t, a.strip(), b.strip()) for s, t, a, b in zip(src, tgt, f, r)]
    if len(links) != len(src):
        raise SystemExit(f"eflomal returned {len(links)} alignments for {len(src)} pairs")
    first = 0
    for corpus, out in zip(corpora, outputs):
        with atomic_output(out) as f:
            f.write("".join(line + "\n" for line in links[first:first + len(corpus)]))
        first += len(corpus)
        print(f"{out}: {len(corpus)} pairs", file=sys.stderr)
    print(f"aligned {len(src)} pairs in {time.time() - start:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
