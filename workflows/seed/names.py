"""Naming processes: a custom name, a name with a space, and multiprocessing's default."""

import multiprocessing
import time


def worker() -> None:
    name = multiprocessing.current_process().name
    print(name, "Starting")
    time.sleep(2)
    print(name, "Exiting")


def my_service() -> None:
    name = multiprocessing.current_process().name
    print(name, "Starting")
    time.sleep(3)
    print(name, "Exiting")
