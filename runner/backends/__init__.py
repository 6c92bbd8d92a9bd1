"""Backends: what runs a plan's processes and shared objects. Each is a package of its own
that provides the `Backend` protocol below, registered in BACKENDS by name; steps.py takes
the steps through it and outcome.py judges the `Ended` records it hands over, whatever it is.

A backend class is called as `Backend(plan, record, *, time_limit=, signals=, method=, grace=)`. It
delivers what happens to the processes as the frozen records of records.py, through its
loop's `emit`, the moment it learns of it (`record`, the log's writer, is the loop's first
listener); it writes no log line itself.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from runner.backends.multiprocessing.pools import Outcome
    from runner.loop import Loop, Signals
    from runner.outcome import Ended
    from runner.plan import Plan
    from runner.records import Record

# name -> "module:class"; imported only when a run asks for it.
BACKENDS = {
    "multiprocessing": "runner.backends.multiprocessing.backend:MultiprocessingBackend",
    "dask": "runner.backends.dask.backend:DaskBackend",  # pip install 'mprun[dask]'
}


class Backend(Protocol):
    """One run of a plan. Processes and objects are named as in the workflow: a process by its
    `processes` key (all its replicas), an object by its name. Every wait goes through `loop`,
    which reads what the processes send meanwhile and stops the run on a signal or the time
    limit (by raising)."""

    loop: Loop  # every wait goes through it; listen to it for the records of the run

    def __init__(
        self,
        plan: Plan,
        record: Callable[[Record], None],
        clock: Callable[[], float] = ...,
        time_limit: float | None = None,
        method: str | None = None,
        signals: Signals | None = None,
        grace: float = ...,
    ) -> None: ...

    @staticmethod
    def preload(plan: Plan, method: str) -> None:
        """Import now whatever a run of `plan` imports later: the workflow's folders are put
        first on sys.path next, and a user's module there must not stand in for one of ours."""

    def build(self) -> None:
        """Make the shared objects and the process objects; raise BuildFailed if user code
        (a Process subclass, a barrier's action) raises."""

    def start(self, keys: Sequence[str]) -> None:
        """Start every replica of these processes."""

    def expect_start(self, keys: Sequence[str]) -> None:
        """These processes are started later, by their start conditions (supervisor.py): joins
        and the end of the steps wait for them as for processes that run."""

    def join(self, keys: Sequence[str], timeout: float | None) -> tuple[str, str]:
        """Wait for these processes to end: ok, alive (still running after `timeout`, which
        leaves them running) or stuck (they cannot exit), with a detail."""

    def terminate(self, keys: Sequence[str], grace: float) -> list[str]:
        """Stop these processes and what they started: SIGTERM, SIGKILL after `grace`; the names
        of those that had to be killed."""

    def put(self, queue: str, items: Sequence[Any]) -> None:
        """Put each item on the queue, waiting for room."""

    def get(self, queue: str, count: int, timeout: float | None, took: Callable[[Any], None]) -> int:
        """Take up to `count` items off the queue, `took` called with each as it comes, each
        within `timeout` of the last; how many it got."""

    def join_queue(self, queue: str, timeout: float | None) -> str | None:
        """Wait until every item of the joinable queue is marked done: None if it came, else
        what is known of why not (in words, to follow the step's detail)."""

    def wait_event(self, event: str, timeout: float | None) -> bool:
        """Wait for the event to be set; whether it was within `timeout`."""

    def set_event(self, event: str, value: bool) -> None:
        """Set or clear the event."""

    def value(self, data: Any) -> Any:
        """User data from the plan as user code gets it: references bound, objects built, lists
        as lists."""

    def show(self, name: str, timeout: float | None) -> tuple[bool, Any]:
        """What a script's parent would print of the object `name`, read without waiting on a
        process for longer than `timeout`: (True, state), or (False, None) when it could not."""

    def recv(
        self,
        ends: Sequence[tuple[str, int]],
        count: int | None,
        timeout: float | None,
        took: Callable[[str, Any], None],
    ) -> tuple[int, list[str]]:
        """Receive `count` messages on these pipe ends, each within `timeout` of the last, or
        (count None) every message until each end is at end of file, within `timeout` in all;
        `took` is called with the end (`name.0`) and each message as it comes. How many came,
        and the ends not at end of file."""

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
    ) -> Outcome:
        """Run a step of `kind` (map, starmap, imap_unordered, apply) in the pool, starting it
        first if it is not running yet; `items`, `args` and `kwargs` as the plan has them. Its
        outcome: done (the results described as `log` says; their values if `want` is
        `values`, where they are kept if it is `keep`), failed with the error a task raised,
        timeout, or ended (the pool is gone). `progress` is told what is done of how many
        chunks or items, while it runs."""

    def keep(self, name: str, value: Any) -> None:
        """Hold `value` as `name`, for later steps to pass as `$name`."""

    def call(self, key: str, timeout: float | None, grace: float) -> tuple[str, Any]:
        """Run the call step whose process is `key` (see plan.call_key): its outcome (ok,
        failed: it raised or ended otherwise, timeout: stopped with this grace) and what it
        returned."""

    def close_end(self, pipe: str, end: int) -> None:
        """Close mprun's copy of one end of a pipe."""

    def dump_receivers(self, name: str, reason: str) -> None:
        """Log the stacks of the running processes given this object."""

    def dump_running(self, reason: str) -> None:
        """Log the stacks of every running process."""

    def finish(self, grace: float) -> None:
        """The end of the steps: stop the daemons still running, wait for the others, stop what
        was left running."""

    def stop_everything(self, grace: float) -> None:
        """Stop every process still running, and all they started."""

    def close(self) -> None:
        """Read what is left to read, and release everything."""

    def endings(self) -> list[Ended]:
        """What happened to each planned process."""


def load(name: str) -> type[Backend]:
    """The backend class registered as `name`."""
    module, _, attribute = BACKENDS[name].partition(":")
    found: type[Backend] = getattr(importlib.import_module(module), attribute)
    return found
