"""Imports a package that is not installed."""

import numpyy  # noqa: F401


def work() -> None:
    pass
