"""What a child process tells mprun: small immutable records, sent over a pipe.

Imported by every child, so standard library only. Output lines do not travel as events: the
child's file descriptors 1 and 2 are pipes the parent reads directly, so nothing a child
flushed is lost when it is killed.
"""

from __future__ import annotations

from typing import NamedTuple


class Logged(NamedTuple):
    """A `logging` record of the child (its own loggers, or multiprocessing's)."""

    logger: str
    level: str
    message: str
    created: float
    traceback: str | None = None  # of `exc_info`, as logging would print it


class Raised(NamedTuple):
    """The exception that ended the target (the process then exits 1)."""

    type: str
    message: str
    traceback: str


class Returned(NamedTuple):
    """What the target returned, as `repr`, cut to a bounded length."""

    repr: str


class Usage(NamedTuple):
    """The child's resource use, measured as it finished (absent if it was killed)."""

    cpu_s: float
    max_rss_kb: int


Event = Logged | Raised | Returned | Usage
