"""The offline plots page: every chart's data inlined, Vega from an installed package, no URL."""

from __future__ import annotations

import re

import pytest

from conftest import VENV_BIN

EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", re.IGNORECASE)


def test_template_inlines_vega_and_has_no_external_reference(tmp_path):
    from rnnlab.plots_page import write_template

    page = write_template(tmp_path / "t.html").read_text()
    assert "{plot_divs}" in page and "{scripts}" not in page
    assert "vegaEmbed" in page
    assert not EXTERNAL.search(page)


@pytest.mark.slow
def test_offline_page_renders_every_plot_without_network(built_project):
    proc = built_project.run(str(VENV_BIN / "python"), "-m", "rnnlab.plots_page", "show",
                             "-o", "dvc_plots_offline")
    assert "offline page written" in proc.stdout
    page = (built_project.root / "dvc_plots_offline/index.html").read_text()
    assert not EXTERNAL.search(page)
    assert "<script src" not in page
    # One embedded chart per declared data plot, one <img> per PNG plot.
    assert page.count("vegaEmbed(") >= 6
    assert page.count("<img") >= 2
