"""Bad inputs and faults, as a careless or unlucky user meets them: every case ends in one of two
classes of outcome, and no input file changes in any of them.

- refused: a clear error naming the thing (file, option, key), exit status non-zero, no traceback;
- handled: the right result, exit status 0.

Most programs run in this process (their ``main(argv)``), so an uncaught exception fails the test as
a traceback would; the cases that need a real process (signals, stdin, ``<(cmd)``) run one. Each
case is wrapped in the input-directory checksum guard of ``helpers.inputs_untouched``.
"""
import gzip
import json
import os
import re
import shutil
import signal
import subprocess
import sys

import pytest
import torch

from ..conftest import TINY_OVERRIDES, bin_path, compose, toy_overrides
from .helpers import in_process, inputs_untouched, run, stdin_of, wait_for

OUTCOMES = {"refused": 0, "handled": 0}  # counted as the cases run; printed at the end of the session


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


def call(program, args, stdin: bytes = None):
    """Run ``nmt-PROGRAM ARGS`` in this process (``helpers.in_process``), stdin from ``stdin`` or,
    without it, this process's (a file a test put there); (exit status, stdout, stderr)."""
    with inputs_untouched([f"nmt-{program}", *map(str, args)]):
        code, out, err = in_process(program, args, stdin_of(stdin) if stdin is not None else sys.stdin)
    return code, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


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

def test_translate_output_is_its_own_input(work):
    run_dir, data = work
    before = digests(data)
    refused(call("translate", [run_dir, "-i", data / "in.txt", "-o", data / "in.txt"]),
            "in.txt", "same file as the input")
    assert digests(data) == before


@pytest.mark.parametrize("link", ["hard", "sym"])
def test_translate_output_is_a_link_of_its_input(work, link):
    run_dir, data = work
    (os.link if link == "hard" else os.symlink)(data / "in.txt", data / "alias.txt")
    refused(call("translate", [run_dir, "-i", data / "in.txt", "-o", data / "alias.txt"]),
            "alias.txt", "a link to it")


@pytest.mark.parametrize("name", ["best.pt", "last.pt", "step_4.pt"])
def test_translate_output_is_a_checkpoint_of_the_run(work, name):
    """best.pt, last.pt and step_4.pt are one file under three names: none may become text."""
    run_dir, data = work
    before = digests(run_dir / "checkpoints")
    refused(call("translate", [run_dir / "checkpoints" / "best.pt", "-i", data / "in.txt", "-o",
                               run_dir / "checkpoints" / name]), name)
    assert digests(run_dir / "checkpoints") == before


def test_translate_output_is_an_unrelated_checkpoint(work, tmp_path):
    run_dir, data = work
    other = tmp_path / "elsewhere.pt"
    shutil.copyfile(run_dir / "checkpoints" / "best.pt", other)
    refused(call("translate", [run_dir, "-i", data / "in.txt", "-o", other]), "is a checkpoint")
    assert other.stat().st_size > 1000


def test_translate_output_is_the_file_on_stdin(work, monkeypatch):
    """``nmt-translate RUN -o x.txt < x.txt``: stdin is compared by device and inode too."""
    run_dir, data = work
    with open(data / "in.txt", "rb") as f:
        monkeypatch.setattr(sys, "stdin", f)
        refused(call("translate", [run_dir, "-o", data / "in.txt"]), "standard input")
    assert len((data / "in.txt").read_text().splitlines()) == 6


@pytest.mark.parametrize("which", ["-s", "-t"])
def test_score_output_is_an_input(work, which):
    run_dir, data = work
    target = data / ("in.txt" if which == "-s" else "ref.txt")
    refused(call("score", [run_dir, "-s", data / "in.txt", "-t", data / "ref.txt", "-o", target]),
            target.name, "same file")


@pytest.mark.parametrize("name", ["step_4.pt", "best.pt"])
def test_average_output_is_an_input_or_its_link(work, name):
    run_dir, _ = work
    before = digests(run_dir / "checkpoints")
    refused(call("average", [run_dir / "checkpoints" / "step_4.pt", "-o", run_dir / "checkpoints" / name]),
            name)
    assert digests(run_dir / "checkpoints") == before


def test_output_that_is_a_directory_or_in_a_missing_one(work, tmp_path):
    run_dir, data = work
    refused(call("translate", [run_dir, "-i", data / "in.txt", "-o", tmp_path]), "is a directory")
    refused(call("translate", [run_dir, "-i", data / "in.txt", "-o", tmp_path / "no" / "x.txt"]),
            "does not exist")


def test_an_interrupted_translation_leaves_the_previous_output(work, monkeypatch):
    """The output is written to a temporary file and renamed at the end: a failure half-way leaves
    the file the user had, and no temporary file."""
    run_dir, data = work
    out = data / "out.txt"
    out.write_text("yesterday's translation\n")
    from nmt import translator

    def boom(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(translator.Translator, "translate_ids", boom)
    refused(call("translate", [run_dir, "-i", data / "in.txt", "-o", out]), "interrupted", "not written")
    assert out.read_text() == "yesterday's translation\n"
    assert sorted(p.name for p in data.iterdir()) == ["in.txt", "out.txt", "ref.txt"]


def test_output_to_a_device_is_written_in_place(work):
    """``-o /dev/null`` is not replaced by a regular file (the temporary-file rename is for files)."""
    run_dir, data = work
    handled(call("translate", [run_dir, "-i", data / "in.txt", "--greedy", "-o", os.devnull]))
    assert not os.path.isfile(os.devnull)


def test_data_never_overwrites(tmp_path):
    out = tmp_path / "m30k"
    out.mkdir()
    (out / "train.de.gz").write_bytes(gzip.compress(b"my own data\n"))
    refused(call("data", ["multi30k", "--out", out, "--from", tmp_path / "nowhere"]), "train.de.gz",
            "not overwriting")
    assert gzip.decompress((out / "train.de.gz").read_bytes()) == b"my own data\n"
    (tmp_path / "toy").mkdir()
    (tmp_path / "toy" / "train.src").write_text("mine\n")
    refused(call("data", ["toy", "--out", tmp_path / "toy"]), "train.src")
    assert (tmp_path / "toy" / "train.src").read_text() == "mine\n"


def test_attention_plots_beside_the_input_never_replace_it(work):
    run_dir, data = work
    (data / "attention_1.png").write_text("a user's own file\n")
    refused(call("translate", [run_dir, "-i", data / "attention_1.png", "--attention-plot", data,
                               "--attention-plot-count", "1"]), "attention_1.png")
    assert (data / "attention_1.png").read_text() == "a user's own file\n"


# ---- 2. options out of range, silent wrong results ----------------------------------------------

@pytest.mark.parametrize("option,value", [
    ("--chunk-size", "0"), ("--chunk-size", "-1"), ("--max-src-len", "-1"), ("--beam", "0"), ("--nbest", "0"),
    ("--batch-size", "0"), ("--max-tokens", "-5"), ("--temperature", "0"), ("--temperature", "nan"),
    ("--length-penalty", "inf"), ("--max-len-a", "-1"), ("--max-len-b", "-2"), ("--min-len", "-1"),
    ("--top-k", "-3"), ("--threads", "-1"), ("--shortlist", "-1"), ("--attention-plot-count", "-1"),
    ("--beam", "five")])
def test_numeric_options_are_range_checked(work, option, value):
    run_dir, data = work
    refused(call("translate", [run_dir, "-i", data / "in.txt", option, value]), option)


def test_min_len_beyond_every_output_limit(work):
    run_dir, data = work
    refused(call("translate", [run_dir, "-i", data / "in.txt", "--min-len", "1000"]), "--min-len 1000")


def test_a_beam_wider_than_the_vocabulary(work):
    run_dir, data = work
    refused(call("translate", [run_dir, "-i", data / "in.txt", "--beam", "10000"]), "beam size 10000",
            "vocabulary")


def test_search_batches_are_bounded_by_memory():
    from nmt.resources import search_batch_limit
    assert search_batch_limit(100, 8000, memory=1 << 30) == (1 << 28) // (100 * 8000 * 12)
    with pytest.raises(Exception, match="per sentence"):
        search_batch_limit(8000, 8000, memory=1 << 30)


@pytest.mark.parametrize("program,args", [
    ("score", ["--batch-size", "0"]), ("score", ["--threads", "-2"]), ("average", ["--last", "0"])])
def test_other_programs_range_check_too(work, program, args):
    run_dir, data = work
    extra = ["-s", data / "in.txt", "-t", data / "ref.txt"] if program == "score" else ["-o", data / "avg.pt"]
    refused(call(program, [run_dir, *extra, *args]), args[0])


def test_score_of_a_blank_source_is_the_models(work):
    run_dir, data = work
    (data / "s.txt").write_text("\n")
    (data / "t.txt").write_text("ein hund\n")
    out = handled(call("score", [run_dir, "-s", data / "s.txt", "-t", data / "t.txt"]))
    logprob, mean, tokens = out.split("\t")
    assert float(logprob) < 0 and int(tokens) >= 2


def test_evaluate_refuses_invalid_utf8_on_stdin_as_from_a_file(work):
    _, data = work
    bad = b"a good line\n\xff\xfe broken\n"
    (data / "bad.txt").write_bytes(bad)
    from_file = refused(call("evaluate", [data / "bad.txt", data / "ref.txt"]), "not valid UTF-8", ":2:")
    from_stdin = refused(call("evaluate", ["-", data / "ref.txt"], stdin=bad),
                         "<stdin>:2:", "not valid UTF-8")
    assert from_file.split(":2:")[1] == from_stdin.split(":2:")[1]


def test_translate_refuses_invalid_utf8_on_stdin(work):
    run_dir, _ = work
    refused(call("translate", [run_dir], stdin=b"ok\n\xc3\x28\n"), "<stdin>:2")


def _tampered(run_dir, tmp_path, change):
    from nmt.checkpoint import load_checkpoint
    ckpt = load_checkpoint(str(run_dir / "checkpoints" / "best.pt"))
    change(ckpt)
    path = tmp_path / "tampered.pt"
    torch.save(ckpt, path)
    return path


def test_a_checkpoint_with_nan_weights_is_refused(work, tmp_path):
    run_dir, data = work
    path = _tampered(run_dir, tmp_path, lambda c: c["model"][next(iter(c["model"]))].fill_(float("nan")))
    refused(call("translate", [path, "-i", data / "in.txt"]), "NaN or infinite", "tampered.pt")


@pytest.mark.parametrize("change,named", [
    (lambda c: c["config"]["encoder"].update(hidden_size=48), "in the checkpoint"),
    (lambda c: c["model"].pop(next(iter(c["model"]))), "has no parameter"),
    (lambda c: c["model"].update(extra=torch.zeros(2)), "'extra'")])
def test_a_checkpoint_whose_config_and_weights_disagree(work, tmp_path, change, named):
    run_dir, data = work
    refused(call("translate", [_tampered(run_dir, tmp_path, change), "-i", data / "in.txt"]), named)


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
    """Ctrl-C once Hydra has started the run (its ``.hydra/`` written) and while sentencepiece trains
    on a corpus large enough to keep it busy: one line, status 130, no traceback, no checkpoint."""
    from nmt.data import toy
    toy.generate(str(tmp_path / "big"), sizes={"train": 60000, "valid": 40, "test": 40})
    run_dir = tmp_path / "r"
    args = [bin_path("nmt-train"), *toy_overrides(tmp_path / "big", [f"run_dir={run_dir}", "data.spm.vocab_size=4000"])]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(run_dir / ".hydra", proc)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "nmt-train: interrupted" in err, err
    assert not (run_dir / "checkpoints" / "last.pt").exists()
    OUTCOMES["refused"] += 1


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


# ---- 6. round two: run directories, damaged checkpoints, shared limits, signals, messages ---------

def _zero_inside(path, start, size):
    """A copy of the checkpoint with ``size`` bytes zeroed from ``start`` on (a damaged disk or copy)."""
    data = bytearray(path.read_bytes())
    data[start:start + size] = bytes(size)
    return data


@pytest.mark.parametrize("holds", ["config.yaml", "spm.model", "summary.json", "test/hyp.txt"])
def test_run_dir_holding_a_users_files_is_refused(toy_dir, tmp_path, holds):
    """Case 1: a directory of files that is not an nmt run (no marker) is never trained into."""
    mine = tmp_path / "mine"
    (mine / holds).parent.mkdir(parents=True, exist_ok=True)
    (mine / holds).write_text("the user's own file\n")
    proc = train_cli(toy_dir, mine)
    refused((proc.returncode, proc.stdout, proc.stderr), "holds files", "not an nmt run", holds.split("/")[0])
    assert (mine / holds).read_text() == "the user's own file\n"
    assert sorted(p.name for p in mine.iterdir()) == [holds.split("/")[0]]


def test_empty_run_dir_is_refused_and_the_current_directory_untouched(toy_dir, tmp_path):
    """Case 2: ``run_dir=`` (empty) would be the current directory."""
    (tmp_path / "config.yaml").write_text("mine\n")
    proc = train_cli(toy_dir, "", cwd=tmp_path)
    refused((proc.returncode, proc.stdout, proc.stderr), "run_dir")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml"]


def test_run_dir_where_no_directory_can_be_made(toy_dir, tmp_path):
    """Case 15: /proc accepts no directories, whatever its permission bits say."""
    proc = train_cli(toy_dir, "/proc/nmt_run")
    err = refused((proc.returncode, proc.stdout, proc.stderr), "/proc/nmt_run", "cannot create a directory")
    assert "HYDRA_FULL_ERROR" not in err and len(err.strip().splitlines()) == 1


def test_a_run_dir_is_marked_and_a_marked_one_resumes(trained):
    from nmt.training.rundir import MARKER_NAME, read_marker
    assert (trained / MARKER_NAME).is_file() and len(read_marker(str(trained))["run_id"]) == 32
    OUTCOMES["handled"] += 1


@pytest.mark.parametrize("where", ["weights", "end"])
def test_a_damaged_checkpoint_is_refused_everywhere(work, toy_dir, tmp_path, where):
    """Case 3: bytes zeroed inside a checkpoint (in the weights, or in the optimizer state at the
    end) are found by the archive's checksums on every load path."""
    import nmt
    from nmt.checkpoint import CheckpointError
    from nmt.training.loop import fit
    run_dir, data = work
    best = run_dir / "checkpoints" / "best.pt"
    size = best.stat().st_size
    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes(_zero_inside(best, size // 3 if where == "weights" else size - 8192, 4096))
    refused(call("translate", [damaged, "-i", data / "in.txt"]), "damaged.pt", "corrupted")
    refused(call("score", [damaged, "-s", data / "in.txt", "-t", data / "ref.txt"]), "corrupted")
    refused(call("average", [damaged, best, "-o", tmp_path / "avg.pt"]), "corrupted")
    with pytest.raises(CheckpointError, match="corrupted"):
        nmt.load(str(damaged))
    for name in ("last.pt", "best.pt"):  # one file under several names in a run: replace the inode
        (run_dir / "checkpoints" / name).unlink()
        shutil.copyfile(damaged, run_dir / "checkpoints" / name)
    with pytest.raises(Exception, match="corrupted") as e:
        fit(compose(toy_overrides(toy_dir, ["resume=true", "train.max_steps=6"])), str(run_dir))
    assert "previous good checkpoints" in str(e.value) or "no other checkpoint" in str(e.value)
    OUTCOMES["refused"] += 2


def _resume_from(trained, tmp_path, toy_dir, change):
    """A copy of the trained run whose last.pt is replaced by ``change(ckpt)``; the resume's error."""
    from nmt.checkpoint import load_checkpoint
    from nmt.training.loop import fit
    run_dir = tmp_path / "run"
    shutil.copytree(trained, run_dir)
    ckpt = {k: v for k, v in load_checkpoint(str(run_dir / "checkpoints" / "last.pt")).items()}
    ckpt = change(ckpt) or ckpt
    (run_dir / "checkpoints" / "last.pt").unlink()
    torch.save(ckpt, run_dir / "checkpoints" / "last.pt")
    before = (run_dir / "checkpoints" / "best.pt").read_bytes()
    with pytest.raises(Exception) as e:
        fit(compose(toy_overrides(toy_dir, ["train.max_steps=6", "train.valid_every=4", "optim.lr=3e-3",
                                            "resume=true"])), str(run_dir))
    assert (run_dir / "checkpoints" / "best.pt").read_bytes() == before
    OUTCOMES["refused"] += 1
    return str(e.value)


def test_resume_from_nan_weights_is_refused(trained, tmp_path, toy_dir):
    """Case 4."""
    def poison(ckpt):
        ckpt["model"] = {k: v.clone() for k, v in ckpt["model"].items()}
        next(iter(ckpt["model"].values())).fill_(float("nan"))
    assert "NaN or infinite" in _resume_from(trained, tmp_path, toy_dir, poison)


def test_resume_from_another_runs_checkpoint_is_refused(trained, tmp_path, toy_dir):
    """Case 5: a last.pt of another run (another run id; or, without one, other settings)."""
    def foreign(ckpt):
        ckpt["train_state"] = {**ckpt["train_state"], "run_id": "0" * 32}
    assert "belongs to another run" in _resume_from(trained, tmp_path / "a", toy_dir, foreign)

    def other_settings(ckpt):
        ckpt["train_state"] = {k: v for k, v in ckpt["train_state"].items() if k != "run_id"}
        ckpt["config"] = {**ckpt["config"], "data": {**ckpt["config"]["data"],
                                                     "spm": {**ckpt["config"]["data"]["spm"], "vocab_size": 150}}}
    assert "vocab_size" in _resume_from(trained, tmp_path / "b", toy_dir, other_settings)


def test_init_from_with_other_sentencepiece_settings_is_refused(trained, toy_dir, tmp_path):
    """Case 6: the checkpoint's sentencepiece model is what fine-tuning uses; a conflicting
    data.spm.vocab_size would be recorded in config.yaml as if it had run."""
    proc = train_cli(toy_dir, tmp_path / "tuned", f"train.init_from={trained}/checkpoints/last.pt",
                     "data.spm.vocab_size=150")
    refused((proc.returncode, proc.stdout, proc.stderr), "data.spm.vocab_size=150", "200")
    assert not (tmp_path / "tuned").exists()


def test_score_warns_when_it_cuts_a_long_source(work):
    """Case 7: as nmt-translate does."""
    run_dir, data = work
    (data / "long.txt").write_text("the " * 400 + "\n")
    (data / "t.txt").write_text("a\n")
    code, out, err = call("score", [run_dir, "-s", data / "long.txt", "-t", data / "t.txt"])
    handled((code, out, err))
    assert "long.txt: line 1:" in err and "truncated to 64" in err


def test_score_refuses_an_endless_target(work):
    """Case 17 (scoring): a target longer than any output is refused, not scored for minutes."""
    run_dir, data = work
    (data / "s.txt").write_text("a\n")
    (data / "t.txt").write_text("the " * 3000 + "\n")
    refused(call("score", [run_dir, "-s", data / "s.txt", "-t", data / "t.txt"]), "target line 1",
            "longer than any translation")


def test_a_prefix_the_vocabulary_cannot_spell(work):
    """Case 8: the output could not start with it; refused with the line and the characters."""
    import nmt
    run_dir, data = work
    (data / "prefix.txt").write_text("\n" * 5 + "\u00e9\u4e2d\U0001f642 x\n")
    err = refused(call("translate", [run_dir, "-i", data / "in.txt", "--prefix-file", data / "prefix.txt"]),
                  "prefix of line 6", "no piece for")
    assert "\u4e2d" in err
    with pytest.raises(ValueError, match="prefix of line 1.*no piece for"):
        nmt.load(str(run_dir)).translate(["a"], prefix=["\u4e2d"])


def test_hostile_constraint_files(work):
    """Case 8 for lexical constraints: a phrase the vocabulary cannot spell, invalid UTF-8, a file of
    the wrong length, phrases longer than any output: refused, naming the file or line. Phrases no
    translation can hold (no 1-gram may repeat, the phrase repeats one) are handled: every line gets
    its translation, the line is warned about and flagged."""
    import nmt
    run_dir, data = work
    args = [run_dir, "-i", data / "in.txt", "--constraints", data / "terms.txt"]
    (data / "terms.txt").write_text("\n" * 5 + "x\t\u4e2d\n")
    refused(call("translate", args), "constraints of line 6", "no piece for")
    (data / "terms.txt").write_bytes(b"\n\nab\xff\n\n\n\n")
    refused(call("translate", args), "terms.txt:3", "not valid UTF-8")
    (data / "terms.txt").write_text("a\n" * 7)
    refused(call("translate", args), "--constraints", "more lines than the input (6)")
    (data / "terms.txt").write_text("a " * 3000 + "\n" * 6)
    refused(call("translate", args), "constraints of line 1", "longer than any output")
    (data / "terms.txt").write_text("\n" + "\t".join(["a"] * 65) + "\n" * 5)
    refused(call("translate", args), "constraints of line 2", "65 phrases; at most 64 per line")
    words = (data / "ref.txt").read_text().split()
    (data / "terms.txt").write_text(f"{words[1]} {words[1]}\n" + "\n" * 5)
    code, out, err = call("translate", [*args, "--no-repeat-ngram", "1", "--output-format", "jsonl"])
    records = [json.loads(line) for line in handled((code, out, err)).splitlines()]
    assert len(records) == 6 and records[0]["constraints_met"] is False and records[0]["translation"]
    assert "line 1: search found no translation holding all of its constraints" in err
    model = nmt.load(str(run_dir))
    with pytest.raises(TypeError, match=r"constraints\[0\] must be a list of phrases, not a single str"):
        model.translate(["a"], constraints=["x"])
    with pytest.raises(ValueError, match="constraints has 1 entries for 2 lines"):
        model.translate(["a", "b"], constraints=[["x"]])
    OUTCOMES["refused"] += 2


def test_api_refuses_what_the_cli_and_server_refuse(work):
    """Case 9: a line break inside a line, an unreachable min_len, a NaN length."""
    import nmt
    model = nmt.load(str(work[0]))
    for kwargs, match in (({}, "holds a line break"), ({"min_len": 10 ** 9}, r"min.len.*1000000000"), ({"min_len": 1000}, "min_len 1000 exceeds"),
                          ({"max_len_a": float("nan")}, "max_len_a must be a finite number")):
        with pytest.raises(ValueError, match=match):
            model.translate(["a b\nc d"] if not kwargs else ["a b"], **kwargs)
    OUTCOMES["refused"] += 3


def test_api_cuts_an_endless_line_with_a_warning(work):
    """Case 17: the API cuts input to the model's data.max_len as the programs do."""
    import nmt
    model = nmt.load(str(work[0]))
    with pytest.warns(UserWarning, match="line 1: .* pieces, truncated to 64"):
        out = model.translate(["the dog " * 20000], greedy=True)
    assert len(out) == 1
    OUTCOMES["handled"] += 1


def test_serve_refuses_an_empty_api_key(work, monkeypatch):
    """Case 10."""
    pytest.importorskip("uvicorn")
    refused(call("serve", [work[0], "--api-key", ""]), "--api-key is empty")
    monkeypatch.setenv("NMT_API_KEY", " ")
    refused(call("serve", [work[0]]), "$NMT_API_KEY is empty")


def test_server_requests_that_are_not_text(work):
    """Cases 10 and 16: /v1/model names no server path; a lone surrogate, JSON nested too deeply,
    a prefix the model cannot spell: each a 4xx JSON error."""
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    import nmt
    from nmt.serve import create_app
    with TestClient(create_app(nmt.load(str(work[0])))) as client:
        info = client.get("/v1/model").json()
        assert str(work[0]) not in json.dumps(info) and info["checkpoint"] == "best.pt"
        for body, status, named in (('{"text": ["a \\ud800 b"]}', 400, "lone surrogate"),
                                    ("[" * 50000 + "]" * 50000, 400, "nested too deeply"),
                                    ('{"text": ["a"], "prefix": ["\u4e2d"]}', 422, "no piece for"),
                                    ('{"text": ["a\\nb"]}', 422, "line break")):
            r = client.post("/v1/translate", content=body.encode("utf-8", "surrogatepass"),
                            headers={"content-type": "application/json"})
            assert r.status_code == status and named in r.json()["error"], (body[:40], r.text)
    OUTCOMES["refused"] += 4


def test_length_options_have_an_upper_bound(work):
    """Case 13: --max-len-a 1e9 translates (outputs bounded by MAX_OUTPUT_LEN); --threads 100000 is
    refused before torch is asked for them."""
    from nmt.search.options import MAX_OUTPUT_LEN
    run_dir, data = work
    out = handled(call("translate", [run_dir, "-i", data / "in.txt", "--greedy", "--max-len-a", "1e9"]))
    assert len(out.splitlines()) == 6 and all(len(line.split()) <= MAX_OUTPUT_LEN for line in out.splitlines())
    for program, extra in (("translate", ["-i", data / "in.txt"]),
                           ("score", ["-s", data / "in.txt", "-t", data / "ref.txt"])):
        refused(call(program, [run_dir, *extra, "--threads", "100000"]), "--threads 100000",
                "threads per CPU")


def test_an_endless_input_line_is_refused_while_streaming(work):
    """Case 14: /dev/zero is one line without end; at most 1 MiB of it is ever read into memory."""
    refused(call("translate", [work[0], "-i", "/dev/zero"]), "/dev/zero:1", "longer than 1 MiB")


@pytest.mark.parametrize("output,named", [("sub/../x.txt", "does not exist"), ("newdir/", "names a directory"),
                                          ("", "empty")])
def test_output_paths_are_checked_before_any_work(work, monkeypatch, tmp_path, output, named):
    """Case 18: refused before the model loads (nothing in the working directory either)."""
    from nmt import checkpoint
    run_dir, data = work
    monkeypatch.chdir(tmp_path)

    def never(*a, **k):
        raise AssertionError("the model was loaded before the output was checked")
    monkeypatch.setattr(checkpoint, "load_model", never)
    refused(call("translate", [run_dir, "-i", data / "in.txt", "-o", output]), named)
    assert list(tmp_path.iterdir()) == [] or all(p.name in ("run", "data") for p in tmp_path.iterdir())


def test_references_of_another_length_are_refused_before_translating(work, monkeypatch):
    """Case 18: --ref with the wrong line count is about the reference, found before the work."""
    from nmt import translator
    run_dir, data = work
    (data / "short.txt").write_text("one line\n")
    monkeypatch.setattr(translator.Translator, "translate_ids", lambda *a, **k: pytest.fail("translated"))
    refused(call("translate", [run_dir, "-i", data / "in.txt", "--ref", data / "short.txt"]),
            "--ref", "short.txt has 1 lines but the input", "has 6")


def test_a_sweep_is_checked_before_its_first_job(toy_dir, tmp_path):
    """Case 19: job 1's bad value stops the sweep before job 0 trains."""
    proc = run(bin_path("nmt-train"), "-m", *toy_overrides(toy_dir, ["train.max_steps=2,-5", "train.valid_every=2"]),
               check=False, cwd=tmp_path)
    refused((proc.returncode, proc.stdout, proc.stderr), "job 1", "train.max_steps=-5", "no job was started")
    assert not (tmp_path / "multirun").exists()


def test_a_promised_checkpoint_is_written_when_validation_is_interrupted(toy_dir, tmp_path, monkeypatch):
    """Case 20: SIGTERM (save and stop), then Ctrl-C during the validation: last.pt holds the updates."""
    from nmt.checkpoint import load_checkpoint
    from nmt.training import loop

    def validation_interrupted(run):
        os.kill(os.getpid(), signal.SIGTERM)  # the loop's handler: "saving last.pt and stopping"
        raise KeyboardInterrupt  # the second signal, while validating
    monkeypatch.setattr(loop, "run_validation", validation_interrupted)
    with pytest.raises(KeyboardInterrupt):
        loop.fit(compose(toy_overrides(toy_dir, ["train.max_steps=20", "train.valid_every=3"])), str(tmp_path / "r"))
    assert load_checkpoint(str(tmp_path / "r" / "checkpoints" / "last.pt"))["train_state"]["step"] == 3
    OUTCOMES["handled"] += 1


def _sigcaught(pid: int, sig: int) -> bool:
    with open(f"/proc/{pid}/status") as f:
        mask = next(int(line.split()[1], 16) for line in f if line.startswith("SigCgt:"))
    return bool(mask >> (sig - 1) & 1)


@pytest.mark.parametrize("program", ["translate", "evaluate", "score", "average", "serve", "data", "train"])
def test_ctrl_c_at_the_first_instant_of_every_program(work, program, tmp_path):
    """Case 12: Ctrl-C as soon as the program's own handling is in place (its entry point catches
    SIGTERM: read from /proc, not timed): one line, status 130, no traceback, nothing written."""
    run_dir, data = work
    args = {"translate": [run_dir, "-i", data / "in.txt", "-o", tmp_path / "o.txt"],
            "evaluate": [data / "ref.txt", data / "ref.txt"],
            "score": [run_dir, "-s", data / "in.txt", "-t", data / "ref.txt"],
            "average": [run_dir / "checkpoints" / "best.pt", "-o", tmp_path / "a.pt"], "serve": [run_dir, "--port", "0"],
            "data": ["toy", "--out", tmp_path / "toy"], "train": ["experiment=toy", f"run_dir={tmp_path / 'r'}"]}
    proc = subprocess.Popen([bin_path(f"nmt-{program}"), *map(str, args[program])], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    while proc.poll() is None and not _sigcaught(proc.pid, signal.SIGTERM):
        pass
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert proc.returncode == 130 and f"nmt-{program}: interrupted" in err, (proc.returncode, err)
    assert not (tmp_path / "o.txt").exists() and not (tmp_path / "a.pt").exists()
    assert not any(p.name.endswith(".part") for p in tmp_path.rglob("*"))
    OUTCOMES["refused"] += 1


def test_sigterm_while_translating_to_a_file(work, tmp_path):
    """Case 11: SIGTERM while the output is written: its temporary file is removed, one line says
    so, status 143."""
    run_dir, data = work
    big = tmp_path / "big.txt"
    big.write_text((data / "in.txt").read_text() * 400)
    out = tmp_path / "out" / "o.txt"
    out.parent.mkdir()
    proc = subprocess.Popen([bin_path("nmt-translate"), str(run_dir), "-i", str(big), "-o", str(out), "--beam", "8",
                             "--chunk-size", "50"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while proc.poll() is None and not any(p.name.endswith(".part") for p in out.parent.iterdir()):
        pass
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143 and "Traceback" not in err, (proc.returncode, err)
    assert "nmt-translate: terminated (SIGTERM)" in err and "o.txt not written" in err
    assert list(out.parent.iterdir()) == []
    OUTCOMES["refused"] += 1


def test_data_copies_multi30k_from_a_folder_of_gzip_or_plain_files(multi30k_dir, tmp_path):
    """Case 21: ``--from`` works with the corpus as distributed (.gz) and with plain text files."""
    handled(call("data", ["multi30k", "--from", multi30k_dir, "--out", tmp_path / "gz"]))
    assert gzip.decompress((tmp_path / "gz" / "val.de.gz").read_bytes()) == \
        gzip.decompress((multi30k_dir / "val.de.gz").read_bytes())
    plain = tmp_path / "plain"
    plain.mkdir()
    for path in multi30k_dir.glob("*.gz"):
        (plain / path.name[:-3]).write_bytes(gzip.decompress(path.read_bytes()))
    handled(call("data", ["multi30k", "--from", plain, "--out", tmp_path / "fromplain"]))
    assert gzip.decompress((tmp_path / "fromplain" / "train.en.gz").read_bytes()) == (plain / "train.en").read_bytes()
    refused(call("data", ["multi30k", "--from", tmp_path / "nowhere", "--out", tmp_path / "none"]), "--from")
    assert not (tmp_path / "none").exists()


def test_the_start_up_log_names_the_precision(trained):
    """Case 24: the precision a run trains in is said with the device and threads."""
    log = (trained / "train.log").read_text()
    assert re.search(r"device cpu, \d+ torch threads .*training in (fp32|bf16) \(train.precision=", log), log[:2000]
    OUTCOMES["handled"] += 1
