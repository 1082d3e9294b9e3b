"""The real DVC pipeline on tiny params: what re-runs, what it writes, how it fails, and that
nothing half-written survives a kill. (Slow: each test runs real dvc commands.)"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import shlex
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from helpers import VENV_BIN, stages_run, terminal_sigint

pytestmark = pytest.mark.slow


# A test that changes its project (params, outputs, data) takes a private copy of the build,
# `built_copy`, rather than putting `built_project` back afterwards: copying a tiny project is
# quicker than the two dvc commands that restore one (`dvc checkout --force`, `dvc status`).


def repro_after(project, *options: str, **changes) -> set[str]:
    project.set_params(**changes)
    return stages_run(project.dvc("repro", *options).stdout)


def test_repro_again_does_nothing(built_project):
    assert stages_run(built_project.dvc("repro").stdout) == set()
    assert "Data and pipelines are up to date" in built_project.dvc("status").stdout


@pytest.mark.parametrize("change, expected", [
    ({"numpy_rnn__hidden": 9}, {"check_params", "train_numpy_rnn"}),
    ({"tf_model__seed": 5}, {"check_params", "train_sine", "train_memory", "train_adding"}),
    ({"sine_task__n_train": 70}, {"check_params", "data@sine", "train_sine"}),
], ids=["numpy", "tf", "sine-data"])
def test_a_param_reruns_only_the_stages_that_read_it(built_copy, change, expected):
    # `dvc repro --dry` decides what is out of date exactly as a real run does and prints
    # "Running stage" for each, without training (a real run of the TF stages cost 40 s here;
    # the other e2e tests run them for real). It lists the stages whose own deps changed: the
    # stages downstream of their outputs (gradient flow, training on regenerated data) run in a
    # real repro only once those outputs have changed.
    assert repro_after(built_copy, "--dry", **change) == expected


def test_metrics_hold_the_promised_keys(built_project):
    """Results hold everything; the declared metrics hold the headline numbers once each, under
    keys unique without their file's name; DVCLive's folder is a progress log, not a metric."""
    root = built_project.root
    keys = {"numpy_rnn_copy": {"test_accuracy", "test_loss", "train_loss_final", "n_params"},
            "memory": {"test_accuracy", "test_loss", "train_loss_final", "n_params", "hidden"},
            "sine": {"test_mse_one_step", "test_mse_free_running", "train_loss_final",
                     "n_params", "hidden"},
            "adding": {"test_mse", "solved_fraction", "baseline_mse", "baseline_mse_measured",
                       "criterion_mse", "sequences_to_criterion", "train_loss_final",
                       "n_params", "hidden"}}
    for name, expected in keys.items():
        assert set(json.loads((root / f"results/{name}.json").read_text())) == expected
    assert json.loads((root / "results/gradcheck.json").read_text())["max_rel_error"] <= 1e-6
    shown = json.loads(built_project.dvc("metrics", "show", "--json").stdout)
    metrics = next(iter(shown.values()))["data"]
    flat = {f"{task}.{key}": value for path, entry in metrics.items()
            for task, values in entry["data"].items() for key, value in values.items()}
    assert sorted(flat) == ["adding.mse", "adding.solved", "copy.accuracy",
                            "gradcheck.max_rel_error", "memory.accuracy", "sine.free_mse",
                            "sine.step_mse"]
    results = json.loads((root / "results/sine.json").read_text())
    assert flat["sine.free_mse"] == results["test_mse_free_running"]
    table = built_project.dvc("metrics", "show").stdout.splitlines()
    assert max(map(len, table)) <= 200, table


def test_plots_show_lists_every_declared_chart_with_data(built_project):
    rendered = json.loads(built_project.dvc("plots", "show", "--json").stdout)
    data = rendered.get("data", rendered)
    declared = yaml.safe_load((built_project.root / "dvc.yaml").read_text())["plots"]
    names = [next(iter(p)) if isinstance(p, dict) else p for p in declared]
    assert len(names) == 18 and set(names) <= set(data), set(names) - set(data)
    for name in names:
        assert data[name], f"plot {name!r} is empty"
        for entry in data[name]:
            if entry.get("type") == "vega":
                assert entry["content"]["data"]["values"], f"plot {name!r} has no points"
            else:
                assert Path(built_project.root / entry["url"]).stat().st_size > 1000
    loss = data["Training loss, TF cell (memory task)"][0]["content"]["data"]["values"]
    # one point per logged window: here one per step (64 sequences in batches of 8)
    assert [row["step"] for row in loss] == [str(step) for step in range(1, 9)]
    vega = [name for name in names if data[name][0].get("type") == "vega"]
    assert len(vega) == 14  # and 4 PNGs
    # Gradient flow and gates: a point for every time step (T = 2L+1 = 7 copy, 2L+B+1 = 6 memory)
    for name, steps in (("Gradient flow, numpy RNN (copy task) - log10 of mean ||dL/dh_t||", 7),
                        ("Gradient flow, TF cell (memory task) - log10 of mean ||dL/dh_t||", 6),
                        ("LSTM gates along the memory task (mean over test sequences)", 6)):
        rows = data[name][0]["content"]["data"]["values"]
        assert len(rows) == steps * (3 if "gates" in name else 2), name  # one row per series


def test_plain_dvc_plots_show_makes_a_page_that_needs_no_network(built_project):
    """After `make setup`'s plots template, plain `dvc plots show` writes a page with every
    Vega chart and Vega itself inlined, nothing loaded from elsewhere. (Opened in headless
    Chromium with no network, every chart renders: the README's command.)"""
    project = built_project
    project.run(str(VENV_BIN / "python"), "-m", "rnnlab.workflows.plots_template")
    try:
        project.dvc("plots", "show", "-o", "offline_page")
        page = (project.root / "offline_page/index.html").read_text()
        assert "<script src" not in page and "cdn." not in page.lower()
        body = page.split("<body>", 1)[1]  # (the inlined bundle has such strings too)
        assert body.count("vegaEmbed(") == 14 and body.count("<img") == 4
        assert "vegaLite" in page  # the bundle itself
    finally:
        project.dvc("config", "--local", "--unset", "plots.html_template", check=False)


def _output_hashes(root: Path) -> dict[str, str]:
    hashes = {}
    for folder in ("data", "models", "metrics", "results", "plots", "dvclive"):
        for path in sorted((root / folder).rglob("*")):
            if path.is_file() and path.name != ".gitignore":
                hashes[str(path.relative_to(root))] = hashlib.md5(path.read_bytes()).hexdigest()
    return hashes


# Stages another test runs twice and compares output for output (a worker's experiment against
# `dvc repro`: test_workflows_e2e.py::test_a_workers_experiment_has_the_outputs_dvc_repro_makes);
# forcing them here again would add two TensorFlow processes and check nothing new.
RERUN_ELSEWHERE = ("train_memory", "gradient_flow_memory")


def test_forced_repro_is_bit_identical(built_copy):
    project = built_copy
    first = _output_hashes(project.root)
    for kind in ("data/", "models/", "metrics/", "results/", "plots/", "dvclive/"):
        assert any(p.startswith(kind) for p in first), kind
    stages = list(yaml.safe_load((project.root / "dvc.lock").read_text())["stages"])
    assert set(RERUN_ELSEWHERE) < set(stages)
    forced = [name for name in stages if name not in RERUN_ELSEWHERE]
    ran = stages_run(project.dvc("repro", "-f", "--single-item", *forced).stdout)
    assert ran == set(forced)
    assert _output_hashes(project.root) == first


def test_trained_models_load_back_and_score_their_metrics(built_project, monkeypatch):
    """load_model rebuilds each model from its file; evaluated on the test data again, it
    gives exactly the metrics the stage wrote."""
    from rnnlab.numpy_rnn.train import evaluate_recall
    from rnnlab.pipeline.datasets import read_dataset
    from rnnlab.pipeline.trained_models import load_model
    from rnnlab.tf_rnn.tasks import evaluate_memory, evaluate_sine

    root = built_project.root
    monkeypatch.chdir(root)
    metrics = {name: json.loads(Path(f"results/{name}.json").read_text())
               for name in ("numpy_rnn_copy", "memory", "sine")}
    model, meta = load_model("models/numpy_rnn_copy.npz")
    task = meta["params"]["copy_task"] if "copy_task" in meta["params"] else None
    params = yaml.safe_load(Path("params.yaml").read_text())
    test = read_dataset("copy_task", "test", params["copy_task"])
    result = evaluate_recall(model, test["inputs"], test["targets"],
                             params["copy_task"]["to_remember_len"] + 1)
    assert result["test_accuracy"] == metrics["numpy_rnn_copy"]["test_accuracy"]
    assert result["test_loss"] == metrics["numpy_rnn_copy"]["test_loss"]
    assert task is None or task == params["copy_task"]

    model, meta = load_model("models/memory.npz")
    assert meta["params"]["tf_model"] == params["tf_model"]
    test = read_dataset("memory", "test", params["memory_task"])
    result = evaluate_memory(model, test["inputs"], test["targets"],
                             params["memory_task"]["to_remember_len"])
    assert result["test_accuracy"] == metrics["memory"]["test_accuracy"]
    assert result["test_loss"] == pytest.approx(metrics["memory"]["test_loss"], rel=1e-6)

    model, _ = load_model("models/sine.npz")
    curves = read_dataset("sine", "test", params["sine_task"])["curves"]
    result = evaluate_sine(model, curves, params["sine_task"]["n_given"],
                           params["sine_task"]["n_generated"])
    assert result["test_mse_free_running"] == pytest.approx(
        metrics["sine"]["test_mse_free_running"], rel=1e-6)


def test_a_damaged_model_file_is_refused_with_its_name(built_project, tmp_path):
    from rnnlab.errors import DataError
    from rnnlab.pipeline.trained_models import load_model

    damaged = tmp_path / "models" / "memory.npz"
    damaged.parent.mkdir()
    damaged.write_bytes((built_project.root / "models/memory.npz").read_bytes()[:500])
    with pytest.raises(DataError, match=r"memory.npz: file is truncated or corrupt .*"
                                        r"dvc repro -f train_memory"):
        load_model(damaged)
    with pytest.raises(DataError, match="not a model of the pipeline"):
        load_model(tmp_path / "models" / "other.npz")


# A handful of bad params through a real `dvc repro` (every rule is unit-tested in
# pipeline/test_params.py): the one-line message reaches the user, nothing is lost.
BAD_PARAMS = [
    ("renamed-init-value", lambda p: p["numpy_rnn"].update(init="random"),
     "numpy_rnn.init: got 'random'; expected one of 'gaussian', 'identity', 'orthogonal', "
     "'permutation'"),
    ("typo-section", lambda p: p.update(numpy_rnnn=p.pop("numpy_rnn")),
     "numpy_rnnn: unknown section (did you mean 'numpy_rnn'?)"),
    ("renamed-key", lambda p: p["tf_model"].update(hidden=p["tf_model"].pop("lstm_hidden")),
     "tf_model.hidden: renamed; did you mean 'lstm_hidden'?"),
    ("cross-key", lambda p: p["sine_task"].update(n_given=10**6),
     "sine_task.n_given: got 1000000; expected fewer given samples"),
]


@pytest.mark.parametrize("name, mutate, expected", BAD_PARAMS, ids=[b[0] for b in BAD_PARAMS])
def test_dvc_repro_refuses_bad_params_and_loses_nothing(built_copy, name, mutate, expected):
    project = built_copy
    before = _output_hashes(project.root)
    params = copy.deepcopy(project.params())
    mutate(params)
    project.write_params(params)
    proc = project.dvc("repro", check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert f"check_params: error: {expected}" in output, output
    assert "Traceback" not in output
    # check_params ran first, and failed: DVC removed only its own output, nothing else ran.
    after = _output_hashes(project.root)
    assert after == {p: h for p, h in before.items() if p != "data/params.ok"}


@pytest.mark.parametrize("changes, stage", [
    # A step so large that float32 weights and logits overflow: the loss becomes Inf/NaN.
    # (Merely large steps can stay finite: an LSTM's gates keep its outputs bounded.)
    ({"numpy_rnn__learning_rate": 1e38, "numpy_rnn__clip_norm": 0}, "train_numpy_rnn"),
    ({"tf_model__optimizer": "momentum", "tf_memory__learning_rate": 1e38,
      "tf_model__clip_norm": 0, "tf_memory__epochs": 3}, "train_memory"),
], ids=["numpy", "tf"])
def test_divergence_stops_with_a_message_and_no_metrics(built_copy, changes, stage):
    project = built_copy
    project.set_params(**changes)
    proc = project.dvc("repro", stage, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "diverged" in output or "NaN" in output, output
    assert "learning rate" in output and "Traceback" not in output
    run = {"train_numpy_rnn": "numpy_rnn_copy", "train_memory": "memory"}[stage]
    for result in (f"metrics/{run}.json", f"results/{run}.json"):
        assert not (project.root / result).exists()


def test_a_stage_refuses_a_corrupt_data_file(built_copy):
    project = built_copy
    path = project.root / "data/copy_task/train.npz"
    blob = path.read_bytes()
    path.chmod(0o644)
    path.write_bytes(blob[: len(blob) // 3])
    proc = project.run(str(VENV_BIN / "python"), "stages/train_numpy_rnn.py", check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "train_numpy_rnn: error: data/copy_task/train.npz: file is truncated or corrupt "
        "(BadZipFile); rebuild it with `dvc repro -f data@copy_task`"]


# Runs a stage script with os.replace patched to SIGKILL the process at the moment the named
# output would be renamed into place: its temporary file is complete, the rename never happens.
KILL_AT_RENAME = """
import os, runpy, signal, sys
target, script = sys.argv[1], sys.argv[2]
real_replace = os.replace
def replace(src, dst):
    if str(dst).endswith(target):
        os.kill(os.getpid(), signal.SIGKILL)
    return real_replace(src, dst)
os.replace = replace
sys.argv = [script]
sys.path.insert(0, os.path.dirname(script))  # as `python script` would: stages/_venv is found
runpy.run_path(script, run_name="__main__")
"""


@pytest.mark.parametrize("target", ["models/numpy_rnn_copy.npz", "results/numpy_rnn_copy.json"])
def test_a_kill_in_the_middle_of_writing_leaves_the_old_file_or_none(built_copy, target):
    project = built_copy
    project.set_params(numpy_rnn__hidden=9)  # a different model: the outputs would change
    old = (project.root / target).read_bytes()
    proc = project.run(str(VENV_BIN / "python"), "-c", KILL_AT_RENAME, target,
                       "stages/train_numpy_rnn.py", check=False)
    assert proc.returncode == -signal.SIGKILL
    # Killed between writing the new file and renaming it: the old file is intact, and
    # the complete new one waits under a temporary name.
    assert (project.root / target).read_bytes() == old
    leftovers = list((project.root / target).parent.glob(f".{Path(target).name}.*.tmp"))
    assert len(leftovers) == 1 and leftovers[0].stat().st_size > 0
    # The next run completes, clears the leftover and writes the new result.
    project.dvc("repro", "train_numpy_rnn")
    assert not list((project.root / target).parent.glob("*.tmp"))
    assert (project.root / target).read_bytes() != old


def test_ctrl_c_during_training_ends_with_one_line_and_no_result(built_copy):
    project = built_copy
    # far longer than the test waits, and no longer: the live metrics file reappears after the
    # first of rnnlab.numpy_rnn.train.N_HISTORY_POINTS loss windows per run
    project.set_params(numpy_rnn__steps=10**6)
    live = project.root / "dvclive/numpy_rnn_copy/metrics.json"
    live.unlink()  # so that its reappearance shows training under way
    proc = subprocess.Popen([str(VENV_BIN / "dvc"), "repro", "train_numpy_rnn"],
                            cwd=project.root, env=project.env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True, preexec_fn=terminal_sigint)
    try:
        deadline = time.time() + 120
        while not (live.exists() and json.loads(live.read_text() or "{}").get("step", 0) > 0):
            assert proc.poll() is None and time.time() < deadline, proc.stdout.read()
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches the whole foreground group
        output, _ = proc.communicate(timeout=60)
        assert proc.returncode != 0
        assert "train_numpy_rnn: interrupted" in output and "Traceback" not in output, output
        for result in ("metrics/numpy_rnn_copy.json", "results/numpy_rnn_copy.json"):
            assert not (project.root / result).exists()  # the progress file is gone too
        assert not list(project.root.glob("*/.*.tmp"))
    finally:
        subprocess.run(["pkill", "-KILL", "-s", str(proc.pid)], check=False)
        proc.wait()
        project.git("checkout", "--", "params.yaml")
    # DVC is healthy after the interrupt: the interrupted stage runs to the end (and
    # check_params again, which the interrupted run had passed with the changed params)
    assert stages_run(project.dvc("repro").stdout) == {"check_params", "train_numpy_rnn"}


def _readme_recipes() -> list[str]:
    """The `$ dvc exp show ...` lines of the README's recipes block."""
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = text.split("<!-- exp-show-recipes -->", 1)[1].split("<!-- /exp-show-recipes -->")[0]
    return [line[2:] for line in block.splitlines() if line.startswith("$ dvc exp show")]


def test_the_experiment_table_is_readable_and_the_readme_recipes_work(built_copy):
    """After one experiment: at most 100 columns in all, each metric once and unique by its
    own name; --only-changed fits 150 columns with no column folded into '…'; every README
    recipe runs and shows the columns its --keep pattern names."""
    project = built_copy
    project.dvc("exp", "run", "-n", "rnn", "-S", "tf_model.cell=rnn")
    project.git("checkout", "--", ".")
    project.dvc("checkout", "--force")
    header = project.dvc("exp", "show", "--csv").stdout.splitlines()[0].split(",")
    assert len(header) <= 100, len(header)
    assert not [name for name in header if ":" in name]  # no column needs its file's name
    for name in ("memory.accuracy", "sine.free_mse", "copy.accuracy", "tf_model.cell"):
        assert header.count(name) == 1, name
    project.env["COLUMNS"] = "150"
    try:
        shown = project.dvc("exp", "show", "--only-changed", "--no-pager").stdout
        assert "…" not in shown and max(map(len, shown.splitlines())) <= 150, shown
        changed = project.dvc("exp", "show", "--only-changed", "--csv").stdout
        columns = [c for c in changed.splitlines()[0].split(",")
                   if c not in ("Experiment", "rev", "typ", "parent")]
        assert "sine.free_mse" in columns and "[rnn]" in shown
        assert all(column in shown for column in columns), (columns, shown)  # none folded
        recipes = _readme_recipes()
        assert len(recipes) >= 3
        for recipe in recipes:
            out = project.dvc(*shlex.split(recipe)[1:], "--no-pager").stdout
            assert "…" not in out, (recipe, out)
            keep = re.search(r"--keep '([^']*)'", recipe)
            for column in (keep.group(1).split("|") if keep else []):
                assert column.replace("\\", "") in out, (recipe, column, out)
    finally:
        project.env.pop("COLUMNS")
