"""Exit codes: 0 for a return, n for sys.exit(n), 1 for an exception, -N for signal N."""

import sys
import time


def exit_error() -> None:
    sys.exit(1)


def exit_ok() -> None:
    return


def return_value() -> int:
    return 1


def raises() -> None:
    raise RuntimeError("There was an error!")


def terminated() -> None:
    time.sleep(3)
