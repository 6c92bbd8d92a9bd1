"""`mprun schema`: print the workflow JSON Schema, for editors and other tools."""

from __future__ import annotations

import sys
from typing import TextIO

from runner.schema import schema_path


def schema(*, out: TextIO | None = None) -> int:
    """Print the schema exactly as shipped."""
    (out or sys.stdout).write(schema_path().read_text(encoding="utf-8"))
    return 0
