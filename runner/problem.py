"""A problem found in a workflow: the record every check yields and every reporter renders."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Literal

Severity = Literal["error", "warning"]
JsonPath = tuple[str | int, ...]


def format_path(path: JsonPath) -> str:
    """Render a JSON path the way a reader writes it: `steps[2].put.queue`."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


@dataclass(frozen=True, order=True)
class Problem:
    """One mistake at one place of one file.

    `line` and `column` count from 1 and point at the offending key or value; `code` names the
    rule that found it (stable, for filtering and for the docs).
    """

    file: str
    line: int
    column: int
    severity: Severity
    message: str
    code: str
    path: str = ""

    def promoted(self) -> Problem:
        """This problem as an error: what `--strict` makes of a warning."""
        return replace(self, severity="error")


def count(problems: Iterable[Problem], severity: Severity) -> int:
    return sum(1 for problem in problems if problem.severity == severity)


def did_you_mean(word: str, choices: Iterable[str], *, list_all: bool = True) -> str:
    """A hint naming the closest choice, or (with `list_all`) all of them when there are few."""
    import difflib

    options = sorted(choices)
    same_but_case = [option for option in options if option.lower() == word.lower()]
    close = same_but_case or difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    if close:
        return f"; did you mean '{close[0]}'?"
    if list_all and 0 < len(options) <= 12:
        return f" (expected one of: {', '.join(options)})"
    return ""
