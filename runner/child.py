"""The child side of a run: what every process mprun starts does before and after its target.

It runs once per process, under fork, spawn and forkserver alike, so it imports only the
standard library, and it changes nothing of multiprocessing's semantics: the target gets its
arguments, `current_process()` is the process, a return exits 0, `sys.exit(n)` exits n, an
exception exits 1 (with its traceback on stderr), a signal N ends it with -N.
"""

from __future__ import annotations

# All at the top, also what only the child uses: under fork a child inherits what mprun has
# imported and would otherwise import it anew, each one (ctypes alone costs milliseconds).
import ctypes
import faulthandler
import fcntl
import logging
import os
import pickle
import resource
import select
import signal
import sys
import threading
import traceback
from multiprocessing.connection import Connection

from runner.events import Logged, Raised, Returned, Usage

TYPE_CHECKING = False  # as typing's, without importing typing into every child
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

# Looked up once, in mprun: fork children have it.
_PRCTL = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None
_F_SETSIG: int | None = getattr(fcntl, "F_SETSIG", None)  # Linux: a descriptor's O_ASYNC signal
RETURN_REPR_LIMIT = 2000  # characters of a return value's repr kept for the log
INHERITED_SIGNALS = frozenset({signal.SIGTERM})  # mprun handles it; children must not
# Blocked in mprun across a start: a fork child must not run the handlers it inherited from
# mprun (which only note a signal for mprun's loop) before it puts back its own.
BLOCKED_AT_START = INHERITED_SIGNALS | {signal.SIGINT}


# Asks a child for a faulthandler dump of its threads. A real-time signal where there are
# some: user code that registers SIGUSR1 for its own dumps is common, and must not be taken over.
STACK_SIGNAL: int = signal.SIGRTMIN + 1 if hasattr(signal, "SIGRTMIN") else signal.SIGUSR2
# The first byte on a child's stack pipe: the dump handler is in place. Until then the stack
# signal's default action would kill the child, so mprun does not send it.
STACK_READY = b"R"
# Asks a child to write out its streams and end by SIGTERM (see Trampoline._capture).
# None where there are no real-time signals to spare: those children just get SIGTERM. The
# child answers on its stack pipe with FLUSHED, between dumps.
FLUSHED = b"\x06"  # ASCII ACK: no dump starts with it (one starts "Fatal Python error")
FLUSH_SIGNAL: int | None = signal.SIGRTMIN + 2 if hasattr(signal, "SIGRTMIN") else None


class _EventHandler(logging.Handler):
    """Sends each log record to the parent instead of writing it anywhere."""

    def __init__(self, events: Connection) -> None:
        super().__init__(logging.NOTSET)
        self.events = events
        self.pid = os.getpid()
        self.exceptions = logging.Formatter()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            trace = self.exceptions.formatException(record.exc_info) if record.exc_info else None
            if os.getpid() != self.pid:
                # A process this one forked (a Pool worker) inherited the handler: concurrent
                # writers would garble the events pipe, so it writes a line to stderr instead.
                text = f"[{record.levelname}/{record.name}] {record.getMessage()}" + (f"\n{trace}" if trace else "")
                os.write(2, text.encode(errors="replace") + b"\n")
                return
            event = Logged(record.name, record.levelname, record.getMessage(), record.created, trace)
            self.events.send_bytes(_pickled(event))
        except Exception:  # noqa: BLE001 - as logging.Handler does: a record that cannot be sent is dropped
            self.handleError(record)


def guard(parent_death_signal: bool = True) -> None:
    """End this process when mprun ends, even by SIGKILL: no child outlives the run.

    Both ways are the kernel's, armed once: nothing runs in the child to watch. The parent-death
    signal covers fork and spawn children, whose parent is mprun. multiprocessing's parent
    sentinel, a pipe whose write end only mprun holds, is set to send SIGKILL when that end
    closes: it covers forkserver children and manager processes (whose parent is the fork
    server), and root code that changes its uid, which clears the parent-death signal but not
    this, armed while root. Under fork, siblings started later hold copies of the write end
    until their own parent-death signal ends them.
    """
    import multiprocessing

    global cgroup_guard
    if cgroup_guard >= 0:  # a fork child's copy: the guard must see end of file when mprun ends
        os.close(cgroup_guard)
        cgroup_guard = -1
    for descriptor in parents_only:  # a fork child's copies: what it wrote there would pass for mprun's
        try:
            os.close(descriptor)
        except OSError:
            pass
    parents_only.clear()
    parent = multiprocessing.parent_process()
    # Not for a process one of its parent's threads started (a pool's worker): the kernel
    # sends the signal when that thread ends, not the process. The sentinel covers it.
    if _PRCTL is not None and parent_death_signal:
        pr_set_pdeathsig = 1
        _PRCTL(pr_set_pdeathsig, signal.SIGKILL)
    sentinel = getattr(parent, "_sentinel", None)  # the public property raises when unset
    if parent is None or sentinel is None:
        return
    armed = False
    if _F_SETSIG is not None:
        try:
            fcntl.fcntl(sentinel, fcntl.F_SETOWN, os.getpid())
            fcntl.fcntl(sentinel, _F_SETSIG, signal.SIGKILL)
            fcntl.fcntl(sentinel, fcntl.F_SETFL, fcntl.fcntl(sentinel, fcntl.F_GETFL) | os.O_ASYNC)
            armed = True
        except OSError:  # a sandbox or an emulated kernel without them: the thread below
            pass
    # Gone before the signals were armed? (`parent.is_alive()` would build a selector: every
    # object a fork child touches costs it a copied page. Not select(): the descriptor may be
    # numbered past its 1024.)
    closed = select.poll()
    closed.register(sentinel, select.POLLIN)
    if closed.poll(0):
        os._exit(1)
    if armed:
        global _watched, _watched_file
        _watched = sentinel
        _watched_file = _identity(sentinel)
        os.register_at_fork(after_in_child=_arm_in_fork)
        return

    from multiprocessing.connection import wait

    def watch() -> None:  # the fallback: a thread, which also shows in every stack dump
        wait([sentinel])
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="mprun-parent-watch", daemon=True).start()


def serve() -> None:
    """A manager's server process, before it serves: mprun's handlers and wake-up descriptor
    (which it inherited under fork) put back to Python's own, and guarded as a child is."""
    _own_signals()
    guard()


def _own_signals() -> None:
    """Put back what a process forked from mprun's loop must not keep: the handlers that only
    note a signal for that loop (loop.Signals), and its wake-up descriptor. Then unblock them
    (mprun blocks them across a start)."""
    for number in INHERITED_SIGNALS:
        signal.signal(number, signal.SIG_DFL)
    import warnings  # imported by every interpreter at start: costs nothing

    # Under fork, mprun's own way of showing warnings (its log) came along.
    warnings.showwarning = getattr(warnings.showwarning, "previous", warnings.showwarning)
    sys.unraisablehook = getattr(sys.unraisablehook, "previous", sys.unraisablehook)  # see entry.py
    noted = getattr(signal.getsignal(signal.SIGINT), "previous", None)
    if noted is not None:  # Ctrl-C as mprun had it (Python's own, under entry.py's note)
        handler = noted[signal.SIGINT] or signal.SIG_DFL
        signal.signal(signal.SIGINT, getattr(handler, "previous", handler))
    signal.set_wakeup_fd(-1)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, BLOCKED_AT_START)


cgroup_guard = -1  # in mprun, the descriptor its cgroup guard waits on (cgroups.start_guard)
parents_only: set[int] = set()  # in mprun, descriptors no fork child may keep: the log file
_watched = -1  # the parent sentinel this process is armed on
_watched_file: tuple[int, int] | None = None  # which pipe that is (user code may close the number)


def _identity(descriptor: int) -> tuple[int, int] | None:
    import stat

    try:
        found = os.fstat(descriptor)
    except OSError:
        return None
    return (found.st_dev, found.st_ino) if stat.S_ISFIFO(found.st_mode) else None


def _arm_in_fork() -> None:
    """In a process forked from a child (a Pool's worker, a helper, a daemon): be killed when
    mprun ends too, not when its own parent does, so that nothing dies earlier than it would
    without mprun. The signal goes to one owner per open file, so the process opens the
    sentinel pipe anew. Its descriptor closes at an exec: a program that replaces Python is not
    covered, nor a process that closes every descriptor it has."""
    global _watched
    setsig = _F_SETSIG
    if setsig is None or _watched_file is None or _identity(_watched) != _watched_file:
        return  # closed, or the number now stands for another file
    try:
        watched = os.open(f"/proc/self/fd/{_watched}", os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return  # the user closed it, or no /proc
    try:
        fcntl.fcntl(watched, fcntl.F_SETOWN, os.getpid())
        fcntl.fcntl(watched, setsig, signal.SIGKILL)
        fcntl.fcntl(watched, fcntl.F_SETFL, fcntl.fcntl(watched, fcntl.F_GETFL) | os.O_ASYNC)
    except OSError:
        os.close(watched)
        return
    _watched = watched
    closed = select.poll()
    closed.register(watched, select.POLLIN)
    if closed.poll(0):  # mprun ended before the signal was armed
        os._exit(1)


def set_environment(env: Mapping[str, str | None]) -> None:
    """These variables in os.environ (None: without it)."""
    for name, value in env.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def _settle(env: dict[str, str | None], cwd: str | None) -> None:
    """The process's own environment and folder, as its target will see them."""
    set_environment(env)
    if cwd is not None:
        os.chdir(cwd)


class Trampoline:
    """The callable each process runs: set up capture, then run the target or `Process.run`.

    Picklable (spawn and forkserver send it to the child): it holds the target's name, never
    the target, which is imported in the child from the workflow's pythonpath.
    """

    def __init__(
        self,
        target: str | None,
        multiprocessing_log: str | None = None,
        unbuffered: bool = False,
        pythonpath: tuple[str, ...] = (),
    ) -> None:
        self.target = target
        self.pythonpath = pythonpath  # the workflow's folders, first on sys.path for the target
        self.multiprocessing_log = multiprocessing_log
        self.unbuffered = unbuffered  # mprun's streams are (a spawn child cannot tell `python -u`)
        self.cgroup: str | None = None  # the folder of the cgroup made for this process
        self.parent_death_signal = True  # see guard
        self.env: dict[str, str | None] = {}  # the process's own variables (None: removed)
        self.cwd: str | None = None  # the folder it runs in
        self.events: Connection | None = None
        self.stdout: Connection | None = None
        self.stderr: Connection | None = None
        self.stack: Connection | None = None

    def attach(self, events: Connection, stdout: Connection, stderr: Connection, stack: Connection) -> None:
        """The pipes of the next start, made just before it (so that no other child inherits them)."""
        self.events, self.stdout, self.stderr, self.stack = events, stdout, stderr, stack

    def detach(self) -> None:
        """Forget the pipes once started: the child has its own copies."""
        self.events = self.stdout = self.stderr = self.stack = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # mprun starts children with these signals blocked, since under fork its own Python
        # handlers came along, and a SIGTERM caught by them would be lost, not fatal. Once
        # the defaults are back, a pending SIGTERM ends the child with -15, as it should.
        _own_signals()
        if self.cgroup is not None:  # first: whatever the process starts then is in it too
            _enter(self.cgroup)
        guard(self.parent_death_signal)
        self._capture()
        _first_on_path(self.pythonpath)
        try:
            _settle(self.env, self.cwd)
            if self.target is None:  # a Process subclass: run its own run()
                import multiprocessing

                process = multiprocessing.current_process()
                result = type(process).run(process)
            else:
                result = resolve(self.target)(*args, **kwargs)
        except SystemExit:
            raise  # an exit status, not an error: multiprocessing turns it into the exit code
        except BaseException as error:
            _flush()
            self._send(Raised(type(error).__qualname__, _text(error), traceback.format_exc()))
            raise
        else:
            # What it printed is in the pipes before mprun hears that it returned, so that its
            # lines come first in the log.
            _flush()
            self._send(Returned(bounded_repr(result)))
            return result
        finally:
            self._send(_usage())

    def _capture(self) -> None:
        """Point fds 1 and 2 at the parent's pipes, logging at the events pipe, and a dump of
        every thread's stack, on request, at the stack pipe."""
        assert self.events is not None and self.stdout is not None and self.stderr is not None
        assert self.stack is not None
        # The pipe stays open (this object lives as long as the process) for later dumps; a
        # crash (SIGSEGV, SIGABRT...) dumps there too, then ends the process by its signal.
        # Closed by an exec: a program that replaces Python must not get the stack signal.
        os.set_inheritable(self.stack.fileno(), False)
        faulthandler.register(STACK_SIGNAL, file=self.stack.fileno(), all_threads=True, chain=False)
        faulthandler.enable(file=self.stack.fileno(), all_threads=True)
        # Stopped by mprun, the process first gets this signal: it writes out what its streams
        # still hold (a line without its newline yet), then ends itself by SIGTERM, as
        # `terminate()` would have. One stuck in C code never runs it: mprun then sends SIGTERM.
        global _stack_descriptor
        _stack_descriptor = self.stack.fileno()
        if FLUSH_SIGNAL is not None:
            signal.signal(FLUSH_SIGNAL, _flush_then_terminate)
        os.write(self.stack.fileno(), STACK_READY)  # both signals may be sent from now on
        os.dup2(self.stdout.fileno(), 1)
        os.dup2(self.stderr.fileno(), 2)
        self.stdout.close()
        self.stderr.close()
        encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
        sys.stdout, sys.stderr = _streams(encoding, self.unbuffered or unbuffered())
        global _streams_made
        _streams_made = True
        handler = self.handler = _EventHandler(self.events)
        # Under fork the parent's handlers came along; only the parent writes mprun's output.
        root = logging.getLogger()
        for old in list(root.handlers):
            root.removeHandler(old)
        root.addHandler(handler)
        if self.multiprocessing_log is not None:
            import multiprocessing

            logger = multiprocessing.get_logger()
            for old in list(logger.handlers):
                logger.removeHandler(old)
            logger.addHandler(handler)
            logger.setLevel(self.multiprocessing_log)

    def _send(self, event: object) -> None:
        # Under the handler's lock: a thread logging at the same time must not interleave its
        # bytes with ours (a message over 16 KB is two writes).
        handler = getattr(self, "handler", None)
        if handler is not None and handler.pid != os.getpid():
            return  # a process the target forked, returning through it: not this process's news
        try:
            if self.events is not None and handler is not None:
                with handler.lock:
                    self.events.send_bytes(_pickled(event))
        except (OSError, ValueError):
            pass  # the parent is gone; the exit status still tells what happened


def _first_on_path(folders: tuple[str, ...]) -> None:
    """The workflow's folders first on sys.path, as in mprun. A spawn or forkserver child got
    them last, so that the modules it imported as it started are the real ones (see
    backend._folders_last)."""
    if not folders or sys.path[: len(folders)] == list(folders):
        return
    sys.path[:] = [*folders, *(entry for entry in sys.path if entry not in folders)]


def unbuffered() -> bool:
    """Whether this interpreter's own streams are unbuffered: `python -u`, or PYTHONUNBUFFERED
    (read when it started; sys.flags does not tell)."""
    return bool(getattr(sys.__stdout__, "write_through", False) or os.environ.get("PYTHONUNBUFFERED"))


def _streams(encoding: str, unbuffered: bool) -> tuple[Any, Any]:
    """New `sys.stdout` and `sys.stderr` on fds 1 and 2, buffered as Python buffers them on a
    terminal: by lines (a carriage return flushes too), so that each line reaches mprun as it is
    printed, not when a block fills or the process ends. Unbuffered as Python's own streams are
    under `python -u` or PYTHONUNBUFFERED.

    New objects, and the inherited ones never touched again: under fork another thread of mprun
    may have held their lock at the fork, held for ever in this copy, and their buffers hold
    mprun's bytes, not ours.
    """
    import io

    made = []
    for descriptor, errors in ((1, "strict"), (2, "backslashreplace")):
        binary = open(descriptor, "wb", buffering=0 if unbuffered else -1, closefd=False)
        made.append(io.TextIOWrapper(binary, encoding, errors, line_buffering=not unbuffered, write_through=unbuffered))
    return made[0], made[1]


_streams_made = False  # until then sys.stdout is still the one inherited from mprun
_stack_descriptor = -1  # the stack pipe, once it is set up


def _flush() -> None:
    if not _streams_made:
        return
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 - a closed or replaced stream, or a write cut by this very signal
            pass


def _flush_then_terminate(number: int, frame: Any) -> None:
    _flush()
    try:
        # mprun sends no SIGTERM of its own then: a user's SIGTERM handler runs once, as after
        # `terminate()`.
        os.write(_stack_descriptor, FLUSHED)
    except OSError:
        pass
    os.kill(os.getpid(), signal.SIGTERM)  # to whatever handles it: the default, or the user's own


def _enter(cgroup: str) -> None:
    try:
        with open(cgroup + "/cgroup.procs", "w") as procs:
            procs.write("0")  # this process
    except OSError:
        pass  # the cgroup is gone, or the system refuses: parentage still finds its descendants


def resolve(reference: str) -> Any:
    """The object `module:attribute` names, importing its module (the attribute may be dotted)."""
    import importlib

    module_name, _, attribute = reference.partition(":")
    found: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        found = getattr(found, part)
    return found


def _pickled(event: object) -> bytes:
    # What `Connection.send` sends, without its ForkingPickler, which copies the copyreg table
    # for every message: mprun's `recv` unpickles it the same, and events are plain records.
    return pickle.dumps(event, pickle.HIGHEST_PROTOCOL)


def _text(error: BaseException) -> str:
    try:
        return str(error)
    except Exception:  # noqa: BLE001 - a user exception whose __str__ raises
        return f"<{type(error).__name__}: unprintable>"


def bounded_repr(value: object) -> str:
    """`repr(value)`, cut at RETURN_REPR_LIMIT characters (and never raising)."""
    try:
        text = repr(value)
    except Exception as error:  # noqa: BLE001 - a user __repr__ may raise
        return f"<unrepresentable {type(value).__name__}: {_text(error)}>"
    if len(text) > RETURN_REPR_LIMIT:
        return text[:RETURN_REPR_LIMIT] + f"... ({len(text)} characters)"
    return text


def _usage() -> Usage:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return Usage(usage.ru_utime + usage.ru_stime, usage.ru_maxrss)
