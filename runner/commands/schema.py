"""`mprun schema`: print the workflow JSON Schema, or the format reference written from it."""

from __future__ import annotations

import sys
from typing import TextIO

from runner.schema import schema_path


def schema(*, output_format: str = "json", out: TextIO | None = None) -> int:
    """Print the schema exactly as shipped (`json`) or as the Markdown reference (`markdown`)."""
    if output_format == "markdown":
        from runner.reference import markdown

        text = markdown()
    else:
        text = schema_path().read_text(encoding="utf-8")
    (out or sys.stdout).write(text)
    return 0
