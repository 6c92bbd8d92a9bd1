"""The multiprocessing backend: build a plan's objects and processes, and take its steps.

Every step behaves as the standard library call it names: a join with a timeout leaves the
process running, terminate is SIGTERM then (after the grace) SIGKILL then join, a queue get or
event wait with a timeout gives up. Only the outcome is logged, by this module; output and
events of the children are the reader's. Every wait goes through the run's one loop.
"""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import select
import signal
import struct
import termios
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from multiprocessing.connection import Connection
from typing import Any, cast

from runner import child
from runner.backends.multiprocessing import objects, trees
from runner.backends.multiprocessing.cgroups import Cgroups, start_guard, stop_guard
from runner.backends.multiprocessing.reader import Reader, Report
from runner.child import (
    BLOCKED_AT_START,
    FLUSH_SIGNAL,
    STACK_SIGNAL,
    Trampoline,
    resolve,
    serve,
    unbuffered,
)
from runner.errors import BuildFailed
from runner.loop import SLICE, STOPPING, Loop, Signals
from runner.plan import Plan, PlannedProcess
from runner.workflow import (
    ClearEvent,
    Get,
    Join,
    JoinQueue,
    Put,
    Reference,
    SetEvent,
    Sleep,
    Start,
    Step,
    Terminate,
    Wait,
    references,
)

# Once its target is over a process exits at once, unless its queue feeder thread cannot
# write: past this, mprun looks whether it is caught in the queue-feeder trap.
TRAPPED_AFTER = 0.5
POLL = 0.2  # s between those looks while a join waits
STACK_TIMEOUT = 0.8  # s to wait for a child's dump of its stacks (a stopped process never answers)
FLUSH_WAIT = 0.1  # s to wait for a child to answer a flush: one busy in C code gets SIGTERM after
_F_GETPIPE_SZ = getattr(fcntl, "F_GETPIPE_SZ", 0)  # Linux; elsewhere pipes hold 64 KiB
START_BATCH = 32  # processes started before any of them is logged and read (see Backend.start)
_FED_KINDS = frozenset({"queue", "joinable_queue"})  # the kinds with a feeder thread


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

    @property
    def name(self) -> str:
        return str(self.process.name)


class Backend:
    """One run of a plan on this machine's multiprocessing."""

    def __init__(
        self,
        plan: Plan,
        log: Any,
        output: Callable[[str, int, str, list[str]], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        time_limit: float | None = None,
    ) -> None:
        self.plan = plan
        self.log = log
        self.clock = clock
        self.ctx = multiprocessing.get_context()
        self.objects: dict[str, Any] = {}
        self.handles: dict[str, list[Handle]] = {}
        self.manager: Any = None
        self.cgroups = Cgroups.create()
        self.guard: tuple[int, int] | None = None
        if self.cgroups is not None:
            self.guard = start_guard(self.cgroups.root)
            child.cgroup_guard = self.guard[1]
        self.reader = Reader(log, output)
        self.signals = Signals()
        self.loop = Loop(self.reader.poll, self.signals, time_limit, clock)
        woken_by = self.signals.install()
        if woken_by is not None:
            self.reader.wake_on(woken_by)
        self.subreaper = False

    # -- building ---------------------------------------------------------------------------

    def build(self) -> None:
        """Create the shared objects, then every process object, in file order."""
        # Orphans below mprun come back to it, to be found and stopped at the end (trees.py).
        self.subreaper = trees.become_subreaper()
        method = self.ctx.get_start_method()
        if method in ("spawn", "forkserver"):
            # Started now, not inside the first (signal-blocked) start: the resource tracker
            # unblocks SIGINT and SIGTERM while it starts, which would let a Ctrl-C cut a start.
            from multiprocessing import resource_tracker

            resource_tracker.ensure_running()
        if method == "forkserver":
            from multiprocessing import forkserver

            # The trampoline imported once, in the fork server, not in every child it forks.
            preload = list(getattr(forkserver._forkserver, "_preload_modules", None) or [])  # the host's, kept
            if "runner.child" not in preload:
                forkserver.set_forkserver_preload([*preload, "runner.child"])
            forkserver.ensure_running()
        for shared in self.plan.workflow.objects.values():
            try:
                self.objects[shared.name] = self._shared(shared.kind, shared.options)
            except Exception as error:
                raise BuildFailed(f"making {shared.name} raised {type(error).__name__}: {error}") from error
        mp_log = self.plan.workflow.multiprocessing_log
        as_mprun = unbuffered()
        for planned in self.plan.processes:
            trampoline = Trampoline(None if planned.is_class else planned.target, mp_log, as_mprun)
            trampoline.cgroup = self.cgroups.make() if self.cgroups is not None else None
            args = self._bind(planned.args)
            kwargs = self._bind(dict(planned.kwargs))
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
            else:
                process = self.ctx.Process(
                    target=trampoline, args=args, kwargs=kwargs, name=planned.name, daemon=bool(planned.daemon)
                )
                if planned.name is None:
                    # multiprocessing.Process's own default ("Process-3"), not the context class's
                    # ("ForkProcess-3"): what a script calling multiprocessing.Process() sees.
                    process.name = "Process-" + ":".join(str(i) for i in process._identity)
            self.handles.setdefault(planned.key, []).append(Handle(planned, process, trampoline))

    def _shared(self, kind: str, options: Mapping[str, Any]) -> Any:
        ctx = self.ctx
        if kind == "queue":
            return ctx.Queue(options.get("maxsize", 0))
        if kind == "joinable_queue":
            return ctx.JoinableQueue(options.get("maxsize", 0))
        if kind == "simple_queue":
            return ctx.SimpleQueue()
        if kind == "event":
            event = ctx.Event()
            if options.get("set"):
                event.set()
            return event
        if kind == "lock":
            return ctx.Lock()
        if kind == "rlock":
            return ctx.RLock()
        if kind in ("semaphore", "bounded_semaphore"):
            make = ctx.BoundedSemaphore if kind == "bounded_semaphore" else ctx.Semaphore
            return make(options.get("value", 1))
        if kind == "condition":
            lock = options.get("lock")
            return ctx.Condition(self.objects[lock] if lock else None)
        if kind == "barrier":
            action = options.get("action")
            return ctx.Barrier(options["parties"], resolve(action) if action else None, options.get("timeout"))
        if kind == "value":
            typecode = options.get("type", "i")
            return ctx.Value(typecode, _typed(typecode, options.get("value", 0)), lock=options.get("lock", True))
        if kind == "array":
            typecode = options.get("type", "i")
            initial = [_typed(typecode, item) for item in options["items"]] if "items" in options else options["size"]
            return ctx.Array(typecode, initial, lock=options.get("lock", True))
        if kind == "pipe":
            return ctx.Pipe(options.get("duplex", True))
        manager = self._manager()
        if kind == "dict":
            return manager.dict(options.get("items") or {})
        if kind == "list":
            return manager.list(options.get("items") or [])
        namespace = manager.Namespace()
        for name, value in (options.get("attributes") or {}).items():
            setattr(namespace, name, value)
        return namespace

    def _manager(self) -> Any:
        if self.manager is None:
            from multiprocessing.managers import SyncManager

            # Its server process must not outlive mprun either.
            self.manager = SyncManager(ctx=self.ctx)
            previous = signal.pthread_sigmask(signal.SIG_BLOCK, BLOCKED_AT_START)  # as for a start
            try:
                self.manager.start(initializer=serve)
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, previous)
        return self.manager

    def _bind(self, value: Any) -> Any:
        """Arguments with each reference replaced by its object (or pipe end)."""
        if isinstance(value, Reference):
            found = self.objects[str(value.name)]
            return found[value.end] if value.end is not None else found
        if isinstance(value, tuple):
            return tuple(self._bind(item) for item in value)
        if isinstance(value, dict):
            return {key: self._bind(item) for key, item in value.items()}
        return value

    # -- steps ------------------------------------------------------------------------------

    def execute(self) -> list[str]:
        """Take every step; returns the failures (timeouts, steps that could not be taken)."""
        failures = []
        for index, step in enumerate(self.plan.steps):
            self.loop.check()  # a signal that came during the last step, which did not wait
            subject = _subject(step)
            self.log.info("step.start", step=index + 1, kind=step.kind, subject=subject)
            began = self.clock()
            try:
                outcome, detail = self._take(step)
            except BaseException as error:
                if not isinstance(error, Exception):  # Ctrl-C, SIGTERM, the time limit: say so, go on up
                    self.log.warning(
                        "step.end",
                        step=index + 1,
                        kind=step.kind,
                        subject=subject,
                        outcome="interrupted",
                        duration_s=round(self.clock() - began, 6),
                        detail=None,
                    )
                    raise
                # User code (a `put: from:` callable) raised, or multiprocessing refused (a start
                # that cannot pickle its process, no file descriptors left): this step failed.
                outcome, detail = "failed", f"{type(error).__name__}: {error}"
                failures.append(f"step {index + 1} ({step.kind} {subject}): {detail}")
            duration = round(self.clock() - began, 6)
            method = self.log.warning if outcome in ("failed", "timeout", "stuck") else self.log.info
            method(
                "step.end",
                step=index + 1,
                kind=step.kind,
                subject=subject,
                outcome=outcome,
                duration_s=duration,
                detail=detail or None,
            )
            if outcome in ("timeout", "stuck"):
                failures.append(f"step {index + 1} ({step.kind} {subject}) {outcome}: {detail}")
        return failures

    def _take(self, step: Step) -> tuple[str, str]:
        if isinstance(step, Start):
            self.start(self._handles(step.processes))
            return "ok", ""
        if isinstance(step, Join):
            return self._join_step(self._handles(step.processes), step.timeout)
        if isinstance(step, Terminate):
            killed = self.terminate(self._handles(step.processes), step.grace)
            return ("ok", "killed after the grace: " + ", ".join(killed)) if killed else ("ok", "")
        if isinstance(step, Put):
            return "ok", f"{self._put(step)} item(s)"
        if isinstance(step, Get):
            return self._get(step)
        if isinstance(step, JoinQueue):
            return self._join_queue(step)
        if isinstance(step, Wait):
            if self.loop.wait(self.objects[step.event.text].is_set, step.timeout, every=SLICE):
                return "ok", ""
            self.dump_stacks(self.receivers(step.event.text), f"waiting for event {step.event.text} timed out")
            return "timeout", f"event {step.event.text} not set within {step.timeout} s"
        if isinstance(step, SetEvent):
            self.objects[step.event.text].set()
            return "ok", ""
        if isinstance(step, ClearEvent):
            self.objects[step.event.text].clear()
            return "ok", ""
        if isinstance(step, Sleep):
            self.loop.sleep(step.seconds)
            return "ok", ""
        raise ValueError(f"unknown step {step!r}")

    def _handles(self, names: Iterable[Any]) -> list[Handle]:
        return [handle for name in names for handle in self.handles[name.text]]

    def start(self, handles: list[Handle]) -> None:
        """Start these processes, each with fresh pipes for its output and events; then log and
        read each of them.

        The starts of up to START_BATCH processes come first: under fork, each page mprun
        writes after a start is copied (the child still shares it), so logging and registering
        between two starts would cost their page faults once per process instead of once a
        batch (`benchmarks/faults.py`: about 390 faults a process against 200). A child's
        output waits in its pipe meanwhile; nothing is read before its `process.start` record
        is written. Batches, not all at once: the wait stays short, and so does the number of
        descriptors of children that ended but are not read yet.
        """
        first = 0
        while first < len(handles):
            first += self._start_batch(handles[first : first + START_BATCH])
            self.loop.check()  # stops further starts

    def _start_batch(self, handles: list[Handle]) -> int:
        """Start these processes, or the first of them until a signal comes; how many it tried."""
        # Ctrl-C and SIGTERM only take effect once every process that started is logged and
        # read (they are flags for the loop), so that stopping the run stops it too; and they
        # are blocked, so that a child does not get them before it restores its own handlers
        # (see child.py).
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, BLOCKED_AT_START)
        reads: dict[int, dict[str, Connection]] = {}
        tried = 0
        try:
            for handle in handles:
                tried += 1
                self._launch(handle, reads)
                if self.signals.caught or set(STOPPING) & signal.sigpending():
                    break  # the rest are not started
        finally:
            try:
                for handle in handles:
                    if id(handle) not in reads:
                        continue
                    handle.started = handle.started or self.clock()
                    self.log.info(
                        "process.start",
                        process=handle.name,
                        pid=handle.process.pid,
                        key=handle.planned.key,
                        replica=handle.planned.replica,
                        daemon=handle.process.daemon,
                    )
                    pipes = reads[id(handle)]
                    handle.exit_descriptor, handle.owns_descriptor = exit_descriptor(handle.process)
                    handle.report = self.reader.add(handle.name, handle.process.pid, pipes, handle.exit_descriptor)
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, previous)  # a pending one is noted now
        return tried

    def _launch(self, handle: Handle, reads: dict[int, dict[str, Connection]]) -> None:
        """Start one process. The read ends of its pipes go into `reads` first, and leave it only
        if the process was not started: an interruption anywhere leaves them to be read."""
        pipes = {name: self.ctx.Pipe(duplex=False) for name in ("stdout", "stderr", "events", "stack")}
        handle.trampoline.attach(*(pipes[name][1] for name in ("events", "stdout", "stderr", "stack")))
        reads[id(handle)] = {name: read for name, (read, _) in pipes.items()}
        try:
            handle.process.start()
            handle.started = self.clock()
        finally:
            handle.trampoline.detach()
            # The child has its copies; ours must go, or the pipes never reach end-of-file.
            for _, write in pipes.values():
                write.close()
            if handle.process.pid is None:  # not started: nothing will write to the pipes
                for connection in reads.pop(id(handle)).values():
                    connection.close()

    def _join_step(self, handles: list[Handle], timeout: float | None) -> tuple[str, str]:
        alive = self.join(handles, timeout)
        if not alive:
            return "ok", ""
        stuck = [h for h in alive if h.stuck]
        # As `Process.join(timeout)`: not an error, the process runs on (a later step may
        # terminate it). A daemon still running is the point of such a join (the seed's
        # daemons); any other process was given this long, so the end of the run stops it
        # rather than wait for it again without end, and it did not end as expected.
        late = [h for h in alive if not h.process.daemon and not h.stuck]
        for handle in late:
            handle.overdue = True
        if late:
            waited = f"after {timeout:g} s" if timeout is not None else "while others could not exit"
            self.dump_stacks(late, f"still running when its join ended {waited}")
        if stuck:
            return "stuck", "; ".join(f"{h.name} {h.stuck}" for h in stuck)
        return "alive", "still running: " + ", ".join(h.name for h in alive)

    def join(self, handles: list[Handle], timeout: float | None, *, traps: bool = True) -> list[Handle]:
        """Join each process within one shared deadline; those still alive.

        Unlike `Process.join`, it does not wait for ever on processes that cannot exit because
        nobody reads their queue (see `_trapped`; unless not `traps`): it says so and returns them.
        """
        deadline = None if timeout is None else self.clock() + timeout
        waiting = [h for h in handles if h.started is not None and not self._exited(h, look=True)]
        nap = 0.001

        def done() -> bool:
            waiting[:] = [h for h in waiting if not self._exited(h)]
            return not waiting

        while waiting:
            left = None if deadline is None else deadline - self.clock()
            if left is not None and left <= 0:
                break
            # The exit code comes a moment after the exit descriptor fires (the fork server
            # writes it), and without pidfds a sentinel may not fire at all (a grandchild
            # holds it): look at those often, at the others every POLL.
            every = POLL
            if any(h.report.ended is not None for h in waiting):
                every, nap = nap, min(nap * 2, POLL)
            if self.loop.wait(done, every if left is None else min(every, left)):
                break
            # Without a pidfd, a sentinel a grandchild holds never fires: ask the system.
            waiting[:] = [h for h in waiting if not self._exited(h, look=not h.owns_descriptor)]
            if waiting and traps:  # a quiet moment: is everyone left caught in the queue-feeder trap?
                trapped = self._trapped(waiting)
                if len(trapped) == len(waiting):
                    self._explain_trap(trapped)
                    break
        return waiting

    def _exited(self, handle: Handle, *, look: bool = False) -> bool:
        """Whether the process has exited (and is reaped): asked of the system once its exit
        descriptor fired, or when `look`."""
        if handle.process.exitcode is None and (look or handle.report.ended is not None):
            self.note_end(handle)  # exitcode polls (and reaps) the child
        return handle.process.exitcode is not None

    def _trapped(self, handles: list[Handle]) -> dict[int, tuple[Handle, list[str]]]:
        """The processes whose target is over but which cannot exit, each with the queues it
        still feeds: items wait unread in the queue's pipe and no process that runs gets that
        queue. Only mprun could read them, and it is waiting in a join: the deadlock the
        multiprocessing docs warn of under "joining processes that use queues"."""
        now = time.monotonic()
        found = {}
        blocked: dict[str, bool] = {}  # per queue, once per look: hundreds of processes may share one
        for handle in handles:
            finished = handle.report.finished
            if finished is None or now - finished < TRAPPED_AFTER:
                continue
            for name in self._queues_of(handle):
                if name not in blocked:
                    blocked[name] = self._full(name) and not self._readers(name)
            fed = [name for name in self._queues_of(handle) if blocked[name]]
            if fed:
                found[id(handle)] = (handle, fed)
        return found

    def _queues_of(self, handle: Handle) -> list[str]:
        named = {ref.name for ref in (*references(handle.planned.args), *references(handle.planned.kwargs))}
        objects = self.plan.workflow.objects
        return sorted(name for name in named if name is not None and objects[name].kind in _FED_KINDS)

    def _full(self, name: str) -> bool:
        """Whether queue `name`'s pipe is (nearly) full: a feeder thread writing to it blocks.
        A few unread bytes are no trap: the process may be slow to exit for other reasons."""
        try:
            descriptor = self.objects[name]._reader.fileno()
            unread = struct.unpack("i", fcntl.ioctl(descriptor, termios.FIONREAD, b"\0\0\0\0"))[0]
            size = fcntl.fcntl(descriptor, _F_GETPIPE_SZ) if _F_GETPIPE_SZ else 65536
        except (AttributeError, OSError, ValueError):
            return False
        return bool(unread > size - select.PIPE_BUF)

    def _readers(self, name: str) -> list[Handle]:
        """The processes given queue `name` that run their target and are not overdue (those
        are stopped at the end, not waited for): the ones that may still read it."""
        return [
            h
            for h in self.receivers(name)
            if h.started is not None and h.report.finished is None and h.process.exitcode is None and not h.overdue
        ]

    def _explain_trap(self, trapped: dict[int, tuple[Handle, list[str]]]) -> None:
        news = [(handle, fed) for handle, fed in trapped.values() if handle.stuck is None]
        for handle, fed in news:
            queues = ", ".join(fed)
            handle.stuck = f"cannot exit: items it put on {queues} are unread, and no running process gets {queues}"
            self.log.warning(
                "process.stuck",
                process=handle.name,
                pid=handle.process.pid,
                reason=handle.stuck,
                hint="its target is over, but multiprocessing's queue feeder thread makes a process wait at exit "
                "until the items it put are read: get them before joining",
            )
        self.dump_stacks([handle for handle, _ in news], "cannot exit")

    def receivers(self, name: str) -> list[Handle]:
        """The processes given the shared object `name` in their arguments."""
        return [h for spec in self.plan.workflow.receivers(name) for h in self.handles.get(spec.key, [])]

    def running(self) -> list[Handle]:
        """The processes started and not known to have exited."""
        return [h for hs in self.handles.values() for h in hs if h.started is not None and h.process.exitcode is None]

    def dump_stacks(self, handles: Iterable[Handle], reason: str) -> None:
        """Ask each running process for a dump of its threads' stacks (logged as
        `process.stack` by the reader); waits for the dumps, within a bound."""
        asked = [h for h in handles if h.started is not None and h.report.stack_ready and h.process.exitcode is None]
        if not asked:
            return
        before = {id(h): h.report.stacks for h in asked}
        Reader.expect_dumps([h.report for h in asked], reason)
        for handle in asked:
            try:
                os.kill(handle.process.pid, STACK_SIGNAL)  # not reaped yet (exitcode None): still its pid
            except (ProcessLookupError, PermissionError):
                pass

        def answered() -> bool:
            return all(h.report.stacks > before[id(h)] or h.report.ended is not None for h in asked)

        self.loop.wait(answered, STACK_TIMEOUT)
        Reader.expect_dumps([h.report for h in asked], None)  # a late dump is not this one

    def terminate(self, handles: list[Handle], grace: float, *, as_planned: bool = True) -> list[str]:
        """SIGTERM each, SIGKILL those alive after the grace, then join; the names killed.
        `as_planned`: the workflow meant them to end this way (else it is a failure)."""
        running = [h for h in handles if h.started is not None and h.process.is_alive()]
        # What each started, found before any of them ends and its orphans lose their parentage.
        below = {pid: handle for handle in running for pid in self._descendants(handle)}
        for handle in running:
            handle.terminated = as_planned
        for handle in self._flush_first(running):
            handle.process.terminate()
        deadline = self.clock() + grace
        descendants = trees.Stopping(below)
        killed = self.join(running, grace, traps=False)
        self.dump_stacks(killed, f"still running {grace:g} s after SIGTERM")
        for handle in killed:
            handle.process.kill()
        for handle in running:
            handle.process.join()
            self.note_end(handle)
        self._report_descendants(descendants.finish(deadline, self.clock), below)
        return [handle.name for handle in killed]

    def _descendants(self, handle: Handle) -> list[int]:
        """What this process started and is still there: below it, or in its cgroup (where an
        orphan stays, whose parent has ended)."""
        found = trees.descendants(handle.process.pid)
        if handle.trampoline.cgroup is not None:
            found += [pid for pid in Cgroups.members(handle.trampoline.cgroup) if pid != handle.process.pid]
        return list(dict.fromkeys(found))

    def stop_left_behind(self, grace: float) -> None:
        """Stop whatever the run's processes started and left running once they ended (every
        process below mprun but its own and multiprocessing's helpers)."""
        everyone = [h for hs in self.handles.values() for h in hs if h.process.pid is not None]
        ours = self._infrastructure() | {h.process.pid for h in everyone}
        owners = {pid: h for h in everyone if h.trampoline.cgroup for pid in self._descendants(h)}
        left = list(dict.fromkeys([*trees.descendants(os.getpid(), skip=ours), *owners]))
        for pid in left:
            if not trees.alive(pid):
                trees.reap(pid)  # an orphan that ended by itself: not left as a zombie
        stopping = trees.Stopping(pid for pid in left if trees.alive(pid))
        self._report_descendants(stopping.finish(self.clock() + grace, self.clock), owners)

    def _infrastructure(self) -> set[int]:
        """The helpers below mprun, which end when mprun is done with them: multiprocessing's
        resource tracker, fork server and manager server, and the cgroup guard."""
        import sys

        found = set()
        if "multiprocessing.resource_tracker" in sys.modules:
            found.add(getattr(sys.modules["multiprocessing.resource_tracker"]._resource_tracker, "_pid", None))
        if "multiprocessing.forkserver" in sys.modules:
            found.add(getattr(sys.modules["multiprocessing.forkserver"]._forkserver, "_forkserver_pid", None))
        if self.manager is not None:
            found.add(self.manager._process.pid)
        if self.guard is not None:
            found.add(self.guard[0])
        return {pid for pid in found if pid is not None}

    def _report_descendants(self, stopped: list[trees.Stopped], owners: Mapping[int, Handle]) -> None:
        for one in stopped:
            owner = owners.get(one.pid)
            self.log.warning(
                "process.descendant",
                process=owner.name if owner else None,
                pid=one.pid,
                command=one.command,
                stopped_by=one.stopped_by,
                exitcode=one.exitcode,
            )

    def _flush_first(self, handles: list[Handle]) -> list[Handle]:
        """Ask each process to write out its streams and end itself by SIGTERM (see
        child.FLUSH_SIGNAL); those that did not answer within FLUSH_WAIT, which still need
        the SIGTERM. Only processes that can take the signal are asked: not one still
        starting, nor one that exec'd another program."""
        asked = [h for h in handles if FLUSH_SIGNAL is not None and h.report.stack_ready]
        for handle in asked:
            try:
                os.kill(handle.process.pid, cast(int, FLUSH_SIGNAL))  # not reaped yet: still its pid
            except (ProcessLookupError, PermissionError):
                pass
        if asked:
            self.loop.wait(lambda: all(h.report.flushed or h.report.ended for h in asked), FLUSH_WAIT)
        return [h for h in handles if not (h.report.flushed or h.report.ended)]

    def note_end(self, handle: Handle) -> None:
        """Record when a process that has exited ended (a no-op while it runs)."""
        if handle.ended is None and handle.process.exitcode is not None:
            # When it exited, as the reader saw it; else now, when we learnt of it.
            handle.ended = handle.report.ended or self.clock()

    def _put(self, step: Put) -> int:
        target = self.objects[step.queue.text]
        if step.source is not None:
            items = list(resolve(step.source)(*step.args, **step.kwargs))
        else:
            repeat = len(self.plan.replicas(step.per.text)) if step.per is not None else step.count
            items = [item for item in step.items for _ in range(repeat)]
        for item in items:
            # A bounded queue that is full, or a simple queue's full pipe, would block mprun,
            # and with it the reading of the very processes that would make room.
            self.loop.wait(partial(objects.put, target, item), None, every=SLICE)
        return len(items)

    def _get(self, step: Get) -> tuple[str, str]:
        source = self.objects[step.queue.text]
        got = 0

        def taken() -> bool:
            nonlocal got
            while got < step.count:
                found, item = objects.get(source)
                if not found:
                    return False
                got += 1
                self.log.info("queue.get", queue=step.queue.text, item=_short_repr(item))
            return True

        if self.loop.wait(taken, step.timeout, every=SLICE):
            return "ok", f"{step.count} item(s)"
        self.dump_stacks(self.receivers(step.queue.text), f"get from {step.queue.text} timed out")
        return "timeout", f"{got} of {step.count} item(s) within {step.timeout} s"

    def _join_queue(self, step: JoinQueue) -> tuple[str, str]:
        tasks = self.objects[step.queue.text]
        if self.loop.wait(lambda: objects.all_done(tasks), step.timeout, every=SLICE):
            return "ok", ""
        detail = f"items of {step.queue.text} not all done within {step.timeout} s"
        receivers = self.receivers(step.queue.text)
        ended = [h for h in receivers if h.started is not None and h.process.exitcode is not None]
        if ended:  # one that died holding an item never marks it done
            detail += "; ended before: " + ", ".join(f"{h.name} (exit code {h.process.exitcode})" for h in ended)
        self.dump_stacks(receivers, f"join_queue {step.queue.text} timed out")
        return "timeout", detail

    # -- the end ----------------------------------------------------------------------------

    def finish(self, grace: float) -> None:
        """As the interpreter at exit: stop the daemons still running, join the others. Without
        explicit steps the non-daemons are waited for first: that is what the workflow is for."""
        everyone = [handle for handles in self.handles.values() for handle in handles]
        if self.plan.default_steps:
            self.join([h for h in everyone if not h.process.daemon], None)
        daemons = [h for h in everyone if h.started is not None and h.process.daemon and h.process.is_alive()]
        if daemons:
            self.log.info("run.stop_daemons", names=[h.name for h in daemons])
            self.terminate(daemons, grace)
        # Processes whose join timed out, and those that cannot exit, are not waited for again.
        self.join([h for h in everyone if not h.process.daemon and not h.overdue], None)
        left = [h for h in everyone if h.started is not None and not h.process.daemon and h.process.is_alive()]
        if left:
            self.log.warning("run.stop_overdue", names=[h.name for h in left])
            self.terminate(left, grace, as_planned=False)
        self.stop_left_behind(grace)

    def stop_everything(self, grace: float) -> None:
        """SIGTERM every child still running and all they started, SIGKILL after the grace,
        join: nothing survives mprun."""
        everyone = [handle for handles in self.handles.values() for handle in handles]
        self.terminate(everyone, grace)
        self.stop_left_behind(grace)

    def close(self, drain_timeout: float = 2.0) -> None:
        """Read what the children left in their pipes, then release everything. Once every child
        has exited, a pipe still open is held by something it started; that is not waited for."""
        self.loop.stop()
        self.loop.wait(lambda: not self.reader.open, drain_timeout)
        self.reader.close()
        self.signals.uninstall()
        for handles in self.handles.values():
            for handle in handles:
                if handle.owns_descriptor and handle.exit_descriptor is not None:
                    os.close(handle.exit_descriptor)
                    handle.owns_descriptor = False
        if self.manager is not None:
            manager, self.manager = self.manager, None
            manager.shutdown()
        if self.subreaper:
            trees.stop_being_subreaper()  # runner.run() may be called from a longer-lived program
            self.subreaper = False
        if self.cgroups is not None:
            self.cgroups.close()
        if self.guard is not None:
            stop_guard(*self.guard)
            self.guard = None
            child.cgroup_guard = -1


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


def _typed(typecode: str, value: Any) -> Any:
    return value.encode() if typecode == "c" and isinstance(value, str) else value


def _short_repr(value: object, limit: int = 2000) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"


def _subject(step: Step) -> str:
    for field_name in ("processes", "queue", "event"):
        value = getattr(step, field_name, None)
        if isinstance(value, tuple):
            return ", ".join(name.text for name in value)
        if value is not None:
            return str(value.text)
    seconds = getattr(step, "seconds", None)
    return f"{seconds:g} s" if seconds is not None else ""
