"""An offline `dvc plots` page: Vega, Vega-Lite and Vega-Embed inlined from an installed package.

DVC's default page loads Vega from a CDN, so on an offline machine only the PNGs show. DVC
fills an `--html-template` by replacing `{plot_divs}`; a template that inlines
`vl_convert.javascript_bundle()` (and has no `{scripts}` slot for DVC's CDN tags) renders
every chart with no network. The bundle comes from the `vl-convert-python` package at run
time and is never copied into the repository.

    python -m rnnlab.plots_page show              # like `dvc plots show`, offline
    python -m rnnlab.plots_page diff rnn lstm     # like `dvc plots diff rnn lstm`, offline
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from rnnlab.dvc_cli import describe_failure, dvc_output

TEMPLATE = Path(".dvc/tmp/rnnlab_offline_template.html")
STYLE = ("body{font-family:sans-serif;margin:1.5em;}"
         "body>div{display:inline-block;vertical-align:top;margin:0 1em 1.5em 0;}")


def write_template(path: Path = TEMPLATE) -> Path:
    """Write the offline page template (regenerated each time; it lives in DVC's tmp folder)."""
    import vl_convert

    bundle = vl_convert.javascript_bundle()
    # A literal "</script>" inside the bundle would end the tag early.
    bundle = bundle.replace("</script>", "<\\/script>")
    page = ("<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n"
            "<title>rnnlab plots</title>\n"
            f"<style>{STYLE}</style>\n<script>\n{bundle}\n</script>\n</head>\n"
            "<body>\n<h1>rnnlab plots</h1>\n{plot_divs}\n</body>\n</html>\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page)
    return path


def render(revisions: list[str], out_dir: str) -> Path:
    """Run `dvc plots show` (no revisions) or `dvc plots diff REV...` with the offline template."""
    command = ["plots", "diff", *revisions] if revisions else ["plots", "show"]
    dvc_output(*command, "--html-template", str(write_template()), "-o", out_dir, check=True)
    return Path(out_dir) / "index.html"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("show", "diff"))
    parser.add_argument("revisions", nargs="*", help="revisions or experiment names (diff)")
    parser.add_argument("-o", "--out", default="dvc_plots")
    args = parser.parse_args(argv)
    try:
        page = render(args.revisions if args.command == "diff" else [], args.out)
    except subprocess.CalledProcessError as exc:
        sys.exit(f"plots: {describe_failure(exc)}")
    print(f"plots: offline page written to {page} (open it in a browser; no network needed)")


if __name__ == "__main__":
    main()
