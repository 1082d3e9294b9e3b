"""What every workflow module's `python -m rnnlab.workflows.<name>` shares: a parser built from
the module's own add_arguments (the very options `rnnlab <name>` offers) and a main that exits
with run()'s code."""

from __future__ import annotations

import argparse
import sys
from typing import Callable


def module_parser(name: str, description: str,
                  add_arguments: Callable[[argparse.ArgumentParser], None]
                  ) -> argparse.ArgumentParser:
    """The parser of `python -m rnnlab.workflows.<name>`."""
    parser = argparse.ArgumentParser(prog=f"python -m rnnlab.workflows.{name}",
                                     description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return parser


def module_main(parser: argparse.ArgumentParser,
                run: Callable[[argparse.Namespace], int], argv: list[str] | None) -> None:
    sys.exit(run(parser.parse_args(argv)))
