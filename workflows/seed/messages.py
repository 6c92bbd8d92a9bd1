"""Passing messages: a custom object travels to a worker through a Queue."""

from __future__ import annotations

import multiprocessing
from multiprocessing.queues import Queue


class MyFancyClass:
    def __init__(self, name: str) -> None:
        self.name = name

    def do_something(self) -> None:
        proc_name = multiprocessing.current_process().name
        print(f"Doing something fancy in {proc_name} for {self.name}!")


def worker(q: Queue[MyFancyClass]) -> None:
    obj = q.get()
    obj.do_something()
