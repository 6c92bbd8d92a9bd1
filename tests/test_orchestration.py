"""Orchestration policies on real processes: fail fast, restarts, start conditions, a process's
longest run, environment and folder (the shipped flaky and service workflows run under every
start method in test_run.py)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from runner.outcome import Ended, restart_pause
from runner.workflow import RestartPolicy
from tests.support import WORKFLOWS, alive, start_mprun, wait_for, whole_lines, workflow, write
from tests.test_run import METHODS, Log, run_mprun

pytestmark = pytest.mark.timeout(90)

JOBS = """
import os, sys, time

def fail_with(code, *given):
    print("failing")
    sys.exit(code)

def finish_after(seconds):
    time.sleep(seconds)
    print("finished")

def say(text, then=0.0):
    print(text, flush=True)
    time.sleep(then)

def quiet(seconds):
    time.sleep(seconds)

def record_pid(folder, seconds):
    with open(os.path.join(folder, f"{os.getpid()}.pid"), "w"):
        pass
    time.sleep(seconds)

def set_then_wait(event, seconds):
    time.sleep(seconds)
    event.set()

def consume_dying_once(queue, flag):
    while True:
        item = queue.get()
        if item is None:
            return
        print("took", item, flush=True)
        if not os.path.exists(flag):
            open(flag, "w").close()
            os._exit(9)

def where_am_i():
    print("MODE", os.environ.get("MODE"))
    print("GONE", os.environ.get("MPRUN_TEST_GONE"))
    print("CWD", os.getcwd())
    print("HASHSEED", sys.flags.hash_randomization)
"""


def only_in_its_pass(method: str) -> None:
    """A test of every start method runs them all in the suite's pass without MPRUN_START_METHOD."""
    chosen = os.environ.get("MPRUN_START_METHOD")
    if chosen and chosen != method:
        pytest.skip(f"the suite's pass without MPRUN_START_METHOD runs it under {method}")


def project(tmp_path: Path, body: str) -> Path:
    write(tmp_path, "jobs.py", JOBS)
    return workflow(tmp_path, "pythonpath: [.]\n" + body)


def run(tmp_path: Path, body: str, *args: str) -> Log:
    return run_mprun(project(tmp_path, body), tmp_path / "run.jsonl", "--timeout", "60", *args)


# -- fail fast -----------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_a_dead_consumer_behind_a_blocked_producer_ends_the_run_at_once(method: str, tmp_path: Path) -> None:
    only_in_its_pass(method)
    log = run_mprun(WORKFLOWS / "pipeline.yaml", tmp_path / "run.jsonl", "--start-method", method, "--timeout", "60")
    assert log.exitcode == 1, log.stderr
    [end] = log.events("run.end")
    assert end["failures"] == ["fail fast: parser ended with exit code 1, not as expected (exit code 0)"]
    [stopping] = log.events("run.stopping")
    assert stopping["reason"] == end["failures"][0]  # not the time limit
    # Where the producer was blocked, in the log before it was stopped.
    [stack] = log.events("process.stack", process="producer")
    assert stack["reason"].startswith("fail fast: parser") and "in put" in stack["stack"]
    assert "examples/pipeline.py" in stack["stack"]
    assert log.exits()["producer"]["signal"] == "SIGTERM"
    assert [r["type"] for r in log.events("process.exception")] == ["ValueError"]


def test_fail_fast_is_the_run_s_unless_a_process_says_otherwise(tmp_path: Path) -> None:
    body = """
fail_fast: true
processes:
  bad: {target: jobs:fail_with, args: [3], fail_fast: false}
  slow: {target: jobs:finish_after, args: [0.5]}
"""
    log = run(tmp_path, body)
    assert log.exitcode == 1 and not log.events("run.stopping")
    assert log.lines("slow") == ["finished"]  # the run carried on
    assert log.events("run.end")[0]["failures"] == ["bad ended with exit code 3, not as expected (exit code 0)"]
    log = run(
        tmp_path, body.replace("fail_fast: true", "fail_fast: false").replace("fail_fast: false}", "fail_fast: true}")
    )
    assert log.exitcode == 1 and log.lines("slow") == []
    assert log.exits()["slow"]["signal"] == "SIGTERM"
    assert log.events("run.end")[0]["failures"][0].startswith("fail fast: bad ended with exit code 3")


def test_what_mprun_stops_itself_does_not_set_off_fail_fast(tmp_path: Path) -> None:
    body = """
fail_fast: true
processes:
  helper: {target: jobs:quiet, args: [30], daemon: true}
  stopped: {target: jobs:quiet, args: [30]}
  main: {target: jobs:finish_after, args: [0.3]}
steps:
  - start: [helper, stopped, main]
  - terminate: stopped
  - join: main
"""
    log = run(tmp_path, body)
    assert log.exitcode == 0, log.stderr
    assert not log.events("run.stopping") and log.lines("main") == ["finished"]


# -- restarts ------------------------------------------------------------------------------


def test_a_restart_policy_gives_up_after_its_most_restarts(tmp_path: Path) -> None:
    body = """
locks: {held: {}}
processes:
  broken:
    target: jobs:fail_with
    args: [4, $held]
    restart: {when: on-failure, max_restarts: 2, backoff: {initial: 0.01}}
  again:
    target: jobs:say
    args: [hello]
    restart: {when: always, max_restarts: 2, backoff: {initial: 0.01}}
"""
    log = run(tmp_path, body)
    assert log.exitcode == 1, log.stderr
    broken = log.events("process.exit", process="broken")
    assert [(r["attempt"], r["expected"]) for r in broken] == [(1, False), (2, False), (3, False)]
    assert [r.get("restart_in_s") for r in broken] == [0.01, 0.02, None]
    restarts = log.events("process.restart", process="broken")
    assert [(r["reason"], r["given"]) for r in restarts] == [("exit code 4", ["held"])] * 2  # it may have held it
    assert log.lines("again") == ["hello"] * 3  # always: after an end as expected too
    [end] = log.events("run.end")
    # Only the last end counts: one failure, and the summary counts every restart.
    assert end["failures"] == ["broken ended with exit code 4, not as expected (exit code 0)"]
    assert (end["restarts"], end["unexpected"]) == (4, 1)


def test_a_restarted_consumer_keeps_its_queue(tmp_path: Path) -> None:
    body = f"""
queues:
  items: {{}}
processes:
  consumer:
    target: jobs:consume_dying_once
    args: [$items, {tmp_path / "died"}]
    restart: on-failure
steps:
  - start: consumer
  - put: {{queue: items, items: [1, 2, 3, null]}}
  - join: {{process: consumer, timeout: 20}}
"""
    log = run(tmp_path, body)
    assert log.exitcode == 0, log.stderr
    assert log.lines("consumer") == ["took 1", "took 2", "took 3"]
    assert [(r["exitcode"], r["attempt"]) for r in log.events("process.exit")] == [(9, 1), (0, 2)]


def test_ctrl_c_while_a_restart_waits_stops_the_run_without_restarting(tmp_path: Path) -> None:
    body = f"""
processes:
  worker:
    target: jobs:record_pid
    args: [{tmp_path}, 0.2]
    restart: {{when: always, max_restarts: 5, backoff: {{initial: 3}}}}
"""
    log_file = tmp_path / "run.jsonl"
    mprun = start_mprun(str(project(tmp_path, body)), "--log-file", str(log_file), console=False)
    try:
        assert wait_for(
            lambda: log_file.exists() and any(r["event"] == "process.exit" for r in whole_lines(log_file)), 20
        )
        time.sleep(0.2)
        mprun.send_signal(signal.SIGINT)
        assert mprun.wait(timeout=20) == 130
    finally:
        mprun.kill()
        mprun.wait()
    records = whole_lines(log_file)
    assert [r["event"] for r in records].count("process.start") == 1
    assert len(list(tmp_path.glob("*.pid"))) == 1
    assert not any(alive(int(path.stem)) for path in tmp_path.glob("*.pid"))


def test_restart_pause_counts_the_restarts_of_its_window() -> None:
    policy = RestartPolicy("on-failure", max_restarts=2, within=10, initial=0.5, factor=3, longest=4)
    failed = Ended("p", "p", 0, None, 1, 1, 0.0, 1.0, False)
    assert restart_pause(policy, failed, [], 100) == 0.5
    assert restart_pause(policy, failed, [95], 100) == 1.5
    assert restart_pause(policy, failed, [91, 95], 100) is None  # two within the last 10 s
    assert restart_pause(policy, failed, [80, 95], 100) == 1.5  # the one at 80 is out of the window
    assert (
        restart_pause(RestartPolicy("always", max_restarts=9, initial=1, factor=3, longest=4), failed, [1, 2], 3) == 4
    )
    ok = Ended("p", "p", 0, None, 1, 0, 0.0, 1.0, False)
    assert restart_pause(policy, ok, [], 100) is None  # on-failure: an end as expected is the last
    assert restart_pause(None, failed, [], 100) is None


# -- start conditions ----------------------------------------------------------------------


def test_start_conditions_on_a_start_an_end_and_an_event(tmp_path: Path) -> None:
    body = """
events: {ready: {}}
processes:
  migrate: {target: jobs:say, args: [migrated]}
  app:
    target: jobs:say
    args: [app up, 0.3]
    start_after: {completed: migrate}
  setter:
    target: jobs:set_then_wait
    args: [$ready, 0.2]
    start_after: {started: app}
  client:
    target: jobs:say
    args: [client]
    replicas: 2
    start_after: [{event: ready}, {started: app}]
"""
    log = run(tmp_path, body)
    assert log.exitcode == 0, log.stderr
    order = [r["process"] for r in log.records if r["event"] == "process.start"]
    assert order[:3] == ["migrate", "app", "setter"] and sorted(order[3:]) == ["client-0", "client-1"]
    migrate_exit = next(i for i, r in enumerate(log.records) if r["event"] == "process.exit")
    app_start = next(i for i, r in enumerate(log.records) if r.get("process") == "app")
    assert migrate_exit < app_start
    assert [r["key"] for r in log.events("run.condition")] == ["app", "setter", "client"]


def test_a_condition_that_can_no_longer_hold_fails_the_run_at_once(tmp_path: Path) -> None:
    body = """
processes:
  server: {target: jobs:say, args: [starting]}
  client:
    target: jobs:say
    args: [client]
    start_after: {printed: server, pattern: ready}
  migrate: {target: jobs:fail_with, args: [1]}
  app:
    target: jobs:say
    args: [app]
    start_after: {completed: migrate}
  slow: {target: jobs:quiet, args: [30]}
"""
    log = run(tmp_path, body)
    assert log.exitcode == 1
    reason = log.events("run.stopping")[0]["reason"]
    assert reason in (
        "app cannot start: migrate did not end as expected",
        "client cannot start: server ended without printing a line matching 'ready'",
    )
    assert not log.events("process.start", process="client") or not log.events("process.start", process="app")
    assert log.exits()["slow"]["signal"] == "SIGTERM"


def test_an_event_nothing_is_left_to_set_fails_the_run_once_everything_else_ended(tmp_path: Path) -> None:
    body = """
events: {ready: {}}
processes:
  forgetful: {target: jobs:say, args: [never sets it]}
  waiter:
    target: jobs:say
    args: [started]
    start_after: {event: ready}
"""
    log = run(tmp_path, body)
    assert log.exitcode == 1 and "waiter" not in log.exits()
    assert log.events("run.end")[0]["failures"] == [
        "waiter cannot start: the steps are over and every other process has ended, and still not: event ready is set"
    ]


def test_a_condition_not_met_within_its_start_timeout_fails_the_run(tmp_path: Path) -> None:
    body = """
processes:
  server: {target: jobs:say, args: [warming up, 30]}
  client:
    target: jobs:say
    args: [client]
    start_after: {printed: server, pattern: ready}
    start_timeout: 0.3
"""
    log = run(tmp_path, body)
    assert log.exitcode == 1
    [end] = log.events("run.end")
    assert end["failures"][0] == (
        "client did not start within its start_timeout of 0.3 s: not yet server printed a line matching 'ready'"
    )
    assert log.exits()["server"]["signal"] == "SIGTERM" and "client" not in log.exits()


# -- a process's limits, environment and folder --------------------------------------------


def test_max_run_time_stops_each_attempt_and_says_why(tmp_path: Path) -> None:
    body = """
processes:
  stuck:
    target: jobs:quiet
    args: [30]
    max_run_time: 0.3
    restart: {when: on-failure, max_restarts: 1, backoff: {initial: 0.01}}
  fine: {target: jobs:quiet, args: [0.1], max_run_time: 20}
"""
    log = run(tmp_path, body)
    assert log.exitcode == 1
    assert len(log.events("process.max_run_time", process="stuck")) == 2
    stacks = log.events("process.stack", process="stuck")
    assert len(stacks) == 2 and all("in quiet" in r["stack"] for r in stacks)
    assert [r["signal"] for r in log.events("process.exit", process="stuck")] == ["SIGTERM", "SIGTERM"]
    assert log.events("run.end")[0]["failures"] == ["stuck ran longer than its max_run_time of 0.3 s and was stopped"]
    assert log.exits()["fine"]["expected"]


@pytest.mark.parametrize("method", METHODS)
def test_a_process_has_its_own_environment_and_folder(
    method: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    only_in_its_pass(method)
    (tmp_path / "data").mkdir()
    body = f"""
start_method: {method}
processes:
  p:
    target: jobs:where_am_i
    env: {{MODE: fast, MPRUN_TEST_GONE: null, PYTHONHASHSEED: "0"}}
    cwd: data
"""
    monkeypatch.setenv("MPRUN_TEST_GONE", "still here")
    log = run(tmp_path, body)
    assert log.exitcode == 0, log.stderr
    # An interpreter's start reads PYTHONHASHSEED: only a spawned child starts one.
    seeded = "0" if method == "spawn" else "1"
    assert log.lines("p") == ["MODE fast", "GONE None", f"CWD {tmp_path / 'data'}", f"HASHSEED {seeded}"]
    assert os.environ["MPRUN_TEST_GONE"] == "still here"
