"""Guided alignment trains attention towards given word alignments: on the toy corpus (whose
generator knows which source word each target word translates), the guided model's attention
agrees with the gold alignment far better than the same model trained without guidance."""
import os

import nmt
from nmt.data.alignments import alignment_error_rate, links_of, reference_links
from nmt.data.corpus import read_lines
from nmt.training.loop import fit
from nmt.training.metrics import read_metrics

from ..conftest import compose, toy_overrides

SETTINGS = ["attention=luong_general", "decoder.input_feeding=false", "train.max_steps=150", "train.valid_every=1000",
            "optim.lr=1e-2", "train.max_tokens=1500", "data.test=null", "data.src_prefix='<2tgt>'"]


def aer_of(run_dir, toy_dir) -> float:
    model = nmt.load(os.path.join(run_dir, "checkpoints", "last.pt"))  # the API's forced alignment
    hyps = model.align(read_lines(f"{toy_dir}/test.src"), read_lines(f"{toy_dir}/test.tgt"))
    return alignment_error_rate([links_of(h) for h in hyps], reference_links(f"{toy_dir}/test.align"))


def test_guided_alignment_lowers_the_alignment_error_against_gold(toy_dir, tmp_path):
    free, guided = str(tmp_path / "free"), str(tmp_path / "guided")
    fit(compose(toy_overrides(toy_dir, SETTINGS)), free)
    fit(compose(toy_overrides(toy_dir, [*SETTINGS, f"data.alignments={toy_dir}/train.align",
                                        "train.guided_alignment_weight=1.0"])), guided)
    records = [r for r in read_metrics(os.path.join(guided, "metrics.jsonl")) if r["kind"] == "train"]
    first, last = (sum(r["align"] for r in part) / len(part) for part in (records[:10], records[-10:]))
    assert last < 0.75 * first  # the attention learned the alignments
    assert not any("align" in r for r in read_metrics(os.path.join(free, "metrics.jsonl")))
    aer_free, aer_guided = aer_of(free, toy_dir), aer_of(guided, toy_dir)
    assert aer_guided < 0.5 * aer_free, (aer_guided, aer_free)
