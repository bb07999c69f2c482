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
