"""`module:attribute` references to Python objects; imported by child processes, so standard library only."""

from __future__ import annotations

IMPORT_TIMEOUT = 10.0
"""Seconds a target's import may take in `mprun check` before it counts as hanging."""


def split(reference: str) -> tuple[str, str]:
    """`pkg.mod:Class.attr` -> (`pkg.mod`, `Class.attr`)."""
    module, _, attribute = reference.partition(":")
    return module, attribute
