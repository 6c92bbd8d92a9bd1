"""Daemon processes: the daemon outlives a timed join; the non-daemon is waited for."""

import multiprocessing
import time


def daemon() -> None:
    name = multiprocessing.current_process().name
    print("Starting:", name)
    time.sleep(2)
    print("Exiting :", name)


def non_daemon() -> None:
    name = multiprocessing.current_process().name
    print("Starting:", name)
    print("Exiting :", name)
