"""The `mprun` console script's entry point, which imports nothing until it is called.

Under spawn and forkserver every child re-runs the parent's main script (here, the one pip
wrote for `mprun`) to rebuild `__main__`; importing the whole command line there would cost each
child tens of milliseconds for nothing.
"""

# No `from __future__` import, for the reason given in __init__.py.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from sys import UnraisableHookArgs


def main() -> int:
    """Run the `mprun` command line; Ctrl-C at any moment from here on is exit status 130."""
    status = 130  # errors.INTERRUPTED, not imported: a Ctrl-C may come before any import is done
    try:
        import signal
        import sys

        sys.unraisablehook = _unraisable(sys.unraisablehook)
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            _noted.previous = signal.default_int_handler  # type: ignore[attr-defined]  # for fork children
            signal.signal(signal.SIGINT, _noted)
        from runner.main import main as command_line

        status = command_line()
    except KeyboardInterrupt:  # during the imports, or a second one while the first was handled
        status = 130
    return _finishing(status)


interrupted = False  # a Ctrl-C came: an error raised meanwhile may be its doing


def _noted(number: int, frame: object) -> None:
    """Python's own Ctrl-C handler, which also notes that it ran: a KeyboardInterrupt raised
    inside some C code during an import comes out as another error (a TypeError from ssl's
    `from _ssl import ...`), and main.py must take that for the interruption it is."""
    global interrupted
    interrupted = True
    raise KeyboardInterrupt


def _unraisable(hook: "Callable[[UnraisableHookArgs], object]") -> "Callable[[UnraisableHookArgs], object]":
    """Python's hook for errors it cannot raise, quiet about a Ctrl-C: one that lands in a
    callback (the import system's, while a module is imported) is reported there as "Exception
    ignored in", with a traceback, although the next Ctrl-C or the one before is acted on."""

    def unraisable(details: "UnraisableHookArgs") -> object:
        if isinstance(details.exc_value, KeyboardInterrupt):
            return None
        return hook(details)

    unraisable.previous = hook  # type: ignore[attr-defined]  # what a fork child puts back
    return unraisable


def _finishing(status: int) -> int:
    """Ignore Ctrl-C and SIGTERM from now on: every child is stopped and the log ended, the
    status is the run's, and a Ctrl-C at interpreter exit (in an atexit function) would print a
    traceback. Retried, for one that
    comes before SIGINT is ignored; after that, Python runs no handler that was set."""
    while True:
        try:
            import signal

            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            return status
        except KeyboardInterrupt:
            status = 130
        except ValueError:  # not the main thread: the caller's handlers are the caller's
            return status
