"""rnnlab.workflows.queue without DVC: the worker pool (with a stand-in worker), its time
limit, failure reasons, the status call that must not fail silently, and the clean-up of what
interrupted runs leave in DVC's tmp folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from rnnlab.workflows import dvc_commands, queue

# A stand-in for rnnlab.workflows.worker: answers each run as its overrides say (fail with a
# stage error, sleep, or end the worker), and records its pid and each run it was given.
STAND_IN = """
import json, os, sys, time
for line in sys.stdin:
    run = json.loads(line)
    mode = run["overrides"].get("mode", "ok")
    with open("given", "a") as given:
        given.write(f"{os.getpid()} {run['name']}\\n")
    time.sleep(run["overrides"].get("sleep", 0))
    if mode == "die":
        sys.exit(3)
    reason = "training diverged at step 3" if mode == "fail" else None
    print(json.dumps({"name": run["name"], "ok": mode != "fail", "reason": reason}), flush=True)
"""
STAND_IN_COMMAND = [sys.executable, "-c", STAND_IN]


def given(folder) -> list[tuple[int, str]]:
    """(worker pid, run name) of every run handed out, in order."""
    lines = (folder / "given").read_text().splitlines() if (folder / "given").exists() else []
    return [(int(pid), name) for pid, name in map(str.split, lines)]


def alive(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
        return True
    except ProcessLookupError:
        return False


def test_the_pool_runs_everything_on_its_workers_and_reports_a_failure(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runs = [queue.Run(name, {"sleep": 0.1}) for name in "abcde"]
    runs[1] = queue.Run("b", {"mode": "fail"})
    failures = queue.run_pool(runs, 2, "test", command=STAND_IN_COMMAND, tick=0.02)
    assert failures == {"b": "training diverged at step 3"}
    handed = given(tmp_path)
    assert sorted(name for _, name in handed) == list("abcde")
    assert len({pid for pid, _ in handed}) == 2  # two workers took all five
    assert not any(alive(pid) for pid, _ in handed)  # told to end, and ended
    assert list((tmp_path / queue.STATE / "runs").iterdir()) == []  # nothing left recorded


def test_a_worker_that_ends_fails_its_run_alone_and_another_takes_the_rest(tmp_path,
                                                                          monkeypatch):
    monkeypatch.chdir(tmp_path)
    runs = [queue.Run("a"), queue.Run("dies", {"mode": "die"}), queue.Run("c"), queue.Run("d")]
    failures = queue.run_pool(runs, 1, "test", command=STAND_IN_COMMAND, tick=0.02)
    assert failures == {"dies": f"failed with exit 3; see {queue.STATE / 'logs' / 'workers.log'}"}
    handed = given(tmp_path)
    assert [name for _, name in handed] == ["a", "dies", "c", "d"]
    assert handed[0][0] == handed[1][0] != handed[2][0] == handed[3][0]


def test_a_tensorflow_run_gets_a_numpy_run_beside_it_where_one_is_waiting():
    tf_run, np_run = queue.Run("tf", multicore=True), queue.Run("np")
    pending = [tf_run, tf_run, np_run, np_run]
    assert queue.next_run(pending, [tf_run]) == 2     # the first numpy run
    assert queue.next_run(pending, [np_run]) == 0     # in order
    assert queue.next_run(pending, []) == 0
    assert queue.next_run([tf_run, tf_run], [tf_run]) == 0  # only TensorFlow left


def test_params_dvc_refuses_stop_the_sweep_with_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RuntimeError) as error:
        queue.refused("cap-b2", "Invalid `--set-param` value: Could not override 'x.y'.\nmore")
    assert str(error.value) == ("DVC refused to run cap-b2: Invalid `--set-param` value: "
                                "Could not override 'x.y'.")
    assert queue.refused("a", "loss is nan") == "loss is nan"


def test_a_run_far_over_the_longest_is_stopped_and_reported(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(queue, "MIN_LIMIT", 0.5)
    runs = [queue.Run("quick"), queue.Run("stuck", {"sleep": 60})]
    start = time.monotonic()
    failures = queue.run_pool(runs, 2, "test", command=STAND_IN_COMMAND, tick=0.02)
    assert time.monotonic() - start < 20
    assert list(failures) == ["stuck"] and failures["stuck"].startswith("stopped after ")
    assert "over 5x the longest finished run (0 s)" in failures["stuck"]
    assert queue.overtime_reason(7300, []) == "stopped after 7300 s, with no other run finished"
    assert not any(alive(pid) for pid, _ in given(tmp_path))


def test_an_interrupt_stops_every_worker_before_it_goes_on(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    started = []
    real_start = queue.start_worker

    def start_worker(command):
        if len(started) == 2:  # Ctrl-C while the third worker is being started
            raise KeyboardInterrupt
        started.append(real_start(command))
        return started[-1]

    monkeypatch.setattr(queue, "start_worker", start_worker)
    runs = [queue.Run(name, {"sleep": 60}) for name in ("a", "b", "c")]
    with pytest.raises(KeyboardInterrupt):
        queue.run_pool(runs, 3, "test", command=STAND_IN_COMMAND, tick=0.02)
    assert len(started) == 2
    assert all(w.proc.returncode is not None for w in started)
    assert not any(alive(w.proc.pid) for w in started)
    assert list((tmp_path / queue.STATE / "runs").iterdir()) == []


def test_time_limit_follows_the_longest_finished_run():
    assert queue.time_limit([]) == queue.FIRST_LIMIT
    assert queue.time_limit([10.0, 30.0]) == queue.MIN_LIMIT
    assert queue.time_limit([10.0, 300.0]) == 5 * 300.0


def test_the_failure_reason_is_the_stage_error_else_dvcs_else_where_to_look(tmp_path):
    log = tmp_path / "run.log"
    log.write_text("Running stage 'train':\nERROR: failed to reproduce 'train': failed to run: "
                   "python stages/train.py, exited with -9\n")
    assert queue.failure_reason(log, 255) == ("failed to reproduce 'train': failed to run: "
                                              "python stages/train.py, exited with -9")
    log.write_text("train: error: loss is nan\nERROR: failed to reproduce 'train'\n")
    assert queue.failure_reason(log, 255) == "loss is nan"
    log.write_text("Killed\n")
    assert queue.failure_reason(log, -9) == f"its process was killed (SIGKILL); see {log}"
    assert queue.failure_reason(log, 2) == f"failed with exit 2; see {log}"


def _completed(returncode: int, stdout: str = "", stderr: str = ""):
    return subprocess.CompletedProcess(["dvc"], returncode, stdout, stderr)


STATUS = ("Task     Name    Created    Status\nab7a992  m4      08:02 AM   Running\n"
          "8d7a8dd  m0      08:02 AM   Success\n\nWorker status: 1 active, 0 idle\n")


def test_a_failing_status_call_is_retried(monkeypatch):
    answers = [_completed(255, stderr="ERROR: unexpected error"), _completed(0, STATUS)]
    monkeypatch.setattr(dvc_commands.subprocess, "run", lambda *a, **k: answers.pop(0))
    monkeypatch.setattr(dvc_commands.time, "sleep", lambda seconds: None)
    assert queue.queue_tasks() == [("ab7a992", "m4", "Running"), ("8d7a8dd", "m0", "Success")]


def test_a_status_call_that_keeps_failing_ends_with_one_line(monkeypatch):
    """Never "no tasks": that read as every task finished while the workers went on."""
    calls = []
    monkeypatch.setattr(dvc_commands.subprocess, "run", lambda *a, **k: calls.append(a) or
                        _completed(255, stderr="ERROR: unexpected error - [Errno 2] No such "
                                   "file or directory: 'x.run'\n\nHaving any troubles?\n"))
    monkeypatch.setattr(dvc_commands.time, "sleep", lambda seconds: None)
    with pytest.raises(RuntimeError) as error:
        queue.queue_tasks()
    assert len(calls) == 3
    assert str(error.value) == ("`dvc queue status` failed 3 times (exit 255): ERROR: unexpected "
                                "error - [Errno 2] No such file or directory: 'x.run'")


def _message(folder, task: str) -> None:
    body = {"headers": {"id": task, "task": "dvc.repo.experiments.queue.tasks.run_exp"}}
    (folder / f"1_{task}.celery.msg").write_text(json.dumps(body))


def test_tasks_taken_from_dvcs_queue_with_no_result_are_forgotten(tmp_path, monkeypatch):
    """The state `dvc queue stop --kill` left: tasks "Running" with no worker, which broke
    every `dvc exp show`."""
    monkeypatch.chdir(tmp_path)
    processed, results = queue.CELERY / "broker" / "processed", queue.CELERY / "result"
    processed.mkdir(parents=True)
    results.mkdir()
    _message(processed, "finished")
    (results / "celery-task-meta-finished").write_text("{}")
    _message(processed, "orphaned")
    queue.remove_orphaned_tasks()
    assert [p.name for p in processed.iterdir()] == ["1_finished.celery.msg"]


def test_what_interrupted_temp_runs_leave_is_removed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    copy = queue.STANDALONE / "tmpabc"
    (copy / ".dvc").mkdir(parents=True)
    standalone_info = queue.STANDALONE / "run" / "1234567" / "1234567.run"
    standalone_info.parent.mkdir(parents=True)
    standalone_info.write_text(json.dumps({"root_dir": str(copy), "status": 1}))
    for rev, location in (("aaaaaaa", "tempdir"), ("bbbbbbb", "dvc-task")):
        info = queue.EXEC_INFOS / rev / f"{rev}.run"
        info.parent.mkdir(parents=True)
        info.write_text(json.dumps({"location": location}))
    queue.remove_stale_temp_runs()
    assert not copy.exists() and not standalone_info.parent.exists()
    assert [p.name for p in queue.EXEC_INFOS.iterdir()] == ["bbbbbbb"]  # a queue task's: kept


def test_runs_left_by_a_killed_workflow_are_stopped_and_others_left_alone(tmp_path,
                                                                          monkeypatch):
    monkeypatch.chdir(tmp_path)
    runs = tmp_path / queue.STATE / "runs"
    runs.mkdir(parents=True)
    orphan = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)",
                               queue.WORKER_MODULE, os.path.realpath(tmp_path)],
                              start_new_session=True, preexec_fn=queue.default_sigint)
    elsewhere = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)",
                                  queue.WORKER_MODULE, "/another/repository"],
                                 start_new_session=True)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                             start_new_session=True)
    dead_owner = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                                capture_output=True, text=True).stdout.strip()
    (runs / str(orphan.pid)).write_text(f"{dead_owner} orphan")
    (runs / str(other.pid)).write_text(f"{dead_owner} recycled pid")  # not a worker
    (runs / str(elsewhere.pid)).write_text(f"{dead_owner} recycled pid")  # not ours
    try:
        assert queue.recorded_runs() == [orphan.pid]
        queue.heal()
        assert orphan.wait(timeout=30) is not None
        assert other.poll() is None and elsewhere.poll() is None
        assert list(runs.iterdir()) == []
    finally:
        for proc in (other, elsewhere, orphan):
            proc.kill()


def test_half_written_run_cache_entries_are_removed(tmp_path, monkeypatch):
    """A run stopped while DVC saved its run-cache entry left a .tmp file that DVC then read
    as the entry: "failed to reproduce 'gated': 'outs'" for every later run of those params."""
    monkeypatch.chdir(tmp_path)
    entry = tmp_path / ".dvc/cache/runs/e3/e351469"
    entry.mkdir(parents=True)
    (entry / ".hLfQrY_hCasM6jk7J5hdQw.tmp").write_text("cmd: python stages/gated.py\n")
    (entry / "28c271f967c08ee5").write_text("cmd: python stages/gated.py\nouts: []\n")
    queue.remove_partial_run_cache()
    assert [p.name for p in entry.iterdir()] == ["28c271f967c08ee5"]
    (tmp_path / ".dvc/config.local").write_text("[cache]\n    dir = ../elsewhere\n")
    assert queue.cache_dir() == tmp_path.joinpath(".dvc", "../elsewhere").relative_to(tmp_path)
