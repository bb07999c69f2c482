"""Bad inputs and faults, as a careless or unlucky user meets them: every case ends in one of two
classes of outcome, and no input file changes in any of them.

- refused: a clear error naming the thing (file, option, key), exit status non-zero, no traceback;
- handled: the right result, exit status 0.

Most programs run in this process (their ``main(argv)``), so an uncaught exception fails the test as
a traceback would; the cases that need a real process (signals, stdin, ``<(cmd)``) run one. Each
case is wrapped in the input-directory checksum guard of ``helpers.inputs_untouched``.
"""
import gzip
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch

from ..conftest import TINY_OVERRIDES, bin_path, compose, toy_overrides
from .helpers import inputs_untouched, run

pytestmark = pytest.mark.slow

OUTCOMES = {"refused": 0, "handled": 0}  # counted as the cases run; printed by the summary test


# ---- fixtures: a trained run directory (hard-linked checkpoints, as training makes them) ----------

@pytest.fixture(scope="module")
def trained(toy_dir, tmp_path_factory):
    from nmt.training.loop import fit
    run_dir = tmp_path_factory.mktemp("torture") / "run"
    fit(compose(toy_overrides(toy_dir, ["train.max_steps=4", "train.valid_every=4", "optim.lr=3e-3"])),
        str(run_dir))
    return run_dir


@pytest.fixture
def work(trained, toy_dir, tmp_path):
    """A fresh copy of the run (links kept) and of a few input files, per test."""
    run_dir = tmp_path / "run"
    ckpts = run_dir / "checkpoints"
    ckpts.mkdir(parents=True)
    first = {}
    for path in sorted((trained / "checkpoints").iterdir()):
        st = os.stat(path)
        if st.st_ino in first:
            os.link(first[st.st_ino], ckpts / path.name)
        else:
            shutil.copyfile(path, ckpts / path.name)
            first[st.st_ino] = ckpts / path.name
    data = tmp_path / "data"
    data.mkdir()
    src = (toy_dir / "test.src").read_text().splitlines()[:6]
    tgt = (toy_dir / "test.tgt").read_text().splitlines()[:6]
    (data / "in.txt").write_text("\n".join(src) + "\n")
    (data / "ref.txt").write_text("\n".join(tgt) + "\n")
    return run_dir, data


def digests(directory):
    import hashlib
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir()) if p.is_file()}


def call(program, args, capsys, stdin: bytes = None, monkeypatch=None):
    """Run ``nmt-PROGRAM ARGS`` in this process; (exit status, stdout, stderr)."""
    import importlib
    main = importlib.import_module(f"nmt.cli.{program}").main
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8"))
    code = 0
    with inputs_untouched([f"nmt-{program}", *map(str, args)]):
        try:
            main([str(a) for a in args])
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
            if not isinstance(e.code, int) and e.code is not None:
                print(e.code, file=sys.stderr)
    out, err = capsys.readouterr()
    return code, out, err


def refused(result, *named):
    code, out, err = result
    assert code != 0, (out, err)
    assert "Traceback" not in err, err
    for n in named:
        assert str(n) in err, (n, err)
    OUTCOMES["refused"] += 1
    return err


def handled(result):
    code, out, err = result
    assert code == 0 and "Traceback" not in err, err
    OUTCOMES["handled"] += 1
    return out


# ---- 1. an output that is an input, a checkpoint or a link of one ------------------------------

def test_translate_output_is_its_own_input(work, capsys):
    run_dir, data = work
    before = digests(data)
    refused(call("translate", [run_dir, "-i", data / "in.txt", "-o", data / "in.txt"], capsys),
            "in.txt", "same file as the input")
    assert digests(data) == before


@pytest.mark.parametrize("link", ["hard", "sym"])
def test_translate_output_is_a_link_of_its_input(work, capsys, link):
    run_dir, data = work
    (os.link if link == "hard" else os.symlink)(data / "in.txt", data / "alias.txt")
    refused(call("translate", [run_dir, "-i", data / "in.txt", "-o", data / "alias.txt"], capsys),
            "alias.txt", "a link to it")


@pytest.mark.parametrize("name", ["best.pt", "last.pt", "step_4.pt"])
def test_translate_output_is_a_checkpoint_of_the_run(work, capsys, name):
    """best.pt, last.pt and step_4.pt are one file under three names: none may become text."""
    run_dir, data = work
    before = digests(run_dir / "checkpoints")
    refused(call("translate", [run_dir / "checkpoints" / "best.pt", "-i", data / "in.txt", "-o",
                               run_dir / "checkpoints" / name], capsys), name)
    assert digests(run_dir / "checkpoints") == before


def test_translate_output_is_an_unrelated_checkpoint(work, capsys, tmp_path):
    run_dir, data = work
    other = tmp_path / "elsewhere.pt"
    shutil.copyfile(run_dir / "checkpoints" / "best.pt", other)
    refused(call("translate", [run_dir, "-i", data / "in.txt", "-o", other], capsys), "is a checkpoint")
    assert other.stat().st_size > 1000


def test_translate_output_is_the_file_on_stdin(work, capsys, monkeypatch):
    """``nmt-translate RUN -o x.txt < x.txt``: stdin is compared by device and inode too."""
    run_dir, data = work
    with open(data / "in.txt", "rb") as f:
        monkeypatch.setattr(sys, "stdin", f)
        refused(call("translate", [run_dir, "-o", data / "in.txt"], capsys), "standard input")
    assert len((data / "in.txt").read_text().splitlines()) == 6


@pytest.mark.parametrize("which", ["-s", "-t"])
def test_score_output_is_an_input(work, capsys, which):
    run_dir, data = work
    target = data / ("in.txt" if which == "-s" else "ref.txt")
    refused(call("score", [run_dir, "-s", data / "in.txt", "-t", data / "ref.txt", "-o", target], capsys),
            target.name, "same file")


@pytest.mark.parametrize("name", ["step_4.pt", "best.pt"])
def test_average_output_is_an_input_or_its_link(work, capsys, name):
    run_dir, _ = work
    before = digests(run_dir / "checkpoints")
    refused(call("average", [run_dir / "checkpoints" / "step_4.pt", "-o", run_dir / "checkpoints" / name], capsys),
            name)
    assert digests(run_dir / "checkpoints") == before


def test_output_that_is_a_directory_or_in_a_missing_one(work, capsys, tmp_path):
    run_dir, data = work
    refused(call("translate", [run_dir, "-i", data / "in.txt", "-o", tmp_path], capsys), "is a directory")
    refused(call("translate", [run_dir, "-i", data / "in.txt", "-o", tmp_path / "no" / "x.txt"], capsys),
            "does not exist")


def test_an_interrupted_translation_leaves_the_previous_output(work, capsys, monkeypatch):
    """The output is written to a temporary file and renamed at the end: a failure half-way leaves
    the file the user had, and no temporary file."""
    run_dir, data = work
    out = data / "out.txt"
    out.write_text("yesterday's translation\n")
    from nmt import translator

    def boom(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(translator.Translator, "translate_ids", boom)
    refused(call("translate", [run_dir, "-i", data / "in.txt", "-o", out], capsys), "interrupted", "not written")
    assert out.read_text() == "yesterday's translation\n"
    assert sorted(p.name for p in data.iterdir()) == ["in.txt", "out.txt", "ref.txt"]


def test_output_to_a_device_is_written_in_place(work, capsys):
    """``-o /dev/null`` is not replaced by a regular file (the temporary-file rename is for files)."""
    run_dir, data = work
    handled(call("translate", [run_dir, "-i", data / "in.txt", "--greedy", "-o", os.devnull], capsys))
    assert not os.path.isfile(os.devnull)


def test_data_never_overwrites(tmp_path, capsys):
    out = tmp_path / "m30k"
    out.mkdir()
    (out / "train.de.gz").write_bytes(gzip.compress(b"my own data\n"))
    refused(call("data", ["multi30k", "--out", out, "--from", tmp_path / "nowhere"], capsys), "train.de.gz",
            "not overwriting")
    assert gzip.decompress((out / "train.de.gz").read_bytes()) == b"my own data\n"
    (tmp_path / "toy").mkdir()
    (tmp_path / "toy" / "train.src").write_text("mine\n")
    refused(call("data", ["toy", "--out", tmp_path / "toy"], capsys), "train.src")
    assert (tmp_path / "toy" / "train.src").read_text() == "mine\n"


def test_attention_plots_beside_the_input_never_replace_it(work, capsys):
    run_dir, data = work
    (data / "attention_1.png").write_text("a user's own file\n")
    refused(call("translate", [run_dir, "-i", data / "attention_1.png", "--attention-plot", data,
                               "--attention-plot-count", "1"], capsys), "attention_1.png")
    assert (data / "attention_1.png").read_text() == "a user's own file\n"


# ---- 2. options out of range, silent wrong results ----------------------------------------------

@pytest.mark.parametrize("option,value", [
    ("--chunk-size", "0"), ("--chunk-size", "-1"), ("--max-src-len", "-1"), ("--beam", "0"), ("--nbest", "0"),
    ("--batch-size", "0"), ("--max-tokens", "-5"), ("--temperature", "0"), ("--temperature", "nan"),
    ("--length-penalty", "inf"), ("--max-len-a", "-1"), ("--max-len-b", "-2"), ("--min-len", "-1"),
    ("--top-k", "-3"), ("--threads", "-1"), ("--shortlist", "-1"), ("--attention-plot-count", "-1"),
    ("--beam", "five")])
def test_numeric_options_are_range_checked(work, capsys, option, value):
    run_dir, data = work
    refused(call("translate", [run_dir, "-i", data / "in.txt", option, value], capsys), option)


def test_min_len_beyond_every_output_limit(work, capsys):
    run_dir, data = work
    refused(call("translate", [run_dir, "-i", data / "in.txt", "--min-len", "1000"], capsys), "--min-len 1000")


def test_a_beam_wider_than_the_vocabulary(work, capsys):
    run_dir, data = work
    refused(call("translate", [run_dir, "-i", data / "in.txt", "--beam", "10000"], capsys), "beam size 10000",
            "vocabulary")


def test_search_batches_are_bounded_by_memory():
    from nmt.search import SearchOptions
    from nmt.translator import search_batch_limit
    assert search_batch_limit(SearchOptions(beam_size=100), 8000, memory=1 << 30) == (1 << 28) // (100 * 8000 * 12)
    with pytest.raises(Exception, match="per sentence"):
        search_batch_limit(SearchOptions(beam_size=8000), 8000, memory=1 << 30)


@pytest.mark.parametrize("program,args", [
    ("score", ["--batch-size", "0"]), ("score", ["--threads", "-2"]), ("average", ["--last", "0"])])
def test_other_programs_range_check_too(work, capsys, program, args):
    run_dir, data = work
    extra = ["-s", data / "in.txt", "-t", data / "ref.txt"] if program == "score" else ["-o", data / "avg.pt"]
    refused(call(program, [run_dir, *extra, *args], capsys), args[0])


def test_score_of_a_blank_source_is_the_models(work, capsys):
    run_dir, data = work
    (data / "s.txt").write_text("\n")
    (data / "t.txt").write_text("ein hund\n")
    out = handled(call("score", [run_dir, "-s", data / "s.txt", "-t", data / "t.txt"], capsys))
    logprob, mean, tokens = out.split("\t")
    assert float(logprob) < 0 and int(tokens) >= 2


def test_evaluate_refuses_invalid_utf8_on_stdin_as_from_a_file(work, capsys, monkeypatch):
    _, data = work
    bad = b"a good line\n\xff\xfe broken\n"
    (data / "bad.txt").write_bytes(bad)
    from_file = refused(call("evaluate", [data / "bad.txt", data / "ref.txt"], capsys), "not valid UTF-8", ":2:")
    from_stdin = refused(call("evaluate", ["-", data / "ref.txt"], capsys, stdin=bad, monkeypatch=monkeypatch),
                         "<stdin>:2:", "not valid UTF-8")
    assert from_file.split(":2:")[1] == from_stdin.split(":2:")[1]


def test_translate_refuses_invalid_utf8_on_stdin(work, capsys, monkeypatch):
    run_dir, _ = work
    refused(call("translate", [run_dir], capsys, stdin=b"ok\n\xc3\x28\n", monkeypatch=monkeypatch), "<stdin>:2")


def _tampered(run_dir, tmp_path, change):
    from nmt.checkpoint import load_checkpoint
    ckpt = load_checkpoint(str(run_dir / "checkpoints" / "best.pt"))
    change(ckpt)
    path = tmp_path / "tampered.pt"
    torch.save(ckpt, path)
    return path


def test_a_checkpoint_with_nan_weights_is_refused(work, capsys, tmp_path):
    run_dir, data = work
    path = _tampered(run_dir, tmp_path, lambda c: c["model"][next(iter(c["model"]))].fill_(float("nan")))
    refused(call("translate", [path, "-i", data / "in.txt"], capsys), "NaN or infinite", "tampered.pt")


@pytest.mark.parametrize("change,named", [
    (lambda c: c["config"]["encoder"].update(hidden_size=48), "in the checkpoint"),
    (lambda c: c["model"].pop(next(iter(c["model"]))), "has no parameter"),
    (lambda c: c["model"].update(extra=torch.zeros(2)), "'extra'")])
def test_a_checkpoint_whose_config_and_weights_disagree(work, capsys, tmp_path, change, named):
    run_dir, data = work
    refused(call("translate", [_tampered(run_dir, tmp_path, change), "-i", data / "in.txt"], capsys), named)


# ---- 3. the Python API's boundary -------------------------------------------------------------------

@pytest.mark.parametrize("bad,error,named", [
    ([1, 2], TypeError, "lines[0]"), ([None], TypeError, "lines[0]"), (None, TypeError, "lines"),
    ("one sentence", TypeError, "wrap it in a list"), (5, TypeError, "lines")])
def test_api_translate_boundary(work, bad, error, named):
    import nmt
    model = nmt.load(str(work[0]))
    with pytest.raises(error, match=named.replace("[", r"\[").replace("]", r"\]")):
        model.translate(bad)
    OUTCOMES["refused"] += 1


@pytest.mark.parametrize("bad,error,named", [
    ([], ValueError, "empty list"), (None, TypeError, "NoneType"), (123, TypeError, "int"),
    ([None], TypeError, "NoneType"), ("/nowhere/x.pt", Exception, "/nowhere/x.pt")])
def test_api_load_boundary(bad, error, named):
    import nmt
    from nmt.errors import NmtError
    with pytest.raises(error, match=named) as e:
        nmt.load(bad)
    assert isinstance(e.value, (TypeError, ValueError, NmtError))
    OUTCOMES["refused"] += 1


def test_api_options_and_scoring_boundary(work):
    import nmt
    model = nmt.load(str(work[0]))
    for kwargs, named in (({"beam": 0}, "beam"), ({"nbest": "2"}, "nbest"), ({"batch_size": -1}, "batch_size")):
        with pytest.raises(ValueError, match=named):
            model.translate(["a"], **kwargs)
    with pytest.raises(TypeError, match=r"targets\[1\]"):
        model.score(["a", "b"], ["a", 7])
    with pytest.raises(ValueError, match="2 sentences but targets has 1"):
        model.score(["a", "b"], ["a"])
    OUTCOMES["refused"] += 5


# ---- 4. training: checked before the work --------------------------------------------------------

def train_cli(toy_dir, run_dir, *extra, cwd=None):
    return run(bin_path("nmt-train"), *toy_overrides(toy_dir, [f"run_dir={run_dir}", "train.max_steps=2",
                                                              "train.valid_every=2", *extra]), check=False, cwd=cwd)


@pytest.mark.parametrize("override,named", [
    ("encoder.hidden_size=1000000", "does not fit in memory"), ("encoder.hidden_size=20000", "encoder.hidden_size"),
    ("decoder.hidden_size=100000", "decoder.hidden_size"), ("decoder.init_scale=inf", "decoder.init_scale"),
    ("optim.lr=nan", "optim.lr"), ("train.max_stepz=3", "did you mean 'train.max_steps'")])
def test_impossible_settings_stop_at_once(toy_dir, tmp_path, override, named):
    proc = train_cli(toy_dir, tmp_path / "r", override)
    refused((proc.returncode, proc.stdout, proc.stderr), named)
    assert "+train" not in proc.stderr  # nmt's suggestion, not Hydra's "+key"
    # at once: before sentencepiece or any encoding ran
    assert not (tmp_path / "r" / "spm.model").exists() and not (tmp_path / "r" / "cache").exists()


def test_invalid_utf8_in_the_test_split_stops_before_training(toy_dir, tmp_path):
    data = tmp_path / "d"
    data.mkdir()
    for name in ("train", "valid", "test"):
        for side in ("src", "tgt"):
            shutil.copyfile(toy_dir / f"{name}.{side}", data / f"{name}.{side}")
    with open(data / "test.tgt", "ab") as f:
        f.write(b"caf\xe9\n")
    with open(data / "test.src", "ab") as f:
        f.write(b"cafe\n")
    proc = run(bin_path("nmt-train"), f"data.train={data}/train", f"data.valid={data}/valid", f"data.test={data}/test",
               "data.generate=null", *TINY_OVERRIDES, f"run_dir={tmp_path / 'r'}", "train.max_steps=2", check=False)
    refused((proc.returncode, proc.stdout, proc.stderr), "test.tgt:41", "not valid UTF-8")
    assert not (tmp_path / "r" / "checkpoints" / "last.pt").exists()


def test_a_corpus_of_blank_lines(tmp_path):
    data = tmp_path / "d"
    data.mkdir()
    for name in ("train", "valid"):
        for side in ("src", "tgt"):
            (data / f"{name}.{side}").write_text("   \n\t\n \n")
    proc = run(bin_path("nmt-train"), f"data.train={data}/train", f"data.valid={data}/valid", "data.test=null",
               "data.generate=null", *TINY_OVERRIDES, f"run_dir={tmp_path / 'r'}", check=False)
    refused((proc.returncode, proc.stdout, proc.stderr), "no usable training pairs", "train.src")
    assert "RemoteTraceback" not in proc.stderr


def test_a_refused_start_leaves_the_run_as_it_was(toy_dir, trained, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(trained, run_dir)
    (run_dir / ".hydra").mkdir(exist_ok=True)
    (run_dir / ".hydra" / "overrides.yaml").write_text("- the original overrides\n")
    (run_dir / "train.log").write_text("the original log\n")
    proc = train_cli(toy_dir, run_dir)
    refused((proc.returncode, proc.stdout, proc.stderr), "already holds a training run", "resume=true")
    assert (run_dir / ".hydra" / "overrides.yaml").read_text() == "- the original overrides\n"
    assert (run_dir / "train.log").read_text() == "the original log\n"
    fresh = tmp_path / "fresh"
    proc = train_cli(toy_dir, fresh, "resume=true")
    refused((proc.returncode, proc.stdout, proc.stderr), "no checkpoint")
    assert not fresh.exists()


def test_partial_checkpoints_are_removed_at_start_up(toy_dir, trained, tmp_path):
    from nmt.training.loop import fit
    run_dir = tmp_path / "run"
    shutil.copytree(trained, run_dir)
    for name in ("last.pt.tmp.4242", "best.pt.tmp.17", ".last.pt.k2j4x9.part"):
        (run_dir / "checkpoints" / name).write_bytes(b"half a checkpoint")
    (run_dir / "checkpoints" / "notes.tmp.txt").write_text("not ours\n")
    fit(compose(toy_overrides(toy_dir, ["train.max_steps=5", "train.valid_every=4", "optim.lr=3e-3",
                                        "resume=true"])), str(run_dir))
    left = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert not any(".pt.tmp." in n for n in left) and "notes.tmp.txt" in left
    assert not any(n.endswith(".part") for n in left)
    OUTCOMES["handled"] += 1


def test_resume_over_changed_training_files_is_refused(toy_dir, tmp_path):
    from nmt.data.corpus import CorpusError
    from nmt.training.loop import fit
    data = tmp_path / "d"
    shutil.copytree(toy_dir, data)
    overrides = [f"data.train={data}/train", f"data.valid={data}/valid", "data.test=null", "data.generate=null",
                 *TINY_OVERRIDES, "train.max_steps=2", "train.valid_every=2"]
    fit(compose(overrides), str(tmp_path / "r"))
    with open(data / "train.src", "a") as f, open(data / "train.tgt", "a") as g:
        f.write("ein neuer satz\n")
        g.write("a new sentence\n")
    with pytest.raises(CorpusError, match="changed since the checkpoint"):
        fit(compose(overrides[:-2] + ["train.max_steps=4", "resume=true"]), str(tmp_path / "r"))
    OUTCOMES["refused"] += 1


def test_the_encoded_cache_follows_content_not_size_and_time(toy_dir, tmp_path, caplog):
    """An edit in place that keeps size and modification time still gets a fresh encoding."""
    from nmt.data.dataset import encode_cached
    from nmt.data.spm import Tokenizer
    data = tmp_path / "d"
    shutil.copytree(toy_dir, data)
    tok = Tokenizer.load(str(_spm(toy_dir, tmp_path)))
    first = encode_cached(str(data / "train"), "src", "tgt", tok, 50, str(tmp_path / "cache"))
    path = data / "train.src"
    st = os.stat(path)
    text = path.read_bytes()
    swapped = text.replace(b"a", b"e", 50)
    assert len(swapped) == len(text) and swapped != text
    path.write_bytes(swapped)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    second = encode_cached(str(data / "train"), "src", "tgt", tok, 50, str(tmp_path / "cache"))
    assert first.fingerprint != second.fingerprint
    assert len(os.listdir(tmp_path / "cache")) == 2
    OUTCOMES["handled"] += 1


def _spm(toy_dir, tmp_path):
    from nmt.data.corpus import read_parallel
    from nmt.data.spm import Tokenizer
    c = read_parallel(str(toy_dir / "train"), "src", "tgt")
    tok = Tokenizer.train(c.src, c.tgt, 200, "unigram", joint=True)
    tok.save(str(tmp_path / "spm"))
    return tmp_path / "spm" / "spm.model"


# ---- 5. signals, pipes and stdin in real processes -----------------------------------------------

def test_ctrl_c_during_start_up_prints_no_traceback(toy_dir, tmp_path):
    args = [bin_path("nmt-train"), *toy_overrides(toy_dir, [f"run_dir={tmp_path / 'r'}", "train.max_steps=2000"])]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)  # inside start-up: imports, composing, sentencepiece
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert "Traceback" not in err, err
    assert proc.returncode != 0 or "training stopped (signal)" in err, err
    OUTCOMES["refused" if proc.returncode else "handled"] += 1


@pytest.mark.parametrize("form", ["/dev/stdin", "<(cat FILE)"])
def test_stdin_and_process_substitution_are_inputs(work, form):
    run_dir, data = work
    infile = data / "in.txt"
    command = f"{bin_path('nmt-translate')} {run_dir} --greedy -i {form.replace('FILE', str(infile))}"
    if form == "/dev/stdin":
        command += f" < {infile}"
    proc = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    expected = subprocess.run([bin_path("nmt-translate"), str(run_dir), "--greedy", "-i", str(infile)],
                              capture_output=True, text=True, timeout=120).stdout
    assert proc.stdout == expected and len(expected.splitlines()) == 6
    OUTCOMES["handled"] += 1


def test_evaluate_into_head_ends_quietly(work):
    _, data = work
    proc = subprocess.run(["bash", "-c", f"{bin_path('nmt-evaluate')} {data / 'ref.txt'} {data / 'ref.txt'} "
                                         f"--sentence | head -1"], capture_output=True, text=True, timeout=120)
    assert proc.stdout.startswith("line") and "Traceback" not in proc.stderr, proc.stderr
    OUTCOMES["handled"] += 1


def test_zz_outcome_counts():
    """The counts by class of the cases above (printed with -s; in the closing note)."""
    print(f"\ntorture outcomes: {json.dumps(OUTCOMES)}")
    assert OUTCOMES["refused"] + OUTCOMES["handled"] > 0
