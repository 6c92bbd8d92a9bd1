"""Targets for the acceptance workflows: small functions that really use the shared objects.

The good workflows (`tests/acceptance/good/`) run these; the bad ones name them when their
mistake lies elsewhere, so that only the deliberate mistake is reported.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from typing import Any

LIMIT = 10  # a plain value, not callable


# -- generic -----------------------------------------------------------------------------------


def touch(*objects: Any, **options: Any) -> None:
    """Accept anything: for workflows whose mistake is not in the call."""
    print(f"{multiprocessing.current_process().name}: {len(objects)} argument(s), options {sorted(options)}")


def work(task: Any) -> None:
    """One argument, nothing more."""
    print(f"working on {task!r}")


def sleep_forever() -> None:
    """Sleep until terminated."""
    while True:
        time.sleep(0.1)


def fail_with(code: int) -> None:
    """End the process with `code` as its exit status."""
    raise SystemExit(code)


# -- queues ------------------------------------------------------------------------------------


def square_worker(tasks: Any, results: Any) -> None:
    """Square numbers from a JoinableQueue until a None pill arrives; mark every item done."""
    while True:
        item = tasks.get()
        try:
            if item is None:
                return
            results.put(item * item)
        finally:
            tasks.task_done()


def drain(queue: Any) -> None:
    """Print what arrives on a (simple) queue until a None pill."""
    while (item := queue.get()) is not None:
        print(f"logged: {item}")


def feed(queue: Any, count: int) -> None:
    """Put the numbers 0 .. count-1 on a queue."""
    for number in range(count):
        queue.put(number)


def numbers(count: int, start: int = 0) -> list[int]:
    """The items of a `put: from:` step."""
    return list(range(start, start + count))


def relay(source: Any, destination: Any, scale: int = 1, offset: int = 0) -> None:
    """Pass items on, transformed, until (and including) a None pill."""
    while True:
        item = source.get()
        if item is None:
            destination.put(None)
            return
        destination.put(item * scale + offset)


# -- events ------------------------------------------------------------------------------------


def announce(ready: Any) -> None:
    """Set an event."""
    time.sleep(0.1)
    ready.set()


def wait_then_work(go: Any, gate: Any, stop: Any) -> None:
    """Wait for three events in turn; fail if one never comes."""
    for event in (go, gate, stop):
        if not event.wait(10):
            raise SystemExit("an event was never set")
    print("all events seen")


# -- locks, semaphores, conditions, values -----------------------------------------------------


def add_with_lock(lock: Any, counter: Any, times: int) -> None:
    """Add 1 to an unsynchronized shared value `times` times, under a lock."""
    for _ in range(times):
        with lock:
            counter.value += 1


def use_slots(slots: Any, pool: Any, plain: Any, print_lock: Any) -> None:
    """Hold a semaphore slot of each kind for a moment."""
    with slots, pool, plain:
        time.sleep(0.05)
        with print_lock:
            print(f"{multiprocessing.current_process().name} held its slots")


def wait_for_total(changed: Any, total: Any) -> None:
    """Wait on a condition until the shared total is positive."""
    with changed:
        if not changed.wait_for(lambda: total.value > 0, timeout=10):
            raise SystemExit("the total never changed")


def set_total(changed: Any, total: Any) -> None:
    """Change the shared total and notify the condition's waiters."""
    time.sleep(0.1)
    with changed:
        total.value = 1.5
        changed.notify_all()


def reenter(*conditions: Any) -> None:
    """Acquire each condition twice: its lock must be re-entrant."""
    for condition in conditions:
        with condition, condition:
            condition.notify_all()


def set_flag(flag: Any) -> None:
    """Set a one-character shared value."""
    flag.value = b"y"


# -- barriers and arrays -----------------------------------------------------------------------


def barrier_tripped() -> None:
    """A barrier's action: called with no arguments by one party."""
    print(f"barrier tripped in {multiprocessing.current_process().name}")


def report(message: str) -> None:
    """Takes an argument, so it cannot be a barrier action."""
    print(message)


def run_leg(index: int, start: Any, finish: Any, slots: Any, weights: Any, letters: Any = None) -> None:
    """Meet at the start line, write one slot, meet at the finish."""
    start.wait()
    slots[index] = int(weights[index] * 2)
    if letters is not None:
        print(f"leg {index}: {letters[index]!r}")
    finish.wait()


# -- pipes -------------------------------------------------------------------------------------


def ping(connection: Any, count: int) -> None:
    """Send `count` messages and expect each one echoed back."""
    for number in range(count):
        connection.send(number)
        if connection.recv() != number:
            raise SystemExit("bad echo")
    connection.close()


def pong(connection: Any, count: int) -> None:
    """Echo `count` messages."""
    for _ in range(count):
        connection.send(connection.recv())
    connection.close()


def send_all(connection: Any, items: list[Any]) -> None:
    """Send items down a one-way pipe's sending end, then a None."""
    for item in items:
        connection.send(item)
    connection.send(None)
    connection.close()


def receive_all(connection: Any) -> None:
    """Receive from a one-way pipe's receiving end until a None."""
    while (item := connection.recv()) is not None:
        print(f"received {item!r}")


# -- managed objects ---------------------------------------------------------------------------


def score(scores: Any, seen: Any, config: Any, *, bag: Any) -> None:
    """Update a managed dict, list and namespace."""
    for _ in range(config.rounds):
        scores["alice"] = scores.get("alice", 0) + 1
    seen.append(os.getpid())
    bag.append("scored")
    if config.verbose:
        print(dict(scores))


def fill_state(table: Any, state: Any) -> None:
    """Put something in an initially empty dict and namespace."""
    table["pid"] = os.getpid()
    state.done = True


# -- names, replicas and arguments -------------------------------------------------------------


def greet(number: int, note: str, *, greeting: str = "hello", tag: Any = None) -> None:
    """Print the process name and the arguments (literal `$` strings included)."""
    print(f"{greeting} from {multiprocessing.current_process().name}: {number} {note!r} {tag!r}")


class Tools:
    @staticmethod
    def shout(text: str) -> None:
        print(text.upper())


# -- process classes ---------------------------------------------------------------------------


class Counter(multiprocessing.Process):
    """A Process subclass: adds `step` to a shared value `times` times."""

    def __init__(self, tally: Any, times: int, step: int = 1) -> None:
        super().__init__()
        self.tally = tally
        self.times = times
        self.step = step

    def run(self) -> None:
        for _ in range(self.times):
            with self.tally.get_lock():
                self.tally.value += self.step


class Worker(multiprocessing.Process):
    """A Process subclass with the default constructor."""

    def run(self) -> None:
        print(f"In {self.name}")


class Plain:
    """A class that is not a Process."""

    def __init__(self, task: Any) -> None:
        self.task = task
