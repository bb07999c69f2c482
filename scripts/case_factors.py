"""A case factor for source factors: lowercase the source side of corpora and write each word's case
as a factor stream, so the model shares pieces between "Haus" and "haus" and still sees the case.

    python scripts/case_factors.py --src-lang de --tgt-lang en --out cased/ \\
        data/multi30k/train data/multi30k/val data/multi30k/test_2016_flickr
    nmt-train experiment=multi30k_de_en data.train=cased/train data.valid=cased/val \\
        data.test=cased/test_2016_flickr "data.src_factors=[case]"

For every corpus prefix (PREFIX.SRC_LANG and PREFIX.TGT_LANG, plain or .gz) it writes OUT/NAME.SRC_LANG
(the source lowercased), OUT/NAME.TGT_LANG (the target as it is) and OUT/NAME.SRC_LANG.case (per source
word: ``l`` no capital, ``C`` a capital first and no other, ``U`` all capitals (two letters or more),
``M`` any other mix), NAME the prefix's last part. A file to translate goes through ``--text FILE``:
OUT/NAME (lowercased) and OUT/NAME.case. Nothing is written beside the inputs; existing outputs are refused.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import List, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nmt.data.corpus import iter_lines, resolve  # noqa: E402
from nmt.outputs import atomic_output  # noqa: E402


def word_case(word: str) -> str:
    """``l``, ``C``, ``U`` or ``M`` (see the module)."""
    letters = [c for c in word if c.isalpha()]
    capitals = [c.isupper() for c in letters]
    if not any(capitals):
        return "l"
    if all(capitals) and len(letters) > 1:
        return "U"
    return "C" if capitals[0] and not any(capitals[1:]) else "M"


def lowercased(line: str) -> Tuple[str, str]:
    """(the line lowercased, its case factor line): one value per whitespace word."""
    words = line.split()
    return " ".join(w.lower() for w in words), " ".join(word_case(w) for w in words)


def write(path: str, lines: List[str]) -> None:
    with atomic_output(path) as f:
        f.writelines(line + "\n" for line in lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("corpora", nargs="*", help="corpus prefixes (PREFIX.SRC_LANG, PREFIX.TGT_LANG)")
    p.add_argument("--src-lang")
    p.add_argument("--tgt-lang")
    p.add_argument("--text", nargs="+", default=[], metavar="FILE", help="source files to translate")
    p.add_argument("--out", required=True, help="directory for the outputs (created)")
    args = p.parse_args()
    if args.corpora and not (args.src_lang and args.tgt_lang):
        p.error("corpora need --src-lang and --tgt-lang")
    jobs = []  # (source file, output, case output, target file or None, target output)
    for prefix in args.corpora:
        name = os.path.join(args.out, os.path.basename(os.path.normpath(prefix)))
        jobs.append((resolve(prefix, args.src_lang), f"{name}.{args.src_lang}", f"{name}.{args.src_lang}.case",
                     resolve(prefix, args.tgt_lang), f"{name}.{args.tgt_lang}"))
    for path in args.text:
        name = os.path.join(args.out, os.path.basename(path).removesuffix(".gz"))
        jobs.append((path, name, f"{name}.case", None, None))
    outputs = [o for job in jobs for o in (job[1], job[2], job[4]) if o]
    taken = [o for o in outputs if os.path.exists(o)]
    if taken or len(set(outputs)) != len(outputs):
        raise SystemExit(f"{taken[0]} exists; not overwriting it" if taken else "two inputs share a name")
    os.makedirs(args.out, exist_ok=True)
    for source, out, case, target, target_out in jobs:
        pairs = [lowercased(line) for line in iter_lines(source)]
        write(out, [text for text, _ in pairs])
        write(case, [c for _, c in pairs])
        if target is not None:
            write(target_out, list(iter_lines(target)))
        print(f"{source}: {len(pairs)} lines -> {out}, {case}", file=sys.stderr)


if __name__ == "__main__":
    main()
