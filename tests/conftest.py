import functools
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED_MULTI30K = ROOT.parent / "shared" / "data" / "multi30k"

# Small, fast models for the tests; sizes as Hydra overrides and as constructor arguments.
TINY_OVERRIDES = [
    "encoder.embed_size=32", "encoder.hidden_size=32", "decoder.embed_size=32", "decoder.hidden_size=64",
    "decoder.attentional_size=64", "attention.hidden_size=32", "data.spm.vocab_size=200",
    "train.max_tokens=600", "train.tensorboard=false", "train.plots=false", "train.log_every=5",
    "encoder.dropout=0.0", "decoder.dropout=0.0",
]


TIERS = ("unit", "integration", "e2e")  # a test's tier is its folder; the folder gives its marker


def pytest_collection_modifyitems(items):
    for item in items:
        tier = Path(str(item.fspath)).parent.name
        if tier in TIERS:
            item.add_marker(tier)


@pytest.fixture(autouse=True)
def _threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def toy_dir(tmp_path_factory):
    """A small toy corpus: 600 / 40 / 40 pairs."""
    from nmt.data import toy
    d = tmp_path_factory.mktemp("toy")
    toy.generate(str(d), sizes={"train": 600, "valid": 40, "test": 40})
    return d


def compose(overrides=()):
    """The Config object nmt-train would build from these overrides (the package's own composition)."""
    from nmt.config import compose as compose_config
    return compose_config(list(overrides))


def toy_overrides(toy_dir, extra=()):
    return [f"data.train={toy_dir}/train", f"data.valid={toy_dir}/valid", f"data.test={toy_dir}/test",
            "data.generate=null", *TINY_OVERRIDES, *extra]


def bin_path(name: str) -> str:
    return str(Path(sys.executable).parent / name)


@pytest.fixture
def multi30k_dir():
    if not (SHARED_MULTI30K / "train.de.gz").exists():
        pytest.skip(f"Multi30k not found at {SHARED_MULTI30K}")
    return SHARED_MULTI30K


def pytest_terminal_summary(terminalreporter):
    from tests.e2e.helpers import RUNS
    torture = sys.modules.get("tests.e2e.test_torture")
    if torture is not None and any(torture.OUTCOMES.values()):
        terminalreporter.write_line(f"torture outcomes: {torture.OUTCOMES}")
    if RUNS["guarded"]:
        terminalreporter.write_line(f"input-directory checksum guard: {RUNS['guarded']} command-line runs wrapped, "
                                    f"no input file changed")


@functools.cache
def _demo_arguments() -> tuple:
    """``make demo``'s nmt-train arguments, read once from the Makefile (which owns them)."""
    import re
    text = (ROOT / "Makefile").read_text()
    demo = re.search(r"^DEMO\s*=\s*(\S+)", text, re.M).group(1)
    line = re.search(r"^\t\$\(BIN\)/nmt-train (.*)$", text, re.M).group(1)
    return tuple(line.replace("$(DEMO)", demo).split())


def demo_arguments() -> list:
    return list(_demo_arguments())


@pytest.fixture(scope="session")
def toy_run(tmp_path_factory):
    """The session's one trained toy model: ``make demo``'s training (the toy experiment, 350 updates,
    plots, tensorboard, step checkpoints), run once from an empty folder, which the run fills with
    ``data/toy`` and the run directory ``demo_run_dir(work)``. Reused by the demo, CLI, decoding,
    serving and documentation tests; they copy what they change."""
    from tests.e2e.helpers import run
    work = tmp_path_factory.mktemp("toy_run")
    run(bin_path("nmt-train"), *demo_arguments(), cwd=work, timeout=900)
    return work


def demo_run_dir(work):
    return work / next(a for a in demo_arguments() if a.startswith("run_dir=")).split("=", 1)[1]
