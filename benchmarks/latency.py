"""What one use of each kind of shared object costs, on each backend: the median of many uses
from one process (multiprocessing's objects under fork; the Dask backend's on a LocalCluster,
each use a round trip to the scheduler). For users to know what a chatty workflow costs on a
cluster. `python benchmarks/latency.py [--quick]`
"""

from __future__ import annotations

import multiprocessing
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

USES = 200


def _median_us(use: Callable[[], Any], uses: int) -> float:
    samples = []
    for _ in range(uses):
        began = time.perf_counter()
        use()
        samples.append(time.perf_counter() - began)
    return statistics.median(samples) * 1e6


def operations(make: dict[str, Callable[[], Any]]) -> dict[str, Callable[[], Any]]:
    queue, tasks, event, lock, semaphore = (make[kind]() for kind in ("queue", "joinable", "event", "lock", "bounded"))

    def joinable() -> None:
        tasks.put(1)
        tasks.get()
        tasks.task_done()

    def held() -> None:
        lock.acquire()
        lock.release()

    def leased() -> None:
        semaphore.acquire()
        semaphore.release()

    return {
        "queue put + get": lambda: queue.get(queue.put(1) or True),
        "joinable queue put + get + task_done": joinable,
        "event set + is_set": lambda: event.set() or event.is_set(),
        "lock acquire + release": held,
        "bounded semaphore acquire + release": leased,
    }


def main() -> int:
    uses = 20 if "--quick" in sys.argv else USES
    ctx = multiprocessing.get_context("fork")
    local = {
        "queue": ctx.Queue,
        "joinable": ctx.JoinableQueue,
        "event": ctx.Event,
        "lock": ctx.Lock,
        "bounded": lambda: ctx.BoundedSemaphore(2),
    }
    figures = {name: [_median_us(use, uses)] for name, use in operations(local).items()}
    import distributed

    from runner.backends.dask import objects

    with distributed.LocalCluster(processes=True, dashboard_address=None) as cluster, distributed.Client(cluster):
        remote = {
            "queue": objects.Queue,
            "joinable": objects.JoinableQueue,
            "event": objects.Event,
            "lock": objects.Lock,
            "bounded": lambda: objects.BoundedSemaphore(2),
        }
        for name, use in operations(remote).items():
            figures[name].append(_median_us(use, uses))
    print("| use, from one process | multiprocessing | Dask (LocalCluster) |\n|---|---:|---:|")
    for name, (mine, theirs) in figures.items():
        print(f"| {name} | {mine:,.1f} µs | {theirs:,.0f} µs |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
