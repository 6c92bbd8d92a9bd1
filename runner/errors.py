"""mprun's one error hierarchy; `main.error_handler` turns these into exit statuses."""

from __future__ import annotations


class MprunError(Exception):
    """Base of every error mprun reports to its user instead of a traceback."""


class UsageError(MprunError):
    """The command line asked for something that cannot be done (exit status 2)."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread, so that everything that cleans up after Ctrl-C (and
    lets Ctrl-C through) does the same for it."""


class Bug(MprunError):
    """mprun itself failed, after reporting what it could (exit status 3)."""


# Exit statuses, as the README documents them: scripts and CI depend on these numbers.
OK, FAILED, USAGE, BUG, INTERRUPTED, TERMINATED = 0, 1, 2, 3, 130, 143
