"""rnnlab.workflows.queue without DVC: the run pool (with stand-in commands for `dvc exp run
--temp`), its time limit, failure reasons, the status call that must not fail silently, and
the clean-up of what interrupted runs leave in DVC's tmp folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from rnnlab.workflows import dvc_commands, queue

# A stand-in for `dvc exp run --temp`: makes its "temporary copy" (what launch waits for),
# then behaves as its run's overrides say: print a stage error and fail, or sleep.
STAND_IN = """
import os, sys, time
os.makedirs(".dvc/tmp/exps/standalone/tmp" + sys.argv[1], exist_ok=True)
if sys.argv[2] == "fail":
    sys.exit("train: error: training diverged at step 3\\nERROR: failed to reproduce 'train'")
time.sleep(float(sys.argv[3]))
"""


def stand_in(run: queue.Run) -> list[str]:
    return [sys.executable, "-c", STAND_IN, run.name, run.overrides.get("mode", "ok"),
            str(run.overrides.get("sleep", 0))]


def alive(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
        return True
    except ProcessLookupError:
        return False


def test_the_pool_runs_everything_and_reports_a_failure_by_its_stage_error(tmp_path,
                                                                           monkeypatch):
    monkeypatch.chdir(tmp_path)
    runs = [queue.Run("a"), queue.Run("b", {"mode": "fail"}), queue.Run("c", {"sleep": 0.3})]
    failures = queue.run_pool(runs, 2, "test", command=stand_in, tick=0.02)
    assert failures == {"b": "training diverged at step 3"}
    assert list((tmp_path / queue.STATE / "runs").iterdir()) == []  # nothing left recorded


def test_a_tensorflow_run_gets_a_numpy_run_beside_it_where_one_is_waiting():
    tf_run, np_run = queue.Run("tf", multicore=True), queue.Run("np")

    def beside(*runs):
        return [queue.Active(run, None, None, set()) for run in runs]

    pending = [tf_run, tf_run, np_run, np_run]
    assert queue.next_run(pending, beside(tf_run)) == 2     # the first numpy run
    assert queue.next_run(pending, beside(np_run)) == 0     # in order
    assert queue.next_run(pending, beside()) == 0
    assert queue.next_run([tf_run, tf_run], beside(tf_run)) == 0  # only TensorFlow left


def test_a_run_failing_on_dvcs_lock_is_run_once_more_overwriting_its_experiment(
        tmp_path, monkeypatch):
    """DVC can fail on its repository lock after the run committed its experiment: the retry
    must overwrite it (`dvc exp run -f`), or DVC refuses it as a conflict."""
    monkeypatch.chdir(tmp_path)
    busy_once = ("import os, sys\n" + STAND_IN.split("if sys.argv[2]")[0]
                 + "if not os.path.exists('tried'):\n"
                 "    open('tried', 'w').close()\n"
                 "    sys.exit('ERROR: Unable to acquire lock')\n")
    launched = []

    def command(run: queue.Run) -> list[str]:
        launched.append(queue.temp_command(run))
        return [sys.executable, "-c", busy_once, run.name]

    assert queue.run_pool([queue.Run("a", targets=("train",))], 1, "test", command=command,
                          tick=0.02) == {}
    assert launched == [["dvc", "exp", "run", "--temp", "-n", "a", "train"],
                        ["dvc", "exp", "run", "--temp", "-f", "-n", "a", "train"]]


def test_a_run_far_over_the_longest_is_stopped_and_reported(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(queue, "MIN_LIMIT", 0.5)
    runs = [queue.Run("quick"), queue.Run("stuck", {"sleep": 60})]
    start = time.monotonic()
    failures = queue.run_pool(runs, 2, "test", command=stand_in, tick=0.02)
    assert time.monotonic() - start < 20
    assert list(failures) == ["stuck"] and failures["stuck"].startswith("stopped after ")
    assert "over 5x the longest finished run (0 s)" in failures["stuck"]
    assert queue.overtime_reason(7300, []) == "stopped after 7300 s, with no other run finished"


def test_an_interrupt_stops_every_run_in_progress_before_it_goes_on(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    launched = []

    def command(run: queue.Run) -> list[str]:
        if len(launched) == 2:  # Ctrl-C while the third run is being started
            raise KeyboardInterrupt
        launched.append(run.name)
        return stand_in(run)

    runs = [queue.Run(name, {"sleep": 60}) for name in ("a", "b", "c")]
    pids = []
    real_launch = queue.launch
    monkeypatch.setattr(queue, "launch", lambda run, cmd: pids.append(real_launch(run, cmd))
                        or pids[-1])
    with pytest.raises(KeyboardInterrupt):
        queue.run_pool(runs, 3, "test", command=command, tick=0.02)
    assert launched == ["a", "b"]
    assert all(a.proc.returncode is not None for a in pids)
    assert not any(alive(a.proc.pid) for a in pids)
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
    assert queue.failure_reason(log, -9) == f"failed with exit -9; see {log}"


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
    orphan = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "--temp"],
                              start_new_session=True, preexec_fn=queue.default_sigint)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                             start_new_session=True)
    dead_owner = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                                capture_output=True, text=True).stdout.strip()
    (runs / str(orphan.pid)).write_text(f"{dead_owner} orphan")
    (runs / str(other.pid)).write_text(f"{dead_owner} recycled pid")  # not a --temp run
    try:
        assert queue.recorded_runs() == [orphan.pid]
        queue.heal()
        assert orphan.wait(timeout=30) is not None and other.poll() is None
        assert list(runs.iterdir()) == []
    finally:
        other.kill()
        orphan.kill()


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
