"""`mprun check`: validate workflow files for editors, pre-commit and CI."""

from __future__ import annotations

import glob
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TextIO

from runner.checker import CheckResult, check_file
from runner.errors import BUG, FAILED, OK, UsageError
from runner.inspection import DEFAULT_TIMEOUT, stop_all
from runner.problem import Problem
from runner.reporter import REPORTERS

WORKFLOW_SUFFIXES = (".yaml", ".yml")
INTERNAL_ERROR = "internal-error"


def _in_folder(folder: Path) -> list[Path]:
    found = []
    for root, folders, files in os.walk(folder):
        folders[:] = sorted(name for name in folders if not name.startswith(".") and name != "__pycache__")
        found += [Path(root, name) for name in sorted(files) if name.endswith(WORKFLOW_SUFFIXES)]
    return found


def find_workflows(arguments: Iterable[str]) -> list[Path]:
    """The files named by paths, folders (searched for *.yaml and *.yml) and glob patterns."""
    found: dict[Path, None] = {}
    for argument in arguments:
        path = Path(argument)
        if path.is_dir():
            matches = _in_folder(path)
            if not matches:
                raise UsageError(f"no workflow files (*.yaml, *.yml) in folder '{argument}'")
        elif path.exists():
            matches = [path]
        elif glob.has_magic(argument):
            matches = [Path(name) for name in sorted(glob.glob(argument, recursive=True)) if Path(name).is_file()]
            if not matches:
                raise UsageError(f"no files match '{argument}'")
        else:
            raise UsageError(f"no such file or folder: '{argument}'")
        found.update(dict.fromkeys(matches))
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
    """Check every workflow the paths name; 0 when all are valid, 1 when any has an error."""
    files = find_workflows(paths)

    def one(path: Path) -> CheckResult:
        try:
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
