"""The `mprun` command line: parse the arguments, dispatch to a command, map errors to exits."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import traceback
from collections.abc import Sequence

from runner import __version__
from runner.errors import BUG, FAILED, INTERRUPTED, TERMINATED, USAGE, Bug, MprunError, UsageError
from runner.reporter import FORMATS
from runner.target import IMPORT_TIMEOUT


def _seconds(text: str) -> float:
    """A positive, finite number of seconds, at most an hour."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: '{text}'") from None
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"must be more than 0 and at most 3600 seconds, not '{text}'")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mprun", description="Run Python multiprocessing graphs described in YAML, and check them."
    )
    parser.add_argument("--version", action="version", version=f"mprun {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    check = commands.add_parser(
        "check",
        help="validate workflow files",
        description="Validate workflow files: YAML, schema, "
        "cross-references and Python targets. Exit 0 when all are valid, 1 when any has an error, 2 on usage errors.",
    )
    check.add_argument(
        "paths", nargs="+", metavar="PATH", help="workflow files, folders, glob patterns, or - for standard input"
    )
    check.add_argument(
        "--format",
        choices=FORMATS,
        default="text",
        help="text (default): file:line:col lines; json; github: Actions annotations",
    )
    check.add_argument("--strict", action="store_true", help="treat warnings as errors")
    check.add_argument(
        "--no-import", dest="imports", action="store_false", help="do not import the targets (no user code runs)"
    )
    check.add_argument(
        "--import-timeout",
        type=_seconds,
        default=IMPORT_TIMEOUT,
        metavar="SECONDS",
        help=f"how long one target's import may take (default: {IMPORT_TIMEOUT:g})",
    )

    schema = commands.add_parser(
        "schema", help="print the workflow JSON Schema", description="Print the workflow JSON Schema (Draft 2020-12)."
    )
    schema.add_argument(
        "--format",
        choices=("json", "markdown"),
        default="json",
        help="json (default): the schema itself; markdown: the format reference written from it",
    )
    return parser


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "check":
        from runner.commands.check import check

        return check(
            args.paths,
            output_format=args.format,
            strict=args.strict,
            imports=args.imports,
            import_timeout=args.import_timeout,
        )
    from runner.commands.schema import schema

    return schema(output_format=args.format)


class _Terminated(BaseException):
    """SIGTERM, raised where mprun is, so that cleanup on the way out runs as for Ctrl-C."""


def _terminate(signum: int, frame: object) -> None:
    raise _Terminated


def main(argv: Sequence[str] | None = None) -> int:
    """Run mprun with `argv` (default: the process's arguments) and return its exit status."""
    args = _parser().parse_args(argv)
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if in_main_thread else None
    try:
        return _dispatch(args)
    except UsageError as error:
        print(f"mprun: error: {error}", file=sys.stderr)
        return USAGE
    except Bug as error:
        print(f"mprun: internal error: {error}; this is a bug in mprun, please report it", file=sys.stderr)
        return BUG
    except MprunError as error:
        print(f"mprun: {error}", file=sys.stderr)
        return FAILED
    except KeyboardInterrupt:
        return INTERRUPTED
    except _Terminated:
        return TERMINATED
    except BrokenPipeError:
        # The reader went away (`mprun check ... | head`): say nothing more, not even at exit,
        # when Python would flush stdout into the closed pipe and complain.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return FAILED
    except Exception:  # noqa: BLE001 - the one place a bug becomes an exit status
        print("mprun: internal error: this is a bug in mprun, please report it with this output:", file=sys.stderr)
        traceback.print_exc()
        return BUG
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)
