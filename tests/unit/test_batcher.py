"""The server's dynamic batching, driven by events rather than a clock: requests that wait while the
inference thread is busy are merged into one search, grouped by their settings, and each gets its own
results back."""
import threading

import pytest

from nmt.search import Hypothesis, SearchOptions
from nmt.serve.batcher import Batcher


def _blocking_search(started: threading.Event, release: threading.Event, calls: list):
    def search(options, ids, prefixes):
        calls.append((options, [list(i) for i in ids], prefixes))
        if len(calls) == 1:
            started.set()
            assert release.wait(timeout=60)  # the first batch holds the thread until the others queue
        return [[Hypothesis(list(i), float(sum(i)))] for i in ids]
    return search


def test_requests_waiting_behind_a_busy_search_are_merged_and_split_back():
    started, release, calls = threading.Event(), threading.Event(), []
    batcher = Batcher(_blocking_search(started, release, calls), max_batch_sentences=64)
    beam, greedy = SearchOptions(beam_size=5), SearchOptions(beam_size=1)
    first = batcher.submit([[1]], beam, lambda hyps: hyps)
    assert started.wait(timeout=60)  # the inference thread took the first request and is searching
    later = [batcher.submit([[k, k], [k + 1]], beam if k % 3 else greedy, lambda hyps: hyps) for k in range(2, 8)]
    release.set()
    assert [h[0].tokens for h in first.result(timeout=60)] == [[1]]
    for k, future in zip(range(2, 8), later):
        assert [h[0].tokens for h in future.result(timeout=60)] == [[k, k], [k + 1]]  # its own lines, in order
    batcher.close()
    # the first alone, then the six waiting ones merged into one search per setting
    assert len(calls) == 3 and batcher.stats() == {"requests": 7, "batches": 3, "in_flight": 0}
    assert sorted(len(ids) for _, ids, _ in calls[1:]) == [4, 8]
    assert {options.beam_size for options, _, _ in calls[1:]} == {1, 5}


def test_an_error_reaches_every_request_of_its_batch():
    def search(options, ids, prefixes):
        raise ValueError("boom")
    batcher = Batcher(search)
    futures = [batcher.submit([[1]], SearchOptions(), lambda hyps: hyps) for _ in range(3)]
    for f in futures:
        with pytest.raises(ValueError, match="boom"):
            f.result(timeout=60)
    batcher.close()
    assert batcher.stats()["requests"] == 3
