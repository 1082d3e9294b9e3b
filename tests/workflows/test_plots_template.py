"""The offline plots template (rnnlab.workflows.plots_template): Vega inlined, nothing loaded
from the network, installed as DVC's plots.html_template."""

from __future__ import annotations

import re

from rnnlab.workflows.plots_template import TEMPLATE, template_text

EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", re.IGNORECASE)


def test_template_inlines_vega_and_has_no_external_reference():
    page = template_text()
    assert page.count("{plot_divs}") == 1 and "{scripts}" not in page
    assert "vegaEmbed" in page and "vegaLite" in page
    assert not EXTERNAL.search(page)
    assert TEMPLATE.parts[:2] == (".dvc", "tmp")  # git-ignored by DVC itself
