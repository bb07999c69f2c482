import os

from nmt.runpaths import RunPaths


def test_the_layout_is_spelled_once_and_a_checkpoint_finds_its_run(tmp_path):
    paths = RunPaths(str(tmp_path / "run"))
    assert paths.last == os.path.join(paths.checkpoints, "last.pt")
    assert paths.best == os.path.join(paths.checkpoints, "best.pt")
    assert paths.step(1200) == os.path.join(paths.checkpoints, "step_1200.pt")
    assert os.path.dirname(paths.checkpoints) == os.path.dirname(paths.test) == os.path.dirname(paths.summary)
    for path in (paths.last, paths.best, paths.step(3)):
        assert RunPaths.of_checkpoint(path).root == os.path.abspath(paths.root)


def test_steps_lists_the_step_checkpoints_by_number_and_nothing_else(tmp_path):
    paths = RunPaths(str(tmp_path))
    assert paths.steps() == []  # no checkpoints/ yet
    os.makedirs(paths.checkpoints)
    for name in ("step_100.pt", "step_20.pt", "step_3.pt", "step_x.pt", "last.pt", ".step_4.pt.1.part"):
        open(os.path.join(paths.checkpoints, name), "w").close()
    assert paths.steps() == [paths.step(3), paths.step(20), paths.step(100)]
