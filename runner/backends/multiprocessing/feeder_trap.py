"""The queue-feeder trap, diagnosed from what mprun observed: a process whose target is over
but which cannot exit, because items it put on a queue wait unread in the queue's pipe and no
process that runs gets that queue. Only mprun could read them, and it is waiting in a join: the
deadlock the multiprocessing docs warn of under "joining processes that use queues"
(multiprocessing's feeder thread makes a process wait at exit until what it put is written).
"""

from __future__ import annotations

import fcntl
import select
import struct
import termios
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

# Once its target is over a process exits at once, unless its feeder thread cannot write:
# past this, it is looked at as possibly trapped.
TRAPPED_AFTER = 0.5
FED_KINDS = frozenset({"queue", "joinable_queue"})  # the kinds with a feeder thread
HINT = (
    "its target is over, but multiprocessing's queue feeder thread makes a process wait at exit "
    "until the items it put are read: get them before joining"
)
_F_GETPIPE_SZ = getattr(fcntl, "F_GETPIPE_SZ", 0)  # Linux; elsewhere pipes hold 64 KiB


@dataclass(frozen=True)
class Waited:
    """A process a join waits for, as mprun sees it."""

    name: str
    finished: float | None  # monotonic time its target was over (None: still running it)
    queues: tuple[str, ...]  # the queues with a feeder thread it was given


def suspects(waiting: Sequence[Waited], now: float) -> list[Waited]:
    """Those whose target has been over long enough that they should have exited."""
    return [one for one in waiting if one.finished is not None and now - one.finished >= TRAPPED_AFTER]


def trapped(waiting: Sequence[Waited], blocked: Mapping[str, bool]) -> dict[str, list[str]]:
    """Each process caught, with the queues it still feeds: `blocked` says, for each queue of
    theirs, whether its pipe is full while no running process gets it."""
    found = {}
    for one in waiting:
        fed = [name for name in one.queues if blocked.get(name)]
        if fed:
            found[one.name] = fed
    return found


def reason(fed: Sequence[str]) -> str:
    queues = ", ".join(fed)
    return f"cannot exit: items it put on {queues} are unread, and no running process gets {queues}"


def pipe_fill(descriptor: int) -> tuple[int, int] | None:
    """How many bytes wait unread in the pipe behind `descriptor` (either end), and how many it
    holds; None where the system cannot tell."""
    try:
        unread = struct.unpack("i", fcntl.ioctl(descriptor, termios.FIONREAD, b"\0\0\0\0"))[0]
        size = fcntl.fcntl(descriptor, _F_GETPIPE_SZ) if _F_GETPIPE_SZ else 65536
    except (OSError, ValueError):
        return None
    return int(unread), int(size)


def pipe_full(descriptor: int) -> bool:
    """Whether the pipe behind `descriptor` (a queue's reader) is (nearly) full: a feeder
    thread writing to it blocks. A few unread bytes are no trap: the process may be slow to
    exit for other reasons."""
    fill = pipe_fill(descriptor)
    return fill is not None and fill[0] > fill[1] - select.PIPE_BUF
