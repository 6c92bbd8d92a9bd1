"""The worker side of a run on Dask: one long task per worker that holds processes of the run,
which runs them there as mprun runs them on one machine.

The task, `serve`, is mprun's multiprocessing backend on the part of the plan placed on its
worker (`Part`): each process a real child process (through the worker's fork server), with
the trampoline, the pipes, stack dumps, stops by SIGTERM then SIGKILL, and the records of
records.py. The shared objects it binds are the cluster's (objects.py), made by mprun.

mprun and the agent talk over two Dask topics, both through the scheduler: mprun sends
commands on the agent's own, the agent sends what it learns (`Message`) on the run's, in order.
Commands are taken one at a time, in the task's thread, as mprun's steps take them; a stop or a
stack dump interrupts the one under way (a join without end), as Ctrl-C does mprun's.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import pickle
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from runner.backends.dask import objects
from runner.backends.multiprocessing.backend import MultiprocessingBackend
from runner.backends.multiprocessing.processes import Handle
from runner.child import Trampoline
from runner.errors import BuildFailed
from runner.plan import Plan, PlannedProcess
from runner.records import Record

URGENT = frozenset({"stop_everything", "dump_running", "abandon"})  # these interrupt the command under way
WATCH = 1.0  # s between looks at whether mprun's client is still there


@dataclass(frozen=True)
class Part:
    """What one agent runs: the plan with only its worker's processes, the shared objects they
    are given, and the number each process's multiprocessing name would have in mprun (the
    standard library counts processes as they are made, in one parent)."""

    plan: Plan
    shared: Mapping[str, Any]
    numbers: tuple[int, ...]  # per process of `plan`, in order


@dataclass(frozen=True)
class Message:
    """What an agent tells mprun: `record` (a Record), `built` (None, or why not), `done` (the
    answer to command `number`), `closed` (the endings of its processes)."""

    agent: int
    kind: str
    number: int = 0
    payload: Any = None


def topic(run: str, agent: int | None = None) -> str:
    """The run's topic (agent None), on which agents speak, or the name of agent `agent`'s queue."""
    return f"mprun-{run}" if agent is None else f"mprun-{run}-agent-{agent}"


class Inbox:
    """The commands mprun sends, on a Dask queue of the agent's own, which a thread takes off for
    the agent's thread; a pipe wakes the agent's loop when one comes. (A queue, not a topic: a
    subscription is not in place when the agent says it is built, and a command sent too early
    would be lost.)"""

    def __init__(self, name: str) -> None:
        self.commands: deque[tuple[int, str, tuple[Any, ...]]] = deque()
        self.read, self.write = os.pipe()
        os.set_blocking(self.read, False)
        self.urgent = False
        self.over = threading.Event()
        self.queue = objects.Queue(name=name)
        self.thread = threading.Thread(target=self._hear, name="mprun-agent-inbox", daemon=True)
        self.thread.start()

    def _hear(self) -> None:
        import queue

        while not self.over.is_set():
            try:
                number, name, args = self.queue.get(timeout=WATCH)
            except queue.Empty:
                continue
            except Exception:  # noqa: BLE001 - the scheduler is gone, or going: look again
                self.over.wait(WATCH)
                continue
            self.commands.append((number, name, args))
            if name in URGENT:
                self.urgent = True
            try:
                os.write(self.write, b"c")
            except BlockingIOError:
                pass  # the pipe is full of wake-ups already

    def drained(self) -> bool:
        try:
            while os.read(self.read, 4096):
                pass
        except BlockingIOError:
            pass
        return True

    def close(self) -> None:
        self.over.set()
        self.thread.join()
        os.close(self.read)
        os.close(self.write)


class Interrupted(Exception):
    """A stop or a dump came while a command was under way."""


class WorkerBackend(MultiprocessingBackend):
    """The multiprocessing backend on an agent's part: the shared objects are the cluster's,
    each process is named as it would be in mprun, and what is left running at the end is
    looked for among the run's own processes only (the worker runs other people's work)."""

    def __init__(self, part: Part, record: Callable[[Record], None]) -> None:
        super().__init__(part.plan, record, method="forkserver")
        self.part = part
        self.numbers = {id(p): number for p, number in zip(part.plan.processes, part.numbers, strict=True)}

    def _make_objects(self) -> None:
        self.objects.made.update(self.part.shared)

    def _make(self, planned: PlannedProcess, trampoline: Trampoline) -> Handle:
        # The worker is a child process itself: its children would be named Process-1:3.
        me: Any = multiprocessing.current_process()
        identity, me._identity = me._identity, ()
        multiprocessing.process._process_counter = itertools.count(self.numbers[id(planned)])  # type: ignore[attr-defined]
        try:
            return super()._make(planned, trampoline)
        finally:
            me._identity = identity

    def _left_below(self, ours: set[int]) -> list[int]:
        return []


def serve(run: str, agent: int, part: bytes) -> None:
    """The task of agent `agent` of run `run`: build its part, then take mprun's commands until
    it is told to close (or mprun's client is gone)."""
    import distributed

    distributed.secede()  # a task that runs as long as the run: its thread is not the worker's to count
    worker = distributed.get_worker()
    key = str(worker.get_current_task())
    # Workers are daemonic processes under a nanny, and multiprocessing refuses them children:
    # the run's processes are guarded (child.guard) to end with the worker all the same.
    multiprocessing.current_process()._config["daemon"] = False  # type: ignore[attr-defined]
    os.environ[objects.SCHEDULER] = worker.scheduler.address  # read by processes the fork server starts
    _preload()
    inbox = Inbox(topic(run, agent))
    run_topic = topic(run)

    def tell(kind: str, number: int = 0, payload: Any = None) -> None:
        worker.log_event(run_topic, pickle.dumps(Message(agent, kind, number, payload), pickle.HIGHEST_PROTOCOL))

    try:
        backend = WorkerBackend(pickle.loads(part), lambda record: tell("record", payload=record))
    except Exception as error:  # noqa: BLE001 - told to mprun, which fails the run with it
        tell("built", payload=f"{type(error).__name__}: {error}")
        return
    try:
        _take(backend, inbox, tell, lambda: _abandoned(worker, key))
    finally:
        inbox.close()


def _take(backend: WorkerBackend, inbox: Inbox, tell: Callable[..., None], abandoned: Callable[[], bool]) -> None:
    def readable() -> bool:
        inbox.drained()
        if inbox.urgent:
            inbox.urgent = False
            backend.loop.interrupt(Interrupted())
        return True

    backend.reader.add_channel(inbox.read, readable)  # type: ignore[arg-type]
    try:
        backend.build()
    except BuildFailed as error:
        tell("built", payload=str(error))
        backend.close()
        return
    tell("built")
    gone = [False]

    def waiting() -> bool:
        gone[0] = gone[0] or abandoned()
        return bool(inbox.commands) or gone[0]

    while True:
        try:
            backend.loop.wait(waiting, None, every=WATCH)
        except Interrupted:
            pass
        if gone[0]:  # nobody to answer: stop everything and end
            backend.loop.stop()
            backend.stop_everything(1.0)
            backend.close()
            return
        number, name, args = inbox.commands.popleft()
        try:
            answer = _do(backend, name, args)
        except Interrupted:
            answer = None  # mprun is stopping the run: it waits for the urgent command's answer
        except BuildFailed as error:
            answer = error
        tell("done", number, answer)
        if name in ("close", "abandon"):
            return


def _do(backend: WorkerBackend, name: str, args: tuple[Any, ...]) -> Any:
    """Command `name` of mprun's: the backend's method of that name, on this part's processes."""
    mine = set(backend.handles)
    if name in ("start", "join", "terminate"):
        keys = [key for key in args[0] if key in mine]
        return getattr(backend, name)(keys, *args[1:]) if keys else None
    if name == "dump_receivers":
        return backend.dump_receivers(*args)
    if name in ("dump_running", "finish", "stop_everything"):
        return getattr(backend, name)(*args)
    if name in ("close", "abandon"):
        if name == "abandon":
            backend.loop.stop()
            backend.stop_everything(*args)
        backend.close()
        return backend.endings()
    raise ValueError(f"unknown command {name!r}")


def _abandoned(worker: Any, key: str) -> bool:
    """Whether mprun's client has gone: the scheduler then lets go of this task, and the worker
    cancels it (it cannot stop its thread: that is this function's caller's to do)."""
    task = worker.state.tasks.get(key)
    return task is None or task.state in ("cancelled", "released", "forgotten")


_preloaded = threading.Lock()


def _preload() -> None:
    """The fork server that starts the run's processes imports Dask's client and these objects
    once, not each process (about 300 ms each)."""
    from multiprocessing import forkserver

    with _preloaded:
        preload = list(getattr(forkserver._forkserver, "_preload_modules", None) or [])
        wanted = ["distributed", "runner.backends.dask.objects"]
        forkserver.set_forkserver_preload([*preload, *(name for name in wanted if name not in preload)])
