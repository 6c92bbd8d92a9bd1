"""The run's pools on multiprocessing, seen from mprun: each pool's channels to its host
(runner/host.py), the map steps sent there, and the host's workers taken in as processes of
the run, read and logged like the others though they are the host's children.
"""

from __future__ import annotations

import array
import os
import pickle
import select
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from runner.plan import channel

if TYPE_CHECKING:
    from runner import host

MESSAGE_LIMIT = 4096  # bytes of one births message: a pid, a name and a word
STREAMS = ("events", "stdout", "stderr", "stack")  # as host.STREAMS sends them (a test keeps them equal)


def make_channels(ctx: Any, made: dict[str, Any], pool: str) -> None:
    """The two channels of a pool, among the run's objects (see plan.channel): `jobs`, a
    duplex pipe for the steps and their results, and `births`, a socket for the workers'
    pipes. End 1 of each goes to the host."""
    made[channel(pool, "jobs")] = ctx.Pipe(duplex=True)
    made[channel(pool, "births")] = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)


class Adopted:
    """A pool's worker as mprun sees it: not its child, so its exit code is what the host says
    it reaped, or (the host gone, the worker an orphan of mprun's, the child subreaper) what
    mprun reaps itself. Signals go through a pidfd, which a reused pid cannot misdirect.

    One case is left where nobody can tell: the host died before it told, and the worker's
    own parent reaped it (under forkserver, the host's fork server). The worker then died of
    the signal mprun sent it last, or of the SIGKILL its guard gets when its parent's end of
    the parent sentinel closes (child.guard): that signal is its exit code."""

    daemon = True
    _popen = None

    def __init__(self, pid: int, name: str, host_ended: Callable[[], bool]) -> None:
        self.pid = pid
        self.name = name
        self.reported: int | None = None
        self.host_ended = host_ended
        self.sent = signal.SIGKILL  # what ended it, when nobody is left to say (see above)
        self.descriptor = -1  # readable once the worker has exited
        self._closer = -1  # without pidfds: the write end of a pipe closed when the host tells
        try:
            self.descriptor = os.pidfd_open(pid)
        except (AttributeError, OSError):
            self.descriptor, self._closer = os.pipe()

    def told_exit(self, code: int) -> None:
        self.reported = code
        if self._closer >= 0:
            os.close(self._closer)
            self._closer = -1

    @property
    def exitcode(self) -> int | None:
        if self.reported is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)  # an orphan now: the host died first
            except ChildProcessError:
                if self.host_ended() and self._gone():
                    self.told_exit(-self.sent)
                return self.reported
            if pid:
                self.told_exit(os.waitstatus_to_exitcode(status))
        return self.reported

    def _gone(self) -> bool:
        """Whether the worker has exited and been reaped by somebody else."""
        if self._closer < 0:  # a pidfd: readable once it has exited
            exited = select.poll()
            exited.register(self.descriptor, select.POLLIN)
            if not exited.poll(0):
                return False
        return not os.path.exists(f"/proc/{self.pid}")

    def is_alive(self) -> bool:
        return self.exitcode is None

    def terminate(self) -> None:
        self._signal(signal.SIGTERM)
        self.sent = signal.SIGTERM

    def kill(self) -> None:
        self._signal(signal.SIGKILL)
        self.sent = signal.SIGKILL

    def _signal(self, number: int) -> None:
        try:
            if self._closer < 0 and hasattr(signal, "pidfd_send_signal"):
                signal.pidfd_send_signal(self.descriptor, number)
            else:
                os.kill(self.pid, number)
        except (ProcessLookupError, OSError):
            pass  # exited already

    def close(self) -> None:
        for descriptor in (self.descriptor, self._closer):
            if descriptor >= 0:
                os.close(descriptor)
        self.descriptor = self._closer = -1


@dataclass
class Birth:
    """A worker the host started: its pid, its name, and the read ends of its pipes."""

    pid: int
    name: str
    pipes: dict[str, Connection]


def read_births(births: socket.socket) -> tuple[list[Birth], list[tuple[int, int]], bool]:
    """What the host has told since the last read: the workers started, the (pid, exit code)
    of those it reaped, and whether the socket is at end of file (the host and every worker
    closed it)."""
    born: list[Birth] = []
    exits: list[tuple[int, int]] = []
    while True:
        try:
            data, descriptors = _received(births)
        except BlockingIOError:
            return born, exits, False
        if not data:
            return born, exits, True
        message = pickle.loads(data)
        if message[0] == "started" and len(descriptors) == len(STREAMS):
            pipes = {
                name: Connection(descriptor, writable=False)
                for name, descriptor in zip(STREAMS, descriptors, strict=True)
            }
            born.append(Birth(message[1], message[2], pipes))
        else:
            for descriptor in descriptors:
                os.close(descriptor)
            if message[0] == "exited":
                exits.append((message[1], message[2]))


def _received(births: socket.socket) -> tuple[bytes, list[int]]:
    """One message and the descriptors it carries, without waiting (socket.recv_fds, which
    drops its `flags` before Python 3.13, would wait)."""
    room = socket.CMSG_LEN(len(STREAMS) * array.array("i").itemsize)
    data, ancillary, _, _ = births.recvmsg(MESSAGE_LIMIT, room, socket.MSG_DONTWAIT)
    descriptors = array.array("i")
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            descriptors.frombytes(payload[: len(payload) - len(payload) % descriptors.itemsize])
    return data, list(descriptors)


@dataclass(frozen=True)
class Remote:
    """Results a pool's host keeps for later steps (step `number` there): fetched into mprun
    only when a step needs them here, and given to the same pool's steps as they are."""

    pool: str
    number: int
    single: bool  # an apply's: its one value, not a list of them


@dataclass
class Outcome:
    """How a step in a pool ended: done (described by `summary`: count, chunksize, and the
    reprs the step logs; with `values` when they were asked for), failed (the error a task
    raised, with its traceback), timeout, or ended (the host is gone)."""

    how: str
    summary: dict[str, Any] = field(default_factory=dict)
    values: list[Any] | None = None
    error: tuple[str, str, str] | None = None
    remote: Remote | None = None  # where the results are kept, when the host keeps them


class Jobs:
    """mprun's end of a pool's jobs pipe: steps out; results and progress back, read by the
    run's loop as they come (`take`) and kept until the step that waits for them looks."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.number = 0
        self.closed = False
        self.ended = False  # the host is gone: no answer will come
        self.inbox: list[tuple[Any, ...]] = []

    def send(self, job: Callable[[int], host.Job | host.Fetch]) -> int:
        """Send what `job` makes of the next number; that number, which its answer bears."""
        self.number += 1
        self.connection.send(job(self.number))
        return self.number

    def take(self) -> bool:
        """Read what the host has sent (the loop calls this when the pipe is readable);
        False once it is at end of file."""
        try:
            while not self.closed and self.connection.poll(0):
                self.inbox.append(self.connection.recv())
        except (EOFError, OSError):
            self.ended = True
            return False
        return not self.closed

    def answer(self, number: int, progress: Callable[[int, int, str], None]) -> Outcome | None:
        """The outcome of step `number` if it has come, telling progress as it comes; what
        answers an earlier step that timed out is dropped."""
        while self.inbox:
            message = self.inbox.pop(0)
            if message[1] != number:
                continue
            if message[0] == "progress":
                progress(message[2], message[3], message[4])
            elif message[0] == "done":
                return Outcome("done", summary=message[2], values=message[3])
            elif message[0] == "values":
                return Outcome("done", values=message[2])
            else:
                return Outcome("failed", error=(message[2], message[3], message[4]))
        return Outcome("ended") if self.ended else None

    def close(self) -> None:
        """Tell the host to close its pool (end of file would not come: a fork child holds a
        copy of mprun's end), and let go of the pipe."""
        if not self.closed:
            self.closed = True
            try:
                self.connection.send(None)
            except OSError:
                pass  # the host is gone
            self.connection.close()
