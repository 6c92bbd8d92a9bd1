"""The parent's reader on real pipes and processes: what it reads when a process exits."""

from __future__ import annotations

import os
import subprocess
import time
from multiprocessing import Pipe

import pytest

from runner import records
from runner.backends.multiprocessing.reader import Reader

pytestmark = pytest.mark.timeout(30)


def test_at_an_exit_it_reads_what_is_in_the_pipe_and_no_more() -> None:
    # A descendant that inherited the process's stdout and writes without end: reading
    # "until the pipe is empty" would never end, and nothing (not --timeout) could stop mprun.
    told: list[records.Record] = []
    reader = Reader(told.append)
    read, write = Pipe(duplex=False)
    ended, _ = os.pipe()
    report = reader.add("p", 1, {"stdout": read}, ended)
    line = "y" * 99
    writer = subprocess.Popen(["yes", line], stdout=write.fileno())
    write.close()
    try:
        time.sleep(0.3)  # the pipe is full
        began = time.monotonic()
        reader.drain(report)
        assert time.monotonic() - began < 5
        read_lines = [text for record in told if isinstance(record, records.Output) for text in record.lines]
        assert read_lines and set(read_lines) <= {line, line[: len(read_lines[-1])]}
        assert len(read_lines) * (len(line) + 1) <= 1024 * 1024 + len(line)  # a pipe's worth, at most
    finally:
        writer.kill()
        writer.wait()
        reader.close()
        os.close(ended)
        os.close(_)
