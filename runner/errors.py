"""mprun's one error hierarchy; `main.error_handler` turns these into exit statuses."""

from __future__ import annotations

from typing import NoReturn

TYPE_CHECKING = False
if TYPE_CHECKING:
    from runner.checker import CheckResult


class MprunError(Exception):
    """Base of every error mprun reports to its user instead of a traceback."""


class UsageError(MprunError):
    """The command line asked for something that cannot be done (exit status 2)."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread, so that everything that cleans up after Ctrl-C (and
    lets Ctrl-C through) does the same for it."""


class InvalidWorkflow(MprunError):
    """The workflow has problems of error severity: nothing was started."""

    def __init__(self, result: CheckResult) -> None:
        super().__init__(f"{result.path} is not a valid workflow")
        self.result = result


class BuildFailed(Exception):
    """A shared object or a process could not be made (user code raised): nothing can run."""


class NotSendable(Exception):
    """A process cannot be handed to a spawn or forkserver child: it does not pickle. Its
    message is complete and names the process."""


class TimeLimit(BaseException):
    """`--timeout` expired. A BaseException, as Ctrl-C is: no `except Exception` may stop it."""


class Halt(BaseException):
    """A policy of the workflow stops the run now: a process ended otherwise than expected
    under fail fast, or a start condition cannot hold any more or took too long. Raised as a
    signal is, at the run's next wait."""


class Bug(MprunError):
    """mprun itself failed, after reporting what it could (exit status 3)."""


def assert_never(value: NoReturn) -> NoReturn:
    """mypy's check that a match covers every case (typing's own is Python 3.11's): a kind of
    step or record left out is a type error where it is matched."""
    raise AssertionError(f"unhandled {value!r}")


# Exit statuses, as the README documents them: scripts and CI depend on these numbers.
OK, FAILED, USAGE, BUG, INTERRUPTED, TERMINATED = 0, 1, 2, 3, 130, 143
