"""Check one workflow: YAML, the schema, the rules, the Python targets, then the warnings.

Each stage runs on what the one before accepted, so that a problem is reported once and not
again as the knock-on errors of later stages.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from runner import hazards, rules, schema
from runner.document import Document, load, parse, parse_bytes
from runner.inspection import Probes, inspect_targets
from runner.problem import Problem
from runner.target import IMPORT_TIMEOUT
from runner.workflow import Workflow, from_data, holds_plain_data


@dataclass(frozen=True)
class CheckResult:
    """What checking one file found; `workflow` is set when the file got past the schema."""

    path: str
    problems: tuple[Problem, ...]
    workflow: Workflow | None = None

    @property
    def ok(self) -> bool:
        """No problem of error severity (warnings allowed)."""
        return not any(problem.severity == "error" for problem in self.problems)


def check_document(
    document: Document,
    *,
    imports: bool = True,
    import_timeout: float = IMPORT_TIMEOUT,
    probes: Probes | None = None,
    backend: str | None = None,
) -> CheckResult:
    """Check a parsed document: the schema, the rules, the Python targets, then the warnings;
    for `backend` (else the one the workflow names), what it refuses."""
    problems = schema.validate(document)
    if problems:
        return CheckResult(document.path, tuple(problems))
    workflow = from_data(document.data, document.path)
    problems = rules.check(workflow, document)
    if (backend or workflow.backend) == "dask":
        from runner.backends.dask import support

        problems += support.refusals(workflow, document)
    folders = list(rules.python_folders(workflow, document))
    problems += folders
    # Imports from a broken pythonpath would only repeat its problem, once per target.
    if imports and not folders:
        problems += inspect_targets(workflow, document, timeout=import_timeout, probes=probes)
    # Warnings assume a sound workflow; next to errors they are mostly echoes of them.
    if not any(problem.severity == "error" for problem in problems):
        problems += hazards.check(workflow, document)
    return CheckResult(document.path, tuple(sorted(problems)), workflow)


def check_file(
    path: str | Path,
    *,
    imports: bool = True,
    import_timeout: float = IMPORT_TIMEOUT,
    probes: Probes | None = None,
    backend: str | None = None,
    overrides: Sequence[str] = (),
) -> CheckResult:
    """Every problem of one workflow file, with these `--set` assignments made."""
    document, problems = read(path, overrides)
    return _finish(str(path), document, problems, imports, import_timeout, probes, backend)


def read(path: str | Path, overrides: Sequence[str] = ()) -> tuple[Document | None, list[Problem]]:
    """The workflow file as data, the environment's variables in it and these `--set`
    assignments made; the problems of both."""
    document, problems = load(path, plain_data=holds_plain_data)
    return _overridden(document, problems, overrides)


def _overridden(
    document: Document | None, problems: list[Problem], assignments: Sequence[str]
) -> tuple[Document | None, list[Problem]]:
    if document is None or not assignments:
        return document, problems
    from runner import overrides

    document, found = overrides.apply(document, assignments, os.environ)
    return document, problems + found


def check_bytes(
    raw: bytes,
    name: str,
    *,
    imports: bool = True,
    import_timeout: float = IMPORT_TIMEOUT,
    probes: Probes | None = None,
    backend: str | None = None,
    overrides: Sequence[str] = (),
) -> CheckResult:
    """Every problem of a workflow read from elsewhere (standard input), as if it were file `name`."""
    document, problems = _overridden(*parse_bytes(raw, name, plain_data=holds_plain_data), overrides)
    return _finish(name, document, problems, imports, import_timeout, probes, backend)


def check_text(
    text: str,
    path: str = "<text>",
    *,
    imports: bool = True,
    import_timeout: float = IMPORT_TIMEOUT,
    backend: str | None = None,
) -> CheckResult:
    """Every problem of workflow text; `path` names it in the problems (and anchors pythonpath)."""
    document, problems = parse(text, path, plain_data=holds_plain_data)
    return _finish(path, document, problems, imports, import_timeout, None, backend)


def _finish(
    path: str,
    document: Document | None,
    problems: list[Problem],
    imports: bool,
    import_timeout: float,
    probes: Probes | None,
    backend: str | None = None,
) -> CheckResult:
    # YAML problems inside a readable document (duplicate keys, keys read as numbers) are
    # reported with the schema's findings; a document that could not be read stops here.
    if document is None:
        return CheckResult(path, tuple(problems))
    result = check_document(
        document, imports=imports and not problems, import_timeout=import_timeout, probes=probes, backend=backend
    )
    if not problems:
        return result
    # A key YAML read as a number is also a bad name to the schema, and a variable that could
    # not be substituted leaves a value the later stages refuse too: say each once.
    keys = {(problem.line, problem.column) for problem in problems if problem.code == "yaml-key"}
    unsubstituted = {problem.path for problem in problems if problem.code in ("unset-variable", "bad-variable")}
    later = [
        problem
        for problem in result.problems
        if (problem.line, problem.column) not in keys and problem.path not in unsubstituted
    ]
    return CheckResult(path, tuple(sorted(problems + later)), result.workflow)
