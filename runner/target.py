"""Resolve `module:attribute` references; imported by child processes, so standard library only."""

from __future__ import annotations

import importlib
from typing import Any


def split(reference: str) -> tuple[str, str]:
    """`pkg.mod:Class.attr` -> (`pkg.mod`, `Class.attr`)."""
    module, _, attribute = reference.partition(":")
    return module, attribute


def resolve(reference: str) -> Any:
    """Import the module of `module:attribute` and return the (possibly dotted) attribute."""
    module_name, attribute = split(reference)
    found: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        found = getattr(found, part)
    return found
