"""The log's writers: the fast `process.output` path writes what the structlog chain would."""

from __future__ import annotations

import io
import json

import pytest

from runner.log import configure

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
        log, output = configure(
            log_file=file, console=console, console_format=console_format, run_id="r-1", workflow="w"
        )
        for stream in ("stdout", "stderr"):
            if how == "structlog":
                for line in lines:
                    log.info("process.output", process="p 1", pid=42, stream=stream, line=line)
            else:
                output("p 1", 42, stream, lines)
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
