"""Run a workflow: check it, plan it, drive it on multiprocessing, judge how each process ended.

`run()` is the Python API and what `mprun WORKFLOW` calls. It returns a `RunResult`; problems
with the workflow itself raise `InvalidWorkflow` (nothing was started).
"""

from __future__ import annotations

import datetime
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TextIO

from runner.checker import CheckResult, check_document
from runner.document import Document, load
from runner.errors import (
    FAILED,
    INTERRUPTED,
    OK,
    TERMINATED,
    BuildFailed,
    InvalidWorkflow,
    Terminated,
    TimeLimit,
    UsageError,
)
from runner.plan import Plan, make_plan
from runner.problem import Problem
from runner.workflow import Workflow, holds_plain_data

DEFAULT_GRACE = 5.0
LOG_FOLDER = "mprun-logs"


@dataclass(frozen=True)
class ProcessOutcome:
    """How one process ended, and whether that is what the workflow expected."""

    name: str
    key: str
    replica: int
    pid: int | None
    exitcode: int | None
    signal: str | None
    duration_s: float | None
    cpu_s: float | None
    max_rss_kb: int | None
    expected: bool
    exception: str | None
    returned: str | None


@dataclass(frozen=True)
class RunResult:
    """A finished run: its status, mprun's exit status, every process's outcome."""

    status: str  # ok, failed or interrupted
    exitcode: int
    processes: tuple[ProcessOutcome, ...]
    failures: tuple[str, ...]
    log_file: Path
    run_id: str


def _signal_name(exitcode: int | None) -> str | None:
    if exitcode is None or exitcode >= 0:
        return None
    try:
        return signal.Signals(-exitcode).name
    except ValueError:
        return f"signal {-exitcode}"


def _met(handle: Any) -> bool:
    code: int | None = handle.process.exitcode
    if code is None:
        return False
    expect = handle.planned.expect
    if expect is None:
        # As a person reads it: a process this run stopped was meant to end by SIGTERM.
        return code == (-signal.SIGTERM if handle.terminated else 0)
    return bool(code in expect.exitcodes or _signal_name(code) in {name.text for name in expect.signals})


def _outcome(handle: Any) -> ProcessOutcome:
    report = handle.report
    duration = None
    if handle.started is not None and handle.ended is not None:
        duration = round(handle.ended - handle.started, 6)
    return ProcessOutcome(
        name=handle.name,
        key=handle.planned.key,
        replica=handle.planned.replica,
        pid=handle.process.pid,
        exitcode=handle.process.exitcode,
        signal=_signal_name(handle.process.exitcode),
        duration_s=duration,
        cpu_s=round(report.usage.cpu_s, 6) if report.usage else None,
        max_rss_kb=report.usage.max_rss_kb if report.usage else None,
        expected=_met(handle),
        exception=f"{report.raised.type}: {report.raised.message}" if report.raised else None,
        returned=report.returned.repr if report.returned else None,
    )


def _imports(plan: Plan, document: Document) -> list[Problem]:
    """Import every target in this process, as the run is about to (problems as `mprun check`'s)."""
    from runner.inspection import answer_problems, target_checks
    from runner.probe import examine

    checks = target_checks(plan.workflow)
    modules: dict[str, Any] = {}
    answers = {}
    for index, check in enumerate(checks):
        answers[index] = examine(check.request(), modules)
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


@contextmanager
def _start_method(method: str | None) -> Iterator[str]:
    """The workflow's start method as multiprocessing's default, so that user Process
    subclasses, which start with the default context, use it too."""
    previous = multiprocessing.get_start_method(allow_none=True)
    chosen = method or multiprocessing.get_context().get_start_method()
    multiprocessing.set_start_method(chosen, force=True)
    try:
        yield chosen
    finally:
        multiprocessing.set_start_method(previous, force=True)


@contextmanager
def _signals_ignored() -> Iterator[None]:
    previous = {number: signal.signal(number, signal.SIG_IGN) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _checked(path: str | Path, *, imports: bool = False) -> tuple[Document, Workflow]:
    """As `mprun check` does; a run imports the targets itself, so by default without probes."""
    document, problems = load(path, plain_data=holds_plain_data)
    checked = CheckResult(str(path), tuple(problems))
    if document is not None and not problems:
        checked = check_document(document, imports=imports)
    if document is None or not checked.ok or checked.workflow is None:
        raise InvalidWorkflow(checked)
    return document, checked.workflow


def check_only(path: str | Path, *, imports: bool = True) -> Workflow:
    """The workflow at `path`, checked as `mprun check` does; raises `InvalidWorkflow`."""
    return _checked(path, imports=imports)[1]


def _raise_open_file_limit() -> None:
    """Each child costs mprun five descriptors (four pipes and its sentinel): allow as many as
    the system lets this process have."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass


def default_log_file(workflow_name: str, run_id: str) -> Path:
    """Where a run's JSON lines go without `--log-file`: `mprun-logs/<workflow>-<run id>.jsonl`."""
    return Path(LOG_FOLDER) / f"{workflow_name}-{run_id}.jsonl"


def run(
    path: str | Path,
    *,
    log_file: str | Path | None = None,
    console: TextIO | None = None,
    console_format: str = "console",
    timeout: float | None = None,
    grace: float = DEFAULT_GRACE,
    start_method: str | None = None,
) -> RunResult:
    """Check, plan and run the workflow at `path`; its log goes to `log_file`.

    Raises `InvalidWorkflow` when the workflow has errors. Ctrl-C and SIGTERM (as
    `KeyboardInterrupt`, SIGTERM as `Terminated`) and the time limit stop every child before
    returning.
    """
    from runner import log as logs
    from runner.backends.multiprocessing.backend import Backend

    document, workflow = _checked(path)
    plan = make_plan(workflow)
    run_id = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + os.urandom(3).hex()
    target = Path(log_file) if log_file else default_log_file(plan.workflow.name, run_id)
    with _pythonpath(plan.workflow.python_folders()):
        imported = _imports(plan, document)
        if imported:
            raise InvalidWorkflow(CheckResult(str(path), tuple(imported), workflow))
        _raise_open_file_limit()
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            stream = open(target, "w", encoding="utf-8")
        except OSError as error:
            raise UsageError(f"cannot write the log file '{target}': {error.strerror}") from None
        with stream, _start_method(start_method or plan.workflow.start_method) as method:
            log, output = logs.configure(
                log_file=stream,
                console=console or sys.stderr,
                console_format=console_format,
                run_id=run_id,
                workflow=plan.workflow.name,
            )
            with _warnings_logged(log):
                return _drive(plan, log, partial(Backend, output=output), method, target, run_id, timeout, grace)


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
    warnings.showwarning = record
    try:
        yield
    finally:
        warnings.showwarning = previous


def _drive(
    plan: Plan,
    log: Any,
    backend_class: Any,
    method: str,
    log_file: Path,
    run_id: str,
    timeout: float | None,
    grace: float,
) -> RunResult:
    # Held back until the try below, so that even a Ctrl-C that comes now ends with run.end.
    held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
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
    backend = backend_class(plan, log, time_limit=timeout)
    failures: list[str] = []
    step_failures = 0
    status, exitcode = "ok", OK
    try:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)  # noted by the run's loop from now on
        backend.build()
        failures = backend.execute()
        step_failures = len(failures)
        backend.finish(grace)
        backend.close()
    except (TimeLimit, KeyboardInterrupt, BuildFailed) as stop:
        # Stopping is bounded (SIGTERM, grace, SIGKILL); a second Ctrl-C must not cut it short
        # and leave children behind.
        backend.loop.stop()
        if isinstance(stop, (TimeLimit, BuildFailed)):
            status, exitcode, why = "failed", FAILED, str(stop)
        elif isinstance(stop, Terminated):
            status, exitcode, why = "interrupted", TERMINATED, "terminated (SIGTERM)"
        else:
            status, exitcode, why = "interrupted", INTERRUPTED, "interrupted (SIGINT)"
        failures.append(why)
        log.warning("run.stopping", reason=why)
        if isinstance(stop, TimeLimit):  # where each child is, before stopping it
            backend.dump_stacks(backend.running(), why)
        backend.stop_everything(grace)
        backend.close()
    except BaseException:
        backend.loop.stop()
        backend.stop_everything(grace)
        backend.close()
        raise
    with _signals_ignored():  # the run is over: its last records must be written whole
        return _report(log, backend, began, status, exitcode, failures, step_failures, log_file, run_id)


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
    backend: Any,
    began: float,
    status: str,
    exitcode: int,
    failures: list[str],
    step_failures: int,
    log_file: Path,
    run_id: str,
) -> RunResult:
    outcomes = []
    for handles in backend.handles.values():
        for handle in handles:
            backend.note_end(handle)  # also for processes that ended by themselves, never joined
            outcome = _outcome(handle)
            outcomes.append(outcome)
            if handle.started is not None:
                method_ = log.info if outcome.expected else log.error
                method_(
                    "process.exit",
                    process=outcome.name,
                    pid=outcome.pid,
                    exitcode=outcome.exitcode,
                    signal=outcome.signal,
                    duration_s=outcome.duration_s,
                    cpu_s=outcome.cpu_s,
                    max_rss_kb=outcome.max_rss_kb,
                    expected=outcome.expected,
                )
    if status == "ok" and (failures or not all(outcome.expected for outcome in outcomes)):
        status, exitcode = "failed", FAILED
    counts = {
        "processes": len(outcomes),
        "expected": sum(outcome.expected for outcome in outcomes),
        "unexpected": sum(not outcome.expected for outcome in outcomes),
        "failed_steps": step_failures,
    }
    log.info(
        "run.end",
        status=status,
        exitcode=exitcode,
        duration_s=round(time.monotonic() - began, 6),
        failures=failures,
        max_rss_kb=_own_peak_memory(),
        **counts,
    )
    return RunResult(status, exitcode, tuple(outcomes), tuple(failures), log_file, run_id)
