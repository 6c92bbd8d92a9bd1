"""What mprun itself does with the run's shared objects, without ever blocking: the loop asks
again until it can (see loop.py), and reads the children meanwhile.

Each answers at once whether it could; the standard library's own calls would block (a full
bounded queue, a simple queue's full pipe, an empty queue, `JoinableQueue.join`).
"""

from __future__ import annotations

import queue
import select
from multiprocessing.reduction import ForkingPickler
from typing import Any


def put(target: Any, item: Any) -> bool:
    """Put `item` on the queue `target` if it has room now; whether it did."""
    if hasattr(target, "put_nowait"):  # Queue, JoinableQueue: a bounded one may be full
        try:
            target.put_nowait(item)
        except queue.Full:
            return False
        return True
    # A SimpleQueue writes to its pipe in `put`: only when the pipe can take a write.
    writable = select.poll()
    writable.register(target._writer.fileno(), select.POLLOUT)
    if not writable.poll(0):
        return False
    target.put(item)
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
    waits for (under its condition's lock, as `join` looks)."""
    with tasks._cond:
        return bool(tasks._unfinished_tasks._semlock._is_zero())
