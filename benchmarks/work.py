"""The work both sides of each comparison do: mprun's workflows and the hand-written
baselines call these same functions, so that only the orchestration differs."""

from __future__ import annotations

import sys
import time
from typing import Any


def noop() -> None:
    """A process that does nothing: what starting and joining one costs."""


def double(number: int) -> int:
    """A small task for a pool's map."""
    return number * 2


def produce(queue: Any, count: int) -> None:
    """`count` small items, then a None to say it is over."""
    for number in range(count):
        queue.put(number)
    queue.put(None)


def consume(queue: Any) -> None:
    """Read until None; print the items per second, timed from the first item to the last."""
    queue.get()
    began, count = time.perf_counter(), 1
    while queue.get() is not None:
        count += 1
    elapsed = time.perf_counter() - began
    print(f"items_per_s={count / elapsed if elapsed else 0:.0f}", flush=True)


def flood(count: int, path: str | None = None) -> None:
    """Print `count` lines as fast as Python can, to stdout or to the file at `path`."""
    out = open(path, "w", buffering=1) if path else sys.stdout
    for number in range(count):
        print(f"line {number}", file=out)
    if path:
        out.close()


def ticks(count: int, pause: float) -> None:
    """`count` lines, `pause` s apart, each with the time it was printed (not flushed: line
    buffering is what makes it live)."""
    for _ in range(count):
        print(f"t {time.time():.6f}")
        time.sleep(pause)
