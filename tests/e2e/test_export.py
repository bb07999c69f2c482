"""An exported model end to end: nmt-export, then nmt-translate, nmt.load and nmt-serve on the bundle
in processes where importing torch (or Hydra) fails, giving what the checkpoint gives."""
import json
import re
import sys

import pytest

from ..conftest import bin_path, demo_run_dir
from .helpers import inputs_untouched, run

pytest.importorskip("onnxruntime", reason="exported models run on ONNX Runtime: pip install -e '.[onnx]'")

# Run a console script with torch, Hydra and OmegaConf unimportable: argv[1] names the program.
WITHOUT_TORCH = """
import importlib.abc, sys
class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "hydra", "omegaconf"):
            raise ImportError(f"{name} is not installed here")
sys.meta_path.insert(0, Refuse())
program = sys.argv.pop(1)
sys.argv[0] = "nmt-" + program
if program == "load":  # the Python API: nmt.load(BUNDLE).translate(lines)
    import json, nmt
    bundle, *lines = sys.argv[1:]
    print(json.dumps(nmt.load(bundle).translate(lines, beam=5)))
else:
    getattr(__import__("nmt.cli.entry", fromlist=["x"]), program)()
"""


SCORE = re.compile(r"-?\d+\.\d+")


def assert_same_output(ours: str, theirs: str) -> None:
    """The same lines and fields, scores (printed with 4 decimals) within one unit of the last printed
    digit: the two engines' logits differ by ~1e-5, which can round a score to the next digit."""
    assert len(ours.splitlines()) == len(theirs.splitlines())
    for ours_line, theirs_line in zip(ours.splitlines(), theirs.splitlines()):
        for a, b in zip(ours_line.split("\t"), theirs_line.split("\t"), strict=True):
            if SCORE.fullmatch(a) and SCORE.fullmatch(b):
                assert abs(float(a) - float(b)) < 1.5e-4, (ours_line, theirs_line)
            else:
                assert a == b, (ours_line, theirs_line)


def without_torch(program: str, *args) -> list:
    return [sys.executable, "-c", WITHOUT_TORCH, program, *[str(a) for a in args]]


@pytest.fixture(scope="module")
def bundle(toy_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "toy"
    args = [bin_path("nmt-export"), demo_run_dir(toy_run), "-o", out]
    with inputs_untouched(args):
        run(*args)
    return out


def test_a_bundle_translates_the_test_set_as_its_checkpoint_does_without_torch(bundle, toy_run, tmp_path):
    src = toy_run / "data" / "toy" / "test.src"
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["format_version"] == 1 and manifest["state"] == ["h"] and manifest["spm"] == ["spm.model"]
    assert len(manifest["checkpoint_sha256"]) == 64 and manifest["parameters"] > 0
    theirs = run(bin_path("nmt-translate"), demo_run_dir(toy_run), "-i", src, "--output-format", "jsonl").stdout
    ours = run(*without_torch("translate", bundle, "-i", src, "--output-format", "jsonl")).stdout
    ours, theirs = [json.loads(x) for x in ours.splitlines()], [json.loads(x) for x in theirs.splitlines()]
    assert len(ours) == 500
    assert [o["translation"] for o in ours] == [t["translation"] for t in theirs]  # beam 5: identical
    assert max(abs(o["score"] - t["score"]) for o, t in zip(ours, theirs)) < 1e-3
    lines = src.read_text().splitlines()[:4]
    api = json.loads(run(*without_torch("load", bundle, *lines)).stdout)
    assert api == [t["translation"] for t in theirs[:4]]
    (tmp_path / "prefix.txt").write_text("una\n\nlo\n\n")
    (tmp_path / "terms.txt").write_text("dei\tlo vupu\n\nuna\n\n")
    (tmp_path / "in.txt").write_text("\n".join(lines) + "\n")
    for flags in (["--greedy"], ["--prefix-file", tmp_path / "prefix.txt", "--no-repeat-ngram", "2", "--nbest", "2",
                                 "--output-format", "tsv", "--alignment"],
                  ["--constraints", tmp_path / "terms.txt", "--nbest", "2", "--output-format", "tsv"]):
        plain = run(bin_path("nmt-translate"), demo_run_dir(toy_run), "-i", tmp_path / "in.txt", *flags).stdout
        assert_same_output(run(*without_torch("translate", bundle, "-i", tmp_path / "in.txt", *flags)).stdout, plain)
    run(*without_torch("translate", bundle, "-i", tmp_path / "in.txt", "--attention-plot", tmp_path / "maps"))
    assert sorted(p.name for p in (tmp_path / "maps").iterdir()) == [f"attention_{n}.png" for n in range(1, 5)]
    (tmp_path / "tgt.txt").write_text("\n".join(t["translation"] for t in theirs[:4]) + "\n")
    scored = [run(*program, "-s", tmp_path / "in.txt", "-t", tmp_path / "tgt.txt").stdout.splitlines()
              for program in ([bin_path("nmt-score"), demo_run_dir(toy_run)], without_torch("score", bundle))]
    for ours_line, theirs_line in zip(*scored):  # log-probability, per token, token count
        ours_cols, theirs_cols = ours_line.split("\t"), theirs_line.split("\t")
        assert abs(float(ours_cols[0]) - float(theirs_cols[0])) < 1e-3 and ours_cols[2] == theirs_cols[2]


def test_what_a_bundle_cannot_do_is_refused_with_the_reason(bundle, toy_run, tmp_path):
    src = toy_run / "data" / "toy" / "test.src"
    for flags, named in ((["--shortlist", "10"], "decodes over its whole vocabulary"),
                         (["--device", "cuda"], "runs on the CPU"),
                         (["--int8"], "computes as it was exported")):
        proc = run(bin_path("nmt-translate"), bundle, "-i", src, *flags, check=False)
        assert proc.returncode != 0 and named in proc.stderr, proc.stderr
    proc = run(bin_path("nmt-translate"), bundle, demo_run_dir(toy_run), "-i", src, check=False)
    assert proc.returncode != 0 and "all checkpoints or all exported models" in proc.stderr
    proc = run(bin_path("nmt-export"), demo_run_dir(toy_run), "-o", demo_run_dir(toy_run), check=False)
    assert proc.returncode != 0 and "exists and is not an exported model" in proc.stderr


def test_an_ensemble_of_bundles_translates_as_the_ensemble_of_their_checkpoints(bundle, toy_run, tmp_path):
    early = demo_run_dir(toy_run) / "checkpoints" / "step_175.pt"
    run(bin_path("nmt-export"), early, "-o", tmp_path / "early")
    (tmp_path / "in.txt").write_text("\n".join((toy_run / "data" / "toy" / "test.src").read_text().splitlines()[:40])
                                     + "\n")
    flags = ["-i", tmp_path / "in.txt", "--beam", "3", "--nbest", "2", "--output-format", "tsv"]
    theirs = run(bin_path("nmt-translate"), demo_run_dir(toy_run), early, *flags).stdout.splitlines()
    ours = run(*without_torch("translate", bundle, tmp_path / "early", *flags)).stdout.splitlines()
    assert len(ours) == 80 and [x.split("\t")[2] for x in ours] == [x.split("\t")[2] for x in theirs]


def test_a_bundle_is_replaced_whole_and_int8_translates_nearly_alike(bundle, toy_run, tmp_path):
    out = tmp_path / "int8"
    run(bin_path("nmt-export"), demo_run_dir(toy_run), "-o", out, "--int8")
    assert json.loads((out / "manifest.json").read_text())["int8"] is True
    assert (out / "step.onnx").stat().st_size < 0.6 * (bundle / "step.onnx").stat().st_size
    run(bin_path("nmt-export"), demo_run_dir(toy_run), "-o", out)  # an earlier bundle is replaced
    assert json.loads((out / "manifest.json").read_text())["int8"] is False
    assert sorted(p.name for p in tmp_path.iterdir()) == ["int8"]  # nothing left beside it
    src = toy_run / "data" / "toy" / "test.src"
    run(bin_path("nmt-export"), demo_run_dir(toy_run), "-o", out, "--int8")
    int8 = run(bin_path("nmt-translate"), out, "-i", src).stdout.splitlines()
    fp32 = run(bin_path("nmt-translate"), bundle, "-i", src).stdout.splitlines()
    assert len(int8) == 500 and sum(a == b for a, b in zip(int8, fp32)) >= 400


def test_nmt_serve_runs_a_bundle_without_torch_and_answers_as_nmt_translate(bundle, tmp_path):
    from .test_serve import LINES, Server, httpx
    server = Server(bundle, program=without_torch("serve"))
    try:
        (tmp_path / "in.txt").write_text("\n".join(LINES) + "\n")
        offline = run(bin_path("nmt-translate"), bundle, "-i", tmp_path / "in.txt", "--output-format", "jsonl",
                      "--nbest", "2").stdout
        response = server.post({"text": LINES, "nbest": 2})
        assert response.status_code == 200, response.text
        assert response.json()["translations"] == [json.loads(x) for x in offline.splitlines()]
        info = httpx.get(server.url + "/v1/model").json()
        assert info["exported"] is True and info["parameters"] > 0 and info["architecture"]["encoder"]["cell"] == "gru"
        aligned = run(bin_path("nmt-translate"), bundle, "-i", tmp_path / "in.txt", "--output-format", "jsonl",
                      "--alignment").stdout
        response = server.post({"text": LINES, "alignment": True})
        assert response.json()["translations"] == [json.loads(x) for x in aligned.splitlines()]
        assert server.post({"text": ["a dog"], "beam": 0}).status_code == 422
    finally:
        assert server.stop() == 0, "".join(server.log)


def test_an_export_that_does_not_compute_what_the_checkpoint_computes_is_never_written(toy_run, tmp_path,
                                                                                        monkeypatch):
    import copy

    import torch

    from nmt.deploy import export
    from nmt.deploy.bundle import BundleError
    real = export.export_graphs

    def wrong(model, directory):  # graphs of a model that differs in one output weight
        other = copy.deepcopy(model)
        with torch.no_grad():
            other.decoder.output.weight[5, 0] += 1.0
        return real(other, directory)

    monkeypatch.setattr(export, "export_graphs", wrong)
    with pytest.raises(BundleError, match="not written: the exported graphs' log-probabilities differ"):
        export.export_bundle(str(demo_run_dir(toy_run)), str(tmp_path / "b"))
    assert list(tmp_path.iterdir()) == []  # neither the bundle nor its temporary directory
    monkeypatch.setattr(export, "export_graphs", real)
    manifest = export.export_bundle(str(demo_run_dir(toy_run)), str(tmp_path / "b"))
    assert 0 <= manifest.max_logprob_diff < export.TOLERANCE
