"""`mprun check`: validate workflow files for editors, pre-commit and CI."""

from __future__ import annotations

import glob
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TextIO

from runner.checker import CheckResult, check_file, check_text
from runner.errors import BUG, FAILED, OK, UsageError
from runner.inspection import DEFAULT_TIMEOUT, stop_all
from runner.problem import Problem
from runner.reporter import REPORTERS

WORKFLOW_SUFFIXES = (".yaml", ".yml")
INTERNAL_ERROR = "internal-error"


STDIN = "-"


def _is_workflow(name: str) -> bool:
    return name.endswith(WORKFLOW_SUFFIXES) and not name.startswith(".")


def _in_folder(folder: Path) -> list[Path]:
    """The workflow files below a folder; hidden files and folders (`.pre-commit-config.yaml`) are not."""
    found = []
    for root, folders, files in os.walk(folder):
        folders[:] = sorted(name for name in folders if not name.startswith(".") and name != "__pycache__")
        found += [Path(root, name) for name in sorted(files) if _is_workflow(name)]
    return found


def _expand(argument: str) -> list[Path]:
    path = Path(argument)
    if argument == STDIN:
        return [path]
    if path.is_dir():
        matches = _in_folder(path)
        if not matches:
            raise UsageError(f"no workflow files (*.yaml, *.yml) in folder '{argument}'")
        return matches
    if path.exists():
        return [path]  # named explicitly: checked whatever its name
    if glob.has_magic(argument):
        # A pattern is taken like the folders and files it matches, as if they were listed.
        matches = []
        for name in sorted(glob.glob(argument, recursive=True)):
            if Path(name).is_dir():
                matches += _in_folder(Path(name))
            elif _is_workflow(Path(name).name):
                matches.append(Path(name))
        if not matches:
            raise UsageError(f"no workflow files (*.yaml, *.yml) match '{argument}'")
        return matches
    raise UsageError(f"no such file or folder: '{argument}'")


def find_workflows(arguments: Iterable[str]) -> list[Path]:
    """The files named by paths, folders (searched for *.yaml and *.yml), glob patterns and `-`."""
    found: dict[Path, None] = {}
    for argument in arguments:
        found.update(dict.fromkeys(_expand(argument)))
    return list(found)


def check(
    paths: Sequence[str],
    *,
    output_format: str = "text",
    strict: bool = False,
    imports: bool = True,
    import_timeout: float = DEFAULT_TIMEOUT,
    out: TextIO | None = None,
    err: TextIO | None = None,
    check_one: Callable[..., CheckResult] = check_file,
) -> int:
    """Check every workflow the paths name (`-`: standard input); 0 when all are valid, 1 when any has an error."""
    files = find_workflows(paths)
    text = sys.stdin.read() if Path(STDIN) in files else ""

    def one(path: Path) -> CheckResult:
        try:
            if path == Path(STDIN):
                return check_text(text, "<stdin>", imports=imports, import_timeout=import_timeout)
            return check_one(path, imports=imports, import_timeout=import_timeout)
        except Exception as error:  # noqa: BLE001 - a bug on one file must not hide the others' problems
            message = f"mprun failed while checking this file, a bug to report: {type(error).__name__}: {error}"
            return CheckResult(str(path), (Problem(str(path), 1, 1, "error", message, INTERNAL_ERROR),))

    # Import checks wait on child interpreters, so overlapping them pays; pure parsing does not.
    workers = min(len(files), os.cpu_count() or 1) if imports else 1
    pool = ThreadPoolExecutor(workers)
    try:
        results = list(pool.map(one, files))
    except BaseException:
        # Interrupted: the import probes run in sessions of their own, so no signal reached them.
        pool.shutdown(wait=False, cancel_futures=True)
        stop_all()
        raise
    pool.shutdown()
    if strict:
        results = [CheckResult(r.path, tuple(p.promoted() for p in r.problems), r.workflow) for r in results]
    REPORTERS[output_format](results, out or sys.stdout, err or sys.stderr)
    if any(problem.code == INTERNAL_ERROR for result in results for problem in result.problems):
        return BUG
    return OK if all(result.ok for result in results) else FAILED
