"""Calls sys.exit() while being imported (a script without an `if __name__ == "__main__"` guard)."""

import sys

sys.exit(2)


def work() -> None:
    pass
