import math

import pytest
import torch

from nmt.training.schedules import LRSchedule, build_optimizer, teacher_forcing_ratio


def test_constant():
    assert teacher_forcing_ratio(0) == 1.0
    assert teacher_forcing_ratio(10**6, "constant", start=0.75) == 0.75


def test_linear():
    kw = dict(schedule="linear", start=1.0, end=0.2, decay_steps=100)
    assert teacher_forcing_ratio(0, **kw) == 1.0
    assert teacher_forcing_ratio(50, **kw) == pytest.approx(0.6)
    assert teacher_forcing_ratio(100, **kw) == pytest.approx(0.2)
    assert teacher_forcing_ratio(10**5, **kw) == pytest.approx(0.2)


def test_exponential():
    kw = dict(schedule="exponential", start=1.0, end=0.0, k=0.99)
    assert teacher_forcing_ratio(0, **kw) == 1.0
    assert teacher_forcing_ratio(100, **kw) == pytest.approx(0.99 ** 100)
    with pytest.raises(ValueError, match=r"teacher_forcing.k=1.5: must be in \(0, 1\)"):
        teacher_forcing_ratio(1, "exponential", k=1.5)


def test_inverse_sigmoid_bengio():
    kw = dict(schedule="inverse_sigmoid", start=1.0, end=0.0, k=100)
    assert teacher_forcing_ratio(0, **kw) == pytest.approx(100 / 101)
    assert teacher_forcing_ratio(500, **kw) == pytest.approx(100 / (100 + math.exp(5)))
    assert teacher_forcing_ratio(10**7, **kw) == 0.0  # no overflow far out
    values = [teacher_forcing_ratio(s, **kw) for s in range(0, 2000, 100)]
    assert values == sorted(values, reverse=True)
    with pytest.raises(ValueError, match="teacher_forcing.k=0.5: must be >= 1"):
        teacher_forcing_ratio(1, "inverse_sigmoid", k=0.5)


def test_unknown_schedule():
    with pytest.raises(ValueError, match="not a valid TfSchedule"):
        teacher_forcing_ratio(1, "cosine")


def _opt(lr=1.0):
    return build_optimizer([torch.nn.Parameter(torch.zeros(1))], "adam", lr)


def test_inverse_sqrt_warmup_then_decay():
    opt = _opt(1.0)
    s = LRSchedule(opt, "inverse_sqrt", warmup_steps=100)
    assert s.lr_at(0) == pytest.approx(0.01)
    assert s.lr_at(99) == pytest.approx(1.0)
    assert s.lr_at(400) == pytest.approx(0.5)


def test_plateau_on_bleu_and_state_roundtrip():
    opt = _opt(1.0)
    s = LRSchedule(opt, "plateau", metric="bleu", factor=0.5, patience=1)
    for bleu in (10, 12, 11, 11.5):
        s.step_valid(bleu, 0.0)
        s.step_update(1)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.5)
    t = LRSchedule(_opt(1.0), "plateau")
    t.load_state_dict(s.state_dict())
    assert t.state_dict() == s.state_dict()


def test_bad_names_are_refused():
    with pytest.raises(ValueError, match="not a valid OptimizerName"):
        build_optimizer([torch.nn.Parameter(torch.zeros(1))], "lion", 1.0)
    with pytest.raises(ValueError, match="not a valid Scheduler"):
        LRSchedule(_opt(), "cosine")
