"""The run's shared objects on a Dask cluster, with multiprocessing's methods and semantics, so
that the same worker code runs on both backends: `queue.Empty` and `queue.Full` on a timeout or
`block=False`, `Event.wait`'s flag, `acquire(timeout=...)`'s result, `task_done()` called too
often raising ValueError.

Each object stands for one of the cluster's own (`distributed.Queue`, `Event`, `Lock`,
`Semaphore`, held by the scheduler; a JoinableQueue's count of unfinished tasks is an actor),
by name. It pickles as its name and settings only, and finds a client wherever it is
unpickled: the worker's, mprun's own, or (in a process a worker started) one it connects to
the scheduler the first time it is used. Items travel pickled by the process that puts them:
the scheduler holds bytes, and needs none of the user's modules.

`distributed` is imported on first use, not with this module: a process that is given none of
these objects never imports it.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import queue
import threading
import uuid
from typing import Any

SCHEDULER = "MPRUN_DASK_SCHEDULER"  # where a process on a worker finds the scheduler (see agent.py)
# What Dask raises when a wait times out: asyncio's, which is the builtin only from Python 3.11.
TIMEOUTS = (TimeoutError, asyncio.TimeoutError)
SLICE = 0.1  # s: the longest wait mprun's parent makes on one object before reading its loop again

_lock = threading.Lock()
_connected: Any = None  # the client this process connected, when it had none


def client() -> Any:
    """A client of the run's cluster in this process: the worker's or mprun's own, else one
    connected now (once) to the scheduler the environment names."""
    import distributed

    global _connected
    try:
        return distributed.get_client()
    except ValueError:
        pass
    with _lock:
        if _connected is None:
            address = os.environ.get(SCHEDULER)
            if not address:
                raise RuntimeError(f"no Dask client in this process, and {SCHEDULER} is not set")
            _connected = distributed.Client(address, set_as_default=True)
        return _connected


def unique(kind: str) -> str:
    return f"mprun-{kind}-{uuid.uuid4().hex}"


def _wait(block: bool, timeout: float | None) -> float | None:
    """multiprocessing's (block, timeout) as one Dask timeout: None waits without end."""
    if not block:
        return 0
    if timeout is not None and timeout < 0:
        raise ValueError("'timeout' must be a non-negative number")
    return timeout


class Shared:
    """What every object here has: a name on the cluster, and its Dask object made on first use
    (unpickling may happen on a worker's event loop, where no sync call may be made)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._made: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {key: value for key, value in self.__dict__.items() if key != "_made"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._made = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} on Dask>"

    @property
    def made(self) -> Any:
        if self._made is None:
            self._made = self._make(client())
        return self._made

    def _make(self, client: Any) -> Any:
        raise NotImplementedError


class Queue(Shared):
    """multiprocessing.Queue: `put`, `get`, their `_nowait` forms, `qsize`, `empty`, `full`;
    `close`, `join_thread` and `cancel_join_thread` do nothing (a put is on the scheduler when
    it returns: there is no feeder thread to flush)."""

    def __init__(self, maxsize: int = 0, name: str | None = None) -> None:
        super().__init__(name or unique("queue"))
        self.maxsize = maxsize if maxsize > 0 else 0

    def _make(self, client: Any) -> Any:
        import distributed

        return distributed.Queue(self.name, client=client, maxsize=self.maxsize)

    def put(self, obj: Any, block: bool = True, timeout: float | None = None) -> None:
        data = pickle.dumps(obj, pickle.HIGHEST_PROTOCOL)
        try:
            self.made.put(data, timeout=_wait(block, timeout))
        except TIMEOUTS:
            raise queue.Full from None

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        try:
            data = self.made.get(timeout=_wait(block, timeout))
        except TIMEOUTS:
            raise queue.Empty from None
        return pickle.loads(data)

    def put_nowait(self, obj: Any) -> None:
        self.put(obj, False)

    def get_nowait(self) -> Any:
        return self.get(False)

    def qsize(self) -> int:
        return int(self.made.qsize())

    def empty(self) -> bool:
        return self.qsize() == 0

    def full(self) -> bool:
        return bool(self.maxsize) and self.qsize() >= self.maxsize

    def close(self) -> None:
        pass

    def join_thread(self) -> None:
        pass

    def cancel_join_thread(self) -> None:
        pass


class SimpleQueue(Queue):
    """multiprocessing.SimpleQueue: `put`, `get`, `empty`, `close`."""


class Tasks:
    """A JoinableQueue's count of unfinished tasks: an actor on a worker. Its methods run on the
    worker's event loop, one at a time."""

    def __init__(self) -> None:
        self.unfinished = 0
        self._zero: Any = None

    def _event(self) -> Any:
        if self._zero is None:
            self._zero = asyncio.Event()
            self._zero.set()
        return self._zero

    async def more(self) -> None:
        self.unfinished += 1
        self._event().clear()

    async def fewer(self) -> bool:
        if self.unfinished <= 0:
            return False
        self.unfinished -= 1
        if self.unfinished == 0:
            self._event().set()
        return True

    async def done(self, timeout: float | None) -> bool:
        try:
            await asyncio.wait_for(self._event().wait(), timeout)
        except TIMEOUTS:
            return False
        return True

    async def count(self) -> int:
        return self.unfinished


class JoinableQueue(Queue):
    """multiprocessing.JoinableQueue: a Queue whose `task_done()` and `join()` count what was
    put and not yet marked done. Counted before the put, as multiprocessing does, so that a
    `join` never returns while an item is on its way."""

    def __init__(self, maxsize: int = 0, name: str | None = None, tasks: Any = None) -> None:
        super().__init__(maxsize, name or unique("joinable"))
        self.tasks = tasks if tasks is not None else client().submit(Tasks, actor=True, pure=False).result()

    def __setstate__(self, state: dict[str, Any]) -> None:
        client()  # the actor's handle binds to this process's client as it is used
        super().__setstate__(state)

    def put(self, obj: Any, block: bool = True, timeout: float | None = None) -> None:
        self.tasks.more().result()
        try:
            super().put(obj, block, timeout)
        except BaseException:
            self.tasks.fewer().result()
            raise

    def task_done(self) -> None:
        if not self.tasks.fewer().result():
            raise ValueError("task_done() called too many times")

    def join(self, timeout: float | None = None) -> bool:
        """Wait until every item is marked done; mprun's own join takes a timeout (whether it
        came), multiprocessing's does not."""
        return bool(self.tasks.done(timeout).result())

    def unfinished(self) -> int:
        return int(self.tasks.count().result())


class Event(Shared):
    """multiprocessing.Event: `set`, `clear`, `is_set`, `wait(timeout)` (the flag)."""

    def __init__(self, name: str | None = None) -> None:
        super().__init__(name or unique("event"))

    def _make(self, client: Any) -> Any:
        import distributed

        return distributed.Event(self.name, client=client)

    def set(self) -> None:
        self.made.set()

    def clear(self) -> None:
        self.made.clear()

    def is_set(self) -> bool:
        return bool(self.made.is_set())

    def wait(self, timeout: float | None = None) -> bool:
        return bool(self.made.wait(timeout))


class BoundedSemaphore(Shared):
    """multiprocessing.BoundedSemaphore (and Lock, of value 1): `acquire(block, timeout)` (whether
    it got it), `release` (ValueError when released more often than acquired), and `with`.

    A lease the scheduler hands out: one that a process which died still held is given back
    after the scheduler's lease timeout (multiprocessing's would be held for ever)."""

    def __init__(self, value: int = 1, name: str | None = None) -> None:
        super().__init__(name or unique("semaphore"))
        self.value = value

    def _make(self, client: Any) -> Any:
        import distributed

        return distributed.Semaphore(max_leases=self.value, name=self.name, scheduler_rpc=client.scheduler)

    def acquire(self, block: bool = True, timeout: float | None = None) -> bool:
        if timeout is not None and timeout < 0:
            timeout = None  # as multiprocessing: a negative timeout waits without end
        return bool(self.made.acquire(timeout=0 if not block else timeout))

    def release(self) -> None:
        try:
            self.made.release()
        except RuntimeError:
            raise ValueError("semaphore or lock released too many times") from None

    def get_value(self) -> int:
        return self.value - int(self.made.get_value())

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


class Lock(BoundedSemaphore):
    """multiprocessing.Lock: a semaphore of one lease."""

    def __init__(self, name: str | None = None) -> None:
        super().__init__(1, name or unique("lock"))
