"""Live and lossless output: what a child prints reaches the log as it prints it, in order, and
nothing it wrote is lost when mprun stops it, under every start method. PYTHONUNBUFFERED is unset
here (see conftest.py), as on users' machines."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runner.backends.multiprocessing.reader import LINE_LIMIT
from tests.support import ROOT, start_mprun, user_env, wait_for, whole_lines, workflow, write
from tests.test_run import METHODS, run_mprun

pytestmark = pytest.mark.timeout(60)

JOBS = """
import signal, sys, time

def tick_then_wait(path):
    print("first line, not flushed")
    with open(path, "w") as out:
        out.write("printed")
    time.sleep(60)

def partial():
    print("whole line")
    sys.stdout.write("no newline yet")
    sys.stderr.write("nor here")
    time.sleep(60)

def many_then_return(count):
    for number in range(count):
        print(f"line {number}")
    return "done"

def carriage_returns():
    for percent in (10, 50, 100):
        print(f"\\r{percent}%", end="")
    print()

def progress():
    for step in (1, 2, 3):
        sys.stdout.write(f"\\rstep {step}")
        time.sleep(0.3)
    print()

def streams():
    print(sys.stdout.write_through, sys.stdout.line_buffering)

def handles_sigterm(path):
    def handler(number, frame):
        with open(path, "a") as out:
            out.write("handled\\n")
        sys.exit(0)
    signal.signal(signal.SIGTERM, handler)
    print("waiting")
    time.sleep(60)

def fork_then_exec():
    import os
    if os.fork() == 0:  # keeps a copy of the stack pipe: mprun cannot tell the exec by it
        time.sleep(30)
        os._exit(0)
    print("about to exec")
    os.execv("/bin/sleep", ["sleep", "30"])

def no_newline_then_exit():
    sys.stdout.write("last, without its newline")

def long_line(size):
    sys.stdout.write("é" * (size // 2) + "\\n")  # two bytes each: the pieces must not cut one
    print("after")

def spoof():
    print("\\x1b[2K\\x1b[1Gmprun - run ok")
    print("\\u202emprun - run ok")
    sys.stderr.write("partial\\rmprun - run ok\\n")
    import logging
    logging.getLogger("app").warning("one\\nmprun - run ok")

def crash():
    print("about to crash")
    import ctypes
    ctypes.string_at(0)

def busy_in_c():
    print("busy")
    sum(range(10**11))  # no Python bytecode runs: a Python signal handler waits
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write(tmp_path, "jobs.py", JOBS)
    return tmp_path


@pytest.mark.parametrize("method", METHODS)
def test_a_line_printed_without_flush_reaches_the_log_while_the_process_runs(project: Path, method: str) -> None:
    printed = project / "printed"
    path = workflow(project, f"processes: {{p: {{target: jobs:tick_then_wait, args: ['{printed}']}}}}\n")
    log_file = project / "run.jsonl"
    mprun = start_mprun("--start-method", method, "--log-file", str(log_file), str(path), console=False)
    try:

        def seen() -> bool:
            return log_file.exists() and any(
                r["event"] == "process.output" and r["line"] == "first line, not flushed" for r in whole_lines(log_file)
            )

        assert wait_for(printed.exists, 20)
        began = time.monotonic()
        assert wait_for(seen, 10), "the line waits in the child's buffer"
        assert time.monotonic() - began < 2
    finally:
        mprun.send_signal(signal.SIGTERM)
        mprun.wait(timeout=30)


@pytest.mark.parametrize("method", METHODS)
def test_a_terminated_process_loses_nothing_it_wrote_not_even_a_line_without_its_newline(
    project: Path, method: str
) -> None:
    path = workflow(
        project,
        "processes: {p: {target: jobs:partial}}\nsteps:\n  - start: p\n  - sleep: 1\n  - terminate: p\n",
    )
    log = run_mprun(path, project / "run.jsonl", "--start-method", method)
    assert log.exitcode == 0, log.stderr
    assert log.exits()["p"]["exitcode"] == -signal.SIGTERM
    assert [r["line"] for r in log.events("process.output", stream="stdout")] == ["whole line", "no newline yet"]
    assert [r["line"] for r in log.events("process.output", stream="stderr")] == ["nor here"]


@pytest.mark.parametrize("method", METHODS)
def test_the_daemon_stopped_at_the_end_keeps_its_lines(method: str, tmp_path: Path) -> None:
    log = run_mprun(ROOT / "workflows" / "daemons.yaml", tmp_path / "run.jsonl", "--start-method", method)
    assert log.exitcode == 0, log.stderr
    assert log.lines("daemon") == ["Starting: daemon"]


@pytest.mark.parametrize("method", METHODS)
def test_a_process_s_lines_come_before_its_return_in_the_log(project: Path, method: str) -> None:
    path = workflow(project, "processes: {p: {target: jobs:many_then_return, args: [3000]}}\n")
    log = run_mprun(path, project / "run.jsonl", "--start-method", method)
    assert log.exitcode == 0, log.stderr
    events = [r["event"] for r in log.records if r.get("process") == "p"]
    assert events.index("process.return") > max(i for i, name in enumerate(events) if name == "process.output")
    assert log.lines("p") == [f"line {n}" for n in range(3000)]


@pytest.mark.parametrize("method", METHODS)
def test_all_a_process_wrote_comes_before_its_exit_a_last_partial_line_and_a_crash_s_stack_too(
    project: Path, method: str
) -> None:
    path = workflow(
        project,
        "processes:\n  nonl: {target: jobs:no_newline_then_exit}\n"
        "  crash: {target: jobs:crash, expect: {signal: SIGSEGV}}\n"
        "steps:\n  - start: [nonl, crash]\n  - join: [nonl, crash]\n",
    )
    log = run_mprun(path, project / "run.jsonl", "--start-method", method)
    assert log.exitcode == 0, log.stderr
    for process, last in (("nonl", "process.output"), ("crash", "process.stack")):
        told = [r["event"] for r in log.records if r.get("process") == process]
        assert told[-2:] == [last, "process.exit"], told
    assert log.lines("nonl") == ["last, without its newline"]
    [stack] = log.events("process.stack", process="crash")
    assert stack["reason"] == "crashed"


def test_a_line_longer_than_the_limit_is_logged_in_pieces_that_join_up(project: Path) -> None:
    size = 5 * LINE_LIMIT + 1000
    path = workflow(project, f"processes: {{p: {{target: jobs:long_line, args: [{size}]}}}}\n")
    log = run_mprun(path, project / "run.jsonl", "--log-format", "json")
    assert log.exitcode == 0, log.stderr[-2000:]
    pieces = log.events("process.output", process="p")
    assert [piece.get("partial", False) for piece in pieces] == [True] * 5 + [False, False]
    assert all(len(piece["line"].encode()) <= LINE_LIMIT for piece in pieces)
    assert "".join(piece["line"] for piece in pieces[:-1]) == "é" * (size // 2)
    assert pieces[-1]["line"] == "after"


def test_no_line_on_the_console_can_pass_for_mprun_s_own(project: Path) -> None:
    path = workflow(
        project,
        'processes: {p: {target: jobs:spoof, name: "p\\nmprun - run ok\\x1b[2K"}}\n',
    )
    log = run_mprun(path, project / "run.jsonl")
    assert log.exitcode == 0, log.stderr
    shown = log.stderr.splitlines()
    assert shown.count("mprun - run ok") == 1  # mprun's own
    assert not any(character in log.stderr for character in "\x1b\r\u202e")
    assert "p\\nmprun - run ok\\x1b[2K | \\x1b[2K\\x1b[1Gmprun - run ok" in shown
    assert log.lines("p\nmprun - run ok\x1b[2K")[:2] == ["\x1b[2K\x1b[1Gmprun - run ok", "\u202emprun - run ok"]


def test_carriage_returns_are_kept_in_the_log_as_written(project: Path) -> None:
    log = run_mprun(workflow(project, "processes: {p: {target: jobs:carriage_returns}}\n"), project / "run.jsonl")
    assert log.exitcode == 0, log.stderr
    records = log.events("process.output", process="p")
    # Maybe in pieces, as they came (each marked partial), continued by the last record.
    assert "".join(r["line"] for r in records) == "\r10%\r50%\r100%"
    assert all(r.get("partial") for r in records[:-1]) and not records[-1].get("partial")


def test_a_progress_line_shows_each_update_as_it_is_written(project: Path) -> None:
    log = run_mprun(workflow(project, "processes: {p: {target: jobs:progress}}\n"), project / "run.jsonl")
    assert log.exitcode == 0, log.stderr
    records = log.events("process.output", process="p")
    assert [(r["line"], r.get("partial")) for r in records] == [
        ("\rstep 1", True),
        ("\rstep 2", True),
        ("\rstep 3", True),
        ("", None),
    ]
    shown = [line for line in log.stderr.splitlines() if line.startswith("p |")]
    assert shown == ["p | step 1", "p | step 2", "p | step 3", "p | "]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("how", ["environment", "-u"])
def test_pythonunbuffered_and_python_u_make_the_child_s_streams_unbuffered(
    project: Path, method: str, how: str
) -> None:
    path = workflow(project, "processes: {p: {target: jobs:streams}}\n")
    log_file = project / "run.jsonl"
    env = user_env()
    flags = []
    if how == "environment":
        env["PYTHONUNBUFFERED"] = "1"
    else:
        flags = ["-u"]
    command = [sys.executable, *flags, "-m", "runner", "--start-method", method, "--log-file", str(log_file), str(path)]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert [r["line"] for r in lines if r["event"] == "process.output"] == ["True False"]


def test_without_them_the_child_s_streams_are_line_buffered_as_on_a_terminal(project: Path) -> None:
    log = run_mprun(workflow(project, "processes: {p: {target: jobs:streams}}\n"), project / "run.jsonl")
    assert log.lines("p") == ["False True"]


@pytest.mark.parametrize("method", METHODS)
def test_a_user_s_sigterm_handler_runs_once_when_the_process_is_terminated(project: Path, method: str) -> None:
    handled = project / "handled"
    path = workflow(
        project,
        f"processes: {{p: {{target: jobs:handles_sigterm, args: ['{handled}'], expect: {{exitcode: 0}}}}}}\n"
        "steps:\n  - start: p\n  - sleep: 1\n  - terminate: p\n",
    )
    log = run_mprun(path, project / "run.jsonl", "--start-method", method)
    assert log.exitcode == 0, log.stderr
    assert handled.read_text() == "handled\n"
    assert log.lines("p") == ["waiting"]


def test_a_process_busy_in_c_code_still_ends_by_sigterm_at_once(project: Path) -> None:
    path = workflow(
        project,
        "processes: {p: {target: jobs:busy_in_c}}\nsteps:\n  - start: p\n  - sleep: 1\n  - terminate: {process: p}\n",
    )
    log = run_mprun(path, project / "run.jsonl", "--grace", "20")
    assert log.exitcode == 0, log.stderr
    assert log.exits()["p"]["exitcode"] == -signal.SIGTERM
    [terminated] = log.events("step.end", kind="terminate")
    assert terminated["duration_s"] < 2
    assert log.lines("p") == ["busy"]


@pytest.mark.parametrize("method", METHODS)
def test_a_process_that_exec_d_another_program_still_ends_by_sigterm(project: Path, method: str) -> None:
    path = workflow(
        project,
        "processes: {p: {target: jobs:fork_then_exec}}\n"
        "steps:\n  - start: p\n  - sleep: 1\n  - join: {process: p, timeout: 0.5}\n  - terminate: p\n",
    )
    log = run_mprun(path, project / "run.jsonl", "--start-method", method)
    assert log.exits()["p"]["exitcode"] == -signal.SIGTERM, log.stderr  # not mprun's own signals'
    assert log.lines("p") == ["about to exec"]
