from nmt.launch import Launch


def test_a_plain_start_is_rank_0_of_1(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    launch = Launch.from_env()
    assert launch == Launch(0, 1, 0, 1) and launch.main and not launch.distributed


def test_torchruns_variables_place_the_process(monkeypatch):
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    launch = Launch.from_env()
    assert launch == Launch(3, 4, 1, 2) and not launch.main and launch.distributed
