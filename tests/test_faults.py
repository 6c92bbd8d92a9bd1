"""The fault suite: mprun killed or interrupted, children that crash, hang or cannot exit, and
floods of output, under every start method. Each test runs the real command on real processes
and judges by pids and by the JSON log."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support import alive, descendants, kill_all, pids_in, start_mprun, user_env, wait_for, whole_lines, write
from tests.test_run import METHODS, Log, run_mprun

pytestmark = pytest.mark.timeout(120)

JOBS = """
import ctypes, os, resource, signal, sys, time

def pid_file(path, ignore_sigterm=False, become_nobody=False):
    if ignore_sigterm:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with open(path, "a") as out:
        out.write(f"{os.getpid()}\\n")
    if become_nobody:  # root dropping its privileges: this clears the parent-death signal
        os.setgid(65534)
        os.setuid(65534)
    while True:
        time.sleep(0.05)

def exits_on_sigterm():
    signal.signal(signal.SIGTERM, lambda number, frame: sys.exit(0))
    forever()

def forever():
    while True:
        time.sleep(0.05)

def sigkill():
    os.kill(os.getpid(), signal.SIGKILL)

def segfault():
    ctypes.string_at(0)

def exit3():
    os._exit(3)

def out_of_memory(limit):
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    hog = bytearray(2 * limit)

def consumer(tasks, doomed):
    while True:
        task = tasks.get()
        if task is None:
            tasks.task_done()
            return
        if task == doomed:
            os._exit(3)  # dies holding a task it never marks done
        tasks.task_done()

def producer(queue, size):
    queue.put("x" * size)

def slow_exit(queue):
    import threading
    queue.put("small")
    threading.Thread(target=time.sleep, args=(1.5,)).start()  # not a daemon: exit waits for it

def wait_then_get(queue, go):
    go.wait()
    queue.get()

def become_sleep():
    os.execvp("sleep", ["sleep", "30"])

def all_signals_default():
    for number in range(1, signal.NSIG):
        try:
            signal.signal(number, signal.SIG_DFL)
        except (OSError, ValueError, RuntimeError):
            pass
    forever()

def flood(count):
    for number in range(count):
        print(f"line {number}")

def flush_then_wait(count, flushed):
    for number in range(count):
        print(f"line {number}")
    sys.stdout.flush()
    flushed.set()
    forever()
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write(tmp_path, "jobs.py", JOBS)
    return tmp_path


def workflow(project: Path, method: str, body: str) -> Path:
    return write(project, "w.yaml", f"version: 1\nstart_method: {method}\n{body}")


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(
    "become_nobody",
    [
        False,
        pytest.param(True, marks=pytest.mark.skipif(os.geteuid() != 0, reason="changing uid needs root")),
    ],
)
def test_no_process_survives_mprun_killed_by_sigkill(project: Path, method: str, become_nobody: bool) -> None:
    pids = project / "pids"
    args = f"['{pids}', false, {str(become_nobody).lower()}]"
    body = f"dicts: {{d: {{}}}}\nprocesses: {{p: {{target: jobs:pid_file, args: {args}, replicas: 3}}}}\n"
    mprun = start_mprun(str(workflow(project, method, body)), "--log-file", str(project / "run.jsonl"))
    everyone: list[int] = []
    try:
        assert wait_for(lambda: len(pids_in(pids)) == 3, 30)
        everyone = descendants(mprun.pid)
        assert len(everyone) >= 4  # three workers and the manager (and the fork server)
        mprun.kill()
        mprun.wait(timeout=10)
        assert wait_for(lambda: not any(alive(pid) for pid in everyone), 2), "a process outlived mprun by 2 s"
    finally:
        mprun.kill()
        mprun.wait()
        kill_all([*everyone, *pids_in(pids)])
    whole_lines(project / "run.jsonl")


@pytest.mark.parametrize("method", METHODS)
def test_a_ctrl_c_during_a_start_step_stops_every_process_it_started(project: Path, method: str) -> None:
    # The put starts the queue's feeder thread, where Ctrl-C is not blocked: it can interrupt
    # the start step anywhere, not only between two starts.
    pids, log_file = project / "pids", project / "run.jsonl"
    body = (
        f"queues: {{q: {{}}}}\nprocesses: {{p: {{target: jobs:pid_file, args: ['{pids}'], replicas: 64}}}}\n"
        "steps:\n  - put: {queue: q, items: [1]}\n  - start: p\n  - join: p\n"
    )
    mprun = start_mprun(str(workflow(project, method, body)), "--log-file", str(log_file), "--grace", "1")
    running: list[int] = []
    try:
        assert wait_for(lambda: bool(pids_in(pids)), 30)
        mprun.send_signal(signal.SIGINT)  # the first batch of starts is under way
        assert mprun.wait(timeout=30) == 130
        running = pids_in(pids)
        assert wait_for(lambda: not any(alive(pid) for pid in running), 2), "a process outlived mprun by 2 s"
    finally:
        mprun.kill()
        mprun.wait()
        kill_all([*running, *pids_in(pids)])
    log = Log(log_file, 130, "")
    started = {r["pid"] for r in log.events("process.start")}
    assert set(running) <= started  # each one that ran was logged ...
    assert {r["pid"] for r in log.events("process.exit")} == started  # ... stopped and reaped


def test_nothing_of_a_process_is_logged_before_its_start(project: Path) -> None:
    body = "processes: {p: {target: jobs:flood, args: [1], replicas: 32}}\n"
    log = run_mprun(workflow(project, "fork", body), project / "run.jsonl")
    assert log.exitcode == 0, log.stderr
    first = {}
    for record in log.records:
        first.setdefault(record.get("process"), record["event"])
    assert [first[f"p-{n}"] for n in range(32)] == ["process.start"] * 32


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("signum,status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupted_mprun_stops_every_child_within_the_grace_and_completes_the_log(
    project: Path, method: str, signum: int, status: int
) -> None:
    pids, grace = project / "pids", 1.0
    body = (
        f"processes:\n  polite: {{target: jobs:pid_file, args: ['{pids}'], replicas: 2}}\n"
        f"  stubborn: {{target: jobs:pid_file, args: ['{pids}', true]}}\n"
    )
    path = workflow(project, method, body)
    mprun = start_mprun(str(path), "--log-file", str(project / "run.jsonl"), "--grace", str(grace))
    try:
        assert wait_for(lambda: len(pids_in(pids)) == 3, 30)
        started = pids_in(pids)
        mprun.send_signal(signum)
        sent = time.monotonic()
        assert wait_for(lambda: not any(alive(pid) for pid in started), grace + 1)
        stopped = time.monotonic() - sent
        assert mprun.wait(timeout=10) == status
    finally:
        mprun.kill()
        mprun.wait()
    assert stopped <= grace + 1
    log = Log(project / "run.jsonl", status, "")
    [end] = log.events("run.end")
    assert (end["status"], end["exitcode"]) == ("interrupted", status)
    signals = sorted(record["signal"] for record in log.events("process.exit"))
    assert signals == ["SIGKILL", "SIGTERM", "SIGTERM"]  # the one that ignores SIGTERM is killed
    [dump] = log.events("process.stack", process="stubborn")
    assert "in pid_file" in dump["stack"]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(
    "target,exitcode,signal_name",
    [
        ("jobs:sigkill", -9, "SIGKILL"),
        ("jobs:segfault", -11, "SIGSEGV"),
        ("jobs:exit3", 3, None),
        ("jobs:out_of_memory, args: [1000000000]", 1, None),
    ],
    ids=["sigkill", "segfault", "os._exit(3)", "out-of-memory"],
)
def test_a_child_that_dies_badly_is_reported_and_fails_the_run(
    project: Path, method: str, target: str, exitcode: int, signal_name: str | None
) -> None:
    log = run_mprun(workflow(project, method, f"processes:\n  p: {{target: {target}}}\n"), project / "run.jsonl")
    assert log.exitcode == 1, log.stderr
    [ended] = log.events("process.exit", process="p")
    assert (ended["exitcode"], ended["signal"], ended["expected"]) == (exitcode, signal_name, False)
    assert log.events("run.end")[0]["status"] == "failed"
    if signal_name == "SIGSEGV":  # faulthandler's report of the crash, not lost on stderr
        [dump] = log.events("process.stack", process="p")
        assert dump["reason"] == "crashed" and "in segfault" in dump["stack"]
    if "out_of_memory" in target:
        assert log.events("process.exception", process="p")[0]["type"] == "MemoryError"


@pytest.mark.parametrize("method", METHODS)
def test_a_consumer_dying_under_a_queue_join_times_the_step_out_with_stacks(project: Path, method: str) -> None:
    body = (
        "queues: {tasks: {kind: joinable}}\n"
        "processes: {consumer: {target: jobs:consumer, args: [$tasks, 7], replicas: 2}}\n"
        "steps:\n  - start: consumer\n  - put: {queue: tasks, from: builtins:range, args: [10]}\n"
        "  - join_queue: {queue: tasks, timeout: 2}\n  - put: {queue: tasks, item: null, per: consumer}\n"
        "  - join: {process: consumer, timeout: 10}\n"
    )
    log = run_mprun(workflow(project, method, body), project / "run.jsonl")
    assert log.exitcode == 1, log.stderr
    [joined] = log.events("step.end", kind="join_queue")
    assert joined["outcome"] == "timeout" and "(exit code 3)" in joined["detail"]
    [dump] = log.events("process.stack")  # of the consumer still waiting for a task
    assert "join_queue tasks timed out" in dump["reason"] and "in consumer" in dump["stack"]
    assert sorted(record["exitcode"] for record in log.events("process.exit")) == [0, 3]


@pytest.mark.parametrize("method", METHODS)
def test_a_process_that_never_ends_is_dumped_stopped_and_fails_the_run(project: Path, method: str) -> None:
    body = "processes: {p: {target: jobs:forever}}\nsteps:\n  - start: p\n  - join: {process: p, timeout: 1}\n"
    started = time.monotonic()
    log = run_mprun(workflow(project, method, body), project / "run.jsonl", "--grace", "1")
    assert time.monotonic() - started < 20
    assert log.exitcode == 1, log.stderr
    [dump] = log.events("process.stack", process="p")
    assert "join ended after 1 s" in dump["reason"] and "in forever" in dump["stack"]
    assert log.events("run.stop_overdue")[0]["names"] == ["p"]
    [ended] = log.events("process.exit", process="p")
    assert (ended["signal"], ended["expected"]) == ("SIGTERM", False)


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_a_child_that_fails_while_set_up_has_its_traceback_as_its_exception(project: Path, method: str) -> None:
    # Its class's module raises on import in the child (not in mprun, which imported it first).
    write(
        project,
        "broken.py",
        "import multiprocessing\n"
        "if multiprocessing.current_process().name != 'MainProcess':\n"
        "    raise RuntimeError('no configuration in the child')\n"
        "class Worker(multiprocessing.Process):\n    def run(self):\n        print('ran')\n",
    )
    path = workflow(project, method, "processes: {w: {class: broken:Worker}, ok: {class: broken:Worker}}\n")
    log = run_mprun(path, project / "run.jsonl", "--log-format", "json")
    assert log.exitcode == 1
    assert all(line.startswith("{") for line in log.stderr.splitlines()), log.stderr  # JSON alone
    raised = log.events("process.exception")
    assert len(raised) == 2 and {r["process"] for r in raised} == {"w", "ok"}  # each its own
    [raised] = log.events("process.exception", process="w")
    assert (raised["type"], raised["message"]) == ("RuntimeError", "no configuration in the child")
    assert 'broken.py", line 3' in raised["traceback"]
    assert log.exits()["w"]["exitcode"] == 1


@pytest.mark.parametrize("where", ["/dev/full", "a file past ulimit -f"])
def test_a_log_file_that_fills_up_leaves_the_run_going_and_says_so(project: Path, where: str) -> None:
    body = "processes: {p: {target: jobs:flood, args: [20000]}}\n"
    path = workflow(project, "fork", body)
    log_file = where if where == "/dev/full" else str(project / "run.jsonl")
    command = shlex.join([sys.executable, "-m", "runner", str(path), "--log-file", log_file])
    # The file-size limit makes a write fail with EFBIG (once SIGXFSZ is ignored), as a full disk would.
    limit = "" if where == "/dev/full" else "trap '' XFSZ; ulimit -f 256; "
    result = subprocess.run(
        ["bash", "-c", limit + "exec " + command],
        cwd=project,
        env=user_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    why = "No space left on device" if where == "/dev/full" else "File too large"
    said = [line for line in result.stderr.splitlines() if line.startswith("mprun ! the log file cannot be written")]
    assert said == [f"mprun ! the log file cannot be written ({why}): from here on it is incomplete"]
    assert "p | line 19999" in result.stderr  # the run went on to the end, shown on the console
    assert "- the log file is incomplete: " + why in result.stderr  # in the summary, which is printed
    if where != "/dev/full":
        written = (project / "run.jsonl").read_text().splitlines()
        assert 0 < len(written) < 20000
        for line in written[:-1]:  # whole records up to where it stopped (the last may be cut)
            json.loads(line)


@pytest.mark.parametrize("method", METHODS)
def test_a_child_that_reset_every_signal_is_not_killed_by_the_stack_request(project: Path, method: str) -> None:
    body = (
        "processes: {p: {target: jobs:all_signals_default}}\n"
        "steps:\n  - start: p\n  - join: {process: p, timeout: 0.5}\n  - terminate: p\n"
    )
    log = run_mprun(workflow(project, method, body), project / "run.jsonl")
    assert log.exitcode == 0, log.stderr  # the join timed out, and the terminate step ended it as planned
    [dump] = log.events("process.stack", process="p")
    assert "join ended after 0.5 s" in dump["reason"] and dump["stack"].startswith("unavailable: "), dump
    [ended] = log.events("process.exit", process="p")
    assert (ended["signal"], ended["expected"]) == ("SIGTERM", True)  # by the terminate step, not signal 35


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("read_later", [True, False], ids=["read-later", "never-read"])
def test_the_queue_feeder_trap_ends_and_says_what_happened(project: Path, method: str, read_later: bool) -> None:
    steps = "  - start: producer\n  - join: producer\n"
    if read_later:
        steps += "  - get: {queue: q, timeout: 10}\n  - join: producer\n"
    body = "queues: {q: {}}\nprocesses: {producer: {target: jobs:producer, args: [$q, 1000000]}}\nsteps:\n"
    log = run_mprun(workflow(project, method, body + steps), project / "run.jsonl", "--grace", "1", timeout=60)
    assert log.exitcode == 1, log.stderr
    [stuck] = log.events("process.stuck", process="producer")
    assert "items it put on q are unread" in stuck["reason"]
    [dump] = log.events("process.stack", process="producer")
    assert "_finalize_join" in dump["stack"]  # waiting at exit for its feeder thread
    assert log.events("step.end", kind="join")[0]["outcome"] == "stuck"
    [ended] = log.events("process.exit", process="producer")
    if read_later:  # the get unblocked it: it exits by itself, nothing lost
        assert (ended["exitcode"], ended["expected"]) == (0, True)
        assert len(log.events("queue.get")) == 1
    else:
        assert (ended["signal"], ended["expected"]) == ("SIGTERM", False)


@pytest.mark.parametrize("method", METHODS)
def test_200000_lines_arrive_whole_and_in_order(project: Path, method: str) -> None:
    count = 200_000
    body = f"processes: {{p: {{target: jobs:flood, args: [{count}]}}}}\n"
    log = run_mprun(workflow(project, method, body), project / "run.jsonl", "--log-format", "json")
    assert log.exitcode == 0, log.stderr[-2000:]
    assert log.lines("p") == [f"line {number}" for number in range(count)]


@pytest.mark.parametrize("method", METHODS)
def test_lines_flushed_before_a_terminate_are_all_kept(project: Path, method: str) -> None:
    count = 20_000
    body = (
        "events: {flushed: {}}\n"
        f"processes: {{p: {{target: jobs:flush_then_wait, args: [{count}, $flushed]}}}}\n"
        "steps:\n  - start: p\n  - wait: {event: flushed, timeout: 30}\n  - terminate: p\n"
    )
    log = run_mprun(workflow(project, method, body), project / "run.jsonl")
    assert log.exitcode == 0, log.stderr[-2000:]
    assert log.lines("p") == [f"line {number}" for number in range(count)]
    assert log.events("process.exit")[0]["signal"] == "SIGTERM"


@pytest.mark.parametrize("method", METHODS)
def test_the_log_stays_valid_json_lines_when_mprun_is_killed_mid_write(project: Path, method: str) -> None:
    body = "processes: {p: {target: jobs:flood, args: [100000000]}}\n"
    log_file = project / "run.jsonl"
    mprun = start_mprun(str(workflow(project, method, body)), "--log-file", str(log_file), console=False)
    try:
        assert wait_for(lambda: log_file.exists() and log_file.stat().st_size > 1_000_000, 30)
        mprun.kill()
        mprun.wait(timeout=10)
    finally:
        mprun.kill()
        mprun.wait()
    records = whole_lines(log_file)
    lines = [record["line"] for record in records if record["event"] == "process.output"]
    assert len(lines) > 1000 and lines == [f"line {number}" for number in range(len(lines))]


def test_a_process_slow_to_exit_after_a_small_put_is_not_taken_for_the_trap(project: Path) -> None:
    body = (
        "queues: {q: {}}\nprocesses: {p: {target: jobs:slow_exit, args: [$q]}}\n"
        "steps:\n  - start: p\n  - join: p\n  - get: {queue: q, timeout: 5}\n"
    )
    log = run_mprun(workflow(project, "fork", body), project / "run.jsonl")
    assert log.exitcode == 0, log.stderr
    assert not log.events("process.stuck")


def test_a_reader_started_only_after_the_join_does_not_hang_it(project: Path) -> None:
    body = (
        "queues: {q: {}}\nevents: {go: {set: true}}\nprocesses:\n"
        "  producer: {target: jobs:producer, args: [$q, 1000000]}\n"
        "  consumer: {target: jobs:wait_then_get, args: [$q, $go]}\n"
        "steps:\n  - start: producer\n  - join: producer\n  - start: consumer\n  - join: [consumer, producer]\n"
    )
    log = run_mprun(workflow(project, "fork", body), project / "run.jsonl", timeout=60)
    assert log.exitcode == 1, log.stderr
    assert log.events("step.end", kind="join")[0]["outcome"] == "stuck"
    assert [record["exitcode"] for record in log.events("process.exit")] == [0, 0]  # the consumer freed it


def test_a_reader_whose_join_timed_out_does_not_hang_the_end(project: Path) -> None:
    body = (
        "queues: {q: {}}\nevents: {go: {}}\nprocesses:\n"
        "  producer: {target: jobs:producer, args: [$q, 1000000]}\n"
        "  consumer: {target: jobs:wait_then_get, args: [$q, $go]}\n"
        "steps:\n  - start: [producer, consumer]\n  - join: {process: consumer, timeout: 1}\n"
    )
    log = run_mprun(workflow(project, "fork", body), project / "run.jsonl", "--grace", "1", timeout=60)
    assert log.exitcode == 1, log.stderr
    assert log.events("process.stuck", process="producer")
    assert sorted(log.events("run.stop_overdue")[0]["names"]) == ["consumer", "producer"]


@pytest.mark.parametrize("method", METHODS)
def test_a_child_that_execs_another_program_is_not_killed_by_a_stack_request(project: Path, method: str) -> None:
    body = (
        "processes: {p: {target: jobs:become_sleep}}\n"
        "steps:\n  - start: p\n  - join: {process: p, timeout: 1}\n  - terminate: p\n"
    )
    log = run_mprun(workflow(project, method, body), project / "run.jsonl")
    assert log.exitcode == 0, log.stderr
    assert log.events("process.exit")[0]["signal"] == "SIGTERM"


@pytest.mark.parametrize(("target", "killed"), [("exits_on_sigterm", False), ("pid_file", True)])
def test_a_terminate_without_grace_says_killed_only_of_what_sigkill_ended(
    project: Path, target: str, killed: bool
) -> None:
    args = "[]" if target == "exits_on_sigterm" else f"['{project / 'pids'}', true]"  # the second ignores SIGTERM
    body = (
        f"processes: {{p: {{target: jobs:{target}, args: {args}, expect: {{exitcode: 0, signal: SIGKILL}}}}}}\n"
        "steps:\n  - start: p\n  - sleep: 0.5\n  - terminate: {process: p, grace: 0}\n"
    )
    log = run_mprun(workflow(project, "fork", body), project / "run.jsonl")
    assert log.exitcode == 0, log.stderr
    [ended] = log.events("step.end", kind="terminate")
    assert ended["detail"] == ("killed after the grace: p" if killed else None)
    assert log.exits()["p"]["signal"] == ("SIGKILL" if killed else None)


def test_run_end_names_every_process_that_failed_the_run(project: Path) -> None:
    body = "processes: {good: {target: jobs:flood, args: [1]}, bad: {target: jobs:exit3}}\n"
    log = run_mprun(workflow(project, "fork", body), project / "run.jsonl")
    assert log.exitcode == 1
    [end] = log.events("run.end")
    assert end["failures"] == ["bad ended with exit code 3, not as expected (exit code 0)"]


def test_any_timeout_the_command_line_accepts_works(project: Path) -> None:
    log = run_mprun(
        workflow(project, "fork", "processes: {p: {target: jobs:flood, args: [1]}}\n"),
        project / "run.jsonl",
        "--timeout",
        "1e10",
    )
    assert log.exitcode == 0, log.stderr
