import gzip

import pytest

from nmt.data.corpus import CorpusError, read_lines, read_parallel, resolve

from .helpers import filter_pairs


def write(path, text, gz=False):
    data = text.encode("utf-8") if isinstance(text, str) else text
    if gz:
        with gzip.open(str(path) + ".gz", "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)


def test_plain_and_gz_are_found(tmp_path):
    write(tmp_path / "a.de", "eins\nzwei\n")
    write(tmp_path / "a.en", "one\ntwo\n", gz=True)
    c = read_parallel(str(tmp_path / "a"), "de", "en")
    assert c.src == ["eins", "zwei"] and c.tgt == ["one", "two"]
    assert c.tgt_path.endswith("a.en.gz")


def test_missing_file_names_path_and_gz_alternative(tmp_path):
    with pytest.raises(CorpusError) as e:
        resolve(str(tmp_path / "nothere"), "de")
    assert str(tmp_path / "nothere.de") in str(e.value) and "nothere.de.gz" in str(e.value)


def test_mismatched_line_counts_name_both_files_and_counts(tmp_path):
    write(tmp_path / "a.de", "1\n2\n3\n")
    write(tmp_path / "a.en", "1\n2\n")
    with pytest.raises(CorpusError) as e:
        read_parallel(str(tmp_path / "a"), "de", "en")
    msg = str(e.value)
    assert "a.de" in msg and "a.en" in msg and "3" in msg and "2" in msg


@pytest.mark.parametrize("gz", [False, True])
def test_invalid_utf8_names_file_and_line(tmp_path, gz):
    write(tmp_path / "a.de", b"ok\nfine\nbad \xff\xfe here\n", gz=gz)
    with pytest.raises(CorpusError) as e:
        read_lines(str(tmp_path / "a.de") + (".gz" if gz else ""))
    assert "a.de" in str(e.value) and ":3:" in str(e.value) and "UTF-8" in str(e.value)


def test_empty_file_is_an_error_naming_it(tmp_path):
    write(tmp_path / "v.de", "")
    with pytest.raises(CorpusError, match="v.de.*empty"):
        read_lines(str(tmp_path / "v.de"))


def test_filter_drops_pairs_together_and_counts():
    src_text = ["a b", "  ", "c", "d e f g", "h"]
    tgt_text = ["x", "y", "", "z", "w w"]
    src_ids = [[1, 2], [], [3], [4, 5, 6, 7], [8]]
    tgt_ids = [[9], [10], [], [11], [12, 12]]
    keep, stats = filter_pairs(src_ids, tgt_ids, src_text, tgt_text, max_len=3)
    assert keep == [0, 4]
    assert stats == {"kept": 2, "empty": 2, "too_long": 1, "ratio": 0, "duplicate": 0}


def test_filter_with_nothing_left_is_an_error():
    with pytest.raises(CorpusError, match="no pair left"):
        filter_pairs([[1] * 10], [[1] * 10], ["x"], ["y"], max_len=3)


def test_multi30k_line_counts(multi30k_dir):
    for split, n in (("train", 29000), ("val", 1014), ("test_2016_flickr", 1000)):
        c = read_parallel(str(multi30k_dir / split), "de", "en")
        assert len(c) == n
