"""Judging a run: pure functions from the records of what happened to each process (and how
the run stopped) to each process's outcome and the run's status and exit status. Nothing here
starts, waits for or signals anything; a backend hands over `Ended` records.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass
from pathlib import Path

from runner.errors import FAILED, INTERRUPTED, OK, TERMINATED
from runner.workflow import Expectation, RestartPolicy


@dataclass(frozen=True)
class Ended:
    """What happened to one planned process, as the backend saw it."""

    name: str
    key: str
    replica: int
    expect: Expectation | None
    pid: int | None  # None: never started
    exitcode: int | None  # as multiprocessing's: -N for signal N; None while it runs
    started: float | None  # monotonic seconds
    ended: float | None
    stopped_as_planned: bool  # by a terminate step, or the final stop of daemons
    cpu_s: float | None = None  # the child's own figures, absent when it was killed
    max_rss_kb: int | None = None
    exception: str | None = None  # "Type: message" of the exception that ended its target
    returned: str | None = None  # repr of what its target returned
    lost: str | None = None  # why nothing more is known of it (a cluster's worker died with it)
    restarts: int = 0  # how many times it was started again before this end
    restart_in: float | None = None  # not its last end: it starts again after this many seconds
    overran: float | None = None  # stopped for running longer than its max_run_time (s)


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
    restarts: int = 0


@dataclass(frozen=True)
class RunResult:
    """A finished run: its status, mprun's exit status, every process's outcome."""

    status: str  # ok, failed or interrupted
    exitcode: int
    processes: tuple[ProcessOutcome, ...]
    failures: tuple[str, ...]
    log_file: Path
    run_id: str


@dataclass(frozen=True)
class Stop:
    """Why a run was stopped before its steps were over."""

    kind: str  # "interrupted" (SIGINT), "terminated" (SIGTERM) or "failed" (time limit, build)
    reason: str  # in words, for the log and the failures


def signal_name(exitcode: int | None) -> str | None:
    """The name of the signal that ended a process (`SIGTERM`), from its exit code."""
    if exitcode is None or exitcode >= 0:
        return None
    number = -exitcode
    try:
        return signal.Signals(number).name
    except ValueError:
        if hasattr(signal, "SIGRTMIN") and signal.SIGRTMIN < number <= signal.SIGRTMAX:
            return f"SIGRTMIN+{number - signal.SIGRTMIN}"
        return f"signal {number}"


def met(ended: Ended) -> bool:
    """Whether the process ended as the workflow expects: its `expect`, or else exit code 0, or
    SIGTERM for a process the run meant to stop."""
    if ended.exitcode is None:
        return False
    if ended.expect is None:
        return ended.exitcode == (-signal.SIGTERM if ended.stopped_as_planned else 0)
    names = {name.text for name in ended.expect.signals}
    return ended.exitcode in ended.expect.exitcodes or signal_name(ended.exitcode) in names


def cause(ended: Ended) -> str | None:
    """Why this process fails the run, in words (None: it does not)."""
    if ended.lost is not None:
        return f"{ended.name} was lost: {ended.lost}"
    if ended.started is None or ended.restart_in is not None or met(ended):
        return None
    if ended.exitcode is None:
        return f"{ended.name} did not end"
    if ended.overran is not None:
        return f"{ended.name} ran longer than its max_run_time of {ended.overran:g} s and was stopped"
    name = signal_name(ended.exitcode)
    how = f"by {name}" if name else f"with exit code {ended.exitcode}"
    if ended.expect is None:
        wanted = "SIGTERM, as it was stopped" if ended.stopped_as_planned else "exit code 0"
    else:
        wanted = " or ".join(
            [f"exit code {code}" for code in ended.expect.exitcodes] + [str(n.text) for n in ended.expect.signals]
        )
    return f"{ended.name} ended {how}, not as expected ({wanted})"


def judge(ended: Ended) -> ProcessOutcome:
    """One process's outcome."""
    duration = None
    if ended.started is not None and ended.ended is not None:
        duration = round(ended.ended - ended.started, 6)
    return ProcessOutcome(
        name=ended.name,
        key=ended.key,
        replica=ended.replica,
        pid=ended.pid,
        exitcode=ended.exitcode,
        signal=signal_name(ended.exitcode),
        duration_s=duration,
        cpu_s=None if ended.cpu_s is None else round(ended.cpu_s, 6),
        max_rss_kb=ended.max_rss_kb,
        expected=met(ended),
        exception=ended.exception,
        returned=ended.returned,
        restarts=ended.restarts,
    )


def ending_words(ended: Ended) -> str:
    """How a process ended, in a few words: `exit code 1`, `signal SIGKILL`."""
    if ended.overran is not None:
        return f"stopped after its max_run_time of {ended.overran:g} s"
    name = signal_name(ended.exitcode)
    return f"signal {name}" if name else f"exit code {ended.exitcode}"


def restart_pause(policy: RestartPolicy | None, ended: Ended, restarted: list[float], now: float) -> float | None:
    """Whether a process that ended so is started again by its policy, given when its earlier
    restarts were: the pause before it does, or None (this end is its last)."""
    if policy is None or ended.lost is not None:
        return None
    if policy.when == "on-failure" and met(ended):
        return None
    counted = [when for when in restarted if policy.within is None or now - when < policy.within]
    if len(counted) >= policy.max_restarts:
        return None
    return policy.pause(len(counted))


def verdict(outcomes: tuple[ProcessOutcome, ...], failures: tuple[str, ...], stop: Stop | None) -> tuple[str, int]:
    """The run's status and mprun's exit status: a stop decides; else the run failed if a step
    failed or a process did not end as expected."""
    if stop is not None:
        return stop.kind if stop.kind == "failed" else "interrupted", STOP_STATUSES[stop.kind]
    if failures or not all(outcome.expected for outcome in outcomes):
        return "failed", FAILED
    return "ok", OK


STOP_STATUSES = {"interrupted": INTERRUPTED, "terminated": TERMINATED, "failed": FAILED}
