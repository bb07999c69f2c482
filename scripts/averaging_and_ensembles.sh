#!/usr/bin/env bash
# Single best checkpoint vs. the average of a run's last N checkpoints vs. an ensemble of two runs,
# on Multi30k val and test_2016_flickr (beam 5), as a Markdown table.
#
#   nmt-train experiment=multi30k_de_en run_dir=runs/s1 train.seed=1 train.max_steps=2000 train.valid_every=250 train.keep_last=4
#   nmt-train experiment=multi30k_de_en run_dir=runs/s2 train.seed=2 train.max_steps=2000 train.valid_every=250 train.keep_last=4
#   scripts/averaging_and_ensembles.sh runs/s1 runs/s2 [DATA_DIR] [N]
set -euo pipefail
A=$1 B=$2 DATA=${3:-data/multi30k} N=${4:-4}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
nmt-average "$A" --last "$N" -o "$OUT/avg_a.pt" 2>/dev/null
nmt-average "$B" --last "$N" -o "$OUT/avg_b.pt" 2>/dev/null
bleu() {  # bleu SPLIT CKPT... -> BLEU of beam-5 output
  local split=$1; shift
  nmt-translate "$@" --beam 5 --quiet -i "$DATA/$split.de.gz" -o "$OUT/hyp" 2>/dev/null
  nmt-evaluate "$OUT/hyp" "$DATA/$split.en.gz" --json | python3 -c 'import json,sys; print("%.2f" % json.load(sys.stdin)["bleu"]["score"])'
}
echo "| beam 5, BLEU | val | test_2016_flickr |"
echo "|---|---|---|"
row() { local name=$1; shift; echo "| $name | $(bleu val "$@") | $(bleu test_2016_flickr "$@") |"; }
row "run A, best.pt" "$A"
row "run B, best.pt" "$B"
row "run A, average of last $N" "$OUT/avg_a.pt"
row "run B, average of last $N" "$OUT/avg_b.pt"
row "ensemble A + B (best.pt)" "$A" "$B"
row "ensemble of the two averages" "$OUT/avg_a.pt" "$OUT/avg_b.pt"
