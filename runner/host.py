"""A pool's host: the process of the run that holds one `multiprocessing.Pool`.

A Pool runs three threads and starts replacement workers from one of them, so it cannot live in
mprun's parent, which forks and runs no thread. Its host is a process of the run like any other
(mprun's trampoline runs `serve`), and stands where a script's main() stands: it makes the Pool
with the run's start method, takes the map steps mprun sends on the `jobs` pipe, and sends back
each step's results, or the error a task raised, and its progress meanwhile.

Every worker starts as mprun's own processes do, with pipes of its own for its output, its
events and its stacks, and mprun's trampoline around the standard library's `worker`. The host
hands the read ends of those pipes to mprun over the `births` socket (SCM_RIGHTS), and tells
it each worker's exit code when it reaps the worker: so mprun reads, logs and judges each
worker as it does any process, though the worker is the host's child.

Standard library only, as child.py: it is imported in the host and in every spawned worker.
"""

from __future__ import annotations

import multiprocessing
import pickle
import signal
import socket
import sys
import time
import traceback
from multiprocessing import context, pool, process

from runner.child import BLOCKED_AT_START, RETURN_REPR_LIMIT, Trampoline, bounded_repr, resolve

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from multiprocessing.connection import Connection
    from typing import Any

STREAMS = ("events", "stdout", "stderr", "stack")  # the order Trampoline.attach takes them in
PROGRESS_EVERY = 1.0  # s between progress reports of a running step
WORKER = "multiprocessing.pool:worker"  # what each worker runs, inside mprun's trampoline


class _Births:
    """The host's end of the births socket, and what each worker's trampoline needs."""

    socket: socket.socket | None = None
    multiprocessing_log: str | None = None
    pythonpath: tuple[str, ...] = ()

    @classmethod
    def tell(cls, message: tuple[Any, ...], descriptors: tuple[int, ...] = ()) -> None:
        if cls.socket is None:
            return
        try:
            socket.send_fds(cls.socket, [pickle.dumps(message)], list(descriptors))
        except OSError:
            pass  # mprun is gone; the pool ends with this process


class _Hosted:
    """What a worker adds to its context's Process class: pipes of its own, told to mprun."""

    _told = False

    def start(self) -> None:
        ctx = multiprocessing.get_context(self._start_method)  # type: ignore[attr-defined]
        trampoline: Trampoline = self._target  # type: ignore[attr-defined]
        pipes = [ctx.Pipe(duplex=False) for _ in STREAMS]
        trampoline.attach(*(write for _, write in pipes))
        # Held across the start, as mprun holds them (see child._own_signals): the new
        # worker puts back its own handlers first.
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, BLOCKED_AT_START)
        try:
            super().start()  # type: ignore[misc]
            _Births.tell(("started", self.pid, self.name), tuple(read.fileno() for read, _ in pipes))  # type: ignore[attr-defined]
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)
            trampoline.detach()
            for read, write in pipes:  # mprun has the read ends now, the worker the write ends
                read.close()
                write.close()

    @property
    def exitcode(self) -> int | None:
        code: int | None = super().exitcode  # type: ignore[misc]
        if code is not None and not self._told:
            self._told = True
            _Births.tell(("exited", self.pid, code))  # type: ignore[attr-defined]
        return code

    def join(self, timeout: float | None = None) -> None:
        super().join(timeout)  # type: ignore[misc]
        self.exitcode  # noqa: B018 - tells mprun, once it is known


# One class per start method, named as the context's own, so that the pool names its workers
# as a script's pool does ("ForkPoolWorker-1"), and a spawned worker finds its class here.
class ForkProcess(_Hosted, context.ForkProcess):
    pass


class SpawnProcess(_Hosted, context.SpawnProcess):
    pass


class ForkServerProcess(_Hosted, context.ForkServerProcess):
    pass


_CLASSES = {"fork": ForkProcess, "spawn": SpawnProcess, "forkserver": ForkServerProcess}


class HostedPool(pool.Pool):
    """A Pool whose workers run inside mprun's trampoline and are told to mprun."""

    @staticmethod
    def Process(ctx: Any, *args: Any, **kwds: Any) -> Any:
        trampoline = Trampoline(WORKER, _Births.multiprocessing_log, False, _Births.pythonpath)
        trampoline.parent_death_signal = False  # its parent is one of the host's threads
        kwds["target"] = trampoline
        return _CLASSES[ctx.get_start_method()](*args, **kwds)


class Kept:
    """In a step sent to the host: the results of its earlier step `number`, which the host
    kept (they never travel to mprun and back). Plain classes here, not dataclasses: a spawned
    worker imports this module, and dataclasses would cost it milliseconds."""

    __slots__ = ("number",)

    def __init__(self, number: int) -> None:
        self.number = number


class Fetch:
    """mprun asks (as its job `number`) for the results the host kept of its job `kept`."""

    __slots__ = ("kept", "number")

    def __init__(self, number: int, kept: int) -> None:
        self.number, self.kept = number, kept


class Job:
    """A pool step, as mprun sends it: `want` says what to do with the results: `values`, send
    them (mprun puts them on a queue); `keep`, hold them for later steps (sent only if mprun
    asks, `Fetch`); `none`, only describe them. `log` is how they are described: `all` (one
    bounded repr), `chunks`, `each`, `none`."""

    __slots__ = ("args", "chunksize", "function", "items", "kind", "kwargs", "log", "number", "want")

    def __init__(
        self,
        number: int,
        kind: str,
        function: str,
        items: Any,
        chunksize: int | None,
        args: Any,
        kwargs: Any,
        log: str,
        want: str,
    ) -> None:
        self.number, self.kind, self.function, self.items, self.chunksize = number, kind, function, items, chunksize
        self.args, self.kwargs, self.log, self.want = args, kwargs, log, want


def serve(
    size: int,
    initializer: str | None,
    initargs: list[Any],
    maxtasksperchild: int | None,
    multiprocessing_log: str | None,
    pythonpath: tuple[str, ...],
    jobs: Connection,
    births: socket.socket,
) -> None:
    """Hold the pool and take the steps mprun sends, until mprun says the steps are over; then
    close the pool and wait for its workers, as `pool.close(); pool.join()`."""
    _Births.socket, _Births.multiprocessing_log, _Births.pythonpath = births, multiprocessing_log, pythonpath
    # The host stands where a script's main process stands: its workers are numbered from 1.
    process.current_process()._identity = ()
    if multiprocessing.get_start_method() == "forkserver":  # the host's own, for its workers
        from multiprocessing import forkserver

        forkserver.set_forkserver_preload(["runner.host"])
    hosted = HostedPool(size, resolve(initializer) if initializer else None, initargs, maxtasksperchild)
    kept: dict[int, list[Any]] = {}
    try:
        while True:
            try:
                job = jobs.recv()
            except EOFError:  # mprun is gone
                break
            if job is None:  # the end of the steps
                break
            if isinstance(job, Fetch):
                jobs.send(("values", job.number, kept.get(job.kept)))
            else:
                jobs.send(_take(hosted, job, jobs, kept))
    finally:
        hosted.close()
        hosted.join()
        births.close()
        _stop_fork_server()


def _stop_fork_server() -> None:
    """End the fork server this host started for its workers, as the host ends: else mprun
    finds it still running for a moment after, and stops it as something left behind."""
    forkserver = sys.modules.get("multiprocessing.forkserver")
    stop = getattr(getattr(forkserver, "_forkserver", None), "_stop", None)
    if stop is not None:
        stop()


def _take(hosted: HostedPool, job: Job, jobs: Connection, kept: dict[int, list[Any]]) -> tuple[Any, ...]:
    """One step: ("done", number, summary, values or None), or ("failed", number, type,
    message, traceback). The summary describes the results as the step logs them."""
    items = kept[job.items.number] if isinstance(job.items, Kept) else job.items
    try:
        results, chunksize = _results(hosted, job, items, jobs)
    except Exception as error:  # noqa: BLE001 - what the task raised is the step's to report
        trace = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        return ("failed", job.number, type(error).__qualname__, str(error), trace)
    if job.want == "keep":
        kept[job.number] = results
    summary: dict[str, Any] = {"count": len(results), "chunksize": chunksize}
    if job.log == "all":
        summary["shown"] = _shown(results)
    elif job.log == "chunks":
        summary["chunks"] = [_shown(results[first : first + chunksize]) for first in range(0, len(results), chunksize)]
    elif job.log == "each":
        summary["each"] = [bounded_repr(result) for result in results]
    return ("done", job.number, summary, results if job.want == "values" else None)


def _results(hosted: HostedPool, job: Job, items: Any, jobs: Connection) -> tuple[list[Any], int]:
    """The step's results, in the order its kind returns them, and the chunk size it used."""
    called = resolve(job.function)
    if job.kind == "apply":
        return [_waited(hosted.apply_async(called, job.args, job.kwargs), 1, job.number, jobs)], 1
    if job.kind == "imap_unordered":
        chunksize = job.chunksize or 1
        return _unordered(hosted, called, items, chunksize, job.number, jobs), chunksize
    if job.chunksize is not None:
        chunksize = job.chunksize
    else:  # the standard library's choice, to tell mprun's log what a chunk was
        chunksize, extra = divmod(len(items), len(hosted._pool) * 4)  # type: ignore[attr-defined]
        chunksize = max(chunksize + bool(extra), 1)
    start = hosted.starmap_async if job.kind == "starmap" else hosted.map_async
    result = start(called, items, chunksize)
    chunks = len(items) // chunksize + bool(len(items) % chunksize)
    return _waited(result, chunks, job.number, jobs), chunksize


def _shown(values: list[Any], limit: int = RETURN_REPR_LIMIT) -> str:
    """The repr of a list of results, cut at `limit` characters without making all of it."""
    parts, size = [], 2
    for value in values:
        text = repr(value)
        parts.append(text)
        size += len(text) + 2
        if size > limit:
            return ("[" + ", ".join(parts))[:limit] + f"... ({len(values)} items)"
    return "[" + ", ".join(parts) + "]"


def _waited(result: Any, chunks: int, number: int, jobs: Connection) -> Any:
    """The result's value once it is ready, telling mprun how many chunks are done meanwhile."""
    told = -1
    while not result.ready():
        result.wait(PROGRESS_EVERY)
        done = chunks - getattr(result, "_number_left", chunks)  # MapResult's count of chunks to come
        if done != told and not result.ready():
            jobs.send(("progress", number, done, chunks, "chunks"))
            told = done
    return result.get()


def _unordered(
    hosted: HostedPool, called: Callable[..., Any], items: Any, chunksize: int, number: int, jobs: Connection
) -> list[Any]:
    results: list[Any] = []
    iterator = hosted.imap_unordered(called, items, chunksize)
    total = len(items)
    last = time.monotonic()
    while True:
        try:
            results.append(iterator.next(PROGRESS_EVERY))
        except StopIteration:
            return results
        except multiprocessing.TimeoutError:
            pass
        if time.monotonic() - last >= PROGRESS_EVERY:
            jobs.send(("progress", number, len(results), total, "items"))
            last = time.monotonic()


def call(function: str, args: list[Any], kwargs: dict[str, Any], back: Connection) -> Any:
    """A call step's process: call `function`, and send what it returns back to mprun (the
    trampoline logs it too)."""
    result = resolve(function)(*args, **kwargs)
    back.send(result)
    back.close()
    return result
