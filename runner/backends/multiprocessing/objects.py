"""The run's shared objects on multiprocessing: each kind made in one place (MAKERS), and what
mprun itself does with them without ever blocking (the loop asks again until it can, and reads
the children meanwhile; the standard library's own calls would block on a full bounded queue,
a simple queue's full pipe, an empty queue, `JoinableQueue.join`).
"""

from __future__ import annotations

import os
import queue
import select
import signal
import struct
from collections.abc import Callable, Mapping
from multiprocessing.reduction import ForkingPickler
from typing import Any

from runner.backends.multiprocessing.feeder_trap import pipe_fill
from runner.child import BLOCKED_AT_START, resolve, serve
from runner.workflow import Built, Reference


class Objects:
    """The shared objects of one run, by name, made with the run's context; the manager that
    serves the dicts, lists and namespaces, started with the first of them."""

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx
        self.made: dict[str, Any] = {}
        self._manager: Any = None

    def make(self, name: str, kind: str, options: Mapping[str, Any]) -> None:
        self.made[name] = MAKERS[kind](self, options)

    def __getitem__(self, name: str) -> Any:
        return self.made[name]

    def bind(self, value: Any) -> Any:
        """Arguments with each reference replaced by its object (or pipe end), each object to
        build made (its own arguments first), and each list the plan holds as a tuple a list
        again (see workflow.as_written)."""
        if isinstance(value, Reference):
            found = self.made[str(value.name)]
            return found[value.end] if value.end is not None else found
        if isinstance(value, Built):
            made = resolve(value.target)
            return made(*self.bind(value.args), **self.bind(dict(value.kwargs))) if value.call else made
        if isinstance(value, tuple):
            return [self.bind(item) for item in value]
        if isinstance(value, dict):
            return {key: self.bind(item) for key, item in value.items()}
        return value

    def manager(self) -> Any:
        if self._manager is None:
            from multiprocessing.managers import SyncManager

            # Its server process must not outlive mprun either (child.serve guards it).
            manager = SyncManager(ctx=self.ctx)
            previous = signal.pthread_sigmask(signal.SIG_BLOCK, BLOCKED_AT_START)  # as for a start
            try:
                manager.start(initializer=serve)
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, previous)
            self._manager = manager
        return self._manager

    def manager_pid(self) -> int | None:
        return None if self._manager is None else int(self._manager._process.pid)

    def close(self) -> None:
        if self._manager is not None:
            manager, self._manager = self._manager, None
            manager.shutdown()


def _typed(typecode: str, value: Any) -> Any:
    return value.encode() if typecode == "c" and isinstance(value, str) else value


def _event(objects: Objects, options: Mapping[str, Any]) -> Any:
    event = objects.ctx.Event()
    if options.get("set"):
        event.set()
    return event


def _condition(objects: Objects, options: Mapping[str, Any]) -> Any:
    lock = options.get("lock")
    return objects.ctx.Condition(objects[lock] if lock else None)


def _barrier(objects: Objects, options: Mapping[str, Any]) -> Any:
    action = options.get("action")
    return objects.ctx.Barrier(options["parties"], resolve(action) if action else None, options.get("timeout"))


def _value(objects: Objects, options: Mapping[str, Any]) -> Any:
    typecode = options.get("type", "i")
    return objects.ctx.Value(typecode, _typed(typecode, options.get("value", 0)), lock=options.get("lock", True))


def _array(objects: Objects, options: Mapping[str, Any]) -> Any:
    typecode = options.get("type", "i")
    initial = [_typed(typecode, item) for item in options["items"]] if "items" in options else options["size"]
    return objects.ctx.Array(typecode, initial, lock=options.get("lock", True))


def _object(objects: Objects, options: Mapping[str, Any]) -> Any:
    return resolve(options["call"])(*objects.bind(options["args"]), **objects.bind(dict(options["kwargs"])))


def _namespace(objects: Objects, options: Mapping[str, Any]) -> Any:
    namespace = objects.manager().Namespace()
    for name, value in (options.get("attributes") or {}).items():
        setattr(namespace, name, value)
    return namespace


# Every kind of shared object (workflow.py's kinds; a test holds the two equal), made from its
# options as multiprocessing makes it.
MAKERS: dict[str, Callable[[Objects, Mapping[str, Any]], Any]] = {
    "queue": lambda objects, options: objects.ctx.Queue(options.get("maxsize", 0)),
    "joinable_queue": lambda objects, options: objects.ctx.JoinableQueue(options.get("maxsize", 0)),
    "simple_queue": lambda objects, options: objects.ctx.SimpleQueue(),
    "event": _event,
    "lock": lambda objects, options: objects.ctx.Lock(),
    "rlock": lambda objects, options: objects.ctx.RLock(),
    "semaphore": lambda objects, options: objects.ctx.Semaphore(options.get("value", 1)),
    "bounded_semaphore": lambda objects, options: objects.ctx.BoundedSemaphore(options.get("value", 1)),
    "condition": _condition,
    "barrier": _barrier,
    "value": _value,
    "array": _array,
    "pipe": lambda objects, options: objects.ctx.Pipe(options.get("duplex", True)),
    "dict": lambda objects, options: objects.manager().dict(options.get("items") or {}),
    "list": lambda objects, options: objects.manager().list(options.get("items") or []),
    "namespace": _namespace,
    "object": _object,
}


def put(target: Any, item: Any) -> bool:
    """Put `item` on the queue `target` if it has room now; whether it did."""
    if hasattr(target, "put_nowait"):  # Queue, JoinableQueue: a bounded one may be full
        try:
            target.put_nowait(item)
        except queue.Full:
            return False
        return True
    # A SimpleQueue writes to its pipe in `put`, and would block until a reader makes room.
    # Room counted in bytes is not enough: a pipe holds 16 pages, and a page partly read is
    # still taken, so a write can block with far fewer bytes unread than the pipe holds. A
    # frame of up to PIPE_BUF bytes is written whole or not at all by a non-blocking write;
    # a larger one only into an empty pipe (then only a reader can make it go). The writer is
    # non-blocking only while mprun holds the queue's write lock: children write under it too.
    data = ForkingPickler.dumps(item)
    lock = target._wlock  # None where writes are atomic
    if lock is not None and not lock.acquire(False):
        return False
    try:
        frame = struct.pack("!i", len(data)) + data
        if len(frame) <= select.PIPE_BUF:
            return _write_now(target._writer.fileno(), frame)
        fill = pipe_fill(target._reader.fileno())
        if fill is not None and fill[0]:
            return False
        target._writer.send_bytes(data)
    finally:
        if lock is not None:
            lock.release()
    return True


def _write_now(descriptor: int, frame: bytes) -> bool:
    """Write `frame` (at most PIPE_BUF bytes, so all of it or none) if the pipe has room now."""
    blocking = os.get_blocking(descriptor)
    os.set_blocking(descriptor, False)
    try:
        os.write(descriptor, frame)
    except BlockingIOError:
        return False
    finally:
        os.set_blocking(descriptor, blocking)
    return True


def get(source: Any) -> tuple[bool, Any]:
    """An item of the queue `source` if there is one now: (True, item), else (False, None)."""
    if hasattr(source, "get_nowait"):
        try:
            return True, source.get_nowait()
        except queue.Empty:
            return False, None
    # SimpleQueue.get has no timeout: what it does, without waiting for the lock or an item.
    if not source._rlock.acquire(False):
        return False, None
    try:
        if not source._reader.poll(0):
            return False, None
        data = source._reader.recv_bytes()
    finally:
        source._rlock.release()
    return True, ForkingPickler.loads(data)


def all_done(tasks: Any) -> bool:
    """Whether every item put on the JoinableQueue `tasks` is marked done: what its `join`
    waits for, looked at under its condition's lock as `join` does (not while another process
    holds it: one killed while it held it would hold it for ever)."""
    if not tasks._cond.acquire(False):
        return False
    try:
        return bool(tasks._unfinished_tasks._semlock._is_zero())
    finally:
        tasks._cond.release()


def is_set(event: Any) -> bool:
    """`Event.is_set`, without waiting for its condition's lock (see all_done)."""
    if not event._cond.acquire(False):
        return False
    try:
        return _flag(event)
    finally:
        event._cond.release()


def _flag(event: Any) -> bool:
    """The flag of an Event whose condition's lock mprun holds."""
    if event._flag.acquire(False):
        event._flag.release()
        return True
    return False


def shown(target: Any, kind: str) -> tuple[bool, Any]:
    """What a script's parent would print of the object `target` of this kind, if it can be
    read now: (True, state), else (False, None) (a lock that a process holds)."""
    if kind in ("value", "array"):
        lock = target.get_lock() if hasattr(target, "get_lock") else None
        if lock is not None and not lock.acquire(False):
            return False, None
        try:
            return True, target.value if kind == "value" else target[:]
        finally:
            if lock is not None:
                lock.release()
    if kind == "event":
        if not target._cond.acquire(False):
            return False, None
        try:
            return True, _flag(target)
        finally:
            target._cond.release()
    if kind in ("queue", "joinable_queue"):
        return True, target.qsize()
    if kind == "simple_queue":
        return True, "empty" if target.empty() else "not empty"
    if kind in ("semaphore", "bounded_semaphore"):
        return True, target.get_value()
    if kind == "barrier":  # read without its lock, as its properties are
        return True, "broken" if target.broken else f"{target.n_waiting} of {target.parties} waiting"
    # Managed objects print their referent (a proxy's str() asks the manager); an object of
    # the workflow's own prints as its class has it print.
    return True, str(target)
