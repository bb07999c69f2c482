"""Decoding options end to end on a toy model that has learned: target prefixes (nmt-translate
--prefix-file and the Python API), n-gram blocking, nucleus sampling, alignments in tsv."""
import json

from ..conftest import bin_path, demo_run_dir
from .helpers import inputs_untouched, run


def test_prefix_file_forces_the_start_of_each_translation(toy_run, tmp_path):
    src_lines = (toy_run / "data" / "toy" / "test.src").read_text().splitlines()[:6]
    free = run(bin_path("nmt-translate"), demo_run_dir(toy_run), "-i", toy_run / "data" / "toy" / "test.src").stdout
    free = free.splitlines()[:6]
    (tmp_path / "in.txt").write_text("\n".join(src_lines) + "\n")
    prefixes = ["una", "", "lo vupu", "", "li", "dei"]
    (tmp_path / "prefix.txt").write_text("\n".join(prefixes) + "\n")
    args = [bin_path("nmt-translate"), demo_run_dir(toy_run), "-i", tmp_path / "in.txt", "--prefix-file",
            tmp_path / "prefix.txt", "--output-format", "jsonl"]
    with inputs_untouched(args):
        out = [json.loads(line) for line in run(*args).stdout.splitlines()]
    assert len(out) == 6
    for p, f, o in zip(prefixes, free, out):
        assert o["translation"].startswith(p)
        if not p:
            assert o["translation"] == f  # no prefix: the free translation
    import nmt
    api = nmt.load(str(demo_run_dir(toy_run))).translate(src_lines, prefix=prefixes)
    assert api == [o["translation"] for o in out]
    (tmp_path / "short.txt").write_text("una\n")
    proc = run(bin_path("nmt-translate"), demo_run_dir(toy_run), "-i", tmp_path / "in.txt", "--prefix-file",
               tmp_path / "short.txt", check=False)
    assert proc.returncode != 0 and "short.txt has 1 lines, fewer than the input" in proc.stderr


def test_ngram_blocking_nucleus_and_alignment_options(toy_run, tmp_path):
    src = toy_run / "data" / "toy" / "test.src"
    blocked = run(bin_path("nmt-translate"), demo_run_dir(toy_run), "-i", src, "--no-repeat-ngram", "2").stdout
    assert len(blocked.splitlines()) == 500
    import nmt
    from nmt.search import decoding_options
    from nmt.translator import Translator
    model = nmt.load(str(demo_run_dir(toy_run)))
    lines = src.read_text().splitlines()[:100]
    translator = Translator(model.model, model.tokenizer, decoding_options(5, no_repeat_ngram=2))
    hyps = translator.translate_ids(translator.encode_lines(lines))
    assert blocked.splitlines()[:100] == model.tokenizer.decode_tgt([h[0].tokens for h in hyps])
    for h in hyps:
        grams = list(zip(h[0].tokens, h[0].tokens[1:]))
        assert len(grams) == len(set(grams))
    sampled = run(bin_path("nmt-translate"), demo_run_dir(toy_run), "-i", src, "--sample", "--top-p", "0.000001")
    greedy = run(bin_path("nmt-translate"), demo_run_dir(toy_run), "-i", src, "--greedy")
    assert sampled.stdout == greedy.stdout  # a nucleus of one token is greedy
    bad = run(bin_path("nmt-translate"), demo_run_dir(toy_run), "-i", src, "--sample", "--top-p", "0", check=False)
    assert bad.returncode != 0 and "--top-p" in bad.stderr
    tsv = run(bin_path("nmt-translate"), demo_run_dir(toy_run), "-i", src, "--output-format", "tsv", "--alignment").stdout
    first = tsv.splitlines()[0].split("\t")
    assert len(first) == 4 and all("-" in link for link in first[3].split())
    text = run(bin_path("nmt-translate"), demo_run_dir(toy_run), "-i", src, "--alignment", check=False)
    assert text.returncode != 0 and "--alignment needs" in text.stderr


def test_constraints_file_puts_every_phrase_in_its_translation(toy_run, tmp_path):
    """Lexical constraints: phrases of the reference (one or two per line, one line without) appear in
    each translation; jsonl says so per line; text, jsonl and the Python API agree; a short file and
    greedy decoding are refused."""
    data = toy_run / "data" / "toy"
    src_lines = (data / "test.src").read_text().splitlines()[:8]
    refs = (data / "test.tgt").read_text().splitlines()[:8]
    free = run(bin_path("nmt-translate"), demo_run_dir(toy_run), "-i", data / "test.src").stdout.splitlines()[:8]
    phrases = []
    for k, (ref, f) in enumerate(zip(refs, free)):
        words = ref.rstrip(".").split()
        missing = [w for w in words if w not in f.split()] or words[-1:]
        phrases.append([] if k == 3 else [missing[0]] + ([" ".join(words[:2])] if k % 2 else []))
    (tmp_path / "in.txt").write_text("\n".join(src_lines) + "\n")
    (tmp_path / "terms.txt").write_text("\n".join("\t".join(p) for p in phrases) + "\n")
    args = [bin_path("nmt-translate"), demo_run_dir(toy_run), "-i", tmp_path / "in.txt", "--constraints",
            tmp_path / "terms.txt", "--output-format", "jsonl"]
    with inputs_untouched(args):
        out = [json.loads(line) for line in run(*args).stdout.splitlines()]
    for p, f, o in zip(phrases, free, out):
        for phrase in p:
            assert f" {phrase} " in f" {o['translation'].rstrip('.')} ", (phrase, o)
        assert o.get("constraints_met") is (True if p else None)
        if not p:
            assert o["translation"] == f
    text = run(*args[:-2]).stdout.splitlines()
    assert text == [o["translation"] for o in out]
    import nmt
    assert nmt.load(str(demo_run_dir(toy_run))).translate(src_lines, constraints=phrases) == text
    (tmp_path / "short.txt").write_text("una\n")
    proc = run(*args[:4], "--constraints", tmp_path / "short.txt", check=False)
    assert proc.returncode != 0 and "--constraints" in proc.stderr and "fewer than the input" in proc.stderr
    proc = run(*args, "--greedy", check=False)
    assert proc.returncode != 0 and "need beam search" in proc.stderr
