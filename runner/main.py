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
from runner.errors import BUG, FAILED, INTERRUPTED, TERMINATED, USAGE, Bug, MprunError, Terminated, UsageError
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
    _overrides(check)
    check.add_argument(
        "--backend", choices=BACKEND_NAMES, help="also report what this backend refuses (default: the workflow's own)"
    )
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

    run = commands.add_parser(
        "run",
        help="run a workflow (also: mprun WORKFLOW)",
        description="Check, then run a workflow. Exit 0 when every process ended as expected and no step failed "
        "or timed out, 1 otherwise, 2 for an invalid workflow, 130 on Ctrl-C, 143 on SIGTERM.",
    )
    run.add_argument("workflow", metavar="WORKFLOW", help="the workflow file")
    run.add_argument(
        "--log-file", metavar="PATH", help="where the JSON lines go (default: mprun-logs/NAME-RUNID.jsonl)"
    )
    run.add_argument(
        "--log-format",
        choices=("console", "json"),
        default="console",
        help="what goes to stderr: console (default, for people) or json (the log's lines)",
    )
    run.add_argument(
        "--start-method",
        choices=("fork", "spawn", "forkserver"),
        help="start processes this way, whatever the workflow says",
    )
    run.add_argument(
        "--backend",
        choices=BACKEND_NAMES,
        help="run on this machine's multiprocessing (default) or on a Dask cluster, whatever the workflow says",
    )
    run.add_argument(
        "--cluster",
        metavar="ADDRESS",
        help="the Dask scheduler to run on (tcp://HOST:PORT), or 'local' for a LocalCluster started for the run "
        "(default: $MPRUN_CLUSTER, else local); implies --backend dask",
    )
    run.add_argument("--dry-run", action="store_true", help="print the plan: processes, objects, steps; start nothing")
    _overrides(run)
    run.add_argument(
        "--timeout",
        type=_duration,
        metavar="SECONDS",
        help="a cap on the whole run: on expiry stop everything and exit 1",
    )
    run.add_argument(
        "--grace",
        type=_grace,
        default=5.0,
        metavar="SECONDS",
        help="when stopping processes, seconds between SIGTERM and SIGKILL (default: 5)",
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


def _overrides(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="PATH=VALUE",
        help="a value of the workflow, as YAML, instead of the file's: processes.consumer.replicas=8 (repeatable)",
    )


def _grace(text: str) -> float:
    """Seconds between SIGTERM and SIGKILL: 0 (kill at once) to an hour."""
    try:
        if float(text) == 0:
            return 0.0
    except ValueError:
        pass
    return _seconds(text)


def _duration(text: str) -> float:
    """A run's time limit: any positive, finite number of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: '{text}'") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not '{text}'")
    return value


COMMANDS = ("check", "run", "schema")
BACKEND_NAMES = ("multiprocessing", "dask")  # as backends.BACKENDS, without importing it


def _with_command(argv: Sequence[str]) -> list[str]:
    """`mprun [OPTIONS] WORKFLOW` is `mprun run [OPTIONS] WORKFLOW`."""
    if not argv or argv[0] in COMMANDS or argv[0] in ("-h", "--help", "--version"):
        return list(argv)
    return ["run", *argv]


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "run":
        from runner.commands.run import run

        return run(
            args.workflow,
            log_file=args.log_file,
            log_format=args.log_format,
            dry_run=args.dry_run,
            timeout=args.timeout,
            grace=args.grace,
            start_method=args.start_method,
            backend=args.backend or ("dask" if args.cluster else None),
            cluster=args.cluster,
            overrides=args.overrides,
        )
    if args.command == "check":
        from runner.commands.check import check

        return check(
            args.paths,
            output_format=args.format,
            strict=args.strict,
            imports=args.imports,
            import_timeout=args.import_timeout,
            backend=args.backend,
            overrides=args.overrides,
        )
    from runner.commands.schema import schema

    return schema(output_format=args.format)


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


def _interruption(error: BaseException) -> KeyboardInterrupt | None:
    """The Ctrl-C or SIGTERM behind an error, if one is: Python wraps a KeyboardInterrupt raised
    in some places (a class's `__set_name__` while a module is imported) in a RuntimeError."""
    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, KeyboardInterrupt):
            return cause
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run mprun with `argv` (default: the process's arguments) and return its exit status."""
    args = _parser().parse_args(_with_command(sys.argv[1:] if argv is None else argv))
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
    except Terminated:
        return TERMINATED
    except KeyboardInterrupt:
        return INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`mprun check ... | head`): say nothing more, not even at exit,
        # when Python would flush stdout into the closed pipe and complain.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return FAILED
    except Exception as error:  # noqa: BLE001 - the one place a bug becomes an exit status
        interruption = _interruption(error)
        if interruption is not None:
            return TERMINATED if isinstance(interruption, Terminated) else INTERRUPTED
        if sys.modules.get("runner.entry") is not None and sys.modules["runner.entry"].interrupted:
            return INTERRUPTED  # raised by C code that a Ctrl-C cut short (see entry._noted)
        print("mprun: internal error: this is a bug in mprun, please report it with this output:", file=sys.stderr)
        traceback.print_exc()
        return BUG
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)
