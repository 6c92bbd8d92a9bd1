"""mprun: run Python multiprocessing graphs described in YAML.

The package root stays light: child processes import from it, so nothing heavy lives here.
"""

# No `from __future__ import annotations`: importing __future__ costs a moment in which a
# Ctrl-C would be a traceback from here (see entry.py); the annotations are strings.
TYPE_CHECKING = False  # as typing's; typing itself is not imported here: children import this package
if TYPE_CHECKING:
    from typing import Any

__version__ = "0.1.0"


def __getattr__(name: str) -> "Any":
    # `runner.run` without importing the runner's machinery into every child process.
    if name == "run":
        from runner import execution

        return execution.run
    if name in ("RunResult", "ProcessOutcome"):
        from runner import outcome

        return getattr(outcome, name)
    if name == "InvalidWorkflow":
        from runner import errors

        return errors.InvalidWorkflow
    raise AttributeError(f"module 'runner' has no attribute {name!r}")
