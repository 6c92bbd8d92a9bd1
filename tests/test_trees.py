"""Whole process trees: a join waits for the process, not for what it started; nothing a
process started outlives the run, however it ended; a terminate step stops the process's
descendants too. Each shape of descendant (a forked helper, a double-forked daemon, a program
in a new session, a Pool) under every start method, judged by pids and the JSON log."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runner.backends.multiprocessing.cgroups import Cgroups
from tests.support import ROOT, alive, kill_all, pids_in, start_mprun, user_env, wait_for, whole_lines, workflow, write
from tests.test_run import METHODS, run_mprun

pytestmark = pytest.mark.timeout(90)

JOBS = """
import os, subprocess, sys, time

def _note(path, pid):
    with open(path, "a") as out:
        out.write(f"{pid}\\n")

def helper(path):
    if os.fork() == 0:
        _note(path, os.getpid())
        time.sleep(300)
        os._exit(0)
    time.sleep(0.2)

def daemon(path):
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            _note(path, os.getpid())
            time.sleep(300)
            os._exit(0)
        os._exit(0)
    time.sleep(0.2)

def session(path):
    child = subprocess.Popen(["sleep", "300"], start_new_session=True)
    _note(path, child.pid)

def pool(path, context=None):
    import multiprocessing
    workers = (context or multiprocessing).Pool(2)
    workers.map(abs, range(4))  # both have started: a spawn worker still starting dies with its parent
    for worker in workers._pool:
        _note(path, worker.pid)
    return workers  # left open: its finalizer at exit stops it, but not a SIGTERM or SIGKILL

def forked_pool(path):
    import multiprocessing
    return pool(path, multiprocessing.get_context("fork"))

def started(shape, path, ready):
    kept = globals()[shape](path)  # a Pool nobody holds is stopped at once
    ready.set()
    time.sleep(300)
"""

SHAPES = ("helper", "daemon", "session")

CGROUPS = [
    pytest.param("on", marks=pytest.mark.skipif(not Cgroups.available(), reason="no cgroup v2 to make here")),
    "off",
]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write(tmp_path, "jobs.py", JOBS)
    return tmp_path


@pytest.mark.parametrize("method", METHODS)
def test_a_join_ends_when_the_process_ends_whatever_it_left_running(project: Path, method: str) -> None:
    pids = project / "pids"
    path = workflow(
        project,
        f"processes: {{p: {{target: jobs:helper, args: ['{pids}']}}}}\n"
        "steps:\n  - start: p\n  - join: {process: p, timeout: 30}\n",
    )
    try:
        log = run_mprun(path, project / "run.jsonl", "--start-method", method)
        assert log.exitcode == 0, log.stderr
        [joined] = log.events("step.end", kind="join")
        assert joined["outcome"] == "ok" and joined["duration_s"] < 10
        assert log.exits()["p"]["duration_s"] < 10
        [helper] = pids_in(pids)
        assert not alive(helper)
        [stopped] = log.events("process.descendant")
        assert (stopped["pid"], stopped["stopped_by"]) == (helper, "SIGTERM")
    finally:
        kill_all(pids_in(pids))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("shape", SHAPES)
def test_nothing_a_process_started_outlives_a_run_that_ends_normally(project: Path, method: str, shape: str) -> None:
    pids = project / "pids"
    path = workflow(project, f"processes: {{p: {{target: jobs:{shape}, args: ['{pids}']}}}}\n")
    try:
        log = run_mprun(path, project / "run.jsonl", "--start-method", method)
        assert log.exitcode == 0, log.stderr
        [left] = pids_in(pids)
        assert not alive(left)
        assert [r["pid"] for r in log.events("process.descendant")] == [left]
    finally:
        kill_all(pids_in(pids))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("shape", [*SHAPES, "pool"])
@pytest.mark.parametrize("cgroups", CGROUPS)
def test_a_terminate_step_stops_what_the_process_started(
    project: Path, method: str, shape: str, cgroups: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MPRUN_CGROUPS", cgroups)
    pids = project / "pids"
    path = workflow(
        project,
        "events: {ready: {}}\n"
        f"processes: {{p: {{target: jobs:started, args: [{shape}, '{pids}', $ready]}}}}\n"
        "steps:\n  - start: p\n  - wait: {event: ready, timeout: 30}\n  - terminate: p\n",
    )
    try:
        log = run_mprun(path, project / "run.jsonl", "--start-method", method)
        assert log.exitcode == 0, log.stderr
        started = pids_in(pids)
        assert started and not any(alive(pid) for pid in started)
        stopped = log.events("process.descendant")
        terminated = log.records.index(log.events("step.end", kind="terminate")[0])
        # Stopped by the step (not at the end), in the process's name where it could be told.
        if shape != "pool":  # its workers end by themselves once their pool's owner has: maybe first
            assert {r["pid"] for r in stopped} >= set(started)
        if shape == "daemon" and cgroups == "off":
            return  # its parent has ended: without a cgroup nothing tells whose it was until the end
        assert all(log.records.index(r) < terminated for r in stopped if r["pid"] in started)
        assert {r["process"] for r in stopped if r["pid"] in started} == {"p"}
    finally:
        kill_all(pids_in(pids))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_nothing_a_process_started_outlives_an_interrupted_run(project: Path, method: str, how: int) -> None:
    pids = project / "pids"
    path = workflow(
        project,
        "events: {ready: {}}\n"
        f"processes:\n  d: {{target: jobs:started, args: [daemon, '{pids}', $ready]}}\n"
        f"  s: {{target: jobs:started, args: [session, '{pids}', $ready]}}\n",
    )
    log_file = project / "run.jsonl"
    mprun = start_mprun("--start-method", method, "--log-file", str(log_file), str(path), console=False)
    try:
        assert wait_for(lambda: len(pids_in(pids)) == 2, 30)
        mprun.send_signal(how)
        assert mprun.wait(timeout=30) == {signal.SIGINT: 130, signal.SIGTERM: 143}[how]
        assert not any(alive(pid) for pid in pids_in(pids))
        reported = {r["pid"] for r in whole_lines(log_file) if r["event"] == "process.descendant"}
        assert reported >= set(pids_in(pids))
    finally:
        mprun.kill()
        mprun.wait()
        kill_all(pids_in(pids))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("cgroups", CGROUPS)
def test_a_pool_started_inside_a_process_dies_with_a_killed_mprun(
    project: Path, method: str, cgroups: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MPRUN_CGROUPS", cgroups)
    pids = project / "pids"
    shape = "pool" if method == "fork" or cgroups == "on" else "forked_pool"  # see the README
    path = workflow(
        project,
        f"events: {{ready: {{}}}}\nprocesses: {{p: {{target: jobs:started, args: [{shape}, '{pids}', $ready]}}}}\n",
    )
    mprun = start_mprun("--start-method", method, "--log-file", str(project / "run.jsonl"), str(path), console=False)
    try:
        assert wait_for(lambda: len(pids_in(pids)) == 2, 30)
        time.sleep(0.2)
        mprun.kill()
        mprun.wait(timeout=10)
        assert wait_for(lambda: not any(alive(pid) for pid in pids_in(pids)), 5)
    finally:
        mprun.kill()
        mprun.wait()
        kill_all(pids_in(pids))


def test_runner_run_leaves_the_calling_program_s_own_children_and_subreaper_alone(project: Path) -> None:
    pids = project / "pids"
    path = workflow(project, f"processes: {{p: {{target: jobs:helper, args: ['{pids}']}}}}\n")
    host = f"""
import ctypes, json, subprocess, sys
sys.path.insert(0, {str(ROOT)!r})
import runner
prctl = ctypes.CDLL(None).prctl
prctl(36, 1, 0, 0, 0)  # the host is a child subreaper of its own
mine = subprocess.Popen(["sleep", "30"])
result = runner.run({str(path)!r}, log_file={str(project / "run.jsonl")!r})
flag = ctypes.c_int(0)
prctl(37, ctypes.byref(flag), 0, 0, 0)
print(json.dumps([result.exitcode, mine.poll(), flag.value]))
mine.kill()
"""
    try:
        done = subprocess.run([sys.executable, "-c", host], capture_output=True, text=True, timeout=60, env=user_env())
        assert json.loads(done.stdout.splitlines()[-1]) == [0, None, 1], done.stderr
        reported = [r for r in whole_lines(project / "run.jsonl") if r["event"] == "process.descendant"]
        assert [r["pid"] for r in reported] == pids_in(pids)  # the helper, not the host's sleep
    finally:
        kill_all(pids_in(pids))
