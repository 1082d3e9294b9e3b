"""The `rnnlab` command (rnnlab.cli): its help, its one-line usage errors, and how each command
reaches the workflow or script behind it. The fast tests run nothing of DVC; the slow one runs
`rnnlab capacity --quick` on tiny params in a copy of the repository."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from rnnlab import cli
from rnnlab.errors import RnnlabError
from rnnlab.workflows import capacity, compare


@pytest.fixture(autouse=True)
def no_experiments(monkeypatch, request):
    """No fast test may queue DVC experiments (in this checkout, on a shared machine): the
    workflows' queue entry point fails the test instead."""
    if request.node.get_closest_marker("slow"):
        return

    def refuse(*args, **kwargs):
        raise AssertionError("a fast test tried to run DVC experiments")

    monkeypatch.setattr(compare, "run_all", refuse)
    monkeypatch.setattr(capacity, "run_all", refuse)


def _main(argv, capsys):
    """(exit status, stdout, stderr) of cli.main(argv)."""
    try:
        status = cli.main(argv)
    except SystemExit as exc:
        status = exc.code
    out, err = capsys.readouterr()
    return status, out, err


def test_help_lists_every_command_with_what_it_takes(capsys):
    status, out, _ = _main(["--help"], capsys)
    assert status == 0 and out.startswith("usage: rnnlab ")
    for name in ("compare", "capacity", "bench", "deps", "plots-template", "xla-cache"):
        assert f"\n    {name} " in out or f"\n    {name}\n" in out, out
    assert "about 11 min" in out and "about 13 min" in out and "--quick about 60 s" in out


@pytest.mark.parametrize("name, writes, takes", [
    ("compare", "reports/compare.json", "640 s"),
    ("capacity", "reports/capacity/", "765 s"),
    ("papers", "reports/papers/", "about 65 min"),
    ("bench", "benchmarks/RESULTS.md", "about 35 min"),
    ("deps", "Writes nothing", "about a second"),
    ("plots-template", ".dvc/tmp/rnnlab_plots_template.html", "a few seconds"),
    ("xla-cache", "xla_compile_cache__*.pb files only", "well under a second"),
])
def test_each_commands_help_says_what_it_writes_and_how_long_it_takes(name, writes, takes,
                                                                      capsys):
    status, out, _ = _main([name, "--help"], capsys)
    assert status == 0
    assert out.startswith(f"usage: rnnlab {name} ")
    flat = " ".join(out.split())
    assert writes in flat and takes in flat


def test_every_option_has_help():
    _, subparsers = cli.build_parser()
    for name, parser in subparsers.items():
        for action in parser._actions:
            assert action.help, f"rnnlab {name}: {action.option_strings} has no help"


@pytest.mark.parametrize("argv, line", [
    (["nosuch"], "rnnlab: error: unknown command 'nosuch' (commands: compare, capacity, "
                 "ablation, papers, bench, deps, plots-template, xla-cache)"),
    (["capacty"], "rnnlab: error: unknown command 'capacty'; did you mean 'capacity'? "
                  "(commands: compare, capacity, ablation, papers, bench, deps, plots-template, "
                  "xla-cache)"),
    ([], "rnnlab: error: a command is needed: compare, capacity, ablation, papers, bench, deps, "
         "plots-template, xla-cache (rnnlab --help says more)"),
])
def test_no_known_command_is_one_line_and_exit_2(argv, line, capsys):
    status, out, err = _main(argv, capsys)
    assert status == 2 and err.strip() == line and out == ""


@pytest.mark.parametrize("argv, line", [
    (["capacity", "--shard", "3/2"], "rnnlab capacity: error: argument --shard: expected K/N "
                                     "with 1 <= K <= N (e.g. 1/2), got '3/2'"),
    (["compare", "--seeds", "0"], "rnnlab compare: error: argument --seeds: expected a whole "
                                  "number >= 1, got '0'"),
    (["compare", "--nosuch"], "rnnlab compare: error: unrecognized arguments: --nosuch"),
    (["plots-template", "x"], "rnnlab plots-template: error: unrecognized arguments: x"),
    (["xla-cache", "x"], "rnnlab xla-cache: error: unrecognized arguments: x"),
])
def test_bad_options_end_in_one_line_and_write_nothing(argv, line, capsys, tmp_path,
                                                       monkeypatch):
    monkeypatch.chdir(tmp_path)
    status, _, err = _main(argv, capsys)
    assert status == 2 and err.strip().splitlines()[-1] == line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name, module, error", [
    ("compare", compare, RnnlabError("params.yaml: tf_model.cell must be one of ...")),
    ("capacity", capacity, RuntimeError("DVC refused to run cap-lstm-b0-s0: ...")),
    ("capacity", capacity, subprocess.CalledProcessError(1, ["dvc", "exp", "show"])),
])
def test_workflow_errors_end_in_one_line_naming_the_command(name, module, error, capsys,
                                                            monkeypatch):
    def fail(*args):
        raise error

    monkeypatch.setattr(module, name, fail)  # the workflow function behind the command
    status, _, err = _main([name], capsys)
    assert status not in (0, None)
    text = str(status) + err  # sys.exit("...") carries its line as the exit code
    expected = ("`dvc exp show` failed with exit 1"
                if isinstance(error, subprocess.CalledProcessError) else str(error))
    assert f"rnnlab {name}: error: {expected}" in text


def test_compare_and_capacity_get_the_same_options_both_ways(monkeypatch):
    seen = []
    monkeypatch.setattr(compare, "run", lambda args: seen.append(vars(args)) or 0)
    monkeypatch.setattr(capacity, "run", lambda args: seen.append(vars(args)) or 0)
    assert cli.main(["compare", "--seeds", "2", "--only", "lstm", "rnn"]) == 0
    assert cli.main(["capacity", "--quick", "--jobs", "1", "-S", "tf_memory.epochs=2"]) == 0
    direct = [vars(compare.build_parser().parse_args(["--seeds", "2", "--only", "lstm", "rnn"])),
              vars(capacity.build_parser().parse_args(["--quick", "--jobs", "1",
                                                       "-S", "tf_memory.epochs=2"]))]
    for via_cli, via_module in zip(seen, direct, strict=True):
        assert via_cli.pop("command_name").startswith("rnnlab ")
        via_module.pop("command_name")
        via_cli.pop("command")
        assert via_cli == via_module


def test_bench_outside_a_checkout_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    status, _, err = _main(["bench"], capsys)
    assert status not in (0, None)
    assert str(status) == (f"rnnlab bench: error: no benchmarks/run.py in {tmp_path}: run it "
                           "from the top folder of an rnnlab checkout")


def test_bench_runs_the_checkouts_script_with_this_interpreter_and_passes_options_on(
        tmp_path, monkeypatch, capfd):
    script = tmp_path / "benchmarks" / "run.py"
    script.parent.mkdir()
    script.write_text(textwrap.dedent("""\
        import json, os, sys
        print(json.dumps({"argv": sys.argv[1:], "python": sys.executable,
                          "path": os.environ["PATH"].split(os.pathsep)[0]}))
        sys.exit(3)
    """))
    monkeypatch.chdir(tmp_path)
    assert cli.main(["bench", "--skip-sizes", "--repeats", "5"]) == 3  # its status, passed on
    seen = json.loads(capfd.readouterr().out)
    assert seen["argv"] == ["--skip-sizes", "--repeats", "5"]
    assert seen["python"] == sys.executable
    assert seen["path"] == str(cli.Path(sys.executable).parent)  # dvc workers find this venv


def test_deps_passes_its_options_to_code_deps(monkeypatch):
    from rnnlab.pipeline import code_deps

    seen = []
    monkeypatch.setattr(code_deps, "main", lambda argv: seen.append(argv))
    assert cli.main(["deps"]) == 0 and cli.main(["deps", "--write"]) == 0
    assert seen == [[], ["--write"]]


def test_python_m_rnnlab_cli_works_and_the_modules_keep_their_own_entry_points():
    for module in ("rnnlab.cli", "rnnlab.workflows.compare", "rnnlab.workflows.capacity"):
        proc = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True,
                              text=True, check=True)
        usage = "usage: rnnlab " if module == "rnnlab.cli" else f"usage: python -m {module} "
        assert proc.stdout.startswith(usage), proc.stdout


# `rnnlab capacity --quick` through the real queue, with the quick grid made tiny (the LSTM
# alone, one point, tiny data) so that the test trains for seconds, not the 12-run quick grid.
QUICK_TINY = """
import sys
from rnnlab import cli
from rnnlab.workflows import capacity
capacity.QUICK.update(cells=["lstm"], delays=[0], seeds=[0], overrides={
    "memory_task.n_train": 64, "memory_task.n_test": 32, "memory_task.to_remember_len": 2,
    "tf_model.lstm_hidden": 4, "tf_memory.epochs": 1, "tf_memory.batch_size": 8})
sys.exit(cli.main(["capacity", "--quick", "--jobs", "1"]))
"""


@pytest.mark.slow
def test_a_quick_sweep_leaves_the_committed_summaries_alone(built_copy):
    from helpers import VENV_BIN

    project = built_copy
    proc = project.run(str(VENV_BIN / "python"), "-c", QUICK_TINY, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "wrote reports/capacity-quick/ (not a committed study" in proc.stdout, proc.stdout
    summary = json.loads((project.root / "reports/capacity-quick/summary.json").read_text())
    assert summary["grid"]["name"] == "quick" and summary["grid"]["committed_study"] is False
    assert summary["lstm"]["b0"]["n_runs"] == 1
    status = project.git("status", "--porcelain", "--", "metrics", "plots", "reports/capacity",
                         "reports/compare.json", "docs", "README.md").stdout
    assert status == ""
    assert "cap-quick-lstm-b0-s0" in project.dvc("exp", "ls", "--name-only").stdout
