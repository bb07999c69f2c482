"""scripts/ab_speed.py: two variants train side by side, one update each per pair, alternating, and
a hook is on around its own variant's updates only."""
import importlib.util

from ..conftest import ROOT, compose, toy_overrides


def _ab_speed():
    spec = importlib.util.spec_from_file_location("ab_speed", ROOT / "scripts" / "ab_speed.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_paired_updates_alternate_and_hooks_wrap_only_their_variant(toy_dir, monkeypatch):
    ab = _ab_speed()
    monkeypatch.setattr(ab, "compose", lambda experiment, data, overrides: (
        compose(toy_overrides(toy_dir, ["train.max_steps=100", *overrides])), None))
    calls = []
    real_update = ab.run_update

    def update(run, group):
        calls.append(("update", run.cfg.train.label_smoothing))
        return real_update(run, group)

    monkeypatch.setattr(ab, "run_update", update)
    hooks = {"B": lambda on: calls.append(("hook", on))}
    out = ab.paired("toy", "unused", {"A": [], "B": ["train.label_smoothing=0.2"]}, updates=3, warmup=1, hooks=hooks)
    updates = [smoothing for kind, smoothing in calls if kind == "update"]
    assert updates == [0.0, 0.2, 0.2, 0.0, 0.0, 0.2, 0.2, 0.0]  # AB, BA, AB, BA (the tiny settings: no smoothing)
    for k, call in enumerate(calls):  # B's hook switched on right before each of B's updates, off after
        if call == ("update", 0.2):
            assert calls[k - 1] == ("hook", True) and calls[k + 1] == ("hook", False)
    assert calls.count(("hook", True)) == 4
    assert set(out["variants"]) == {"A", "B"} and out["variants"]["B"]["overrides"] == ["train.label_smoothing=0.2"]
    q1, median, q3 = out["time_ratio_quartiles"]
    assert 0 < q1 <= median <= q3
