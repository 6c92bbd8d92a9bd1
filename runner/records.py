"""What happened to the run's processes, as a backend tells the rest of mprun: small frozen
records, one stream of them per run, in the order things happened.

A backend hands each record to `Loop.emit` the moment it learns of it (a line read, an exit
noticed while a step waits for something else); the loop passes it to every listener, first
the log (log.py's `Recorder`, the one place records become log lines), then whatever else
listens: a step, or a policy that must react to a process ending while the run waits on
something else. Records are made in the parent only: what a child sends is events.py's.
"""

from __future__ import annotations

from dataclasses import dataclass

from runner.outcome import Ended


@dataclass(frozen=True, slots=True)
class Started:
    """A process has started."""

    process: str
    pid: int
    key: str  # its `processes` key (replicas share it)
    replica: int
    daemon: bool
    worker: str | None = None  # the address of the cluster's worker it runs on (Dask)


@dataclass(frozen=True, slots=True)
class Output:
    """Lines a process wrote to its stdout or stderr, in order, without their newlines. A
    partial one is a progress line (carriage returns, no newline yet), shown as it is written:
    the next record of the stream continues it."""

    process: str
    pid: int
    stream: str  # stdout or stderr
    lines: list[str]  # many at once: the one record as hot as a child can print (not copied)
    partial: bool = False


@dataclass(frozen=True, slots=True)
class Logged:
    """A `logging` record of the process (its own loggers, or multiprocessing's)."""

    process: str
    pid: int
    logger: str
    level: str  # the record's level name, multiprocessing's SUBDEBUG and SUBWARNING included
    message: str
    created: float
    traceback: str | None


@dataclass(frozen=True, slots=True)
class Raised:
    """The exception that ended the process's target."""

    process: str
    pid: int
    type: str
    message: str
    traceback: str


@dataclass(frozen=True, slots=True)
class Returned:
    """What the process's target returned, as `repr`."""

    process: str
    pid: int
    repr: str


@dataclass(frozen=True, slots=True)
class Exited:
    """A process has exited (and is reaped): all it wrote before is in the records before this
    one. `ended` is what outcome.py judges."""

    ended: Ended

    @property
    def process(self) -> str:
        return self.ended.name

    @property
    def pid(self) -> int | None:
        return self.ended.pid


@dataclass(frozen=True, slots=True)
class Stack:
    """A dump of the stacks of a process's threads (faulthandler's text)."""

    process: str
    pid: int
    reason: str  # why it was asked for, or "crashed", or a signal from outside mprun
    stack: str


@dataclass(frozen=True, slots=True)
class Stuck:
    """A process whose target is over cannot exit (the queue-feeder trap)."""

    process: str
    pid: int
    reason: str
    hint: str


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A stream of a process that cannot be read any more (a garbled event): no more of it is."""

    process: str
    pid: int
    stream: str
    error: str


@dataclass(frozen=True, slots=True)
class Descendant:
    """Something a process started and left running, which mprun stopped."""

    process: str | None  # whose it was, when that can be told
    pid: int
    command: str
    forked: bool  # runs the program it was forked from, without an exec
    stopped_by: str  # SIGTERM or SIGKILL
    exitcode: int | None  # when mprun reaped it


@dataclass(frozen=True, slots=True)
class Restarted:
    """A process that ended is started again, by its restart policy: attempt `attempt` (the
    first restart is attempt 2). Its `Started` record follows."""

    process: str
    pid: int  # the attempt that ended's
    attempt: int
    reason: str  # how the attempt before ended, in words
    # The locks and joinable queues it was given: one the attempt held when it died stays
    # held, an item it took and did not mark done is never done.
    given: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Overran:
    """A process ran longer than its `max_run_time`: it is stopped now."""

    process: str
    pid: int
    max_run_time: float


@dataclass(frozen=True, slots=True)
class Stopping:
    """The end of the steps stops processes still running: daemons (as the interpreter does at
    exit), or the overdue (their join timed out, or they cannot exit)."""

    names: tuple[str, ...]
    overdue: bool


Record = (
    Started
    | Output
    | Logged
    | Raised
    | Returned
    | Exited
    | Stack
    | Stuck
    | Unreadable
    | Descendant
    | Restarted
    | Overran
    | Stopping
)
