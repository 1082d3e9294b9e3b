"""rnnlab.workflows.worker's in-process helpers, without a repository."""

from __future__ import annotations

import io

import pytest
from dvc.utils.serialize import _yaml, modify_yaml

from rnnlab.workflows.worker import record_time, yaml_parsed_once

LOCK = "schema: '2.0'\nstages:\n  a:\n    cmd: python a.py\n    outs:\n    - path: out\n"


@pytest.fixture
def parses(monkeypatch) -> list[str]:
    """The `typ` of every real parse of a YAML text (DVC's _yaml.parse_yaml), in order."""
    typs: list[str] = []
    parse = _yaml.parse_yaml

    def counting(text, path, typ="safe"):
        typs.append(typ)
        return parse(text, path, typ)

    monkeypatch.setattr(_yaml, "parse_yaml", counting)
    return typs


def test_yaml_parsed_once_parses_a_text_once_and_hands_out_independent_copies(parses):
    counting = _yaml.parse_yaml
    with yaml_parsed_once():
        first = _yaml.parse_yaml_for_update(LOCK, "dvc.lock")
        first["stages"]["a"]["cmd"] = "changed by its caller"
        second = _yaml.parse_yaml_for_update(LOCK, "dvc.lock")
        assert second["stages"]["a"]["cmd"] == "python a.py"  # not the caller's change
        assert _yaml.parse_yaml(LOCK, "dvc.lock") == {"schema": "2.0", "stages": {"a": {
            "cmd": "python a.py", "outs": [{"path": "out"}]}}}
    assert parses == ["rt", "safe"]
    assert _yaml.parse_yaml is counting  # restored on leaving


def test_what_dvc_writes_is_read_back_without_parsing_and_dumps_the_same(tmp_path, parses):
    path = tmp_path / "dvc.lock"
    path.write_text(LOCK)
    with yaml_parsed_once():
        with modify_yaml(path) as data:  # as DVC updates dvc.lock after a stage
            data["stages"]["b"] = {"cmd": "python b.py", "deps": [{"path": "out", "md5": "x"}]}
        written = path.read_text()
        with modify_yaml(path) as data:  # the next stage's update reads it back
            data["stages"]["c"] = {"cmd": "python c.py"}
    assert parses == ["rt"]  # only the first read parsed
    again = io.StringIO()
    data = _yaml.parse_yaml_for_update(written, "dvc.lock")
    data["stages"]["c"] = {"cmd": "python c.py"}
    _yaml._dump(data, again)
    assert path.read_text() == again.getvalue()  # the same bytes as with a fresh parse


def test_the_experiment_time_ends_the_log_on_a_line_of_its_own(tmp_path):
    """record_time: after a newline when a killed child left its last line unfinished (tqdm's
    bar, here), and never an error that would stop the worker."""
    log = tmp_path / "run.log"
    for written in ("", "done\n", "train: 40%|████"):
        log.write_text(written, encoding="utf-8")
        record_time(log, "cap-lstm-b5-s0", 12.345)
        text = log.read_text(encoding="utf-8")
        assert text.startswith(written) and text.count("rnnlab worker:") == 1
        assert text.splitlines()[-1] == "rnnlab worker: cap-lstm-b5-s0 took 12.35 s", text
    record_time(tmp_path / "no such folder" / "run.log", "x", 1.0)  # no error
