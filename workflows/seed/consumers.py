"""Consumers on a JoinableQueue: tasks in, results out, one poison pill per consumer."""

from __future__ import annotations

import multiprocessing
import time
from multiprocessing.queues import JoinableQueue, Queue


class Consumer(multiprocessing.Process):
    def __init__(self, task_queue: JoinableQueue[Task | None], result_queue: Queue[str]) -> None:
        multiprocessing.Process.__init__(self)
        self.task_queue = task_queue
        self.result_queue = result_queue

    def run(self) -> None:
        proc_name = self.name
        while True:
            next_task = self.task_queue.get()
            if next_task is None:
                # Poison pill means shutdown
                print(f"{proc_name}: Exiting")
                self.task_queue.task_done()
                break
            print(f"{proc_name}: {next_task}")
            answer = next_task()
            self.task_queue.task_done()
            self.result_queue.put(answer)


class Task:
    def __init__(self, a: int, b: int) -> None:
        self.a = a
        self.b = b

    def __call__(self) -> str:
        time.sleep(0.1)  # pretend to take some time to do the work
        return f"{self.a} * {self.b} = {self.a * self.b}"

    def __str__(self) -> str:
        return f"{self.a} * {self.b}"
