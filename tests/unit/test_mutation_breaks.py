"""scripts/mutation_check.py's breaks can all be placed (none stale) and name tests that exist; CI
runs the check itself (make mutation)."""
import importlib.util
import sys

import pytest

from ..conftest import ROOT

spec = importlib.util.spec_from_file_location("mutation_check", ROOT / "scripts" / "mutation_check.py")
check = sys.modules["mutation_check"] = importlib.util.module_from_spec(spec)  # dataclasses look it up
spec.loader.exec_module(check)


def test_at_least_fifteen_distinct_breaks():
    assert len(check.BREAKS) >= 15 and len({b.name for b in check.BREAKS}) == len(check.BREAKS)


@pytest.mark.parametrize("b", check.BREAKS, ids=lambda b: b.name)
def test_each_break_is_placed_once_and_names_a_test_that_exists(b):
    source = (ROOT / b.path).read_text()
    broken = check.apply(source, b)
    assert broken != source and b.replace in broken
    file, _, name = b.test.partition("::")
    assert (ROOT / file).exists(), b.test
    assert not name or f"def {name.split('[')[0]}(" in (ROOT / file).read_text(), b.test


def test_a_break_whose_code_changed_is_reported_stale():
    b = check.Break("x", "nmt/training/ema.py", "EMA.update", "min(self.decay, 0.5)", "1", "tests/unit")
    with pytest.raises(LookupError, match="0 places"):
        check.apply((ROOT / b.path).read_text(), b)
    with pytest.raises(LookupError, match="no function"):
        check.apply("def f():\n    return 1\n", check.Break("y", "f.py", "g", "1", "2", "tests/unit"))
