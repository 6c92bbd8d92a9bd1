"""mprun: run Python multiprocessing graphs described in YAML.

The package root stays light: child processes import from it, so nothing heavy lives here.
"""

from __future__ import annotations

TYPE_CHECKING = False  # as typing's; typing itself is not imported here: children import this package
if TYPE_CHECKING:
    from typing import Any

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # `runner.run` without importing the runner's machinery into every child process.
    if name in ("run", "RunResult", "ProcessOutcome", "InvalidWorkflow"):
        from runner import execution

        return getattr(execution, name)
    raise AttributeError(f"module 'runner' has no attribute {name!r}")
