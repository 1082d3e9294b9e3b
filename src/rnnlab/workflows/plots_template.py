"""An offline page for DVC's own `dvc plots show` / `dvc plots diff`, set up by `make setup`.

DVC's default page loads Vega from a CDN, so on an offline machine only the PNGs show. DVC
fills a page template by replacing `{plot_divs}`; a template that inlines Vega, Vega-Lite and
Vega-Embed (`vl_convert.javascript_bundle()`, from the installed vl-convert-python package)
and has no `{scripts}` slot (where DVC would put its CDN tags) renders every chart with no
network. This module writes that template to an ignored path and points DVC's local config at
it (`plots.html_template` in .dvc/config.local, a path relative to .dvc/), so the plain
commands work offline. The bundle is never copied into the repository.

    python -m rnnlab.workflows.plots_template      # what `make setup` runs
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from rnnlab.workflows.dvc_commands import describe_failure, dvc

TEMPLATE = Path(".dvc/tmp/rnnlab_plots_template.html")  # .dvc/tmp is git-ignored by DVC
STYLE = ("body{font-family:sans-serif;margin:1.5em;}"
         "body>div{display:inline-block;vertical-align:top;margin:0 1em 1.5em 0;}")


def template_text() -> str:
    """The page: Vega, Vega-Lite and Vega-Embed inlined, `{plot_divs}` where DVC's charts go."""
    import vl_convert

    # A literal "</script>" inside the bundle would end the tag early.
    bundle = vl_convert.javascript_bundle().replace("</script>", "<\\/script>")
    return ("<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n"
            "<title>rnnlab plots</title>\n"
            f"<style>{STYLE}</style>\n<script>\n{bundle}\n</script>\n</head>\n"
            "<body>\n<h1>rnnlab plots</h1>\n{plot_divs}\n</body>\n</html>\n")


def install(path: Path = TEMPLATE) -> Path:
    """Write the template (atomically) and set it as this clone's `plots.html_template`."""
    from rnnlab.pipeline.files import write_text

    write_text(path, template_text())
    relative = path.resolve().relative_to(Path(".dvc").resolve())
    dvc("config", "--local", "plots.html_template", relative.as_posix(), quiet=True)
    return path


def main() -> None:
    try:
        path = install()
    except subprocess.CalledProcessError as exc:
        sys.exit(f"plots_template: {describe_failure(exc)}")
    print(f"plots_template: wrote {path}; `dvc plots show` and `dvc plots diff` now render "
          "offline (plots.html_template in .dvc/config.local)")


if __name__ == "__main__":
    main()
