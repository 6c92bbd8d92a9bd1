"""Terminating a process: it is stopped before it can finish."""

import time


def slow_worker() -> None:
    print("Starting worker")
    time.sleep(0.1)
    print("Finished worker")
