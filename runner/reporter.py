"""Render check results for people (text), programs (JSON) and GitHub Actions (annotations)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

from runner.problem import Problem, count

if TYPE_CHECKING:
    from runner.checker import CheckResult


def _summary(results: Sequence[CheckResult]) -> str:
    problems = [problem for result in results for problem in result.problems]
    errors, warnings = count(problems, "error"), count(problems, "warning")
    files = f"{len(results)} file{'s' if len(results) != 1 else ''}"
    if not problems:
        return f"{files} checked: no problems"
    plural = {"error": "s" if errors != 1 else "", "warning": "s" if warnings != 1 else ""}
    return f"{files} checked: {errors} error{plural['error']}, {warnings} warning{plural['warning']}"


def text(results: Sequence[CheckResult], out: TextIO, err: TextIO) -> None:
    """`path:line:col: severity: message`, the form compilers use and editors jump to."""
    for result in results:
        for p in result.problems:
            # One line per problem, whatever user code put in an exception message.
            message = " ".join(p.message.splitlines())
            out.write(f"{p.file}:{p.line}:{p.column}: {p.severity}: {message} [{p.code}]\n")
    err.write(_summary(results) + "\n")


def _record(problem: Problem) -> dict[str, object]:
    return {
        "file": problem.file,
        "line": problem.line,
        "column": problem.column,
        "severity": problem.severity,
        "code": problem.code,
        "path": problem.path,
        "message": problem.message,
    }


def json_lines(results: Sequence[CheckResult], out: TextIO, err: TextIO) -> None:
    """One JSON document: every file with its validity and problems."""
    document = {
        "files": [
            {"file": result.path, "ok": result.ok, "problems": [_record(p) for p in result.problems]}
            for result in results
        ],
        "ok": all(result.ok for result in results),
        "summary": _summary(results),
    }
    out.write(json.dumps(document, indent=2) + "\n")


def _escape_data(value: str) -> str:
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(value: str) -> str:
    return _escape_data(value).replace(":", "%3A").replace(",", "%2C")


def github(results: Sequence[CheckResult], out: TextIO, err: TextIO) -> None:
    """GitHub Actions workflow commands, which show as annotations on the pull request."""
    for result in results:
        for p in result.problems:
            props = ",".join(
                f"{key}={_escape_property(str(value))}"
                for key, value in (("file", p.file), ("line", p.line), ("col", p.column), ("title", f"mprun {p.code}"))
            )
            out.write(f"::{p.severity} {props}::{_escape_data(p.message)}\n")
    err.write(_summary(results) + "\n")


REPORTERS = {"text": text, "json": json_lines, "github": github}
"""Each output format of `mprun check`, by name."""
FORMATS = tuple(REPORTERS)
