"""The README's tables that workflows make: each between its markers, replaced in place."""

from __future__ import annotations

import re
from pathlib import Path

from rnnlab.pipeline.files import write_text

README = Path("README.md")


def refresh_readme(tables: dict[str, str], readme: Path = README,
                   made_by: str = "make compare") -> None:
    """Put each table between its markers (`<!-- NAME: made by MADE_BY -->` ... `<!-- /NAME -->`)
    in the README (where it has them)."""
    text = readme.read_text()
    for name, table in tables.items():
        start, end = f"<!-- {name}: made by {made_by} -->", f"<!-- /{name} -->"
        pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
        replacement = f"{start}\n{table}\n{end}"
        text = pattern.sub(lambda _, new=replacement: new, text)  # a function: no escapes
    write_text(readme, text)
