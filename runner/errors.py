"""mprun's one error hierarchy; `main.error_handler` turns these into exit statuses."""

from __future__ import annotations


class MprunError(Exception):
    """Base of every error mprun reports to its user instead of a traceback."""


class UsageError(MprunError):
    """The command line asked for something that cannot be done (exit status 2)."""


# The documented exit statuses of every mprun command.
OK, FAILED, USAGE, BUG, INTERRUPTED, TERMINATED = 0, 1, 2, 3, 130, 143
