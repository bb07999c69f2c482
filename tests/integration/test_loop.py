import math
import os

import pytest
import torch

from nmt.checkpoint import CheckpointError, load_checkpoint
from nmt.training import update
from nmt.training.loop import TrainingError, fit
from nmt.training.loss import Objective
from nmt.training.metrics import read_metrics
from nmt.training.update import train_step

from ..conftest import compose, toy_overrides
from ..unit.helpers import collate, tiny_model


def cfg_for(toy_dir, *extra):
    return compose(toy_overrides(toy_dir, ["train.valid_every=10", "optim.lr=3e-3", "train.max_tokens=1500", *extra]))


RANDOMNESS = ["encoder.dropout=0.2", "decoder.dropout=0.2", "teacher_forcing=linear",
              "teacher_forcing.decay_steps=20", "teacher_forcing.feed=sample", "train.softmax_samples=64"]


def params(run_dir, name="last.pt"):
    return load_checkpoint(os.path.join(run_dir, "checkpoints", name))["model"]


def test_resume_continues_exactly(toy_dir, tmp_path):
    """A run cut mid-epoch, off the validation grid, and resumed across an epoch's end equals the
    uninterrupted one: raw and averaged (EMA) weights, with dropout, scheduled sampling and a sampled
    softmax drawn from the RNG and a teacher-forcing schedule; the log continues without gaps or repeats."""
    whole, split = str(tmp_path / "whole"), str(tmp_path / "split")
    ema = "train.ema_decay=0.99"
    summary = fit(cfg_for(toy_dir, "train.max_steps=24", ema, *RANDOMNESS), whole)
    assert summary["steps"] == 24 and summary["epochs"] >= 1  # crosses an epoch boundary
    fit(cfg_for(toy_dir, "train.max_steps=13", ema, *RANDOMNESS), split)  # stops mid-epoch, off the valid grid
    ckpt = load_checkpoint(os.path.join(split, "checkpoints", "last.pt"))
    assert ckpt["train_state"]["step"] == 13
    fit(cfg_for(toy_dir, "train.max_steps=24", "resume=true", "train.plots=true", ema, *RANDOMNESS), split)
    a = load_checkpoint(os.path.join(whole, "checkpoints", "last.pt"))
    b = load_checkpoint(os.path.join(split, "checkpoints", "last.pt"))
    for key in ("model", "train_model"):  # the averaged weights (saved as the model) and the raw ones
        for k in a[key]:
            assert torch.equal(a[key][k], b[key][k]), (key, k)
    assert any(not torch.equal(a["model"][k], a["train_model"][k]) for k in a["model"])  # averaged != raw
    assert os.path.exists(os.path.join(split, "checkpoints", "best.pt"))
    assert sorted(os.listdir(os.path.join(split, "plots")))
    steps = [r["step"] for r in read_metrics(os.path.join(split, "metrics.jsonl")) if r["kind"] == "train"]
    assert steps == list(range(1, 25))  # resumed log continues without gaps or repeats


def test_resume_refuses_changed_keys_and_existing_runs(toy_dir, tmp_path):
    run = str(tmp_path / "r")
    fit(cfg_for(toy_dir, "train.max_steps=3"), run)
    with pytest.raises(TrainingError, match="already holds a training run"):
        fit(cfg_for(toy_dir, "train.max_steps=3"), run)
    with pytest.raises(TrainingError, match=r"optim.lr.*encoder.hidden_size|encoder.hidden_size.*optim.lr"):
        fit(cfg_for(toy_dir, "train.max_steps=6", "resume=true", "optim.lr=1e-2", "encoder.hidden_size=16"), run)
    fit(cfg_for(toy_dir, "train.max_steps=6", "resume=true", "train.patience=3"), run)  # whitelisted
    assert load_checkpoint(os.path.join(run, "checkpoints", "last.pt"))["train_state"]["step"] == 6
    with pytest.raises(TrainingError, match="no checkpoint"):
        fit(cfg_for(toy_dir, "resume=true"), str(tmp_path / "empty"))


def test_corrupted_last_checkpoint_points_at_previous_good_one(toy_dir, tmp_path):
    run = str(tmp_path / "r")
    fit(cfg_for(toy_dir, "train.max_steps=20", "train.valid_every=10"), run)
    last = os.path.join(run, "checkpoints", "last.pt")
    os.unlink(last)  # it is a hard link: do not truncate its siblings
    with open(last, "wb") as f:
        f.write(b"PK\x03\x04 not a whole zip file")
    with pytest.raises(TrainingError) as e:
        fit(cfg_for(toy_dir, "train.max_steps=30", "resume=true"), run)
    assert "last.pt" in str(e.value) and "step_20.pt" in str(e.value)


def test_train_step_skips_non_finite_updates():
    model = tiny_model()
    b = collate([[5, 6, 7], [8, 9]], [[10, 11], [12]], [0, 1])
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    with torch.no_grad():
        model.decoder.output.bias[5] = float("inf")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    loss, nll, tokens, norm, applied, _ = train_step(Objective(model), [b], opt, tf_ratio=1.0)
    assert not applied and not math.isfinite(norm) and tokens == 5
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k  # not a single parameter moved (inf == inf; any NaN would fail)


def test_fp16_loss_scaling_skips_an_overflow_halves_the_scale_and_unscales_the_gradients():
    from nmt.config import Precision
    model = tiny_model()
    b = collate([[5, 6, 7], [8, 9]], [[10, 11], [12]], [0, 1])
    frozen = torch.optim.SGD(model.parameters(), lr=0.0)
    train_step(Objective(model), [b], frozen, tf_ratio=1.0, clip_norm=0.0)  # fp32 gradients, for reference
    reference = {n: p.grad.clone() for n, p in model.named_parameters()}
    cpu = torch.device("cpu")
    scaler = torch.amp.GradScaler(cpu.type, init_scale=1024.0)
    _, _, _, norm, applied, _ = train_step(Objective(model), [b], frozen, 1.0, clip_norm=0.0,
                                        precision=Precision.fp16, scaler=scaler)
    assert applied and math.isfinite(norm) and scaler.get_scale() == 1024.0
    for n, p in model.named_parameters():  # unscaled: fp32's gradients, to fp16's precision
        torch.testing.assert_close(p.grad, reference[n], rtol=2e-2, atol=2e-3, msg=n)
    sgd = torch.optim.SGD(model.parameters(), lr=1.0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    huge = torch.amp.GradScaler(cpu.type, init_scale=2.0 ** 120)  # scaled gradients overflow fp16 (and fp32)
    loss, _, _, norm, applied, _ = train_step(Objective(model), [b], sgd, 1.0, precision=Precision.fp16, scaler=huge)
    assert not applied and math.isfinite(loss) and huge.get_scale() == 2.0 ** 119
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_fp16_training_resumes_exactly_with_its_loss_scale(toy_dir, tmp_path):
    whole, split = str(tmp_path / "whole"), str(tmp_path / "split")
    fp16 = "train.precision=fp16"
    fit(cfg_for(toy_dir, "train.max_steps=12", fp16), whole)
    fit(cfg_for(toy_dir, "train.max_steps=7", fp16), split)
    assert "scaler" in load_checkpoint(os.path.join(split, "checkpoints", "last.pt"))
    fit(cfg_for(toy_dir, "train.max_steps=12", "resume=true", fp16), split)
    a = load_checkpoint(os.path.join(whole, "checkpoints", "last.pt"))
    b = load_checkpoint(os.path.join(split, "checkpoints", "last.pt"))
    assert a["scaler"] == b["scaler"] and a["train_state"]["overflows"] == b["train_state"]["overflows"]
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    records = [r for r in read_metrics(os.path.join(whole, "metrics.jsonl")) if r["kind"] == "train"]
    assert all("loss_scale" in r for r in records)


def test_training_stops_after_k_non_finite_updates(toy_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(update, "train_step", lambda *a, **k: (float("nan"), float("nan"), 10, float("nan"), False, 0.0))
    with pytest.raises(TrainingError, match="step 3: 3 non-finite"):
        fit(cfg_for(toy_dir, "train.max_nonfinite=3", "train.max_steps=50"), str(tmp_path / "nan"))


def test_accumulated_gradients_equal_one_large_batch_and_clipping_caps_the_update():
    model = tiny_model()
    a = collate([[5, 6, 7], [8, 9]], [[10, 11], [12, 13]], [0, 1])  # 6 target tokens with EOS
    b = collate([[14, 15], [16, 17, 18, 19]], [[20], [21, 22, 23]], [2, 3])  # 6 as well
    both = collate([[5, 6, 7], [8, 9], [14, 15], [16, 17, 18, 19]], [[10, 11], [12, 13], [20], [21, 22, 23]],
                   [0, 1, 2, 3])
    frozen = torch.optim.SGD(model.parameters(), lr=0.0)
    _, _, tokens, norm_acc, _, _ = train_step(Objective(model), [a, b], frozen, tf_ratio=1.0, clip_norm=0.0)
    acc = {n: p.grad.clone() for n, p in model.named_parameters()}
    _, _, tokens_big, norm_big, _, _ = train_step(Objective(model), [both], frozen, tf_ratio=1.0, clip_norm=0.0)
    assert tokens == tokens_big == 12 and norm_acc == pytest.approx(norm_big, rel=1e-5)
    for n, p in model.named_parameters():
        torch.testing.assert_close(acc[n], p.grad, rtol=1e-5, atol=1e-7, msg=n)
    # clipping: the applied gradient (and with SGD lr=1 the parameter change) has the threshold's norm
    before = [p.detach().clone() for p in model.parameters()]
    sgd = torch.optim.SGD(model.parameters(), lr=1.0)
    _, _, _, pre_clip, applied, _ = train_step(Objective(model), [both], sgd, tf_ratio=1.0, clip_norm=0.01)
    assert applied and pre_clip > 0.01
    step = torch.sqrt(sum(((p.detach() - q) ** 2).sum() for p, q in zip(model.parameters(), before)))
    assert float(step) == pytest.approx(0.01, rel=1e-3)


def test_clipping_is_logged_per_update_and_per_validation(toy_dir, tmp_path):
    run = str(tmp_path / "acc")
    fit(cfg_for(toy_dir, "train.max_steps=4", "train.valid_every=4", "train.accum_steps=2",
                "train.clip_grad_norm=0.001"), run)
    records = read_metrics(os.path.join(run, "metrics.jsonl"))
    train = [r for r in records if r["kind"] == "train"]
    assert len(train) == 4 and all(r["clipped"] == 1 and r["grad_norm"] > 0.001 for r in train)
    assert [r["clipped_share"] for r in records if r["kind"] == "valid"] == [1.0]


def test_a_finite_blow_up_warns_then_stops_keeping_the_last_good_checkpoint(toy_dir, tmp_path, monkeypatch, caplog):
    losses = iter([5.0] * 12 + [5e3] * 10)
    real = update.train_step

    def scripted(*a, **k):
        out = real(*a, **k)
        loss = next(losses)
        return loss * out[2], loss * out[2], out[2], out[3], True, out[5]

    monkeypatch.setattr(update, "train_step", scripted)
    with pytest.raises(TrainingError, match="blew up for 3 updates in a row"):
        fit(cfg_for(toy_dir, "train.max_steps=50", "train.valid_every=10", "train.max_blowups=3"),
            str(tmp_path / "boom"))
    assert "training is diverging" in caplog.text
    assert load_checkpoint(os.path.join(tmp_path, "boom", "checkpoints", "last.pt"))["train_state"]["step"] == 10


def test_a_full_disk_keeps_the_previous_checkpoints(toy_dir, tmp_path, monkeypatch):
    run = str(tmp_path / "full")
    fit(cfg_for(toy_dir, "train.max_steps=10", "train.valid_every=10"), run)
    last = os.path.join(run, "checkpoints", "last.pt")
    good = open(last, "rb").read()

    def no_space(obj, f):
        f.write(b"PK\x03\x04 partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", no_space)
    with pytest.raises(CheckpointError, match="disk is full.*intact"):
        fit(cfg_for(toy_dir, "train.max_steps=20", "train.valid_every=5", "resume=true"), run)
    monkeypatch.undo()
    assert open(last, "rb").read() == good
    assert not [p for p in os.listdir(os.path.join(run, "checkpoints")) if ".tmp" in p]
    assert not os.path.exists(os.path.join(run, ".lock"))  # released on the way out


def test_lock_refuses_a_second_owner_and_takes_over_a_dead_ones(tmp_path):
    from nmt.training.rundir import RunDirError, RunLock
    with RunLock(str(tmp_path)):
        with pytest.raises(RunDirError, match=f"pid {os.getpid()}"):
            RunLock(str(tmp_path)).acquire()
    assert not (tmp_path / ".lock").exists()
    host = __import__("socket").gethostname()
    (tmp_path / ".lock").write_text(f'{{"pid": 999999999, "host": "{host}"}}')
    with RunLock(str(tmp_path)):
        pass  # a dead process's lock is taken over


def test_read_only_run_dir_is_refused(tmp_path, monkeypatch):
    from nmt.training import rundir
    monkeypatch.setattr(rundir.os, "access", lambda path, mode: False)
    with pytest.raises(rundir.RunDirError, match="not writable"):
        rundir.check_writable(str(tmp_path / "run"))


def test_resume_at_max_steps_changes_nothing(toy_dir, tmp_path):
    """The stop check comes before an update: resuming a run that reached train.max_steps does no
    update, writes no checkpoint, and leaves every parameter bit for bit."""
    run = str(tmp_path / "r")
    fit(cfg_for(toy_dir, "train.max_steps=5", "train.valid_every=5"), run)
    before = load_checkpoint(os.path.join(run, "checkpoints", "last.pt"))
    summary = fit(cfg_for(toy_dir, "train.max_steps=5", "train.valid_every=5", "resume=true"), run)
    after = load_checkpoint(os.path.join(run, "checkpoints", "last.pt"))
    assert summary["steps"] == 5 and after["train_state"] == before["train_state"]
    assert all(torch.equal(before["model"][k], after["model"][k]) for k in before["model"])


def test_ema_averages_with_a_warm_start_and_applied_restores():
    from nmt.training.ema import EMA
    model = tiny_model()
    ema = EMA(model, decay=0.9)
    start = {k: v.clone() for k, v in ema.state_dict().items()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    ema.update(model, step=1)  # warm start: d = min(0.9, 2 / 11)
    d = 2 / 11
    for k, v in ema.state_dict().items():
        torch.testing.assert_close(v, d * start[k] + (1 - d) * model.state_dict()[k])
    own = {k: v.clone() for k, v in model.state_dict().items()}
    with ema.applied(model):
        for k, v in ema.state_dict().items():
            assert torch.equal(model.state_dict()[k], v)
    for k, v in model.state_dict().items():
        assert torch.equal(v, own[k])


def test_a_tagged_run_trains_validates_and_translates_with_its_tag(toy_dir, tmp_path):
    import nmt
    from nmt.checkpoint import load_model
    run = str(tmp_path / "tagged")
    fit(cfg_for(toy_dir, "train.max_steps=4", "train.valid_every=4", "data.src_prefix='<2tgt>'",
                "data.max_len_ratio=3", "data.dedup=true"), run)
    loaded = load_model(os.path.join(run, "checkpoints", "last.pt"))
    assert loaded.config.data.src_prefix == "<2tgt>"
    assert "<2tgt>" in loaded.tokenizer.src_pieces("<2tgt> the dog")
    cache = os.listdir(os.path.join(run, "cache"))
    assert len(cache) == 1
    model = nmt.load(run)
    assert len(model.translate(["the dog runs.", ""])) == 2
