"""Threads on a shared machine: the programs wait passively, a busy CPU is noticed and reported."""
import os
import subprocess
import sys
import time

import pytest

from nmt.runtime import available_cpus, busy_cpus, check_busy, pick_threads


def policy_after(code: str, **env) -> str:
    base = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", code + "; import os; print(os.environ.get('OMP_WAIT_POLICY'))"],
                         env={**base, **env}, capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1]


def test_programs_wait_passively_unless_the_user_chose_a_policy():
    start = "import nmt.cli.{0} as m\ntry:\n    m.main(['--help'])\nexcept SystemExit:\n    pass\nimport os"
    assert policy_after(start.format("translate")) == "PASSIVE"  # set by the program, at its start
    assert policy_after(start.format("train"), OMP_WAIT_POLICY="ACTIVE") == "ACTIVE"  # the user's choice wins
    assert policy_after("import nmt.cli.translate, nmt.cli.train") == "None"  # importing changes nothing
    assert policy_after("import nmt; nmt.load") == "None"  # the library changes no global state


def test_default_threads_are_the_cpus_this_process_may_use(monkeypatch):
    before = __import__("torch").get_num_threads()
    try:
        assert pick_threads(0) == min(8, available_cpus())
        monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
        assert pick_threads(0) == max(1, min(8, available_cpus() // 2))
        assert pick_threads(3) == 3
    finally:
        __import__("torch").set_num_threads(before)


@pytest.mark.skipif(not os.path.exists("/proc/stat") or available_cpus() < 2, reason="needs Linux and 2 CPUs")
def test_a_spinning_process_is_measured_and_reported():
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        assert busy_cpus(seconds=0.3) >= 0.7
        message = check_busy(available_cpus())
        assert message and "train.threads=" in message
    finally:
        spinner.kill()
        spinner.wait()
    assert check_busy(1) is None  # one thread never waits for another


def test_check_busy_reports_by_the_measured_load(monkeypatch):
    """Driven by a measured load, not a clock: two threads on two CPUs with 1.5 of them busy is
    reported (naming the option), with 0.2 busy it is not, and one thread never is."""
    from nmt import runtime
    monkeypatch.setattr(runtime, "available_cpus", lambda: 2)
    monkeypatch.setattr(runtime, "busy_cpus", lambda *a, **k: 1.5)
    message = check_busy(2, key="--threads")
    assert message and "1.5 of this process's 2 CPUs busy" in message and "--threads 1" in message
    monkeypatch.setattr(runtime, "busy_cpus", lambda *a, **k: 0.2)
    assert check_busy(2) is None
    monkeypatch.setattr(runtime, "busy_cpus", lambda *a, **k: 2.0)
    assert check_busy(1) is None
