"""Logging: multiprocessing's own logger at INFO, and the worker's output."""

import sys


def worker() -> None:
    print("Doing some work")
    sys.stdout.flush()
