"""The parent's one loop: every wait of a run goes through `Loop.wait`, which reads what the
children send (output, events, exits, stack dumps) while it waits, and is where Ctrl-C, SIGTERM
and the time limit take effect.

One thread: mprun starts none of its own, so none runs while it forks (the deadlock the
standard library warns of, and Python 3.12's DeprecationWarning). Signals only set a flag and
wake the loop (`signal.set_wakeup_fd`); they stop the run at the next wait or between steps,
never in the middle of a start or a write. A second one before the first was acted on stops
mprun where it is (a call that never returns, such as `Event.set()` with a waiter killed).
Waits on what has no descriptor (an event, a JoinableQueue's unfinished tasks, a queue's lock)
look again every SLICE seconds: that is how late a step may notice them.
"""

from __future__ import annotations

import heapq
import itertools
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from runner.errors import Terminated, TimeLimit

if TYPE_CHECKING:
    from runner.records import Record

SLICE = 0.005  # s between looks at what has no descriptor to wait on

# What the loop stops for, in the main thread: Ctrl-C and SIGTERM (the time limit is the
# loop's own deadline).
STOPPING = (signal.SIGINT, signal.SIGTERM)


class Signals:
    """Ctrl-C and SIGTERM noted as they come, for the loop to act on. A handler that was not a
    Python one (ignored, or the default) is left alone: `mprun &` from a script ignores Ctrl-C,
    and so must its children. `previous` is what a fork child puts back (see child.py)."""

    def __init__(self) -> None:
        self.previous = {number: signal.getsignal(number) for number in STOPPING}
        self.caught: list[int] = []
        self._wake: tuple[int, int] | None = None
        self._old_wake = -1
        self.stopping = False  # being acted on: more of them are ignored (the stop is bounded)

    @property
    def woken_by(self) -> int | None:
        """The descriptor that becomes readable when a signal comes, once installed."""
        return None if self._wake is None else self._wake[0]

    def __call__(self, number: int, frame: object) -> None:
        if self.stopping:
            return
        if self.caught:
            # A second one before the loop could act on the first: mprun is stuck in a call
            # that does not come back (a lock a killed process held), so stop it there. (Not
            # in a start: signals are blocked across those.)
            self.caught.clear()
            raise KeyboardInterrupt if number == signal.SIGINT else Terminated
        self.caught.append(number)

    def install(self) -> None:
        """Take over the handlers (only in the main thread, where Python runs them)."""
        if threading.current_thread() is not threading.main_thread():
            return
        read, write = os.pipe()
        os.set_blocking(read, False)
        os.set_blocking(write, False)
        self._wake = (read, write)
        self._old_wake = signal.set_wakeup_fd(write, warn_on_full_buffer=False)
        for number, handler in self.previous.items():
            if callable(handler):
                signal.signal(number, self)

    def uninstall(self) -> None:
        if self._wake is None:
            return
        for number, handler in self.previous.items():
            if callable(handler):
                signal.signal(number, handler)
        signal.set_wakeup_fd(self._old_wake)
        for descriptor in self._wake:
            os.close(descriptor)
        self._wake = None

    def drain(self) -> None:
        """Empty the wake-up pipe (what was written there is also in `caught`)."""
        if self._wake is not None:
            try:
                while os.read(self._wake[0], 512):
                    pass
            except BlockingIOError:
                pass

    def raise_caught(self) -> None:
        """Raise what the first signal not acted on yet asks: KeyboardInterrupt for Ctrl-C,
        Terminated for SIGTERM."""
        if not self.caught:
            return
        number = self.caught.pop(0)
        self.caught.clear()
        raise KeyboardInterrupt if number == signal.SIGINT else Terminated


class Loop:
    """Waits, reading the children meanwhile (`poll`), and stops the run when it must; and
    the run's one stream of records (records.py): what the backend learns as `poll` reads
    goes to `emit`, and from there to every listener, in the order they were added."""

    def __init__(
        self,
        poll: Callable[[float | None], object],
        signals: Signals,
        time_limit: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.poll = poll
        self.signals = signals
        self.clock = clock
        self.time_limit = time_limit
        self.deadline = None if time_limit is None else clock() + time_limit
        self.stopping = False  # the run is being stopped: nothing stops it again
        self.listeners: list[Callable[[Record], object]] = []
        self.interrupted: BaseException | None = None
        self._timers: list[tuple[float, int, Callable[[], object]]] = []  # a heap: (when, order, action)
        self._order = itertools.count()
        self._acting = False

    def listen(self, listener: Callable[[Record], object]) -> None:
        """Give `listener` every record from now on. It runs inside whatever wait read the
        record, in the middle of a read: it must neither wait nor raise. One that must stop
        the run asks `interrupt`."""
        self.listeners.append(listener)

    def interrupt(self, error: BaseException) -> None:
        """Raise `error` at the next check, as a signal is acted on: out of whatever wait the
        run is in (unless it is being stopped already)."""
        if self.interrupted is None:
            self.interrupted = error

    def at(self, when: float, action: Callable[[], object]) -> None:
        """Run `action` once the clock reaches `when`, from the first wait then: outside any
        read, so it may start or stop processes (and wait itself). Not while the run is being
        stopped: a policy's restart or start has no place then."""
        heapq.heappush(self._timers, (when, next(self._order), action))

    def soon(self, action: Callable[[], object]) -> None:
        """Run `action` at the next wait (what a listener does instead of acting in a read)."""
        self.at(self.clock(), action)

    def _act(self) -> None:
        """Run the actions that are due, one at a time: one that waits does not run another."""
        if self._acting or self.stopping:
            return
        self._acting = True
        try:
            while self._timers and self._timers[0][0] <= self.clock() and not self.stopping:
                _, _, action = heapq.heappop(self._timers)
                action()
        finally:
            self._acting = False

    def emit(self, record: Record) -> None:
        for listener in self.listeners:
            listener(record)

    def check(self) -> None:
        """Stop the run here if a signal came or the time limit passed (raises)."""
        if self.stopping:
            return
        self.signals.raise_caught()
        if self.interrupted is not None:
            error, self.interrupted = self.interrupted, None
            raise error
        if self.deadline is not None and self.clock() >= self.deadline:
            assert self.time_limit is not None
            raise TimeLimit(f"the run took longer than --timeout {self.time_limit:g} s")

    def stop(self) -> None:
        """From now on waits run to their end, and signals are ignored: the run is being
        stopped (bounded by the grace), or is over."""
        self.stopping = True
        self.signals.stopping = True

    def wait(self, done: Callable[[], bool], timeout: float | None, *, every: float | None = None) -> bool:
        """Read the children until `done()`, or `timeout` seconds (None: no end); whether it
        came. `done` is asked after each read, and at least every `every` seconds."""
        deadline = None if timeout is None else self.clock() + timeout
        while True:
            self._act()
            self.check()
            if done():
                return True
            now = self.clock()
            if deadline is not None and now >= deadline:
                return False
            pause = every
            timer = self._timers[0][0] if self._timers and not self._acting and not self.stopping else None
            for end in (deadline, None if self.stopping else self.deadline, timer):
                if end is not None:
                    pause = end - now if pause is None else min(pause, end - now)
            self.poll(None if pause is None else max(pause, 0.0))
            self.signals.drain()

    def sleep(self, seconds: float) -> None:
        """As time.sleep, reading the children meanwhile."""
        self.wait(lambda: False, seconds)
