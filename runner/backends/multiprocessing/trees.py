"""Process trees: what the processes of a run started themselves, found and stopped.

A target may fork a helper, start a `multiprocessing.Pool`, double-fork a daemon or run
`subprocess.Popen(..., start_new_session=True)`. Process groups and sessions do not hold such
descendants (user code leaves them), so mprun finds them by parentage instead: it is the child
subreaper of its run (Linux's PR_SET_CHILD_SUBREAPER), so that an orphan below it comes back to
it rather than to init, and while mprun lives every descendant is somewhere below it in
/proc. Which process started an orphan is then lost; per-process cgroups (see cgroups.py) keep it.
"""

from __future__ import annotations

import os
import select
import signal
from collections.abc import Iterable
from dataclasses import dataclass

from runner.child import _PRCTL

_PR_SET_CHILD_SUBREAPER, _PR_GET_CHILD_SUBREAPER = 36, 37


def become_subreaper() -> bool:
    """Make orphans below this process its children again; whether the system can."""
    if _PRCTL is None:
        return False
    return bool(_PRCTL(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)


def is_subreaper() -> bool:
    """Whether this process already is one (a program calling `runner.run()` may be)."""
    if _PRCTL is None:
        return False
    import ctypes

    flag = ctypes.c_int(0)
    return bool(_PRCTL(_PR_GET_CHILD_SUBREAPER, ctypes.byref(flag), 0, 0, 0) == 0 and flag.value)


def stop_being_subreaper() -> None:
    """Let orphans go to init again."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (each of its threads may have forked some)."""
    if not _CHILDREN_FILES:
        return [int(entry) for entry in os.listdir("/proc") if entry.isdigit() and _parent(int(entry)) == pid]
    found: list[int] = []
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for thread in threads:
        try:
            with open(f"/proc/{pid}/task/{thread}/children", "rb") as listed:
                found.extend(int(word) for word in listed.read().split())
        except OSError:  # the thread ended meanwhile
            continue
    return found


# Linux lists each thread's children where the kernel has CONFIG_PROC_CHILDREN; elsewhere the
# whole of /proc is read for them.
_CHILDREN_FILES = os.path.exists(f"/proc/self/task/{os.getpid()}/children")


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state is first), or None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].decode().split()
    except (OSError, IndexError):
        return None


def _parent(pid: int) -> int | None:
    fields = _stat(pid)
    return int(fields[1]) if fields else None


def alive(pid: int) -> bool:
    """Whether `pid` is a process that has not exited (a zombie has)."""
    fields = _stat(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def descendants(pid: int, skip: Iterable[int] = (), prune: Iterable[int] = ()) -> list[int]:
    """Every process below `pid`, parents before their children; not those in `skip`, whose
    own children are still searched, nor those in `prune` and what is below them."""
    skipped, pruned = set(skip), set(prune)
    found, todo = [], [pid]
    while todo:
        for child in children(todo.pop()):
            if child in pruned:
                continue
            if child not in skipped:
                found.append(child)
            todo.append(child)
    return found


def command_line(pid: int) -> str:
    """How `pid` was started, as `ps` shows it: its arguments, else its name in brackets."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            words = cmdline.read().rstrip(b"\0").split(b"\0")
        if words != [b""]:
            return " ".join(word.decode(errors="replace") for word in words)
        with open(f"/proc/{pid}/comm", "rb") as comm:
            return f"[{comm.read().strip().decode(errors='replace')}]"
    except OSError:
        return "?"


@dataclass(frozen=True)
class Stopped:
    """A descendant mprun stopped: the signal that ended it, and its exit status if it was
    mprun's to reap (an orphan that came back to it)."""

    pid: int
    command: str
    stopped_by: str  # SIGTERM or SIGKILL
    exitcode: int | None  # as multiprocessing's: -N for signal N; None if another process reaped it


class Stopping:
    """Stopping some processes, each watched by a pidfd from the moment it is found (so that a
    signal never reaches another process that took its number since): `terminate` sends them
    SIGTERM, `kill` SIGKILL to those still alive, and `close` reaps those that are this
    process's children (orphans that came back to it) and says what became of each. The
    waiting between is the caller's (the run's loop, which reads the children meanwhile)."""

    def __init__(self, pids: Iterable[int]) -> None:
        self.commands = {pid: command_line(pid) for pid in pids if alive(pid)}
        self.watches = {pid: _watch(pid) for pid in self.commands}
        self.how = dict.fromkeys(self.commands, "SIGTERM")

    def terminate(self) -> None:
        for pid in self.left():
            _send(pid, self.watches[pid], signal.SIGTERM)

    def kill(self) -> None:
        for pid in self.left():
            _send(pid, self.watches[pid], signal.SIGKILL)
            self.how[pid] = "SIGKILL"

    def left(self) -> list[int]:
        """Those that have not exited yet."""
        return [pid for pid, watch in self.watches.items() if not _exited(pid, watch)]

    def close(self) -> list[Stopped]:
        """What became of each (call once all have exited)."""
        for watch in self.watches.values():
            if watch is not None:
                os.close(watch)
        self.watches = dict.fromkeys(self.watches)
        return [Stopped(pid, command, self.how[pid], reap(pid)) for pid, command in self.commands.items()]


def reap(pid: int) -> int | None:
    """The exit status of `pid` if it is an ended child of this process (then reaped), else None."""
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return None
    if done == 0:
        return None
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def _send(pid: int, watch: int | None, number: int) -> None:
    try:
        if watch is not None:  # by its pidfd: never another process that took the number since
            signal.pidfd_send_signal(watch, number)
        else:
            os.kill(pid, number)
    except (ProcessLookupError, PermissionError):
        pass


def _watch(pid: int) -> int | None:
    if not hasattr(os, "pidfd_open"):
        return None
    try:
        return os.pidfd_open(pid)
    except OSError:
        return None


def _exited(pid: int, watch: int | None) -> bool:
    if watch is None:  # no pidfd: by its number (a zombie has exited)
        return not alive(pid)
    readable = select.poll()  # not select(): descriptors may be numbered past its 1024
    readable.register(watch, select.POLLIN)
    return bool(readable.poll(0))
