"""Check one workflow file: YAML, then the schema, then the rules, then the Python targets."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from runner import rules, schema
from runner.document import Document, load, parse
from runner.inspection import DEFAULT_TIMEOUT, inspect_targets
from runner.problem import Problem
from runner.workflow import Workflow, from_data, holds_plain_data


@dataclass(frozen=True)
class CheckResult:
    """What checking one file found; `workflow` is set when the file got past the schema."""

    path: str
    problems: tuple[Problem, ...]
    workflow: Workflow | None = None

    @property
    def ok(self) -> bool:
        return not any(problem.severity == "error" for problem in self.problems)


def check_document(document: Document, *, imports: bool = True, import_timeout: float = DEFAULT_TIMEOUT) -> CheckResult:
    """Check a parsed document. Later stages run only on what earlier ones accepted."""
    problems = schema.validate(document)
    if problems:
        return CheckResult(document.path, tuple(problems))
    workflow = from_data(document.data, document.path)
    problems = rules.check(workflow, document)
    # Imports from a broken pythonpath would only repeat its problem, once per target.
    if imports and not any(problem.code == "pythonpath" for problem in problems):
        problems += inspect_targets(workflow, document, timeout=import_timeout)
    return CheckResult(document.path, tuple(sorted(problems)), workflow)


def check_file(path: str | Path, *, imports: bool = True, import_timeout: float = DEFAULT_TIMEOUT) -> CheckResult:
    """Every problem of one workflow file."""
    document, problems = load(path, plain_data=holds_plain_data)
    return _finish(str(path), document, problems, imports, import_timeout)


def check_text(
    text: str, path: str = "<text>", *, imports: bool = True, import_timeout: float = DEFAULT_TIMEOUT
) -> CheckResult:
    """Every problem of workflow text; `path` names it in the problems (and anchors pythonpath)."""
    document, problems = parse(text, path, plain_data=holds_plain_data)
    return _finish(path, document, problems, imports, import_timeout)


def _finish(
    path: str, document: Document | None, problems: list[Problem], imports: bool, import_timeout: float
) -> CheckResult:
    # YAML problems inside a readable document (duplicate keys, non-string keys) are reported
    # with the schema's findings; a document that could not be read at all stops here.
    if document is None:
        return CheckResult(path, tuple(problems))
    result = check_document(document, imports=imports and not problems, import_timeout=import_timeout)
    if not problems:
        return result
    # A key YAML read as a number is also a bad name to the schema: say it once.
    taken = {(problem.line, problem.column) for problem in problems}
    later = [problem for problem in result.problems if (problem.line, problem.column) not in taken]
    return CheckResult(path, tuple(sorted(problems + later)), result.workflow)
