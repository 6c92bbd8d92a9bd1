"""The Dask backend: a plan's processes on the workers of a Dask cluster, its shared objects on
the cluster's scheduler (see backends.Backend for what each primitive does).

Each worker that holds processes of the run runs one agent (agent.py), a long task with no
retries, which runs them as real child processes with mprun's own machinery; this side places
the processes, makes the shared objects, sends the steps' commands and turns what the agents
tell into the run's records, with the worker's address on each `process.start`. A worker lost
while the run needs it ends its processes' part of the run as `lost`, which fails it.

Dask's client runs an event-loop thread of its own: the one thread mprun has besides its main
one, in this backend only. What it hears goes into `_heard` and wakes the run's loop through a
pipe; everything else happens in the main thread.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import os
import pickle
import select
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from runner import records
from runner.backends.dask import agent, objects
from runner.backends.multiprocessing.objects import Objects
from runner.errors import BuildFailed
from runner.loop import Loop, Signals
from runner.outcome import Ended
from runner.plan import CALLER, HOST, Plan, PlannedProcess
from runner.records import Record

if TYPE_CHECKING:
    from runner.backends import Backend
    from runner.backends.multiprocessing.pools import Outcome

CLUSTER = "MPRUN_CLUSTER"  # the scheduler's address, when --cluster does not give it
LOCAL = "local"  # a LocalCluster started for the run, and closed at its end
CONNECT_TIMEOUT = 30.0  # s to reach a scheduler
BUILD_TIMEOUT = 120.0  # s for every agent to build its part (a worker busy with other work is slow)
CLOSE_TIMEOUT = 30.0  # s for the agents to answer the last command
LAST_WORDS = 2.0  # s for the messages an agent sent before its task ended to arrive after it

MAKERS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "queue": lambda options: objects.Queue(options.get("maxsize", 0)),
    "joinable_queue": lambda options: objects.JoinableQueue(options.get("maxsize", 0)),
    "simple_queue": lambda options: objects.SimpleQueue(),
    "event": lambda options: _event(bool(options.get("set"))),
    "lock": lambda options: objects.Lock(),
    "bounded_semaphore": lambda options: objects.BoundedSemaphore(options.get("value", 1)),
}


def _event(initially: bool) -> objects.Event:
    event = objects.Event()
    if initially:
        event.set()
    return event


@dataclasses.dataclass
class _Agent:
    number: int
    address: str  # its worker's
    processes: list[PlannedProcess]
    future: Any = None
    built: bool = False
    failed: str | None = None  # why it could not build its part
    lost: str | None = None  # why it is gone (its worker died)
    endings: list[Ended] | None = None  # its last answer
    inbox: Any = None  # the queue it takes commands from
    finished: float | None = None  # when its task ended by itself (its last messages may be on their way)

    @property
    def here(self) -> bool:
        return self.lost is None and self.failed is None and self.endings is None


class DaskBackend:
    """One run of a plan on a Dask cluster: `cluster` is a scheduler's address, or `local`."""

    def __init__(
        self,
        plan: Plan,
        record: Callable[[Record], None],
        clock: Callable[[], float] = time.monotonic,
        time_limit: float | None = None,
        method: str | None = None,
        signals: Signals | None = None,
        grace: float = 5.0,  # what a policy stops is the multiprocessing backend's (refused here)
        cluster: str | None = None,
    ) -> None:
        self.plan = plan
        self.clock = clock
        self.address = cluster or os.environ.get(CLUSTER) or LOCAL
        self.signals = signals or Signals()
        self.loop = Loop(self._poll, self.signals, time_limit, clock)
        self.loop.listen(record)
        self.run = uuid.uuid4().hex[:12]
        self._heard: deque[agent.Message | int] = deque()  # a Message, or the number of an agent whose task ended
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)
        os.set_blocking(self._wake_write, False)
        self.cluster: Any = None
        self.client: Any = None
        # The run's objects by name, bound into user data by the multiprocessing backend's own
        # binder (references, objects to build), which makes the workflow's own objects too.
        self.objects = Objects(None)
        self.shared = self.objects.made
        self.agents: list[_Agent] = []
        self.started: dict[str, tuple[records.Started, _Agent]] = {}
        self.ended: dict[str, Ended] = {}
        self._answers: dict[int, dict[int, Any]] = {}
        self._numbers = itertools.count(1)
        self.closed = False

    @staticmethod
    def preload(plan: Plan, method: str) -> None:
        import distributed  # noqa: F401 - before the workflow's folders are first on sys.path

    # -- the cluster ----------------------------------------------------------------------

    def _connect(self) -> None:
        import dask
        import distributed

        if self.address == LOCAL:
            # No task is ever run twice: a worker that dies with a process is an outcome.
            dask.config.set({"distributed.scheduler.allowed-failures": 0})
            try:
                self.cluster = distributed.LocalCluster(
                    processes=True, dashboard_address=None, silence_logs=logging.CRITICAL
                )
            except Exception as error:
                raise BuildFailed(f"starting a Dask LocalCluster failed: {type(error).__name__}: {error}") from error
            self.client = distributed.Client(self.cluster, set_as_default=True)
            _quiet_timeouts()
        else:
            try:
                self.client = distributed.Client(self.address, timeout=CONNECT_TIMEOUT, set_as_default=True)
            except Exception as error:
                raise BuildFailed(
                    f"cannot reach the Dask scheduler at {self.address}: {type(error).__name__}: {error}"
                ) from error
            try:
                self.client.get_versions(check=True)
            except ValueError as error:
                raise BuildFailed(f"the Dask cluster at {self.address} runs other versions: {error}") from error
        self.client.subscribe_topic(agent.topic(self.run), self._hear)

    def _hear(self, event: tuple[float, Any]) -> None:  # on the client's event-loop thread
        self._heard.append(pickle.loads(event[1]))
        self._wake()

    def _ended_task(self, number: int, future: Any) -> None:  # on the client's event-loop thread
        self._heard.append(number)
        self._wake()

    def _wake(self) -> None:
        try:
            os.write(self._wake_write, b"w")
        except BlockingIOError:
            pass

    def _poll(self, timeout: float | None) -> None:
        """The loop's read: what the agents told, and which of them are gone."""
        if not self._heard:
            wakers = [self._wake_read] + ([self.signals.woken_by] if self.signals.woken_by is not None else [])
            select.select(wakers, [], [], timeout)
        try:
            while os.read(self._wake_read, 4096):
                pass
        except BlockingIOError:
            pass
        while self._heard:
            heard = self._heard.popleft()
            if isinstance(heard, int):
                self._task_ended(self.agents[heard])
            else:
                self._take(heard)

    def _take(self, message: agent.Message) -> None:
        helper = self.agents[message.agent]
        if message.kind == "record":
            record = message.payload
            if isinstance(record, records.Started):
                record = dataclasses.replace(record, worker=helper.address)
                self.started[record.process] = (record, helper)
            elif isinstance(record, records.Exited):
                self.ended[record.process] = record.ended
            self.loop.emit(record)
        elif message.kind == "built":
            helper.built = True
            helper.failed = message.payload
        elif message.kind == "done":
            self._answers.setdefault(message.number, {})[helper.number] = message.payload

    def _task_ended(self, helper: _Agent) -> None:
        """An agent's task is over: as it should be once it answered `close`; else its worker is
        gone, and so are its processes."""
        future = helper.future
        if not helper.here:
            return
        if future.status == "finished":
            helper.finished = self.clock()
            return
        helper.lost = f"its worker {helper.address} died"
        if future.status == "cancelled":
            helper.lost = f"the scheduler gave up its worker {helper.address}"
        now = self.clock()
        for name, (started, owner) in self.started.items():
            if owner is helper and name not in self.ended:
                ended = Ended(
                    name=name,
                    key=started.key,
                    replica=started.replica,
                    expect=None,
                    pid=started.pid,
                    exitcode=None,
                    started=None,
                    ended=now,
                    stopped_as_planned=False,
                    lost=helper.lost,
                )
                self.ended[name] = ended
                self.loop.emit(records.Exited(ended))

    def _ask(self, name: str, *args: Any, timeout: float | None = None) -> dict[int, Any]:
        """Send command `name` to every agent still there, and wait for their answers, reading
        the run meanwhile."""
        number = next(self._numbers)
        asked = [helper for helper in self.agents if helper.here]
        for helper in asked:
            try:
                helper.inbox.put((number, name, args))
            except Exception as error:  # noqa: BLE001 - the scheduler is gone: so is the cluster
                helper.lost = f"the scheduler could not be reached: {type(error).__name__}: {error}"
        answers = self._answers.setdefault(number, {})

        def answered() -> bool:
            return all(helper.number in answers or not self._there(helper) for helper in asked)

        self.loop.wait(answered, timeout, every=LAST_WORDS)
        return self._answers.pop(number, {})

    def _there(self, helper: _Agent) -> bool:
        """Whether an agent may still answer: one whose task ended by itself had LAST_WORDS
        seconds for its last messages to arrive."""
        return helper.here and (helper.finished is None or self.clock() - helper.finished < LAST_WORDS)

    # -- building ---------------------------------------------------------------------------

    def build(self) -> None:
        """Connect, make the shared objects, place the processes on the workers (in turn, in
        file order) and have each worker's agent build its part."""
        self._connect()
        for shared in self.plan.workflow.objects.values():
            if shared.kind not in MAKERS and shared.kind != "object":
                raise BuildFailed(f"{shared.name}: a {shared.kind} cannot be made on the Dask backend")
            try:
                if shared.kind == "object":  # one of the workflow's own, made here and sent pickled
                    self.objects.make(shared.name, shared.kind, shared.options)
                else:
                    self.shared[shared.name] = MAKERS[shared.kind](dict(shared.options))
            except Exception as error:
                raise BuildFailed(f"making {shared.name} raised {type(error).__name__}: {error}") from error
        workers = sorted(self.client.scheduler_info(n_workers=-1)["workers"])
        if not workers:
            raise BuildFailed(f"the Dask cluster at {self.address} has no workers")
        planned = [p for p in self.plan.processes if p.target not in (CALLER, HOST)]
        numbers = {id(p): number for number, p in enumerate(planned, 1)}
        for index, address in enumerate(workers[: len(planned)]):
            mine = planned[index :: len(workers)]
            self.agents.append(_Agent(index, address, mine))
        for helper in self.agents:
            helper.inbox = objects.Queue(name=agent.topic(self.run, helper.number))
            part = agent.Part(
                dataclasses.replace(self.plan, processes=tuple(helper.processes), steps=()),
                self.shared,
                tuple(numbers[id(p)] for p in helper.processes),
            )
            helper.future = self.client.submit(
                agent.serve,
                self.run,
                helper.number,
                pickle.dumps(part, pickle.HIGHEST_PROTOCOL),
                key=f"mprun-agent-{self.run}-{helper.number}",
                workers=[helper.address],
                allow_other_workers=False,
                pure=False,
                retries=0,
            )
            helper.future.add_done_callback(partial(self._ended_task, helper.number))
        if not self.loop.wait(lambda: all(h.built or not self._there(h) for h in self.agents), BUILD_TIMEOUT):
            raise BuildFailed(f"the Dask workers did not set up the run within {BUILD_TIMEOUT:g} s")
        problems = [h.failed or h.lost for h in self.agents if h.failed or h.lost]
        if problems:
            raise BuildFailed("; ".join(str(problem) for problem in problems))

    # -- processes --------------------------------------------------------------------------

    def start(self, keys: Sequence[str]) -> None:
        self._ask("start", list(keys))

    def join(self, keys: Sequence[str], timeout: float | None) -> tuple[str, str]:
        answers = [answer for answer in self._ask("join", list(keys), timeout).values() if answer]
        lost = [self.ended[n].lost for n in self._names(keys) if n in self.ended and self.ended[n].lost]
        stuck = [detail for how, detail in answers if how == "stuck"]
        if stuck:
            return "stuck", "; ".join(stuck)
        alive = [detail.removeprefix("still running: ") for how, detail in answers if how == "alive"]
        if alive:
            return "alive", "still running: " + ", ".join(alive)
        if lost:
            return "lost", str(lost[0])
        return "ok", ""

    def expect_start(self, keys: Sequence[str]) -> None:
        # support.py refuses start conditions on Dask, so a checked workflow never gets here.
        raise NotImplementedError(f"start conditions ({', '.join(keys)}) do not run on Dask")

    def _names(self, keys: Sequence[str]) -> list[str]:
        return [name for name, (started, _) in self.started.items() if started.key in keys]

    def terminate(self, keys: Sequence[str], grace: float) -> list[str]:
        return [name for killed in self._ask("terminate", list(keys), grace).values() if killed for name in killed]

    def dump_receivers(self, name: str, reason: str) -> None:
        self._ask("dump_receivers", name, reason)

    def dump_running(self, reason: str) -> None:
        self._ask("dump_running", reason)

    def finish(self, grace: float) -> None:
        if self.plan.default_steps:  # every non-daemon ends before any daemon is stopped, cluster-wide
            self.loop.wait(
                lambda: all(s.daemon or n in self.ended for n, (s, _) in self.started.items()), None, every=0.2
            )
        self._ask("finish", grace)

    def stop_everything(self, grace: float) -> None:
        if self.client is not None:
            self._ask("stop_everything", grace)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.loop.stop()
        try:
            if self.client is not None:
                for number, endings in self._ask("close", timeout=CLOSE_TIMEOUT).items():
                    self.agents[number].endings = endings
                self.client.unsubscribe_topic(agent.topic(self.run))
        finally:
            self._disconnect()

    def _disconnect(self) -> None:
        for helper in self.agents:
            if helper.future is not None and not helper.future.done():
                helper.future.cancel()
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()
        os.close(self._wake_read)
        os.close(self._wake_write)

    def endings(self) -> list[Ended]:
        """What happened to each planned process: its agent's last word, else what was heard."""
        found: dict[tuple[str, int], Ended] = {}
        for ended in self.ended.values():
            found[(ended.key, ended.replica)] = ended
        for helper in self.agents:
            for ended in helper.endings or ():
                found[(ended.key, ended.replica)] = ended
        out = []
        for planned in self.plan.processes:
            if planned.target in (CALLER, HOST):
                continue
            out.append(
                found.get((planned.key, planned.replica))
                or Ended(planned.label, planned.key, planned.replica, planned.expect, None, None, None, None, False)
            )
        return out

    # -- shared objects -----------------------------------------------------------------------

    def _until(self, attempt: Callable[[float], bool], timeout: float | None) -> bool:
        """Try `attempt(wait)` (one bounded wait on the cluster) until it succeeds or `timeout`
        passes, reading the run between tries."""
        deadline = None if timeout is None else self.clock() + timeout

        def tried() -> bool:
            left = objects.SLICE if deadline is None else max(0.0, min(objects.SLICE, deadline - self.clock()))
            return attempt(left)

        return self.loop.wait(tried, timeout, every=0)

    def put(self, queue: str, items: Sequence[Any]) -> None:
        import queue as queues

        target = self.shared[queue]
        for item in items:

            def put(wait: float, item: Any = item) -> bool:
                try:
                    target.put(item, timeout=wait)
                except queues.Full:
                    return False
                return True

            self._until(put, None)

    def get(self, queue: str, count: int, timeout: float | None, took: Callable[[Any], None]) -> int:
        import queue as queues

        source = self.shared[queue]

        def got(wait: float) -> bool:
            try:
                took(source.get(timeout=wait))
            except queues.Empty:
                return False
            return True

        for index in range(count):
            if not self._until(got, timeout):
                return index
        return count

    def join_queue(self, queue: str, timeout: float | None) -> str | None:
        tasks = self.shared[queue]
        if self._until(tasks.join, timeout):
            return None
        ended = [e for e in self.ended.values() if e.key in {s.key for s in self.plan.workflow.receivers(queue)}]
        if not ended:
            return ""
        return "; ended before: " + ", ".join(f"{e.name} (exit code {e.exitcode})" for e in ended)

    def wait_event(self, event: str, timeout: float | None) -> bool:
        return self._until(self.shared[event].wait, timeout)

    def set_event(self, event: str, value: bool) -> None:
        if value:
            self.shared[event].set()
        else:
            self.shared[event].clear()

    def value(self, data: Any) -> Any:
        return self.objects.bind(data)

    # What `mprun check --backend dask` refuses (rules.py): never reached by a checked workflow.

    def show(self, name: str, timeout: float | None) -> tuple[bool, Any]:
        raise BuildFailed("show is not supported on the Dask backend")

    def recv(self, ends: Any, count: Any, timeout: Any, took: Any) -> tuple[int, list[str]]:
        raise BuildFailed("recv is not supported on the Dask backend")

    def map(self, pool: str, kind: str, *args: Any, **kwargs: Any) -> Outcome:
        raise BuildFailed("pools are not supported on the Dask backend")

    def keep(self, name: str, value: Any) -> None:
        self.shared[name] = value

    def call(self, key: str, timeout: float | None, grace: float) -> tuple[str, Any]:
        raise BuildFailed("call is not supported on the Dask backend")

    def close_end(self, pipe: str, end: int) -> None:
        raise BuildFailed("pipes are not supported on the Dask backend")


class _Timeouts(logging.Filter):
    """Drops the scheduler's log of a wait that timed out (a `get` with a timeout): an outcome
    here, which a LocalCluster's scheduler, running in mprun's process, logs as an error."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not isinstance(error, objects.TIMEOUTS)


_TIMEOUTS_FILTER = _Timeouts()  # one: a program that runs many workflows adds it once


def _quiet_timeouts() -> None:
    logging.getLogger("distributed.core").addFilter(_TIMEOUTS_FILTER)


if TYPE_CHECKING:

    def _conforms(backend: DaskBackend) -> Backend:
        return backend
