"""Run a workflow: check it, plan it, drive it on multiprocessing, judge how each process ended.

`run()` is the Python API and what `mprun WORKFLOW` calls. It returns a `RunResult`; problems
with the workflow itself raise `InvalidWorkflow` (nothing was started).
"""

from __future__ import annotations

import contextlib
import datetime
import multiprocessing
import os
import re
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from runner import steps
from runner.checker import CheckResult, check_document, read
from runner.document import Document
from runner.errors import (
    BuildFailed,
    Halt,
    InvalidWorkflow,
    Terminated,
    TimeLimit,
    UsageError,
)
from runner.loop import STOPPING, Signals
from runner.outcome import Ended, RunResult, Stop, cause, judge, verdict
from runner.plan import Plan, make_plan
from runner.problem import Problem
from runner.supervisor import Supervisor
from runner.workflow import Workflow

if TYPE_CHECKING:
    from runner.backends import Backend
    from runner.log import Recorder

DEFAULT_GRACE = 5.0
LOG_FOLDER = "mprun-logs"


def _imports(plan: Plan, document: Document) -> list[Problem]:
    """Import every target in this process, as the run is about to (problems as `mprun check`'s)."""
    from runner.inspection import answer_problems, target_checks
    from runner.probe import examine

    checks = target_checks(plan.workflow)
    modules: dict[str, Any] = {}
    answers = {}
    for index, check in enumerate(checks):
        answers[index] = examine(check.request(), modules)
        pids = (answers[index] or {}).get("pids")
        if pids:  # started here by a module's import: stopped, as the run will not be
            for pid in map(int, pids.split()):
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
    return answer_problems(checks, answers, document)


@contextmanager
def _pythonpath(folders: list[Path]) -> Iterator[None]:
    """Targets import from the workflow's folders, here and (through spawn's preparation data
    or fork's memory) in every child."""
    added = [str(folder) for folder in folders if str(folder) not in sys.path]
    sys.path[:0] = added
    try:
        yield
    finally:
        for entry in added:
            if entry in sys.path:
                sys.path.remove(entry)


START_METHOD_VARIABLE = "MPRUN_START_METHOD"


def default_start_method() -> str:
    """The start method of a workflow that names none: MPRUN_START_METHOD's, else the
    platform's default, read without fixing it for the process (as
    `multiprocessing.get_start_method()` would): the first of those it offers. (Python 3.14
    makes forkserver Linux's default; the variable lets a suite run that way on any Python.)"""
    chosen = os.environ.get(START_METHOD_VARIABLE)
    if chosen:
        if chosen not in multiprocessing.get_all_start_methods():
            offered = ", ".join(multiprocessing.get_all_start_methods())
            raise UsageError(f"{START_METHOD_VARIABLE}={chosen!r} is not a start method here (one of: {offered})")
        return chosen
    return multiprocessing.get_start_method(allow_none=True) or multiprocessing.get_all_start_methods()[0]


def _checked(
    path: str | Path, *, imports: bool = False, backend: str | None = None, overrides: Sequence[str] = ()
) -> tuple[Document, Workflow]:
    """As `mprun check` does; a run imports the targets itself, so by default without probes."""
    document, problems = read(path, overrides)
    checked = CheckResult(str(path), tuple(problems))
    if document is not None and not problems:
        checked = check_document(document, imports=imports, backend=backend)
    if document is None or not checked.ok or checked.workflow is None:
        raise InvalidWorkflow(checked)
    return document, checked.workflow


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def check_only(
    path: str | Path, *, imports: bool = True, backend: str | None = None, overrides: Sequence[str] = ()
) -> Workflow:
    """The workflow at `path`, checked as `mprun check` does; raises `InvalidWorkflow`."""
    return _checked(path, imports=imports, backend=backend, overrides=overrides)[1]


def _raise_open_file_limit() -> None:
    """Each child costs mprun five or six descriptors (four pipes, its sentinel, its pidfd): allow as many as
    the system lets this process have."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass


LOG_NAME_LIMIT = 80  # characters of a workflow's name kept in its default log file's name


def default_log_file(workflow_name: str, run_id: str) -> Path:
    """Where a run's JSON lines go without `--log-file`: `mprun-logs/<workflow>-<run id>.jsonl`,
    the name made safe for a file name inside that folder (a `name:` may hold anything: a
    slash, `..`, a NUL, a newline, thousands of characters)."""
    safe = re.sub(r"[^\w.-]", "_", workflow_name, flags=re.ASCII)[:LOG_NAME_LIMIT].lstrip(".") or "workflow"
    return Path(LOG_FOLDER) / f"{safe}-{run_id}.jsonl"


def run(
    path: str | Path,
    *,
    log_file: str | Path | None = None,
    console: TextIO | None = None,
    console_format: str = "console",
    timeout: float | None = None,
    grace: float = DEFAULT_GRACE,
    start_method: str | None = None,
    backend: str | None = None,
    cluster: str | None = None,
    overrides: Sequence[str] = (),
) -> RunResult:
    """Check, plan and run the workflow at `path`; its log goes to `log_file`. `backend`
    (default: the workflow's, else multiprocessing) runs it; `cluster` is the Dask scheduler.

    Raises `InvalidWorkflow` when the workflow has errors. Ctrl-C and SIGTERM (as
    `KeyboardInterrupt`, SIGTERM as `Terminated`) and the time limit stop every child before
    returning.
    """
    from runner import backends
    from runner import log as logs

    document, workflow = _checked(path, backend=backend, overrides=overrides)
    chosen = backend or workflow.backend or "multiprocessing"
    if chosen == "dask" and not _installed("distributed"):
        raise UsageError("the Dask backend needs Dask's distributed: pip install 'mprun[dask]'")
    plan = make_plan(workflow)
    run_id = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + os.urandom(3).hex()
    target = Path(log_file) if log_file else default_log_file(plan.workflow.name, run_id)
    # On Dask, each worker's fork server starts the processes (see backends/dask/agent.py).
    method = "forkserver" if chosen == "dask" else start_method or plan.workflow.start_method or default_start_method()
    # Everything of mprun's own imported before the workflow's folders come first on sys.path:
    # a `difflib.py` or `yaml.py` of the user's there is never run in place of ours.
    from runner import child, inspection, probe  # noqa: F401 - for _parents_only and _imports

    backend_class = backends.load(chosen)
    backend_class.preload(plan, method)
    with _pythonpath(plan.workflow.python_folders()):
        imported = _imports(plan, document)
        if imported:
            raise InvalidWorkflow(CheckResult(str(path), tuple(imported), workflow))
        _raise_open_file_limit()
        stream = _open_log(target, Path(path))
        with _closing_quietly(stream), _parents_only(stream.fileno()):
            log, recorder = logs.configure(
                log_file=stream,
                console=console or sys.stderr,
                console_format=console_format,
                run_id=run_id,
                workflow=plan.workflow.name,
            )
            with _warnings_logged(log), _default_start_method(method):
                options: dict[str, Any] = {"cluster": cluster} if chosen == "dask" else {}
                make = partial(backend_class, method=method, **options)
                return _drive(plan, log, recorder, make, method, target, run_id, timeout, grace)


@contextmanager
def _default_start_method(method: str) -> Iterator[None]:
    """The run's start method as the process's default while it runs, as a script's main()
    sets it: user code that mprun's parent runs (an object of `objects`, a `put: from:`)
    may make a `multiprocessing.Lock()` or a `Manager()` to hand to the run's processes, and
    a lock made for fork cannot go to a spawn child. The caller's default comes back after."""
    previous = multiprocessing.get_start_method(allow_none=True)
    multiprocessing.set_start_method(method, force=True)
    try:
        yield
    finally:
        multiprocessing.set_start_method(previous, force=True)


def _open_log(target: Path, workflow: Path) -> TextIO:
    """The log file, opened for this run alone. A regular file is locked for the run (a second
    run given it at once is refused) and emptied only once locked; it must not be the workflow
    itself, nor a symbolic link to a file (which would write somewhere unsaid). A device or a
    pipe (`/dev/stdout`, `>(jq .)`) is written as it is."""
    import fcntl
    import stat

    def refuse(why: str) -> UsageError:
        return UsageError(f"cannot write the log file '{target}': {why}")

    try:
        if target.is_symlink() and target.resolve().is_file():
            raise refuse(f"it is a symbolic link to '{os.readlink(target)}'; give that path if it is meant")
        if target.exists() and workflow.exists() and os.path.samefile(target, workflow):
            raise refuse("it is the workflow file itself")
        target.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o666)
    except OSError as error:
        raise refuse(error.strerror or str(error)) from None
    try:
        if stat.S_ISREG(os.fstat(descriptor).st_mode):
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise refuse("another mprun run is writing it now") from None
            os.ftruncate(descriptor, 0)
        return open(descriptor, "w", encoding="utf-8")
    except BaseException:
        os.close(descriptor)
        raise


@contextmanager
def _closing_quietly(stream: TextIO) -> Iterator[None]:
    """Close the log file at the end, even when it cannot take what its buffer still holds (a
    full disk: the run said so as it happened, see log._File)."""
    try:
        yield
    finally:
        try:
            stream.close()
        except OSError:
            pass


@contextmanager
def _parents_only(descriptor: int) -> Iterator[None]:
    """A descriptor of mprun's that fork children close as they start (child.guard)."""
    from runner import child

    child.parents_only.add(descriptor)
    try:
        yield
    finally:
        child.parents_only.discard(descriptor)


@contextmanager
def _warnings_logged(log: Any) -> Iterator[None]:
    """Python warnings of mprun's own process (a DeprecationWarning, a ResourceWarning) go into
    the log as `run.warning` records, not raw onto stderr, where they would break the JSON of
    `--log-format json`."""
    import warnings

    def record(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        log.warning("run.warning", category=category.__name__, message=str(message), file=filename, line=lineno)

    previous = warnings.showwarning
    record.previous = previous  # type: ignore[attr-defined]  # what a fork child puts back (child.py)
    warnings.showwarning = record
    try:
        yield
    finally:
        warnings.showwarning = previous


def _drive(
    plan: Plan,
    log: Any,
    recorder: Recorder,
    make_backend: Callable[..., Backend],
    method: str,
    log_file: Path,
    run_id: str,
    timeout: float | None,
    grace: float,
) -> RunResult:
    # Noted by the run's loop from the first record to the last (then ignored, once the run is
    # being stopped or is over), and blocked until the handlers are in place.
    signals = Signals()
    held = signal.pthread_sigmask(signal.SIG_BLOCK, STOPPING)
    signals.install()
    try:
        log.info(
            "run.start",
            path=plan.workflow.path,
            start_method=method,
            python=sys.version.split()[0],
            pid=os.getpid(),
            log_file=str(log_file),
            processes=len(plan.processes),
        )
        began = time.monotonic()
        backend = make_backend(plan, recorder, time_limit=timeout, signals=signals, grace=grace)
        signal.pthread_sigmask(signal.SIG_SETMASK, held)
        supervisor = Supervisor(plan, backend, log, time.monotonic)
        failures, step_failures, stop = _take(plan, backend, supervisor, log, grace)
        backend.loop.stop()  # the run is over: its last records are written whole
        if recorder.log_error is not None:  # a run whose log is not whole did not do its job
            failures.append(f"the log file is incomplete: {recorder.log_error}")
        return _report(log, backend.endings(), began, stop, failures, step_failures, log_file, run_id)
    finally:
        signals.uninstall()
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


def _take(
    plan: Plan, backend: Backend, supervisor: Supervisor, log: Any, grace: float
) -> tuple[list[str], int, Stop | None]:
    """Build, take the steps, end the run; or stop it on a signal, the time limit, a policy
    (fail fast, a start condition) or a build that failed: the failures in words, how many of
    them were steps', and the stop."""
    failures: list[str] = []
    try:
        backend.build()
        supervisor.begin()
        failures = steps.execute(plan, backend, log, time.monotonic)
        step_failures = len(failures)
        supervisor.end_of_steps()
        backend.finish(grace)
        backend.close()
        return failures, step_failures, None
    except (TimeLimit, Halt, KeyboardInterrupt, BuildFailed) as error:
        # Stopping is bounded (SIGTERM, grace, SIGKILL); a second Ctrl-C must not cut it short
        # and leave children behind.
        backend.loop.stop()
        stop = _stop(error)
        log.warning("run.stopping", reason=stop.reason)
        if isinstance(error, (TimeLimit, Halt)):  # where each child is, before stopping it
            backend.dump_running(stop.reason)
        backend.stop_everything(grace)
        backend.close()
        return [*failures, stop.reason], len(failures), stop
    except BaseException:
        backend.loop.stop()
        backend.stop_everything(grace)
        backend.close()
        raise


def _stop(error: BaseException) -> Stop:
    """What stopped the run, from the exception that did."""
    if isinstance(error, Terminated):
        return Stop("terminated", "terminated (SIGTERM)")
    if isinstance(error, KeyboardInterrupt):
        return Stop("interrupted", "interrupted (SIGINT)")
    return Stop("failed", str(error))


def _own_peak_memory() -> int:
    """mprun's peak resident memory in KB: Linux's VmHWM where there is one, since the rusage
    figure also counts the pages of whatever process this one was forked from."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _report(
    log: Any,
    endings: list[Ended],
    began: float,
    stop: Stop | None,
    failures: list[str],
    step_failures: int,
    log_file: Path,
    run_id: str,
) -> RunResult:
    outcomes = tuple(judge(ended) for ended in endings)  # each logged as it exited (process.exit)
    # A cause the stop already gave (fail fast names the process that failed) is not said twice.
    causes = [found for found in map(cause, endings) if found is not None]
    failures = [*failures, *(found for found in causes if not any(found in said for said in failures))]
    status, exitcode = verdict(outcomes, tuple(failures), stop)
    log.info(
        "run.end",
        status=status,
        exitcode=exitcode,
        duration_s=round(time.monotonic() - began, 6),
        failures=failures,
        max_rss_kb=_own_peak_memory(),
        processes=len(outcomes),
        expected=sum(outcome.expected for outcome in outcomes),
        unexpected=sum(not outcome.expected for outcome in outcomes),
        restarts=sum(outcome.restarts for outcome in outcomes),
        failed_steps=step_failures,
    )
    return RunResult(status, exitcode, outcomes, tuple(failures), log_file, run_id)
