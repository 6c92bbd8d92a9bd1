"""Pools, their steps and call steps through the real `mprun`: results, errors, timeouts,
signals, and what is left once the run ends (nothing)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support import alive, user_env, wait_for, workflow, write

pytestmark = pytest.mark.timeout(90)

JOBS = """
import multiprocessing, os, sys, time

def double(x):
    return x * 2

def add(a, b):
    return a + b

def who(x):
    return multiprocessing.current_process().name

def fail_on(x):
    if x == 3:
        raise ValueError(f"no threes: {x}")
    return x

def slow(x):
    time.sleep(x)
    return x

def record_pid(path):
    with open(path, "a") as f:
        f.write(f"{os.getpid()}\\n")

def hang(x, path):
    record_pid(path)
    time.sleep(600)

def spoken(x):
    print("working on", x)  # no flush: a pool worker's output must not be lost either
    return x

def crash(x):
    if x == 2:
        os.kill(os.getpid(), 9)
    return x

def total(values):
    print("adding", len(values), "values")
    return sum(values)

def drain(queue, count):
    print("got", sorted(queue.get() for _ in range(count)))
"""


def run(tmp_path: Path, body: str, *args: str, timeout: float = 60) -> tuple[int, list[dict[str, Any]], str]:
    write(tmp_path, "jobs.py", JOBS)
    path = workflow(tmp_path, "pythonpath: [.]\n" + body)
    log = tmp_path / "log.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "runner", str(path), "--log-file", str(log), *args],
        cwd=tmp_path,
        env=user_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return done.returncode, [json.loads(line) for line in log.read_text().splitlines()], done.stderr


def events(records: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [record for record in records if record["event"] == name]


def step_ends(records: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(record["kind"], record["outcome"]) for record in events(records, "step.end")]


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_each_kind_of_pool_step_returns_what_the_standard_library_returns(tmp_path: Path, method: str) -> None:
    body = f"""start_method: {method}
pools:
  workers: {{processes: 2}}
steps:
  - map: {{pool: workers, function: jobs:double, items: {{range: 6}}, keep: doubled}}
  - starmap: {{pool: workers, function: jobs:add, items: [[1, 2], [3, 4]], keep: added}}
  - imap_unordered: {{pool: workers, function: jobs:double, items: $doubled, keep: unordered}}
  - apply: {{pool: workers, function: jobs:add, args: [$added, [5]], keep: applied}}
  - show: [doubled, added, unordered, applied]
"""
    status, records, stderr = run(tmp_path, body)
    assert status == 0, stderr
    shown = {record["object"]: record["value"] for record in events(records, "object.show")}
    assert shown["doubled"] == "[0, 2, 4, 6, 8, 10]"
    assert shown["added"] == "[3, 7]"
    assert sorted(json.loads(shown["unordered"])) == [0, 4, 8, 12, 16, 20]
    assert shown["applied"] == "[3, 7, 5]"
    # The pool's host and its two workers are processes of the run: started, ended, judged.
    ended = {record["process"]: record for record in events(records, "process.exit")}
    prefix = {"fork": "Fork", "spawn": "Spawn", "forkserver": "ForkServer"}[method]
    assert set(ended) == {"workers", f"{prefix}PoolWorker-1", f"{prefix}PoolWorker-2"}
    assert all(record["exitcode"] == 0 and record["expected"] for record in ended.values())
    assert records[-1]["event"] == "run.end" and records[-1]["status"] == "ok"


def test_results_go_on_a_queue_and_are_logged_by_chunk_or_each(tmp_path: Path) -> None:
    body = """pools:
  workers: {processes: 2}
queues:
  results: {}
processes:
  consumer: {target: jobs:drain, args: [$results, 8]}
steps:
  - start: consumer
  - map: {pool: workers, function: jobs:double, items: {range: 8}, chunksize: 3, put: results, log: chunks}
  - map: {pool: workers, function: jobs:double, items: [5, 6], log: each}
  - join: consumer
"""
    status, records, stderr = run(tmp_path, body)
    assert status == 0, stderr
    results = events(records, "map.result")
    by_chunk = [record for record in results if "chunk" in record]
    assert [(r["chunk"], r["chunks"], r["items"]) for r in by_chunk] == [
        (1, 3, "[0, 2, 4]"),
        (2, 3, "[6, 8, 10]"),
        (3, 3, "[12, 14]"),
    ]
    assert [(r["index"], r["item"]) for r in results if "index" in r] == [(0, "10"), (1, "12")]
    said = [r["line"] for r in events(records, "process.output") if r["process"] == "consumer"]
    assert said == ["got [0, 2, 4, 6, 8, 10, 12, 14]"]


def test_a_task_that_raises_fails_its_step_with_the_workers_traceback(tmp_path: Path) -> None:
    body = """pools:
  workers: {processes: 2}
steps:
  - map: {pool: workers, function: jobs:fail_on, items: {range: 5}}
  - map: {pool: workers, function: jobs:fail_on, items: [3], may_fail: true}
  - map: {pool: workers, function: jobs:double, items: [1]}
"""
    status, records, stderr = run(tmp_path, body)
    assert status == 1
    assert step_ends(records) == [("map", "failed"), ("map", "ok"), ("map", "ok")]
    [error, allowed] = events(records, "map.error")
    assert error["type"] == "ValueError" and error["message"] == "no threes: 3"
    assert 'jobs.py", line' in error["traceback"] and "raise ValueError" in error["traceback"]
    assert allowed["type"] == "ValueError"
    assert "a task raised ValueError: no threes: 3" in stderr
    assert records[-1]["failures"] == ["step 1 (map workers): a task raised ValueError: no threes: 3"]


def test_a_map_that_outlasts_its_timeout_fails_and_nothing_is_left_running(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    body = f"""pools:
  workers: {{processes: 2}}
steps:
  - starmap: {{pool: workers, function: jobs:hang, items: [[1, {str(pids)!r}], [2, {str(pids)!r}]], timeout: 1}}
"""
    began = time.monotonic()
    status, records, _ = run(tmp_path, body, "--grace", "0.5")
    assert status == 1
    assert time.monotonic() - began < 30
    assert step_ends(records) == [("starmap", "timeout")]
    hung = [int(line) for line in pids.read_text().split()]
    assert len(hung) == 2 and not any(alive(pid) for pid in hung)
    assert records[-1]["event"] == "run.end"


def test_ctrl_c_during_a_map_stops_the_pool_and_its_workers(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    write(tmp_path, "jobs.py", JOBS)
    path = workflow(
        tmp_path,
        f"""pythonpath: [.]
pools:
  workers: {{processes: 2}}
steps:
  - starmap: {{pool: workers, function: jobs:hang, items: [[1, {str(pids)!r}], [2, {str(pids)!r}]]}}
""",
    )
    log = tmp_path / "log.jsonl"
    mprun = subprocess.Popen(
        [sys.executable, "-m", "runner", str(path), "--log-file", str(log)],
        cwd=tmp_path,
        env=user_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_for(lambda: len(pids.read_text().split()) == 2 if pids.exists() else False, 30)
        mprun.send_signal(signal.SIGINT)
        _, err = mprun.communicate(timeout=30)
    finally:
        mprun.kill()
    assert mprun.returncode == 130, err
    assert "Traceback" not in err
    hung = [int(line) for line in pids.read_text().split()]
    assert not any(alive(pid) for pid in hung)
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert records[-1]["event"] == "run.end" and records[-1]["status"] == "interrupted"
    # The workers were stopped as processes of the run, not found as strays.
    assert not [r for r in events(records, "process.descendant") if r["pid"] in hung]
    ended = {record["process"] for record in events(records, "process.exit")}
    assert "workers" in ended and len([name for name in ended if "PoolWorker-" in name]) >= 2


def test_progress_is_logged_while_a_long_map_runs(tmp_path: Path) -> None:
    body = """pools:
  workers: {processes: 2}
steps:
  - map: {pool: workers, function: jobs:slow, items: [0.1, 1.5, 0.1, 1.5], chunksize: 1}
"""
    status, records, stderr = run(tmp_path, body)
    assert status == 0, stderr
    progress = events(records, "map.progress")
    assert progress and all(r["total"] == 4 and r["unit"] == "chunks" and 0 <= r["done"] < 4 for r in progress)


def test_what_pool_workers_print_reaches_the_log_without_a_flush(tmp_path: Path) -> None:
    body = """pools:
  workers: {processes: 2}
steps:
  - map: {pool: workers, function: jobs:spoken, items: {range: 6}, chunksize: 1}
"""
    status, records, stderr = run(tmp_path, body)
    assert status == 0, stderr
    lines = [r["line"] for r in events(records, "process.output") if "PoolWorker" in r["process"]]
    assert sorted(lines) == [f"working on {i}" for i in range(6)]


def test_a_call_runs_in_a_process_of_its_own_and_keeps_its_return_value(tmp_path: Path) -> None:
    body = """pools:
  workers: {processes: 1}
steps:
  - map: {pool: workers, function: jobs:double, items: [1, 2, 3], keep: doubled}
  - call: {function: jobs:total, args: [$doubled], keep: summed}
  - show: summed
  - call: {function: jobs:fail_on, args: [3], name: threes}
"""
    status, records, _ = run(tmp_path, body)
    assert status == 1
    assert step_ends(records) == [("map", "ok"), ("call", "ok"), ("show", "ok"), ("call", "failed")]
    assert [r["value"] for r in events(records, "object.show")] == ["12"]
    said = [(r["process"], r["line"]) for r in events(records, "process.output")]
    assert ("total", "adding 3 values") in said
    [raised] = events(records, "process.exception")
    assert raised["process"] == "threes" and raised["type"] == "ValueError"
    ended = {record["process"]: record["exitcode"] for record in events(records, "process.exit")}
    assert ended["total"] == 0 and ended["threes"] == 1


def test_a_worker_that_dies_in_a_task_fails_the_step_at_once(tmp_path: Path) -> None:
    # The standard library's Pool.map would wait for ever: the task dies with its worker.
    body = """pools:
  workers: {processes: 2}
steps:
  - map: {pool: workers, function: jobs:crash, items: {range: 4}, chunksize: 1}
"""
    began = time.monotonic()
    status, records, _ = run(tmp_path, body)
    assert status == 1 and time.monotonic() - began < 20
    [end] = events(records, "step.end")
    assert end["outcome"] == "failed"
    assert "of pool workers ended with signal SIGKILL while the step ran" in end["detail"]
    killed = [r for r in events(records, "process.exit") if r["signal"] == "SIGKILL"]
    assert killed and not killed[0]["expected"]
    assert records[-1]["event"] == "run.end"


def test_mprun_reads_a_workers_pipes_in_the_order_its_host_sends_them() -> None:
    from runner import host
    from runner.backends.multiprocessing import pools

    assert pools.STREAMS == host.STREAMS
