"""mprun: run Python multiprocessing graphs described in YAML.

The package root stays light: child processes import from it, so nothing heavy lives here.
"""

__version__ = "0.1.0"

from typing import Any


def __getattr__(name: str) -> Any:
    # `runner.run` without importing the runner's machinery into every child process.
    if name in ("run", "RunResult", "ProcessOutcome", "InvalidWorkflow"):
        from runner import execution

        return getattr(execution, name)
    raise AttributeError(f"module 'runner' has no attribute {name!r}")
