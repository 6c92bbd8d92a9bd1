"""The multiprocessing backend: a plan's objects and processes on this machine's
multiprocessing, and the primitives the steps are taken with (see backends.Backend).

Every primitive behaves as the standard library call it stands for: a join with a timeout
leaves the process running, terminate is SIGTERM then (after the grace) SIGKILL then join, a
queue get or event wait with a timeout gives up. What happens to the processes goes out as
records (records.py) through the run's one loop, and every wait goes through it: an exit is
told as soon as a poll notices it, whatever the run is waiting for.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import partial
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from runner import child, records
from runner.backends.multiprocessing import feeder_trap, objects, pools, processes, trees
from runner.backends.multiprocessing.cgroups import Cgroups, start_guard, stop_guard
from runner.backends.multiprocessing.processes import Handle
from runner.backends.multiprocessing.reader import Reader, Report
from runner.child import BLOCKED_AT_START, FLUSH_SIGNAL, STACK_SIGNAL, Trampoline, unbuffered
from runner.errors import BuildFailed, Halt
from runner.loop import SLICE, STOPPING, Loop, Signals
from runner.outcome import Ended, ending_words, restart_pause, signal_name
from runner.plan import CALLER, CHANNELS, Plan, PlannedProcess, channel
from runner.records import Record
from runner.workflow import LOCK_KINDS, Reference, references

if TYPE_CHECKING:
    from runner import host  # imported where a pool is used: a run without one does without it
    from runner.backends import Backend

POLL = 0.2  # s between looks for the queue-feeder trap while a join waits
EXIT_NAP = 0.001  # s before looking again for an exit code not there yet (doubling up to POLL)
STACK_TIMEOUT = 0.8  # s to wait for a child's dump of its stacks (a stopped process never answers)
FLUSH_WAIT = 0.1  # s to wait for a child to answer a flush: one busy in C code gets SIGTERM after
START_BATCH = 32  # processes started before any of them is logged and read (see start)
DESCENDANTS_POLL = 0.01  # s between looks at descendants being stopped (pidfds, not read by the loop)
HELD_KINDS = LOCK_KINDS | {"joinable_queue"}  # what a process that dies may leave held
STOP_GRACE = 5.0  # s from SIGTERM to SIGKILL when the run gives none (as `--grace` does)


@contextmanager
def _elsewhere() -> Iterator[None]:
    """In the root folder for a while: the fork server runs as `python -c`, with the current
    folder first on its sys.path (it ignores the sys.path it is given), and imports runner.child
    before anything else; a user's `logging.py` in the current folder would be imported in
    its place. The children it forks go back to mprun's folder as they start (spawn.prepare)."""
    try:
        here = os.open(".", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        yield
        return
    try:
        os.chdir("/")
        yield
    finally:
        os.fchdir(here)
        os.close(here)


_server_errors: Connection | None = None  # the read end of the fork server's stderr, for every run


@contextmanager
def _server_stderr() -> Iterator[None]:
    """Start the fork server (if it starts now) with its stderr on a pipe of mprun's: what its
    children write there while they are set up is read as theirs (forkserver_hook.py), not
    written on mprun's terminal. The pipe outlives the run: the server does too."""
    global _server_errors
    from multiprocessing import forkserver

    if getattr(forkserver._forkserver, "_forkserver_pid", None) is not None:
        yield  # already running: it has its stderr
        return
    read, write = os.pipe()
    try:
        with processes.stderr_on(write):
            yield
    finally:
        os.close(write)
        if getattr(forkserver._forkserver, "_forkserver_pid", None) is not None:
            previous, _server_errors = _server_errors, Connection(read)
            if previous is not None:
                previous.close()
        else:
            os.close(read)


class MultiprocessingBackend:
    """One run of a plan on this machine's multiprocessing."""

    def __init__(
        self,
        plan: Plan,
        record: Callable[[Record], None],
        clock: Callable[[], float] = time.monotonic,
        time_limit: float | None = None,
        method: str | None = None,
        signals: Signals | None = None,
        grace: float = STOP_GRACE,
    ) -> None:
        self.plan = plan
        self.clock = clock
        self.grace = grace  # for what a policy stops (a process past its max_run_time)
        self.ctx: Any = multiprocessing.get_context(method)  # typeshed: BaseContext, without Process
        self.objects = objects.Objects(self.ctx)
        self.handles: dict[str, list[Handle]] = {}
        # A program calling runner.run() may have children of its own: not the run's to stop.
        self.others = set(trees.children(os.getpid()))
        self.cgroups = Cgroups.create()
        self.guard: tuple[int, int] | None = None
        # The caller's (execution.py installs them for the whole run, report included).
        self.signals = signals or Signals()
        self.loop = Loop(self._poll, self.signals, time_limit, clock)
        self.loop.listen(record)
        self.reader = Reader(self.loop.emit, clock)
        self._owners: dict[int, Handle] = {}  # id of a process's Report -> its handle
        self._exiting: list[Handle] = []  # exit descriptor fired, exit code not known yet
        self._nap = EXIT_NAP
        self._jobs: dict[str, pools.Jobs] = {}  # each started pool's jobs pipe
        self._told: dict[str, Callable[[], bool]] = {}  # reads what each pool's host told of its workers
        self._callers: dict[str, Trampoline] = {}  # the call steps' processes, made at the step
        if self.signals.woken_by is not None:
            self.reader.wake_on(self.signals.woken_by)
        self.subreaper = False
        self.closed = False

    @staticmethod
    def preload(plan: Plan, method: str) -> None:
        """Import what a run of `plan` would import later, while the workflow's folders are
        first on sys.path: multiprocessing's modules for this start method and these objects,
        and the standard library they import when first used."""
        import importlib

        names = {
            "fork": ["multiprocessing.popen_fork"],
            "spawn": ["multiprocessing.popen_spawn_posix", "multiprocessing.resource_tracker"],
            "forkserver": ["multiprocessing.popen_forkserver", "multiprocessing.forkserver"],
        }[method]
        kinds = {shared.kind for shared in plan.workflow.objects.values()}
        if kinds & {"value", "array"}:
            names.append("multiprocessing.sharedctypes")
        if kinds & {"dict", "list", "namespace"}:
            names += ["multiprocessing.managers", "hmac"]  # hmac: the manager's handshake
        for name in names:
            importlib.import_module(name)

    # -- building ---------------------------------------------------------------------------

    def build(self) -> None:
        """Create the shared objects, then every process object, in file order."""
        cgroups: list[str | None] = [None] * len(self.plan.processes)
        if self.cgroups is not None:
            # Each process's cgroup made first: the guard's first move into a cgroup (see
            # cgroups._warm_up) holds up every cgroup made while it waits. Forked before mprun
            # has any thread (a queue's feeder starts with its first put, a manager with it).
            cgroups = [self.cgroups.make() for _ in self.plan.processes]
            self.guard = start_guard(self.cgroups.root)
            child.cgroup_guard = self.guard[1]
        # Orphans below mprun come back to it, to be found and stopped at the end (trees.py).
        self.subreaper = not trees.is_subreaper() and trees.become_subreaper()
        method = self.ctx.get_start_method()
        with self._folders_last():
            self._start_servers(method)
        mp_log = self.plan.workflow.multiprocessing_log
        as_mprun = unbuffered()
        folders = tuple(str(folder) for folder in self.plan.workflow.python_folders())
        for planned, cgroup in zip(self.plan.processes, cgroups, strict=True):
            trampoline = Trampoline(None if planned.is_class else planned.target, mp_log, as_mprun, folders)
            trampoline.cgroup = cgroup
            trampoline.env, trampoline.cwd = dict(planned.env), planned.cwd
            if planned.target == CALLER:  # made when its step comes: it may be given what steps kept
                self._callers[planned.key] = trampoline
                continue
            handle = self._make(planned, trampoline)
            self.handles.setdefault(planned.key, []).append(handle)

    def _make(self, planned: PlannedProcess, trampoline: Trampoline) -> Handle:
        return processes.make(planned, trampoline, self.objects)

    def _start_servers(self, method: str) -> None:
        """The helper processes of the start method, then the shared objects (a manager is a
        process too)."""
        if method in ("spawn", "forkserver"):
            # Started now, not inside the first (signal-blocked) start: the resource tracker
            # unblocks SIGINT and SIGTERM while it starts, which would let a Ctrl-C cut a start.
            from multiprocessing import resource_tracker

            resource_tracker.ensure_running()
        if method == "forkserver":
            from multiprocessing import forkserver

            # The trampoline imported once, in the fork server, not in every child it forks.
            preload = list(getattr(forkserver._forkserver, "_preload_modules", None) or [])  # the host's, kept
            ours = [name for name in ("runner.child", "runner.forkserver_hook") if name not in preload]
            forkserver.set_forkserver_preload([*preload, *ours])
            try:
                with _elsewhere(), _server_stderr():
                    forkserver.ensure_running()
            finally:  # read when the server starts: a program calling runner.run() keeps its own
                forkserver.set_forkserver_preload(preload)
            server = getattr(forkserver._forkserver, "_forkserver_pid", None)
            if _server_errors is not None and not _server_errors.closed and server is not None:
                self.reader.add_server(_server_errors, server)
        self._make_objects()
        for name in self.plan.workflow.pools:
            pools.make_channels(self.ctx, self.objects.made, name)

    def _make_objects(self) -> None:
        for shared in self.plan.workflow.objects.values():
            try:
                self.objects.make(shared.name, shared.kind, shared.options)
            except Exception as error:
                raise BuildFailed(f"making {shared.name} raised {type(error).__name__}: {error}") from error

    def _named(self, keys: Iterable[str]) -> list[Handle]:
        return [handle for key in keys for handle in self.handles[key]]

    # -- processes --------------------------------------------------------------------------

    def start(self, keys: Sequence[str]) -> None:
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
        handles = self._named(keys)
        first = 0
        try:
            with self._folders_last():
                while first < len(handles):
                    first += self._start_batch(handles[first : first + START_BATCH])
                    self.loop.check()  # stops further starts
        finally:
            for key in keys:
                if key in self.plan.workflow.pools and self.handles[key][0].started is not None:
                    self._hosting(key)

    # -- pools ----------------------------------------------------------------------------

    def _hosting(self, pool: str) -> None:
        """A pool's host has started: mprun keeps its own ends of the channels (the host has
        the others), and reads what the host tells of its workers as it reads the rest."""
        if pool in self._jobs:
            return
        jobs, births = (self.objects[channel(pool, which)] for which in ("jobs", "births"))
        jobs[1].close()
        births[1].close()
        self._jobs[pool] = pools.Jobs(jobs[0])
        self._told[pool] = partial(self._births, pool, births[0])
        self.reader.add_channel(births[0], self._told[pool])
        self.reader.add_channel(jobs[0], self._jobs[pool].take)

    def _births(self, pool: str, births: Any) -> bool:
        """Take in the workers the host started and the exits it reaped; False at end of file."""
        from runner import host

        born, exits, ended = pools.read_births(births)
        workers = self.handles.setdefault(f"{pool}/workers", [])  # no process key has a slash
        for birth in born:
            planned = PlannedProcess(pool, len(workers), birth.name, host.WORKER, False, (), {}, True, None)
            adopted = pools.Adopted(birth.pid, birth.name, partial(_ended, self.handles[pool][0]))
            handle = Handle(planned, adopted, Trampoline(host.WORKER), started=self.clock())
            handle.exit_descriptor = adopted.descriptor
            workers.append(handle)
            self.loop.emit(records.Started(birth.name, birth.pid, pool, planned.replica, True))
            handle.report = self.reader.add(birth.name, birth.pid, birth.pipes, adopted.descriptor)
            self._owners[id(handle.report)] = handle
        for pid, code in exits:
            for handle in workers:
                if handle.process.pid == pid and handle.ended is None:
                    handle.process.told_exit(code)
                    if handle not in self._exiting:
                        self._exiting.append(handle)
        return not ended

    def map(
        self,
        pool: str,
        kind: str,
        function: str,
        items: Any,
        chunksize: int | None,
        args: Any,
        kwargs: Any,
        timeout: float | None,
        progress: Callable[[int, int, str], None],
        *,
        log: str = "all",
        want: str = "none",
    ) -> pools.Outcome:
        from runner import host

        hosting = self.handles[pool][0]
        if hosting.started is None:
            self.start([pool])
        # Results this pool kept go back to it as they are; everything else is bound here.
        kept = self.objects.made.get(str(items.name)) if isinstance(items, Reference) else None
        if isinstance(kept, pools.Remote) and kept.pool == pool and not kept.single:
            sent: Any = host.Kept(kept.number)
        elif items is not None:
            sent = self.value(items)
            if not isinstance(sent, (list, range)):  # the iterable a callable returned: sent as a list
                sent = list(sent)
        else:
            sent = None
        bound_args, bound_kwargs = self.value(args), self.value(kwargs)
        workers = self.handles.setdefault(f"{pool}/workers", [])
        outcome = self._asked(
            pool,
            lambda number: host.Job(number, kind, function, sent, chunksize, bound_args, bound_kwargs, log, want),
            timeout,
            progress,
            lost=lambda: next((worker for worker in workers if _died(worker)), None),
        )
        if outcome.how in ("timeout", "lost"):  # its tasks may never end: terminated at the end
            hosting.overdue = True
        if outcome.how == "done" and want == "keep":
            outcome.remote = pools.Remote(pool, self._jobs[pool].number, single=kind == "apply")
        return outcome

    def _asked(
        self,
        pool: str,
        job: Callable[[int], host.Job | host.Fetch],
        timeout: float | None,
        progress: Callable[[int, int, str], None],
        lost: Callable[[], Handle | None] = lambda: None,
    ) -> pools.Outcome:
        """Send a job to the pool's host and wait for its answer, reading the run meanwhile.
        `lost` names a worker that died meanwhile: a Pool never gives back the task a worker
        died in, so the step would wait for ever."""
        hosting, jobs = self.handles[pool][0], self._jobs[pool]
        number = jobs.send(job)
        found: list[pools.Outcome] = []
        dead = {id(handle) for handle in self.handles.get(f"{pool}/workers", []) if _died(handle)}

        def answered() -> bool:  # asked after each read of the loop's: the answer is read as it comes
            outcome = jobs.answer(number, progress)
            if outcome is None and hosting.ended is not None:
                jobs.take()
                outcome = jobs.answer(number, progress) or pools.Outcome("ended")
            died = lost() if outcome is None else None
            if died is not None and id(died) not in dead:
                code = died.process.exitcode
                how = f"signal {signal_name(code)}" if code < 0 else f"exit code {code}"
                outcome = pools.Outcome("lost", error=(died.name, how, ""))
            if outcome is not None:
                found.append(outcome)
            return outcome is not None

        if not self.loop.wait(answered, timeout):
            return pools.Outcome("timeout")
        return found[0]

    def _fetched(self, data: Any) -> None:
        """Bring here the results pools keep that `data` refers to (see pools.Remote)."""
        for reference in references(data):
            remote = self.objects.made.get(str(reference.name))
            if not isinstance(remote, pools.Remote):
                continue
            from runner import host

            outcome = self._asked(remote.pool, partial(host.Fetch, kept=remote.number), None, lambda *_: None)
            if outcome.how != "done" or outcome.values is None:
                raise BuildFailed(
                    f"the results kept as {reference.name} are gone with the process of pool {remote.pool}"
                )
            self.objects.made[str(reference.name)] = outcome.values[0] if remote.single else outcome.values

    def keep(self, name: str, value: Any) -> None:
        self.objects.made[name] = value

    def call(self, key: str, timeout: float | None, grace: float) -> tuple[str, Any]:
        [planned] = [planned for planned in self.plan.processes if planned.key == key]
        self._fetched((planned.args, planned.kwargs))
        self.objects.made[key] = self.ctx.Pipe(duplex=False)  # what it returns comes back here
        try:
            handle = processes.make(planned, self._callers[key], self.objects)
            self.handles[key] = [handle]
            self.start([key])
        finally:
            self.objects.made[key][1].close()
        back: Connection = self.objects.made[key][0]
        returned: list[Any] = []

        def answered() -> bool:
            if back.poll(0):
                try:
                    returned.append(back.recv())
                except EOFError:  # it ended without an answer: it raised
                    return True
                return True
            return handle.ended is not None

        try:
            if not self.loop.wait(answered, timeout):
                self.stop([handle], grace, as_planned=False)
                return "timeout", None
            self.wait_for([handle], None)
        finally:
            back.close()
        if returned and handle.process.exitcode == 0:
            return "ok", returned[0]
        return "failed", None

    def _close_pools(self, grace: float) -> None:
        """As `pool.close(); pool.join()`: each host is told the steps are over, closes its
        pool, waits for the workers to finish what they have, and ends; then what it told of
        its workers' exits is read. A pool whose step timed out is stopped instead, as
        `pool.terminate()`, the host first so that it starts no worker in place of one."""
        for jobs in self._jobs.values():
            if not jobs.closed:
                self.reader.remove_channel(jobs.connection)
            jobs.close()
        hosts = [self.handles[pool][0] for pool in self._jobs]
        self.wait_for([hosting for hosting in hosts if not hosting.overdue], None)
        for hosting in hosts:
            if hosting.overdue and hosting.process.is_alive():
                workers = self.handles.get(f"{hosting.planned.key}/workers", [])
                self.loop.emit(records.Stopping((hosting.name,), overdue=True))
                self.stop([hosting, *workers], grace, as_planned=False)
        for told in self._told.values():
            told()

    @contextmanager
    def _folders_last(self) -> Iterator[None]:
        """The workflow's folders at the end of sys.path while a spawn or forkserver child (or
        a manager's server) gets it: as it unpickles what it was sent, it imports modules of
        mprun's and of multiprocessing's (`queue` for a Queue, `array` for a manager), and a
        user's `queue.py` must not be one of them. The trampoline puts the folders first again
        before it imports the target (child.Trampoline). Under fork the child has them all."""
        folders = [str(folder) for folder in self.plan.workflow.python_folders()]
        moved = [folder for folder in folders if folder in sys.path]
        if self.ctx.get_start_method() == "fork" or not moved:
            yield
            return
        before = list(sys.path)
        sys.path[:] = [entry for entry in sys.path if entry not in moved] + moved
        try:
            yield
        finally:
            sys.path[:] = before

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
                processes.launch(handle, self.ctx, reads)
                handle.started = self.clock()
                if self.signals.caught or set(STOPPING) & signal.sigpending():
                    break  # the rest are not started
        finally:
            try:
                for handle in handles:
                    if id(handle) not in reads:
                        continue
                    handle.started = handle.started or self.clock()
                    planned = handle.planned
                    self.loop.emit(
                        records.Started(
                            handle.name, handle.process.pid, planned.key, planned.replica, bool(handle.process.daemon)
                        )
                    )
                    pipes = reads[id(handle)]
                    assert handle.exit_descriptor is not None  # set by launch, with the pipes
                    handle.report = self.reader.add(handle.name, handle.process.pid, pipes, handle.exit_descriptor)
                    self._owners[id(handle.report)] = handle
                    if planned.max_run_time is not None:
                        when = handle.started + planned.max_run_time
                        self.loop.at(when, partial(self._overran, handle, handle.attempt))
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, previous)  # a pending one is noted now
        return tried

    def join(self, keys: Sequence[str], timeout: float | None) -> tuple[str, str]:
        """The join step (see backends.Backend.join)."""
        alive = self.wait_for(self._named(keys), timeout)
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

    def wait_for(
        self, handles: list[Handle], timeout: float | None, *, traps: bool = True, restarts: bool = True
    ) -> list[Handle]:
        """Join each process within one shared deadline; those still alive. A process its
        restart policy starts again is waited for through its restarts (unless not `restarts`:
        then the end of the attempt that runs is enough), one its start conditions start
        through its start.

        Unlike `Process.join`, it does not wait for ever on processes that cannot exit because
        nobody reads their queue (see `_trapped`; unless not `traps`): it says so and returns them.
        """
        deadline = None if timeout is None else self.clock() + timeout

        def running(handle: Handle) -> bool:
            return handle.ended is None and (restarts or handle.pending is None)

        waiting = [
            h for h in handles if (h.started is not None or h.awaited) and not self._exited(h, look=True) and running(h)
        ]

        def done() -> bool:  # each exit is told by the poll that notices it (see _poll)
            waiting[:] = [h for h in waiting if running(h)]
            return not waiting

        while waiting:
            left = None if deadline is None else deadline - self.clock()
            if left is not None and left <= 0:
                break
            if self.loop.wait(done, POLL if left is None else min(POLL, left)):
                break
            # Without a pidfd, a sentinel a grandchild holds never fires: ask the system.
            waiting[:] = [h for h in waiting if not self._exited(h, look=not h.owns_descriptor) and running(h)]
            if waiting and traps:  # a quiet moment: is everyone left caught in the queue-feeder trap?
                trapped = self._trapped([h for h in waiting if h.started is not None and h.pending is None])
                if len(trapped) == len(waiting):
                    self._explain_trap(trapped)
                    break
        return waiting

    def _exited(self, handle: Handle, *, look: bool = False) -> bool:
        """Whether the process has exited (and is reaped, and its exit told): asked of the
        system if `look`."""
        if look:
            self._tell_exit(handle)
        return handle.ended is not None

    def _poll(self, timeout: float | None) -> None:
        """The loop's read: what the children wrote, then the exits that came meanwhile."""
        if self._exiting:
            # An exit descriptor fired without its exit code (not seen on Linux, where a pidfd
            # fires once the process can be reaped and the fork server's sentinel once it has
            # written the code): look again soon rather than at the next read.
            timeout = self._nap if timeout is None else min(timeout, self._nap)
        self.reader.poll(timeout)
        if self.reader.exited:
            self._exiting += [self._owners[id(report)] for report in self.reader.exited]
            self.reader.exited.clear()
        if self._exiting:
            for handle in self._exiting:
                self._tell_exit(handle)
            self._exiting = [h for h in self._exiting if h.ended is None]
            self._nap = min(self._nap * 2, POLL) if self._exiting else EXIT_NAP

    def _tell_exit(self, handle: Handle) -> None:
        """If the process has exited, reap it and tell it (once): an `Exited` record after all it
        left in its pipes."""
        if handle.ended is not None or handle.started is None or handle.pending is not None:
            return
        if handle.process.exitcode is None:
            return  # exitcode polls (and reaps) the child
        # When it exited, as the reader saw it; else now, when we learnt of it.
        handle.ended = handle.report.ended or self.clock()
        ending = self._ending(handle)  # what is told if a second Ctrl-C cuts the drain short
        try:
            self.reader.drain(handle.report)
            if handle.process.exitcode:
                self.reader.drain_server()  # a forkserver child's traceback goes there
                self.reader.setup_failure(handle.report, handle.name, handle.process.pid)
            ending = self._ending(handle)  # with what the drain read (its exception, its usage)
            pause = None
            if not handle.final and not self.loop.stopping:
                pause = restart_pause(handle.planned.restart, ending, handle.restarted, handle.ended)
            if pause is not None:
                ending = dataclasses.replace(ending, restart_in=pause)
                self._restart_later(handle, pause, ending_words(ending))
        finally:  # told even if a second Ctrl-C cuts the drain short: it is told only here
            self.loop.emit(records.Exited(ending))

    # -- policies -------------------------------------------------------------------------

    def _restart_later(self, handle: Handle, pause: float, reason: str) -> None:
        """Start this process again after `pause` seconds; meanwhile it is neither running nor
        ended (a join waits on)."""
        assert handle.ended is not None
        handle.restarted.append(handle.ended)
        handle.pending, handle.last_end, handle.ended = reason, handle.ended, None
        self.loop.at(self.clock() + pause, partial(self._restart, handle))

    def _restart(self, handle: Handle) -> None:
        """Its new attempt: a new process object for the same planned process, with the same
        shared objects, its name and its pipes new."""
        reason = handle.pending
        if reason is None:  # stopped meanwhile: its last end stands
            return
        name, pid = handle.name, handle.process.pid
        try:
            fresh = self._make(handle.planned, handle.trampoline)
        except BuildFailed as error:
            self._settle(handle)
            self.loop.interrupt(Halt(f"restarting {name}: {error}"))
            return
        fresh.process.name = name
        if handle.owns_descriptor and handle.exit_descriptor is not None:
            os.close(handle.exit_descriptor)
        self._owners.pop(id(handle.report), None)
        handle.process, handle.report, handle.exit_descriptor, handle.owns_descriptor = (
            fresh.process,
            Report(),
            None,
            False,
        )
        handle.started = handle.ended = handle.stuck = handle.overran = handle.pending = handle.last_end = None
        handle.attempt += 1
        # What a death may have left held: a lock, a joinable queue's item never marked done.
        held = tuple(self._given(handle, HELD_KINDS))
        self.loop.emit(records.Restarted(name, pid, handle.attempt, reason, held))
        with self._folders_last():
            self._start_batch([handle])

    def _settle(self, handle: Handle) -> None:
        """No restart after all (mprun stops it, or it cannot be made): its last end stands."""
        handle.final = True
        if handle.pending is not None:
            handle.pending, handle.ended, handle.last_end = None, handle.last_end, None

    def _overran(self, handle: Handle, attempt: int) -> None:
        """Its max_run_time is over: if that attempt still runs, its stacks, then stop it."""
        if handle.attempt != attempt or handle.ended is not None or handle.process.exitcode is not None:
            return
        limit = handle.planned.max_run_time
        assert limit is not None
        handle.overran = limit
        self.loop.emit(records.Overran(handle.name, handle.process.pid, limit))
        self.dump_stacks([handle], f"still running after its max_run_time of {limit:g} s")
        self.stop([handle], self.grace, as_planned=False, final=False)

    def expect_start(self, keys: Sequence[str]) -> None:
        """These processes are started later, by their start conditions (supervisor.py): joins
        and the end of the steps wait for them as for running ones."""
        for handle in self._named(keys):
            handle.awaited = True

    def _trapped(self, handles: list[Handle]) -> dict[str, tuple[Handle, list[str]]]:
        """Those of these processes caught in the queue-feeder trap (see feeder_trap.py), each
        with the queues it still feeds."""
        by_name = {h.name: h for h in handles}
        waited = [feeder_trap.Waited(h.name, h.report.finished, tuple(self._fed(h))) for h in handles]
        suspects = feeder_trap.suspects(waited, time.monotonic())
        queues = {name for one in suspects for name in one.queues}  # once per look: hundreds may share one
        blocked = {name: self._pipe_full(name) and not self._readers(name) for name in queues}
        return {name: (by_name[name], fed) for name, fed in feeder_trap.trapped(suspects, blocked).items()}

    def _fed(self, handle: Handle) -> list[str]:
        """The queues with a feeder thread this process was given."""
        return self._given(handle, feeder_trap.FED_KINDS)

    def _given(self, handle: Handle, kinds: Iterable[str]) -> list[str]:
        """The shared objects of these kinds this process was given, by name, sorted."""
        named = {str(ref.name) for ref in references((handle.planned.args, handle.planned.kwargs))}
        shared = self.plan.workflow.objects
        return sorted(name for name in named if name in shared and shared[name].kind in kinds)

    def _pipe_full(self, name: str) -> bool:
        reader = getattr(self.objects[name], "_reader", None)
        return reader is not None and feeder_trap.pipe_full(reader.fileno())

    def _readers(self, name: str) -> list[Handle]:
        """The processes given queue `name` that run their target and are not overdue (those
        are stopped at the end, not waited for): the ones that may still read it."""
        return [
            h
            for h in self.receivers(name)
            if h.started is not None and h.report.finished is None and h.process.exitcode is None and not h.overdue
        ]

    def _explain_trap(self, trapped: dict[str, tuple[Handle, list[str]]]) -> None:
        news = [(handle, fed) for handle, fed in trapped.values() if handle.stuck is None]
        for handle, fed in news:
            handle.stuck = feeder_trap.reason(fed)
            self.loop.emit(records.Stuck(handle.name, handle.process.pid, handle.stuck, feeder_trap.HINT))
        self.dump_stacks([handle for handle, _ in news], "cannot exit")

    def receivers(self, name: str) -> list[Handle]:
        """The processes given the shared object `name` in their arguments."""
        return [h for spec in self.plan.workflow.receivers(name) for h in self.handles.get(spec.key, [])]

    def running(self) -> list[Handle]:
        """The processes started and not known to have exited."""
        return [h for hs in self.handles.values() for h in hs if h.started is not None and h.process.exitcode is None]

    def dump_receivers(self, name: str, reason: str) -> None:
        self.dump_stacks(self.receivers(name), reason)

    def dump_running(self, reason: str) -> None:
        self.dump_stacks(self.running(), reason)

    def dump_stacks(self, handles: Iterable[Handle], reason: str) -> None:
        """Ask each running process for a dump of its threads' stacks (logged as
        `process.stack` by the reader); waits for the dumps, within a bound."""
        running = [h for h in handles if h.started is not None and h.report.stack_ready and h.process.exitcode is None]
        asked = []
        for handle in running:
            if processes.catches(handle.process.pid, STACK_SIGNAL):
                asked.append(handle)
            else:  # it reset its signals, or exec'd: the request would kill it
                why = (
                    f"unavailable: the process does not handle {signal_name(-STACK_SIGNAL)} any more (it reset"
                    " its signals, or runs another program), and asking would end it"
                )
                self.loop.emit(records.Stack(handle.name, handle.process.pid, reason, why))
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

    def terminate(self, keys: Sequence[str], grace: float) -> list[str]:
        """The terminate step (see backends.Backend.terminate)."""
        return self.stop(self._named(keys), grace)

    def stop(self, handles: list[Handle], grace: float, *, as_planned: bool = True, final: bool = True) -> list[str]:
        """SIGTERM each and what it started, SIGKILL those alive after the grace, then join;
        the names killed. `as_planned`: the workflow meant them to end this way (else it is a
        failure). `final`: their restart policies start them again no more."""
        if final:
            for handle in handles:
                self._settle(handle)
        running = [h for h in handles if h.started is not None and h.process.is_alive()]
        # What each started, found before any of them ends and its orphans lose their parentage
        # (a pool's workers are processes of the run, stopped as such).
        known = {h.process.pid for hs in self.handles.values() for h in hs}
        below = {pid: handle for handle in running for pid in self._descendants(handle) if pid not in known}
        descendants = trees.Stopping(below)
        try:
            for handle in running:
                handle.terminated = as_planned
            for handle in self._flush_first(running):
                handle.process.terminate()
            descendants.terminate()
            deadline = self.clock() + grace
            killed = self.wait_for(running, grace, traps=False, restarts=False)
            self.dump_stacks(killed, f"still running {grace:g} s after SIGTERM")
            for handle in killed:
                handle.process.kill()
            self.wait_for(running, None, traps=False, restarts=False)
            self._finish_stopping(descendants, deadline)
        finally:
            self._report_descendants(descendants.close(), below)
        # Those SIGKILL ended: one sent it after the grace may have exited meanwhile (grace 0).
        return [handle.name for handle in killed if handle.process.exitcode == -signal.SIGKILL]

    def _finish_stopping(self, descendants: trees.Stopping, deadline: float) -> None:
        """SIGKILL those still alive at `deadline`, and wait until all have exited: reading the
        children meanwhile."""
        self.loop.wait(lambda: not descendants.left(), max(0.0, deadline - self.clock()), every=DESCENDANTS_POLL)
        descendants.kill()
        self.loop.wait(lambda: not descendants.left(), None, every=DESCENDANTS_POLL)

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
        below = self._left_below(ours)
        left = list(dict.fromkeys([*below, *owners]))
        for pid in left:
            if not trees.alive(pid):
                trees.reap(pid)  # an orphan that ended by itself: not left as a zombie
        stopping = trees.Stopping(pid for pid in left if trees.alive(pid))
        try:
            stopping.terminate()
            self._finish_stopping(stopping, self.clock() + grace)
        finally:
            self._report_descendants(stopping.close(), owners)

    def _left_below(self, ours: set[int]) -> list[int]:
        """The processes below mprun that are neither the run's nor its helpers."""
        return trees.descendants(os.getpid(), skip=ours, prune=self.others)

    def _infrastructure(self) -> set[int]:
        """The helpers below mprun, which end when mprun is done with them: multiprocessing's
        resource tracker, fork server and manager server, and the cgroup guard."""

        found = set()
        if "multiprocessing.resource_tracker" in sys.modules:
            found.add(getattr(sys.modules["multiprocessing.resource_tracker"]._resource_tracker, "_pid", None))
        if "multiprocessing.forkserver" in sys.modules:
            found.add(getattr(sys.modules["multiprocessing.forkserver"]._forkserver, "_forkserver_pid", None))
        found.add(self.objects.manager_pid())
        if self.guard is not None:
            found.add(self.guard[0])
        return {pid for pid in found if pid is not None}

    def _report_descendants(self, stopped: list[trees.Stopped], owners: Mapping[int, Handle]) -> None:
        own = trees.command_line(os.getpid())
        for one in stopped:
            owner = owners.get(one.pid)
            # Forked without an exec, it still shows mprun's command line (or a spawned
            # interpreter's): say so rather than show that.
            forked = one.command == own or "from multiprocessing." in one.command
            self.loop.emit(
                records.Descendant(
                    owner.name if owner else None, one.pid, one.command, forked, one.stopped_by, one.exitcode
                )
            )

    def _flush_first(self, handles: list[Handle]) -> list[Handle]:
        """Ask each process to write out its streams and end itself by SIGTERM (see
        child.FLUSH_SIGNAL); those that did not answer within FLUSH_WAIT, which still need
        the SIGTERM. Only processes that can take the signal are asked: not one still
        starting, nor one that exec'd another program."""
        signal_number = FLUSH_SIGNAL
        if signal_number is None:
            return handles
        asked = [h for h in handles if h.report.stack_ready and processes.catches(h.process.pid, signal_number)]
        for handle in asked:
            try:
                os.kill(handle.process.pid, signal_number)  # not reaped yet: still its pid
            except (ProcessLookupError, PermissionError):
                pass
        if asked:
            self.loop.wait(lambda: all(h.report.flushed or h.report.ended for h in asked), FLUSH_WAIT)
        return [h for h in handles if not (h.report.flushed or h.report.ended)]

    def endings(self) -> list[Ended]:
        """What happened to each planned process, for judging (see outcome.py)."""
        everyone = [handle for handles in self.handles.values() for handle in handles]
        for handle in everyone:
            self._settle(handle)  # the run is over: one waiting to start again does not
            self._tell_exit(handle)  # one whose exit was not noticed yet
        return [self._ending(handle) for handle in everyone]

    @staticmethod
    def _ending(handle: Handle) -> Ended:
        report = handle.report
        return Ended(
            name=handle.name,
            key=handle.planned.key,
            replica=handle.planned.replica,
            expect=handle.planned.expect,
            pid=handle.process.pid,
            exitcode=handle.process.exitcode,
            started=handle.started,
            ended=handle.ended,
            stopped_as_planned=handle.terminated,
            cpu_s=report.usage.cpu_s if report.usage else None,
            max_rss_kb=report.usage.max_rss_kb if report.usage else None,
            exception=f"{report.raised.type}: {report.raised.message}" if report.raised else None,
            returned=report.returned.repr if report.returned else None,
            restarts=handle.attempt - 1,
            overran=handle.overran,
        )

    # -- shared objects -----------------------------------------------------------------------

    def put(self, queue: str, items: Sequence[Any]) -> None:
        target = self.objects[queue]
        for item in items:
            # A bounded queue that is full, or a simple queue's full pipe, would block mprun,
            # and with it the reading of the very processes that would make room.
            self.loop.wait(partial(objects.put, target, item), None, every=SLICE)

    def get(self, queue: str, count: int, timeout: float | None, took: Callable[[Any], None]) -> int:
        source = self.objects[queue]

        def taken() -> bool:
            found, item = objects.get(source)
            if found:
                took(item)
            return found

        for got in range(count):  # each item within `timeout`, as `Queue.get(timeout=...)`
            if not self.loop.wait(taken, timeout, every=SLICE):
                return got
        return count

    def join_queue(self, queue: str, timeout: float | None) -> str | None:
        tasks = self.objects[queue]
        if self.loop.wait(lambda: objects.all_done(tasks), timeout, every=SLICE):
            return None
        ended = [h for h in self.receivers(queue) if h.started is not None and h.process.exitcode is not None]
        if not ended:
            return ""
        # One that died holding an item never marks it done.
        return "; ended before: " + ", ".join(f"{h.name} (exit code {h.process.exitcode})" for h in ended)

    def wait_event(self, event: str, timeout: float | None) -> bool:
        return self.loop.wait(partial(objects.is_set, self.objects[event]), timeout, every=SLICE)

    def set_event(self, event: str, value: bool) -> None:
        if value:
            self.objects[event].set()
        else:
            self.objects[event].clear()

    def value(self, data: Any) -> Any:
        self._fetched(data)
        return self.objects.bind(data)

    def show(self, name: str, timeout: float | None) -> tuple[bool, Any]:
        self._fetched(Reference(f"${name}", (), name))
        shared = self.plan.workflow.objects.get(name)
        kind = shared.kind if shared is not None else "result"  # what a step keeps
        found: list[Any] = []

        def read() -> bool:
            ready, state = objects.shown(self.objects[name], kind)
            if ready:
                found.append(state)
            return ready

        if self.loop.wait(read, timeout, every=SLICE):
            return True, found[0]
        return False, None

    def recv(
        self,
        ends: Sequence[tuple[str, int]],
        count: int | None,
        timeout: float | None,
        took: Callable[[str, Any], None],
    ) -> tuple[int, list[str]]:
        open_ends = {f"{pipe}.{end}": self.objects[pipe][end] for pipe, end in ends}
        got = [0]

        def received(wanted: int | None) -> bool:
            """One message at a time from each end with one, round the ends in turn, as a
            reader over connection.wait() takes them; whether `wanted` have come in all (or,
            for None, every end is at end of file)."""
            for label, connection in list(open_ends.items()):
                if wanted is not None and got[0] >= wanted:
                    break
                if not connection.poll(0):
                    continue
                try:
                    message = connection.recv()
                except EOFError:
                    del open_ends[label]
                    continue
                got[0] += 1
                took(label, message)
            return not open_ends or (wanted is not None and got[0] >= wanted)

        if count is None:  # until end of file: the whole wait is bounded by `timeout`
            self.loop.wait(partial(received, None), timeout, every=SLICE)
        else:  # each message within `timeout` of the last, as a get's items
            while got[0] < count and open_ends:
                if not self.loop.wait(partial(received, got[0] + 1), timeout, every=SLICE):
                    break
        return got[0], sorted(open_ends)

    def close_end(self, pipe: str, end: int) -> None:
        self.objects[pipe][end].close()

    # -- the end ----------------------------------------------------------------------------

    def finish(self, grace: float) -> None:
        """As the interpreter at exit: stop the daemons still running, join the others. Without
        explicit steps the non-daemons are waited for first: that is what the workflow is for."""
        self._close_pools(grace)
        everyone = [handle for handles in self.handles.values() for handle in handles]
        if self.plan.default_steps:
            self.wait_for([h for h in everyone if not h.process.daemon], None)
        for handle in everyone:
            if handle.process.daemon:  # stopped now, as at the interpreter's exit: not restarted after
                self._settle(handle)
        daemons = [h for h in everyone if h.started is not None and h.process.daemon and h.process.is_alive()]
        if daemons:
            self.loop.emit(records.Stopping(tuple(h.name for h in daemons), overdue=False))
            self.stop(daemons, grace)
        # Processes whose join timed out, and those that cannot exit, are not waited for again.
        self.wait_for([h for h in everyone if not h.process.daemon and not h.overdue], None)
        left = [h for h in everyone if h.started is not None and not h.process.daemon and h.process.is_alive()]
        if left:
            self.loop.emit(records.Stopping(tuple(h.name for h in left), overdue=True))
            self.stop(left, grace, as_planned=False)
        self.stop_left_behind(grace)

    def stop_everything(self, grace: float) -> None:
        """SIGTERM every child still running and all they started, SIGKILL after the grace,
        join: nothing survives mprun."""
        everyone = [handle for handles in self.handles.values() for handle in handles]
        self.stop(everyone, grace)
        self.stop_left_behind(grace)

    def close(self, drain_timeout: float = 2.0) -> None:
        """Read what the children left in their pipes, then release everything. Once every child
        has exited, a pipe still open is held by something it started; that is not waited for.
        Once only: a run stopped while it closed closes it again."""
        if self.closed:
            return
        self.closed = True
        self.loop.stop()
        self.loop.wait(lambda: not self.reader.open, drain_timeout)
        self.reader.close()
        for handles in self.handles.values():
            for handle in handles:
                if handle.owns_descriptor and handle.exit_descriptor is not None:
                    os.close(handle.exit_descriptor)
                    handle.owns_descriptor = False
                if isinstance(handle.process, pools.Adopted):
                    handle.process.close()
        for pool in self.plan.workflow.pools:
            for which in CHANNELS:
                for end in self.objects.made.get(channel(pool, which), ()):
                    end.close()  # once more does nothing
        self.objects.close()
        if self.subreaper:  # made one for the run (a program calling runner.run() may go on)
            trees.stop_being_subreaper()
            self.subreaper = False
        if self.cgroups is not None:
            self.cgroups.close()
        if self.guard is not None:
            stop_guard(*self.guard)
            self.guard = None
            child.cgroup_guard = -1


def _ended(handle: Handle) -> bool:
    return handle.ended is not None


def _died(handle: Handle) -> bool:
    """Whether a pool's worker has ended otherwise than as a pool ends it (exit code 0)."""
    return handle.ended is not None and handle.process.exitcode not in (0, None)


if TYPE_CHECKING:

    def _conforms(backend: MultiprocessingBackend) -> Backend:
        return backend  # mypy holds the class to the protocol here
