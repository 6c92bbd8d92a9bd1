"""mprun's own output: one structlog logger writing JSON lines to the log file and, for people,
a readable line per event on stderr. Configured once per run, in the parent only.

The log contract (documented in docs/running.md): every line has `timestamp` (ISO 8601, UTC),
`level`, `event`, `run_id` and `workflow`; records about a process add `process` and `pid`.
"""

from __future__ import annotations

import datetime
import json
import os
import re
from collections.abc import Callable, MutableMapping
from json.encoder import encode_basestring_ascii
from typing import Any, TextIO

import structlog

from runner import records
from runner.errors import assert_never
from runner.outcome import judge
from runner.records import Record

EventDict = MutableMapping[str, Any]


CONSOLE_ITEM = 200  # characters of a queue item the console shows (the log file has 2,000)


def _console_line(event: EventDict) -> str | None:
    """The human view of one event, or None for events the console leaves to the log file."""
    name = event.get("event", "")
    who = str(event.get("process") or "mprun")
    if name == "process.output":
        mark = "|" if event.get("stream") == "stdout" else "!"
        return f"{who} {mark} {event.get('line', '')}"
    if name == "process.log":
        return f"{who} | [{event.get('logger')}] {event.get('levelname')}: {event.get('message')}"
    if name == "process.exception":
        return f"{who} ! raised {event.get('type')}: {event.get('message')}"
    if name == "process.start":
        return f"{who} - started (pid {event.get('pid')})"
    if name == "process.exit" and event.get("lost"):
        return f"{who} - lost: {event['lost']}, NOT as expected"
    if name == "process.exit":
        how = f"signal {event['signal']}" if event.get("signal") else f"exit code {event.get('exitcode')}"
        if event.get("restart_in_s") is not None:
            return f"{who} - ended with {how}, restarting in {event['restart_in_s']:g} s"
        verdict = "as expected" if event.get("expected") else "NOT as expected"
        return f"{who} - ended with {how}, {verdict}"
    if name == "process.restart":
        given = event.get("given") or []
        held = f"; it was given {', '.join(given)}, which the attempt that ended may have left held" if given else ""
        return f"{who} - restarting (attempt {event.get('attempt')}) after {event.get('reason')}{held}"
    if name == "process.max_run_time":
        return f"{who} ! still running after its max_run_time of {event.get('max_run_time'):g} s: stopping it"
    if name == "run.condition":
        return f"mprun - starting {event.get('key')}: {'; '.join(event.get('conditions', []))}"
    if name == "process.stack":
        lines = str(event.get("stack") or "(no answer)").splitlines()
        return f"{who} ! stack ({event.get('reason')}):\n" + "\n".join("    " + line for line in lines)
    if name == "run.log_incomplete":
        return f"mprun ! the log file cannot be written ({event.get('error')}): from here on it is incomplete"
    if name == "run.warning":
        return f"mprun ! {event.get('category')}: {event.get('message')} ({event.get('file')}:{event.get('line')})"
    if name == "process.descendant":
        command = str(event.get("command"))
        if event.get("forked"):
            shown = "a fork of it" if event.get("process") else "a fork of one of them"
        else:
            shown = command if len(command) <= CONSOLE_ITEM else command[:CONSOLE_ITEM] + "..."
        whose = "it left" if event.get("process") else "a process of the run left"
        return f"{who} - stopped what {whose} running, by {event.get('stopped_by')}: pid {event.get('pid')}, {shown}"
    if name == "process.stuck":
        return f"{who} ! {event.get('reason')}; {event.get('hint')}"
    if name == "run.stop_overdue":
        return f"mprun - stopping what still runs after its join timed out: {', '.join(event.get('names', []))}"
    if name == "process.return":
        return f"{who} - returned {event.get('repr')}"
    if name == "queue.get":
        return f"mprun - got from {event.get('queue')}: {_shortened(event.get('item'))}"
    if name == "pipe.recv":
        return f"mprun - received on {event.get('pipe')}: {_shortened(event.get('item'))}"
    if name == "map.result":
        if "index" in event:
            return f"mprun - {event.get('pool')} result {event['index']}: {_shortened(event.get('item'))}"
        where = f" ({event.get('chunk')} of {event.get('chunks')})" if event.get("chunks", 1) > 1 else ""
        return f"mprun - {event.get('pool')} results{where}: {_shortened(event.get('items'))}"
    if name == "map.progress":
        return f"mprun - {event.get('pool')}: {event.get('done')} of {event.get('total')} {event.get('unit')} done"
    if name == "map.error":
        return f"mprun ! {event.get('pool')}: a task raised {event.get('type')}: {event.get('message')}"
    if name == "object.show":
        return f"mprun - {event.get('object')}: {_shortened(event.get('value'))}"
    if name == "step.start":
        return f"mprun > {event.get('kind')} {event.get('subject', '')}".rstrip()
    if name == "step.end":
        detail = f" ({event['detail']})" if event.get("detail") else ""
        return f"mprun < {event.get('kind')}: {event.get('outcome')}{detail}"
    if name == "run.start":
        return f"mprun - running {event.get('workflow')} ({event.get('start_method')}), log: {event.get('log_file')}"
    if name == "run.end":
        return f"mprun - run {event.get('status')}"
    if name == "run.stopping":
        return f"mprun ! stopping the run: {event.get('reason')}"
    if name.startswith("process.") or name.startswith("run."):
        return None
    return f"{who} - {name} {json.dumps({k: v for k, v in event.items() if k not in _BASE}, default=str)}"


def _shortened(value: object) -> str:
    text = str(value)
    return text if len(text) <= CONSOLE_ITEM else text[:CONSOLE_ITEM] + f"... ({len(text)} characters)"


# What a terminal would act on rather than show: C0 and C1 controls but the tab (escape
# sequences, carriage returns, newlines), and the controls that reorder text (bidi).
_HIDDEN = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")


def visible(text: str) -> str:
    """`text` with what a terminal would act on written out as escapes (`\\x1b`, `\\u202e`): no
    line a child writes, and no name it is given, can pass for a line of mprun's own."""
    if text.isprintable():
        return text
    return _HIDDEN.sub(lambda found: ascii(found.group())[1:-1], text)


def _for_console(event: EventDict) -> EventDict:
    """The event's text made visible, each line of a stack apart, an output line as a terminal
    shows it (see _as_shown)."""
    shown: EventDict = {}
    for key, value in event.items():
        if isinstance(value, str):
            if key == "line":
                value = _as_shown(value)
            if key == "stack":
                value = "\n".join(visible(line) for line in value.splitlines())
            else:
                value = visible(value)
        elif isinstance(value, list):
            value = [visible(item) if isinstance(item, str) else item for item in value]
        shown[key] = value
    return shown


def _as_shown(line: str) -> str:
    """What a terminal shows of a line with carriage returns: what follows the last one (the
    console's own prefix would be overwritten otherwise)."""
    return line.rsplit("\r", 1)[-1] if "\r" in line else line


_BASE = frozenset({"event", "timestamp", "level", "run_id", "workflow", "process", "pid"})


class _Console:
    """A structlog processor that also shows each event on the console, then passes it on."""

    def __init__(self, stream: TextIO, as_json: bool) -> None:
        self.stream: TextIO | None = stream
        self.as_json = as_json

    def __call__(self, logger: object, method: str, event: EventDict) -> EventDict:
        if self.stream is None:
            return event
        line = json.dumps(event, default=str) if self.as_json else _console_line(_for_console(event))
        if line is not None:
            self.write(line + "\n")
        return event

    def write(self, text: str) -> None:
        """Show `text` (whole lines)."""
        if self.stream is not None and not _written(self.stream, text):
            # The console went away (`mprun ... | head`): the run and its log file go on,
            # and nothing is written there again, not even by Python's flush at exit.
            _silence(self.stream)
            self.stream = None


def _written(stream: TextIO, text: str) -> bool:
    """Write and flush `text`; False if the stream cannot take it any more."""
    try:
        stream.write(text)
        stream.flush()
    except (OSError, ValueError):
        return False
    return True


def _silence(stream: TextIO) -> None:
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())
    except (OSError, ValueError):
        pass  # not a file descriptor (a test's StringIO): dropping it is enough


class _File:
    """Writes each rendered line to the log file, whole lines (only mprun's one thread logs)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream: TextIO | None = stream
        self.failure: str | None = None  # why the log stopped being written, once it did
        self.lost = 0  # lines not written since
        self.on_error: Callable[[str], None] | None = None

    def msg(self, message: str) -> None:
        self.write(message + "\n")

    def write(self, text: str) -> None:
        """Write `text` (whole lines)."""
        if self.stream is None:
            self.lost += text.count("\n")
            return
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError) as error:
            # A full disk: stop writing rather than stop reading the children, who would
            # then block on full pipes. The run goes on; the console is told at once, and
            # the run fails at the end (its log is not whole).
            self.stream = None
            self.failure = getattr(error, "strerror", None) or str(error)
            self.lost += text.count("\n")
            if self.on_error is not None:
                self.on_error(self.failure)

    info = warning = error = critical = debug = msg


SLICE_CHARS = 32 * 1024  # of records written at once


class Lines:
    """Writes `process.output` records, all the lines of a read at once: the one path as hot as
    a child can print. Each record is exactly what the structlog chain would write for
    `log.info("process.output", ...)` (a test holds the two equal), without its cost per line
    of a dict, five processor calls and a flush."""

    def __init__(self, file: _File, console: _Console, run_id: str, workflow: str) -> None:
        self.file = file
        self.console = console
        self.bound = json.dumps({"run_id": run_id, "workflow": workflow})[:-1]

    def __call__(self, process: str, pid: int, stream: str, lines: list[str], worker: str | None = None) -> None:
        if not lines:
            return
        stamp = datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z")
        where = "" if worker is None else f', "worker": {json.dumps(worker)}'
        head = f'{self.bound}, "process": {json.dumps(process)}, "pid": {pid}{where}, "stream": "{stream}", "line": '
        tail = f', "event": "process.output", "level": "info", "timestamp": "{stamp}"}}\n'
        glue = tail + head
        prefix = f"{visible(process)} {'|' if stream == 'stdout' else '!'} "
        # Written in slices of about SLICE_CHARS: a read of 64 KiB of short lines makes megabytes
        # of records, and strings that large are pages fresh from the kernel each time (tens
        # of thousands of page faults in a run of P5, half the reader's time).
        sample = lines[:64]
        step = max(1, int(SLICE_CHARS / (sum(map(len, sample)) / len(sample) + len(glue))))
        console = self.console
        for start in range(0, len(lines), step):
            part = lines[start : start + step]
            # json.dumps's own string encoder, mapped in C over the lines: no Python call per line.
            records = head + glue.join(map(encode_basestring_ascii, part)) + tail
            self.file.write(records)
            if console.stream is not None:
                if console.as_json:
                    shown = records
                elif all(map(str.isprintable, part)):
                    shown = prefix + ("\n" + prefix).join(part) + "\n"
                else:
                    shown = prefix + ("\n" + prefix).join(visible(_as_shown(line)) for line in part) + "\n"
                console.write(shown)


# Python's SUBDEBUG and SUBWARNING (multiprocessing's own levels) logged at the nearest standard one.
_METHODS = {
    "DEBUG": "debug",
    "SUBDEBUG": "debug",
    "INFO": "info",
    "SUBWARNING": "info",
    "WARNING": "warning",
    "ERROR": "error",
    "CRITICAL": "critical",
}


# Records logged as they are, each field a field of the line: (level, event).
_PLAIN: dict[type, tuple[str, str]] = {
    records.Started: ("info", "process.start"),
    records.Raised: ("error", "process.exception"),
    records.Returned: ("info", "process.return"),
    records.Stack: ("warning", "process.stack"),
    records.Stuck: ("warning", "process.stuck"),
    records.Unreadable: ("error", "process.unreadable"),
    records.Descendant: ("warning", "process.descendant"),
    records.Restarted: ("warning", "process.restart"),
    records.Overran: ("warning", "process.max_run_time"),
}


class Recorder:
    """Writes each record of what happened to a process (records.py) as its log line: the one
    place they become log lines, whichever backend made them. The first listener of a run's
    loop."""

    def __init__(self, log: Any, lines: Lines) -> None:
        self.log = log
        self.lines = lines
        self.workers: dict[str, str] = {}  # process -> the cluster's worker it runs on (Dask)

    def _where(self, process: str | None) -> dict[str, str]:
        worker = self.workers.get(process) if process is not None else None
        return {} if worker is None else {"worker": worker}

    @property
    def log_error(self) -> str | None:
        """Why the log file stopped taking lines, if it did: the log is incomplete."""
        file = self.lines.file
        return None if file.failure is None else f"{file.failure}; {file.lost} log lines lost"

    def __call__(self, record: Record) -> None:
        log = self.log
        match record:
            case records.Output(partial=False):
                self.lines(record.process, record.pid, record.stream, record.lines, self.workers.get(record.process))
            case records.Output():
                for line in record.lines:
                    log.info(
                        "process.output",
                        process=record.process,
                        pid=record.pid,
                        **self._where(record.process),
                        stream=record.stream,
                        line=line,
                        partial=True,
                    )
            case (
                records.Started()
                | records.Raised()
                | records.Returned()
                | records.Stack()
                | records.Stuck()
                | records.Unreadable()
                | records.Descendant()
                | records.Restarted()
                | records.Overran()
            ):
                level, event = _PLAIN[type(record)]
                if isinstance(record, records.Started) and record.worker is not None:
                    self.workers[record.process] = record.worker
                fields = {name: getattr(record, name) for name in record.__dataclass_fields__}
                fields.pop("worker", None)
                getattr(log, level)(event, **fields, **self._where(record.process))
            case records.Logged():
                extra = {"traceback": record.traceback} if record.traceback else {}
                getattr(log, _METHODS.get(record.level, "info"))(
                    "process.log",
                    process=record.process,
                    pid=record.pid,
                    **self._where(record.process),
                    logger=record.logger,
                    levelname=record.level,
                    message=record.message,
                    created=record.created,
                    **extra,
                )
            case records.Exited():
                ended = record.ended
                outcome = judge(ended)
                told: dict[str, Any] = {"lost": ended.lost} if ended.lost else {}  # a cluster's worker died
                if ended.restarts or ended.restart_in is not None:
                    told["attempt"] = ended.restarts + 1
                if ended.restart_in is not None:
                    told["restart_in_s"] = ended.restart_in
                if ended.overran is not None:
                    told["max_run_time"] = ended.overran
                (log.info if outcome.expected or ended.restart_in is not None else log.error)(
                    "process.exit",
                    **told,
                    **self._where(record.process),
                    process=outcome.name,
                    pid=outcome.pid,
                    exitcode=outcome.exitcode,
                    signal=outcome.signal,
                    duration_s=outcome.duration_s,
                    cpu_s=outcome.cpu_s,
                    max_rss_kb=outcome.max_rss_kb,
                    expected=outcome.expected,
                )
            case records.Stopping(overdue=False):
                log.info("run.stop_daemons", names=list(record.names))
            case records.Stopping():
                log.warning("run.stop_overdue", names=list(record.names))
            case _:
                assert_never(record)


def configure(
    *, log_file: TextIO, console: TextIO, console_format: str, run_id: str, workflow: str
) -> tuple[structlog.typing.FilteringBoundLogger, Recorder]:
    """The run's logger, its events bound to `run_id` and `workflow`, and the writer of the
    records of what happened to its processes."""
    file = _File(log_file)
    shown = _Console(console, console_format == "json")
    logger = structlog.wrap_logger(
        file,
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            shown,
            structlog.processors.JSONRenderer(default=str),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(0),
        cache_logger_on_first_use=True,
    )
    bound = logger.bind(run_id=run_id, workflow=workflow)

    def tell(error: str) -> None:  # on the console; the file has stopped taking lines
        bound.error("run.log_incomplete", error=error)

    file.on_error = tell
    return bound, Recorder(bound, Lines(file, shown, run_id, workflow))
