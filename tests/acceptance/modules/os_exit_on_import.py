"""Ends the interpreter with os._exit(3) while being imported."""

import os

os._exit(3)


def work() -> None:
    pass
