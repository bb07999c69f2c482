"""Threads on a shared machine: the programs wait passively, a busy CPU is noticed and reported."""

import pytest

from nmt.runtime import available_cpus, busy_cpus, check_busy, pick_threads


def test_default_threads_are_the_cpus_this_process_may_use(monkeypatch):
    before = __import__("torch").get_num_threads()
    try:
        assert pick_threads(0) == min(8, available_cpus())
        monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
        assert pick_threads(0) == max(1, min(8, available_cpus() // 2))
        assert pick_threads(3) == 3
    finally:
        __import__("torch").set_num_threads(before)


def test_busy_cpus_reads_what_other_work_took_from_proc_stat(monkeypatch):
    """Two samples of /proc/stat: cpu0 70% busy between them, cpu1 idle, cpu2 not this process's."""
    import io

    from nmt import runtime
    samples = iter(["cpu  0 0 0 0\ncpu0 0 0 0 1000 0\ncpu1 0 0 0 1000 0\ncpu2 0 0 0 0 0\n",
                    "cpu  0 0 0 0\ncpu0 60 0 10 1030 0\ncpu1 0 0 0 1100 0\ncpu2 100 0 0 0 0\n"])
    monkeypatch.setattr(runtime, "open", lambda path: io.StringIO(next(samples)), raising=False)
    monkeypatch.setattr(runtime.time, "sleep", lambda seconds: None)
    assert busy_cpus(cpus=[0, 1]) == pytest.approx(0.7)


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
