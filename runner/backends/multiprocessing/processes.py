"""The run's processes on multiprocessing: each planned process made into a process object
(a context's Process, or the user's subclass), and started with pipes of its own and a
descriptor that tells when it exits.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from runner.backends.multiprocessing.objects import Objects
from runner.backends.multiprocessing.reader import Report
from runner.child import Trampoline, resolve, set_environment
from runner.errors import BuildFailed, NotSendable
from runner.plan import PlannedProcess

STREAMS = ("stdout", "stderr", "events", "stack")  # the pipes each child writes and mprun reads


@dataclass
class Handle:
    """A planned process, its multiprocessing object, and what happened to it."""

    planned: PlannedProcess
    process: Any  # multiprocessing.Process, or the user's subclass of it
    trampoline: Trampoline
    started: float | None = None
    ended: float | None = None
    terminated: bool = False  # as planned: by a terminate step, or the final stop of daemons
    overdue: bool = False  # a join's timeout passed: stopped at the end, not waited for without end
    stuck: str | None = None  # why it cannot exit, once found out
    report: Report = field(default_factory=Report)
    exit_descriptor: int | None = None  # readable once it has exited (see exit_descriptor)
    owns_descriptor: bool = False  # a pidfd of ours, closed at the end (else multiprocessing's sentinel)
    attempt: int = 1  # its restart policy starts it again as attempt 2, 3, ...
    restarted: list[float] = field(default_factory=list)  # when each restart was decided
    pending: str | None = None  # why it is to start again, while it waits to (its attempt has ended)
    last_end: float | None = None  # when its last attempt ended, while it waits to start again
    final: bool = False  # mprun stopped it: what ends it now is its last end, whatever its policy
    awaited: bool = False  # its start conditions start it: waited for before it starts
    overran: float | None = None  # stopped for running longer than its max_run_time (s)

    @property
    def name(self) -> str:
        return str(self.process.name)


def make(planned: PlannedProcess, trampoline: Trampoline, objects: Objects) -> Handle:
    """The process object of a planned process, its references bound; raises BuildFailed when
    the user's Process subclass cannot be made."""
    try:
        args = objects.bind(planned.args)
        kwargs = objects.bind(dict(planned.kwargs))
    except Exception as error:  # an object to build ({$call: ...}) raised
        raise BuildFailed(f"making the arguments of {planned.label} raised {type(error).__name__}: {error}") from error
    ctx = objects.ctx
    if planned.is_class:
        try:
            process = resolve(planned.target)(*args, **kwargs)
        except Exception as error:
            raise BuildFailed(
                f"constructing {planned.label} ({planned.target}) raised {type(error).__name__}: {error}"
            ) from error
        if planned.name is not None:
            process.name = planned.name
        if planned.daemon is not None:  # else the class decides, as in its own __init__
            process.daemon = planned.daemon
        process.run = trampoline  # run() runs the class's own run() after the set-up
        _started_by(process, ctx)
    else:
        # multiprocessing.Process itself, not the context's class: what a script calling
        # multiprocessing.Process() makes, named "Process-3" and shown as <Process ...>.
        process = multiprocessing.Process(
            target=trampoline, args=args, kwargs=kwargs, name=planned.name, daemon=bool(planned.daemon)
        )
        _started_by(process, ctx)
    return Handle(planned, process, trampoline)


def _started_by(process: Any, ctx: Any) -> None:
    """Make a user's `multiprocessing.Process` subclass start with the run's context, as the
    context's own Process class does (its `_Popen`), and give its children that start method
    as their default (`_start_method`, which `_bootstrap` forces): without setting the
    process-wide default of mprun, or of a program that calls `runner.run()`."""
    if getattr(process, "_start_method", None) is None:
        process._Popen = ctx.Process._Popen
        process._after_fork = ctx.Process._after_fork
        process._start_method = ctx.Process._start_method


def launch(handle: Handle, ctx: Any, reads: dict[int, dict[str, Connection]]) -> None:
    """Start one process with fresh pipes. The read ends of its pipes go into `reads` first, and
    leave it only if the process was not started: an interruption anywhere leaves them to be
    read. Made just before the start, so that no other child inherits them."""
    pipes: dict[str, tuple[Connection, Connection]] = {}
    try:
        for name in STREAMS:
            pipes[name] = ctx.Pipe(duplex=False)
        handle.trampoline.attach(*(pipes[name][1] for name in ("events", "stdout", "stderr", "stack")))
        reads[id(handle)] = {name: read for name, (read, _) in pipes.items()}
        try:
            # Under spawn the child's stderr is its pipe from the start: what it writes while
            # it is set up (the traceback of a `class:` module that raises on import, as it
            # unpickles its process) is read as its own, not written on mprun's terminal. Under
            # fork the trampoline points fd 2 at the pipe first thing; a forkserver child has
            # the server's (backend._server_stderr).
            spawned = ctx.get_start_method() == "spawn"
            with (
                stderr_on(pipes["stderr"][1].fileno()) if spawned else contextlib.nullcontext(),
                # A spawned interpreter starts with them, so that PYTHON* and LD_* variables count.
                environment(handle.planned.env) if spawned else contextlib.nullcontext(),
            ):
                handle.process.start()
        except Exception as error:
            if _while_pickling(error):
                method = ctx.get_start_method()
                why = f"'{handle.name}' cannot be sent to a {method} child: not picklable: {error}"
                raise NotSendable(why) from error
            raise
        # At once: the next start reaps children that have exited (multiprocessing's
        # _cleanup), and their numbers may go to other processes.
        handle.exit_descriptor, handle.owns_descriptor = exit_descriptor(handle.process)
    finally:
        handle.trampoline.detach()
        # The child has its copies; ours must go, or the pipes never reach end-of-file.
        for _, write in pipes.values():
            write.close()
        if handle.process.pid is None:  # not started: nothing will write to the pipes
            for read, _ in pipes.values():
                read.close()
            reads.pop(id(handle), None)


@contextmanager
def stderr_on(descriptor: int) -> Iterator[None]:
    """mprun's fd 2 on `descriptor` for a while, for a child to inherit as its stderr; nothing
    of mprun's writes to it meanwhile (signals are held). Left alone if fd 2 is closed."""
    try:
        saved = os.dup(2)
    except OSError:  # mprun's stderr is closed: the child's is too
        yield
        return
    try:
        os.dup2(descriptor, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@contextmanager
def environment(env: Mapping[str, str | None]) -> Iterator[None]:
    """mprun's os.environ with these variables for a while (None: without it), for a spawned
    child to start with; as it was after."""
    saved = {name: os.environ.get(name) for name in env}
    try:
        set_environment(env)
        yield
    finally:
        set_environment(saved)


def _while_pickling(error: BaseException) -> bool:
    """Whether `error` was raised while multiprocessing pickled the process for a spawn or
    forkserver child. Told from where it was raised, not from its words: Python 3.13 says
    "Can't get local object" where 3.12 said "Can't pickle local object"."""
    return any(
        frame.name == "dump" and frame.filename.endswith(os.path.join("multiprocessing", "reduction.py"))
        for frame in traceback.extract_tb(error.__traceback__)
    )


def exit_descriptor(process: Any) -> tuple[int, bool]:
    """A descriptor that becomes readable when `process` itself exits, and whether it is ours
    to close. A pidfd under fork and spawn: multiprocessing's sentinel there is a pipe whose
    write end every process the child starts inherits, so it stays quiet while any of them
    lives (a helper the target forked, a daemon). The fork server's sentinel is its own, and
    tells the exit code; it is used where there are no pidfds too."""
    if getattr(process._popen, "method", None) != "forkserver" and hasattr(os, "pidfd_open"):
        try:
            return os.pidfd_open(process.pid), True
        except OSError:  # an old kernel, or a sandbox without it
            pass
    return process.sentinel, False


def catches(pid: int, number: int) -> bool:
    """Whether process `pid` has a handler for signal `number` now (Linux's SigCgt). A child
    that exec'd another program has none any more, even while a process it forked keeps its
    stack pipe open: mprun's own signals would kill it. True where /proc cannot tell."""
    try:
        with open(f"/proc/{pid}/status", "rb") as status:
            for line in status:
                if line.startswith(b"SigCgt:"):
                    return bool(int(line.split()[1], 16) >> (number - 1) & 1)
    except (OSError, ValueError, IndexError):
        pass
    return True
