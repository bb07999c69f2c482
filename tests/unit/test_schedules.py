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
        LRSchedule(_opt(), "step_decay")


def test_linear_and_cosine_decay_to_the_floor_at_the_end_of_the_budget():
    for kind, middle in (("linear", 0.5), ("cosine", 0.5)):
        s = LRSchedule(_opt(1.0), kind, warmup_steps=10, min_lr=0.0, budget_steps=110)
        assert s.lr_at(0) == pytest.approx(0.1) and s.lr_at(9) == pytest.approx(1.0)  # warm-up
        assert s.lr_at(55) == pytest.approx(middle)
        assert s.lr_at(110) == pytest.approx(0.0) and s.lr_at(500) == pytest.approx(0.0)
        rates = [s.lr_at(k) for k in range(10, 111)]
        assert rates == sorted(rates, reverse=True)
    cos = LRSchedule(_opt(1.0), "cosine", min_lr=0.0, budget_steps=100)
    assert cos.lr_at(25) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    # a time budget: whichever budget is spent first sets the progress; minutes survive a resume
    timed = LRSchedule(_opt(1.0), "linear", min_lr=0.1, budget_steps=1000, budget_minutes=10)
    timed.step_update(100, minutes=7.5)
    assert timed.lr_at(100) == pytest.approx(0.1 + 0.9 * 0.25)
    again = LRSchedule(_opt(1.0), "linear", min_lr=0.1, budget_steps=1000, budget_minutes=10)
    again.load_state_dict(timed.state_dict())
    assert again.lr_at(100) == timed.lr_at(100)


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_a_decay_fraction_holds_the_rate_then_decays_over_the_last_part(kind):
    s = LRSchedule(_opt(1.0), kind, min_lr=0.0, budget_steps=100, decay_fraction=0.2)
    assert [s.lr_at(k) for k in (0, 40, 80)] == [1.0, 1.0, 1.0]  # stable for the first 80 %
    assert s.lr_at(90) == pytest.approx(0.5) and s.lr_at(100) == pytest.approx(0.0)
    rates = [s.lr_at(k) for k in range(80, 101)]
    assert rates == sorted(rates, reverse=True) and len(set(rates)) == 21


def test_a_decay_without_a_budget_is_refused():
    from nmt.config import Config, validate
    from nmt.errors import ConfigError
    cfg = Config()
    cfg.optim.scheduler = "cosine"
    with pytest.raises(ConfigError, match="optim.scheduler"):
        validate(cfg)
    cfg.train.max_minutes = 20
    validate(cfg)
