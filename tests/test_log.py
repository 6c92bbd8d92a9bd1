"""The log's writers: the fast `process.output` path writes what the structlog chain would."""

from __future__ import annotations

import io
import json

import pytest

from runner import records
from runner.log import configure
from runner.outcome import Ended
from runner.records import Output

LINES = [
    "plain",
    "",
    "ends with \\",
    '", "',
    '"',
    '\\", "',
    '", ',
    'quotes " and \\ backslash',
    "tab\tand\x01control",
    "ünïcödé and 😀",
    "x" * 5000,
    "\ufffd",
]


@pytest.mark.parametrize("console_format", ["console", "json"])
@pytest.mark.parametrize("copies", [1, 500])  # 500: a read written in many slices
def test_output_records_are_the_structlog_records(console_format: str, copies: int) -> None:
    lines = LINES * copies

    def write(how: str) -> tuple[list[dict[str, object]], str]:
        file, console = io.StringIO(), io.StringIO()
        log, recorder = configure(
            log_file=file, console=console, console_format=console_format, run_id="r-1", workflow="w"
        )
        for stream in ("stdout", "stderr"):
            if how == "structlog":
                for line in lines:
                    log.info("process.output", process="p 1", pid=42, stream=stream, line=line)
            else:
                recorder(Output("p 1", 42, stream, lines))
        records = [json.loads(line) for line in file.getvalue().splitlines()]
        for record in records:
            assert record.pop("timestamp").endswith("Z")
        shown = console.getvalue()
        if console_format == "json":
            shown = "\n".join(
                json.dumps({k: v for k, v in json.loads(line).items() if k != "timestamp"})
                for line in shown.splitlines()
            )
        return records, shown

    slow, fast = write("structlog"), write("fast")
    assert [list(record.items()) for record in fast[0]] == [list(record.items()) for record in slow[0]]
    assert fast[1] == slow[1]


def test_every_kind_of_record_becomes_its_log_line() -> None:
    ended = Ended("p", "p", 0, None, 42, -15, 1.0, 3.5, True, 0.25, 1000, None, None)
    made = [
        records.Started("p", 42, "p", 0, False),
        records.Output("p", 42, "stdout", ["one", "two"]),
        records.Output("p", 42, "stderr", ["10%\r20%"], partial=True),
        records.Logged("p", 42, "app", "SUBWARNING", "careful", 1.5, None),
        records.Raised("p", 42, "ValueError", "bad", "Traceback ..."),
        records.Returned("p", 42, "None"),
        records.Exited(ended),
        records.Stack("p", 42, "cannot exit", "File ..."),
        records.Stuck("p", 42, "feeds q", "get it"),
        records.Unreadable("p", 42, "events", "ValueError: an event of -3 bytes"),
        records.Descendant(None, 43, "sleep 300", False, "SIGTERM", -15),
        records.Stopping(("d",), overdue=False),
        records.Stopping(("p",), overdue=True),
    ]
    file = io.StringIO()
    _log, recorder = configure(log_file=file, console=io.StringIO(), console_format="console", run_id="r", workflow="w")
    for record in made:
        recorder(record)
    lines = [json.loads(line) for line in file.getvalue().splitlines()]
    assert [(line["event"], line["level"]) for line in lines] == [
        ("process.start", "info"),
        ("process.output", "info"),
        ("process.output", "info"),
        ("process.output", "info"),
        ("process.log", "info"),
        ("process.exception", "error"),
        ("process.return", "info"),
        ("process.exit", "info"),
        ("process.stack", "warning"),
        ("process.stuck", "warning"),
        ("process.unreadable", "error"),
        ("process.descendant", "warning"),
        ("run.stop_daemons", "info"),
        ("run.stop_overdue", "warning"),
    ]
    assert lines[0]["key"] == "p" and lines[0]["daemon"] is False
    assert lines[3]["partial"] is True and lines[3]["line"] == "10%\r20%"
    assert lines[4]["levelname"] == "SUBWARNING" and "traceback" not in lines[4]
    exited = lines[7]
    assert (exited["signal"], exited["duration_s"], exited["expected"]) == ("SIGTERM", 2.5, True)
    assert lines[11]["process"] is None and lines[11]["stopped_by"] == "SIGTERM"
    assert lines[13]["names"] == ["p"]
