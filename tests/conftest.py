"""Shared fixtures (the helpers themselves are in helpers.py)."""

from __future__ import annotations

import pytest

from helpers import Project, make_project


@pytest.fixture(scope="session")
def built_project(tmp_path_factory) -> Project:
    """A tiny-params copy of the repo with the whole pipeline reproduced and committed.

    Tests that change it must restore it (git checkout + dvc checkout) before they end.
    """
    project = make_project(tmp_path_factory.mktemp("built") / "repo")
    project.dvc("repro")
    project.commit("reproduced")
    return project
