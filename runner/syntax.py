"""YAML syntax errors, explained: libyaml says where it gave up; people want where to fix.

An unclosed `[` or quote is reported by libyaml where the file ran out, and a missing space
after a colon where the *next* line fails; these rules move the position to the cause and say
what it is, falling back to libyaml's own words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import yaml

# `key:value` at the start of a line: YAML reads the whole thing as one string.
_GLUED_KEY = re.compile(r"^(?P<indent>\s*(?:-\s+)?)(?P<text>[A-Za-z_][\w.-]*:[^\s:][^\s#]*)\s*(?:#.*)?$")
_OPENERS = {"flow sequence": "[", "flow mapping": "{"}


@dataclass(frozen=True)
class SyntaxExplanation:
    """Where a syntax error should be shown (1-based) and what to say."""

    line: int
    column: int
    message: str


def _mark(error: yaml.YAMLError, name: str) -> tuple[int, int] | None:
    mark = getattr(error, name, None)
    return (mark.line + 1, mark.column + 1) if mark is not None else None


def _char_at(lines: list[str], line: int, column: int) -> str:
    if 1 <= line <= len(lines) and 1 <= column <= len(lines[line - 1]):
        return lines[line - 1][column - 1]
    return ""


def _glued_key_before(lines: list[str], line: int) -> SyntaxExplanation | None:
    """A `key:value` line just before the one that failed, for "mapping values are not allowed"."""
    for number in range(line - 1, max(line - 3, 0), -1):
        match = _GLUED_KEY.match(lines[number - 1])
        if match:
            return SyntaxExplanation(
                number,
                len(match["indent"]) + 1,
                f"'{match['text']}' is read as one string, not a key and its value: put a space after "
                f"'{match['text'].split(':', 1)[0]}:'",
            )
    return None


def explain(text: str, error: yaml.YAMLError) -> SyntaxExplanation:
    """The position and message for a YAML error raised while composing `text`."""
    lines = text.splitlines()
    problem_at = _mark(error, "problem_mark")
    context_at = _mark(error, "context_mark")
    problem = str(getattr(error, "problem", "") or "")
    context = str(getattr(error, "context", "") or "")
    line, column = problem_at or context_at or (1, 1)

    if _char_at(lines, line, column) == "\t":
        return SyntaxExplanation(line, column, "a tab character: YAML indents with spaces, not tabs")
    if "mapping values are not allowed" in problem:
        glued = _glued_key_before(lines, line)
        if glued is not None:
            return glued
        return SyntaxExplanation(
            line, column, f"unexpected ':' here ({problem}): quote a value that contains ': ', or check the indentation"
        )
    for kind, opener in _OPENERS.items():
        if kind in context and context_at is not None:
            return SyntaxExplanation(
                *context_at, f"the '{opener}' here is never closed: {problem} (at line {line}, column {column})"
            )
    if "quoted scalar" in context and context_at is not None:
        return SyntaxExplanation(*context_at, f"the quoted scalar (string) that starts here is never closed: {problem}")
    if "did not find expected key" in problem or "expected <block end>" in problem:
        return SyntaxExplanation(
            line, column, f"this line's indent does not line up with the keys around it ({problem})"
        )
    if "undefined alias" in problem:
        alias = re.match(r"\*[^\s,\]}]+", lines[line - 1][column - 1 :]) if 1 <= line <= len(lines) else None
        name = alias.group(0) if alias else "this alias"
        return SyntaxExplanation(
            line, column, f"{name} refers to no anchor ({problem}): define '&{name.lstrip('*')}' before using it"
        )
    message = f"{context}: {problem}" if context and problem and context not in problem else problem or context
    return SyntaxExplanation(line, column, message or str(error).splitlines()[0])
