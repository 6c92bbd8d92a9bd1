"""A Lock shared by two processes guards a counter that has no lock of its own."""

import ctypes
import multiprocessing
from multiprocessing.synchronize import Lock


def worker(lock: Lock, counter: ctypes.c_int, times: int) -> None:
    name = multiprocessing.current_process().name
    for _ in range(times):
        with lock:
            # Read, then write: without the lock two workers lose each other's increments.
            counter.value = counter.value + 1
    with lock:
        print(f"{name}: done")


def check_total(counter: ctypes.c_int, expected: int) -> None:
    if counter.value != expected:
        raise SystemExit(f"the counter is {counter.value}, not {expected}: increments were lost")
    print(f"the counter is {counter.value}, as expected")
