"""Hangs while being imported (for at most 60 s)."""

import time

time.sleep(60)


def work() -> None:
    pass
