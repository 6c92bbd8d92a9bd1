"""`mprun check`: validate workflow files for editors, pre-commit and CI."""

from __future__ import annotations

import glob
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TextIO

from runner.checker import CheckResult, check_bytes, check_file
from runner.document import MAX_BYTES
from runner.errors import FAILED, OK, Bug, UsageError
from runner.inspection import Interrupted, Probes
from runner.problem import Problem
from runner.reporter import REPORTERS
from runner.target import IMPORT_TIMEOUT

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


def _read_stdin() -> bytes:
    if sys.stdin is None:
        raise UsageError("'-' reads the workflow from standard input, which is closed")
    return sys.stdin.buffer.read(MAX_BYTES + 1)  # more is refused as too large


def _in_parallel(one: Callable[[Path], CheckResult], files: list[Path], probes: Probes) -> list[CheckResult]:
    """Check files on a few threads: import checks wait on child interpreters, so overlapping
    them pays (pure parsing would not)."""
    pool = ThreadPoolExecutor(min(len(files), os.cpu_count() or 1))
    try:
        futures = [pool.submit(one, path) for path in files]
        # Sleep rather than block on the futures: Ctrl-C may be delivered to a worker thread, and
        # its handler runs only when the main thread next runs Python code; a KeyboardInterrupt
        # raised inside concurrent.futures' own locking could also leave a lock held.
        while not all(future.done() for future in futures):
            time.sleep(0.05)
    except BaseException:
        # The probes run in sessions of their own: no signal meant for mprun reached them.
        probes.stop()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    return [future.result() for future in futures]


def check(
    paths: Sequence[str],
    *,
    output_format: str = "text",
    strict: bool = False,
    imports: bool = True,
    import_timeout: float = IMPORT_TIMEOUT,
    backend: str | None = None,
    overrides: Sequence[str] = (),
    out: TextIO | None = None,
    err: TextIO | None = None,
    check_one: Callable[..., CheckResult] = check_file,
) -> int:
    """Check every workflow the paths name (`-`: standard input) and report them all.

    Returns 0 when all are valid and 1 when any has an error; raises `Bug` after reporting if
    checking a file failed in mprun itself.
    """
    files = find_workflows(paths)
    stdin = _read_stdin() if Path(STDIN) in files else b""
    probes = Probes()

    def one(path: Path) -> CheckResult:
        options = {"imports": imports, "import_timeout": import_timeout, "probes": probes, "backend": backend}
        if overrides:
            options["overrides"] = overrides
        try:
            if path == Path(STDIN):
                return check_bytes(stdin, "<stdin>", **options)  # type: ignore[arg-type]
            return check_one(path, **options)
        except Interrupted:
            raise
        except Exception as error:  # noqa: BLE001 - a bug on one file must not hide the others' problems
            name = "<stdin>" if path == Path(STDIN) else str(path)
            message = f"mprun failed while checking this file, a bug to report: {type(error).__name__}: {error}"
            return CheckResult(name, (Problem(name, 1, 1, "error", message, INTERNAL_ERROR),))

    if imports:
        results = _in_parallel(one, files, probes)
    else:
        results = [one(path) for path in files]
    if strict:
        results = [CheckResult(r.path, tuple(p.promoted() for p in r.problems), r.workflow) for r in results]
    REPORTERS[output_format](results, out or sys.stdout, err or sys.stderr)
    crashed = [r.path for r in results if any(problem.code == INTERNAL_ERROR for problem in r.problems)]
    if crashed:
        raise Bug(f"checking {', '.join(crashed)} failed (reported above as internal-error)")
    return OK if all(result.ok for result in results) else FAILED
