"""rnnlab.workflows.queue without DVC: waiting on DVC's task-result folder (a real folder)."""

from __future__ import annotations

import io
import threading
import time

from tqdm import tqdm

from rnnlab.workflows import queue


def test_the_wait_wakes_as_the_results_come_in_and_gives_up_after_its_longest(tmp_path,
                                                                              monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert queue.task_results() is None  # a DVC that keeps no result folder: callers poll
    folder = tmp_path / queue.CELERY_RESULTS
    folder.mkdir(parents=True)
    (folder / "celery-task-meta-old").touch()  # an earlier workflow's result does not count
    before = queue.task_results()
    bar = tqdm(total=2, file=io.StringIO())
    writer = threading.Timer(0.3, lambda: [(folder / f"celery-task-meta-{k}").touch()
                                           for k in range(2)])
    writer.start()
    start = time.monotonic()
    queue.sleep_until_results(before, 2, longest=30.0, bar=bar, tick=0.05)
    assert 0.3 <= time.monotonic() - start < 5 and bar.n == 2
    start = time.monotonic()
    queue.sleep_until_results(before, 3, longest=0.3, bar=bar, tick=0.05)  # the third never comes
    assert 0.3 <= time.monotonic() - start < 2 and bar.n == 2
