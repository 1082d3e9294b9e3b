"""Shared fixtures (the helpers themselves are in helpers.py)."""

from __future__ import annotations

import fcntl
import os
import shutil

import pytest

from helpers import Project, make_project


# The longest tests go first, one to each pytest-xdist worker (it hands out the first tests in
# turn): the sweep test, which needs no shared build, runs while the other worker builds it.
LONGEST_FIRST = ("test_a_sweep_sharded_over_two_machines_equals_one_machine",
                 "test_compare_summarises_seeds_and_reruns_nothing")


def pytest_collection_modifyitems(items) -> None:
    """Longest first, then the other slow tests, then the fast ones (a stable sort)."""
    def rank(item) -> int:
        if item.originalname in LONGEST_FIRST:
            return LONGEST_FIRST.index(item.originalname)
        return len(LONGEST_FIRST) + (item.get_closest_marker("slow") is None)

    items.sort(key=rank)


def _built_once(shared_root) -> Project:
    """The tiny-params pipeline reproduced and committed once per test run: the first pytest
    worker to get here builds it, under a file lock; the others wait and reuse it."""
    shared_root.mkdir(parents=True, exist_ok=True)
    with open(shared_root / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (shared_root / "done").exists():
            project = make_project(shared_root / "repo")
            project.dvc("repro")
            project.commit("reproduced")
            (shared_root / "done").touch()
    return Project(shared_root / "repo")


def _copy(project: Project, dest) -> Project:
    shutil.copytree(project.root, dest, symlinks=True)
    return Project(dest)


@pytest.fixture(scope="session")
def built_project(tmp_path_factory) -> Project:
    """A tiny-params copy of the repo with the whole pipeline reproduced and committed; each
    pytest worker gets its own copy of one build.

    A test that changes it must put it back before it ends; most such tests take
    `built_copy` instead.
    """
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):  # the workers' folders share this run's parent
        base = base.parent
    shared = _built_once(base / "built-shared")
    return _copy(shared, tmp_path_factory.mktemp("built") / "repo")


@pytest.fixture
def built_copy(built_project, tmp_path) -> Project:
    """A private copy of the built project, for a test that leaves things behind (experiments,
    commits)."""
    return _copy(built_project, tmp_path / "repo")
