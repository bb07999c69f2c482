"""Dynamic batching: concurrent requests queued, merged into one search batch, split back.

One inference thread owns the model. It takes the oldest request, then whatever is already waiting
or arrives within ``max_wait_ms`` up to ``max_batch_sentences``, groups the
requests by their search settings, runs each group as one ``translate_ids`` call (which sorts by
length and batches by itself) and hands each request its own results. Search is batch-independent,
so a translation is the same whether its request ran alone or merged with others.
"""
from __future__ import annotations

import contextlib
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from ..search import Hypothesis, SearchOptions
from ..search.common import FREE, Guide


@dataclass
class Job:
    """One request: its source ids, search settings and what to make of its hypotheses (run on the
    inference thread, which owns the model)."""
    ids: List[List[int]]
    options: SearchOptions
    finish: Callable[[List[List[Hypothesis]]], object]
    guides: Optional[List[Guide]] = None  # per line, the prefix it starts with and the phrases it contains
    future: Future = field(default_factory=Future)


class Batcher:
    def __init__(self, search: Callable[[SearchOptions, Sequence[Sequence[int]], Optional[Sequence[Guide]]],
                                        List[List[Hypothesis]]],
                 max_batch_sentences: int = 64, max_wait_ms: float = 5.0):
        self.search, self.max_sentences, self.max_wait = search, max_batch_sentences, max_wait_ms / 1000
        self.queue: queue.Queue[Optional[Job]] = queue.Queue()
        self.batches = self.requests = 0  # counters: search batches run, requests answered
        self.submitted = 0
        self.arriving = 0  # requests the server is reading that will be submitted soon (see ``arrival``)
        self.thread = threading.Thread(target=self._run, name="nmt-inference", daemon=True)
        self.thread.start()

    def submit(self, ids: List[List[int]], options: SearchOptions, finish,
               guides: Optional[List[Guide]] = None) -> Future:
        job = Job(ids, options, finish, guides)
        self.submitted += 1
        self.queue.put(job)
        return job.future

    @contextlib.contextmanager
    def arrival(self):
        """Around reading and checking a request: while any is inside, a batch waits for it."""
        self.arriving += 1
        try:
            yield
        finally:
            self.arriving -= 1

    def stats(self) -> dict:
        return {"requests": self.requests, "batches": self.batches, "in_flight": self.submitted - self.requests}

    def close(self) -> None:
        """Finish what is queued, then stop the thread."""
        self.queue.put(None)
        self.thread.join()

    def _collect(self, first: Job) -> Tuple[List[Job], bool]:
        """The requests for one batch: ``first``, then whatever is waiting or arrives, until the batch
        is full, no other request is being read, or none arrived for ``max_wait_ms`` (at most 20 such
        waits in all). Waiting
        from now, not from the first request's arrival, lets a burst the server is still reading (the
        event loop runs while this thread waits) join this batch instead of trailing as a small one."""
        jobs, count = [first], len(first.ids)
        start = time.monotonic()
        deadline, cap = start + self.max_wait, start + 20 * self.max_wait
        while count < self.max_sentences:
            if not self.arriving and self.queue.empty():
                break  # nobody else is coming: no waiting tax on a lone request
            try:
                job = self.queue.get(timeout=max(0.0, min(deadline, cap) - time.monotonic()))
            except queue.Empty:
                break
            if job is None:
                return jobs, True
            jobs.append(job)
            count += len(job.ids)
            deadline = time.monotonic() + self.max_wait
        return jobs, False

    def _run(self) -> None:
        while True:
            first = self.queue.get()
            if first is None:
                return
            jobs, closing = self._collect(first)
            groups: Dict[SearchOptions, List[Job]] = {}
            for job in jobs:
                groups.setdefault(job.options, []).append(job)
            for options, group in groups.items():
                self._serve(options, [j for j in group if j.future.set_running_or_notify_cancel()])
            if closing:
                return

    def _serve(self, options: SearchOptions, jobs: List[Job]) -> None:
        if not jobs:
            return
        try:
            guides = None  # merged: a request without guides searches each of its lines freely
            if any(job.guides is not None for job in jobs):
                guides = [g for job in jobs for g in (job.guides or [FREE] * len(job.ids))]
            results = self.search(options, [ids for job in jobs for ids in job.ids], guides)
        except Exception as e:  # noqa: BLE001 (each waiting request gets the error)
            for job in jobs:
                job.future.set_exception(e)
                self.requests += 1
            return
        self.batches += 1
        start = 0
        for job in jobs:
            mine, start = results[start:start + len(job.ids)], start + len(job.ids)
            try:
                job.future.set_result(job.finish(mine))
            except Exception as e:  # noqa: BLE001
                job.future.set_exception(e)
            self.requests += 1
