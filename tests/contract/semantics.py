"""One process that holds each shared object to multiprocessing's semantics, printing one line
per promise: the same lines must come from every backend (tests/test_dask.py)."""

from __future__ import annotations

import queue
from collections.abc import Callable
from typing import Any


def _raises(error: type[BaseException], call: Callable[[], Any]) -> bool:
    try:
        call()
    except error:
        return True
    return False


def check(plain: Any, bounded: Any, tasks: Any, event: Any, lock: Any, semaphore: Any) -> None:
    promises = {
        "get with a timeout on an empty queue raises queue.Empty": _raises(queue.Empty, lambda: plain.get(timeout=0.1)),
        "get without blocking raises queue.Empty": _raises(queue.Empty, lambda: plain.get(False)),
        "get_nowait raises queue.Empty": _raises(queue.Empty, plain.get_nowait),
    }
    plain.put({"a": [1, 2]})
    promises["an item comes back equal"] = plain.get(timeout=5) == {"a": [1, 2]}
    bounded.put(1)
    promises["put with a timeout on a full queue raises queue.Full"] = _raises(
        queue.Full, lambda: bounded.put(2, timeout=0.1)
    )
    promises["put_nowait on a full queue raises queue.Full"] = _raises(queue.Full, lambda: bounded.put_nowait(2))
    promises["the full queue holds its item"] = bounded.get(timeout=5) == 1
    promises["an unset event's wait gives False"] = event.wait(0.1) is False
    event.set()
    promises["a set event's wait gives True"] = event.wait(0.1) is True and event.is_set()
    event.clear()
    promises["a cleared event is not set"] = not event.is_set()
    promises["acquire gives True"] = lock.acquire() is True
    promises["acquire with a timeout on a held lock gives False"] = lock.acquire(timeout=0.1) is False
    promises["acquire without blocking on a held lock gives False"] = lock.acquire(False) is False
    lock.release()
    promises["with takes the lock"] = _with(lock)
    promises["a bounded semaphore gives its value"] = semaphore.acquire() and semaphore.acquire(timeout=0.1)
    promises["and no more"] = semaphore.acquire(False) is False
    semaphore.release()
    semaphore.release()
    promises["released too often, it raises ValueError"] = _raises(ValueError, semaphore.release)
    tasks.put("job")
    tasks.get(timeout=5)
    tasks.task_done()
    promises["task_done once too often raises ValueError"] = _raises(ValueError, tasks.task_done)
    for promise, kept in promises.items():
        print(f"{'kept' if kept else 'BROKEN'}: {promise}")


def _with(lock: Any) -> bool:
    with lock:
        held = lock.acquire(False) is False
    return held and lock.acquire(False) and (lock.release() is None)
