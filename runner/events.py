"""What a child process tells mprun: small immutable records, sent over a pipe.

Imported by every child (under spawn, anew in each), so standard library only and cheap to
import: plain classes with slots, not NamedTuple, which would import `typing` into every
child. Output lines do not travel as events: the child's file descriptors 1 and 2 are pipes
the parent reads directly, so nothing a child flushed is lost when it is killed.
"""

from __future__ import annotations


class _Record:
    """Immutable, compared and shown by its fields, picklable."""

    __slots__: tuple[str, ...] = ()

    def __init__(self, *values: object) -> None:
        for name, value in zip(self.__slots__, values, strict=True):
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __reduce__(self) -> tuple[type, tuple[object, ...]]:
        return type(self), tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.__reduce__() == other.__reduce__()

    def __hash__(self) -> int:
        return hash(self.__reduce__())

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{type(self).__name__}({fields})"


class Logged(_Record):
    """A `logging` record of the child (its own loggers, or multiprocessing's)."""

    __slots__ = ("logger", "level", "message", "created", "traceback")  # noqa: RUF023 - in the order of the arguments
    logger: str
    level: str
    message: str
    created: float
    traceback: str | None  # of `exc_info`, as logging would print it

    def __init__(self, logger: str, level: str, message: str, created: float, traceback: str | None = None) -> None:
        super().__init__(logger, level, message, created, traceback)


class Raised(_Record):
    """The exception that ended the target (the process then exits 1)."""

    __slots__ = ("type", "message", "traceback")  # noqa: RUF023 - in the order of the arguments
    type: str
    message: str
    traceback: str

    def __init__(self, type: str, message: str, traceback: str) -> None:
        super().__init__(type, message, traceback)


class Returned(_Record):
    """What the target returned, as `repr`, cut to a bounded length."""

    __slots__ = ("repr",)
    repr: str

    def __init__(self, repr: str) -> None:
        super().__init__(repr)


class Usage(_Record):
    """The child's resource use, measured as it finished (absent if it was killed)."""

    __slots__ = ("cpu_s", "max_rss_kb")
    cpu_s: float
    max_rss_kb: int

    def __init__(self, cpu_s: float, max_rss_kb: int) -> None:
        super().__init__(cpu_s, max_rss_kb)
