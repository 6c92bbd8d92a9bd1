"""`mprun WORKFLOW` beyond the seed: every object kind, failures, signals, time limits, capture."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support import ROOT, alive, start_mprun, user_env, write
from tests.test_run import METHODS, Log, run_mprun

pytestmark = pytest.mark.timeout(120)

GOOD = ROOT / "tests" / "acceptance" / "good"

JOBS = """
import ctypes, os, sys, time

def chatty():
    print("buffered, never flushed")
    os.write(1, b"straight to fd 1\\n")
    ctypes.CDLL(None).write(2, b"from C, to fd 2\\n", 16)
    sys.stdout.write("no newline at the end")

def forge(log_file):
    found = 0
    for entry in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{entry}") == log_file:
                os.write(int(entry), b'{"event": "run.end", "status": "ok", "forged": true}\\n')
                found += 1
        except OSError:
            pass
    print("found", found)

def sleeper(seconds=60):
    time.sleep(seconds)

def suicide():
    os.kill(os.getpid(), 9)

def modules():
    heavy = ("yaml", "jsonschema", "structlog", "referencing")
    print(" ".join(sorted(name for name in sys.modules
                          if name.split(".")[0] in heavy or name in ("runner.main", "argparse"))) or "clean")

def pooled(n):
    import logging, multiprocessing
    with multiprocessing.get_context("fork").Pool(3) as pool:
        print("total", sum(pool.map(_task, range(n))))

def _task(i):
    import logging
    logging.getLogger("task").warning("task %d %s", i, "z" * 2000)
    return i

def threaded_logs():
    import logging, threading
    def spam():
        for i in range(30):
            logging.getLogger("spam").warning("x" * 20000)
    threads = [threading.Thread(target=spam) for _ in range(4)]
    for thread in threads:
        thread.start()
    return "y" * 50000

def stubborn(path):
    import signal
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    pid_file(path)

def failing_items():
    raise ValueError("no items today")

import multiprocessing as _mp

class SelfDaemon(_mp.Process):
    def __init__(self):
        super().__init__(daemon=True)
    def run(self):
        time.sleep(60)

class Broken(_mp.Process):
    def __init__(self):
        raise RuntimeError("cannot build")

class Unpicklable(_mp.Process):
    def __init__(self):
        super().__init__()
        self.callback = lambda: None  # spawn and forkserver cannot send it to the child

def ctrl_c_handler():
    import signal
    handler = signal.getsignal(signal.SIGINT)
    print({signal.default_int_handler: "python", signal.SIG_IGN: "ignored"}.get(handler, repr(handler)))

def ctrl_c_to_parent():
    import signal
    os.kill(os.getppid(), signal.SIGINT)

def pid_file(path):
    with open(path, "a") as out:
        out.write(f"{os.getpid()}\\n")
    time.sleep(60)
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write(tmp_path, "jobs.py", JOBS)
    return tmp_path


def workflow(project: Path, body: str, name: str = "w.yaml") -> Path:
    return write(project, name, "version: 1\n" + body)


@pytest.mark.parametrize("path", sorted(GOOD.glob("*.yaml")), ids=lambda path: path.name)
def test_the_good_corpus_runs_every_object_and_step_kind(path: Path, tmp_path: Path) -> None:
    log = run_mprun(path, tmp_path / "run.jsonl")
    assert log.exitcode == 0, log.stderr
    assert log.events("run.end")[0]["status"] == "ok"


def test_output_is_captured_at_the_file_descriptor_without_pythonunbuffered(project: Path) -> None:
    log = run_mprun(workflow(project, "processes: {p: {target: jobs:chatty}}\n"), project / "run.jsonl")
    assert log.exitcode == 0, log.stderr
    stdout = [r["line"] for r in log.events("process.output", stream="stdout")]
    stderr = [r["line"] for r in log.events("process.output", stream="stderr")]
    assert sorted(stdout) == sorted(["buffered, never flushed", "straight to fd 1", "no newline at the end"])
    assert stderr == ["from C, to fd 2"]


def test_the_child_side_imports_only_the_standard_library(project: Path) -> None:
    log = run_mprun(
        workflow(project, "start_method: spawn\nprocesses: {p: {target: jobs:modules}}\n"), project / "run.jsonl"
    )
    assert log.lines("p") == ["clean"]


def test_a_child_killed_by_sigkill_fails_the_run(project: Path) -> None:
    log = run_mprun(workflow(project, "processes: {p: {target: jobs:suicide}}\n"), project / "run.jsonl")
    assert log.exitcode == 1
    [ended] = log.events("process.exit")
    assert (ended["exitcode"], ended["signal"], ended["expected"]) == (-9, "SIGKILL", False)
    assert log.events("run.end")[0]["status"] == "failed"


def test_a_step_that_times_out_fails_the_run_but_later_steps_still_run(project: Path) -> None:
    body = (
        "queues: {q: {}}\nevents: {e: {}}\nprocesses: {p: {target: jobs:sleeper, args: [0], kwargs: {}}}\n"
        "steps:\n  - start: p\n  - get: {queue: q, timeout: 0.2}\n  - wait: {event: e, timeout: 0.1}\n"
        "  - join: p\n"
    )
    log = run_mprun(workflow(project, body), project / "run.jsonl")
    assert log.exitcode == 1
    outcomes = [(r["kind"], r["outcome"]) for r in log.events("step.end")]
    assert outcomes == [("start", "ok"), ("get", "timeout"), ("wait", "timeout"), ("join", "ok")]
    assert len(log.events("run.end")[0]["failures"]) == 2


def test_an_invalid_workflow_starts_nothing_and_exits_2(project: Path) -> None:
    path = workflow(project, "processes: {p: {target: jobs:sleeper, replicas: 0}}\n")
    env = user_env()
    result = subprocess.run(
        [sys.executable, "-m", "runner", str(path), "--log-file", str(project / "run.jsonl")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert f"{path}:2:49: error: 'replicas' must be at least 1" in result.stderr
    assert not (project / "run.jsonl").exists()
    result = subprocess.run(
        [sys.executable, "-m", "runner", str(workflow(project, "processes: {p: {target: jobs:nope}}\n", "x.yaml"))],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "'jobs' has no attribute 'nope'" in result.stderr


def test_the_whole_run_time_limit_stops_everything(project: Path) -> None:
    started = time.monotonic()
    log = run_mprun(
        workflow(project, "processes: {p: {target: jobs:sleeper}}\n"),
        project / "run.jsonl",
        "--timeout",
        "1",
        "--grace",
        "1",
    )
    assert time.monotonic() - started < 15
    assert log.exitcode == 1
    [ended] = log.events("process.exit")
    assert ended["signal"] == "SIGTERM"
    assert log.events("run.end")[0]["status"] == "failed"


def test_dry_run_prints_the_plan_and_starts_nothing(project: Path) -> None:
    path = workflow(project, "queues: {q: {}}\nprocesses: {p: {target: jobs:sleeper, args: [$q], replicas: 2}}\n")
    env = user_env()
    result = subprocess.run(
        [sys.executable, "-m", "runner", "--dry-run", str(path)],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0
    assert "  p-0: target jobs:sleeper" in result.stdout and "  p-1: target jobs:sleeper" in result.stdout
    assert "  q: queue" in result.stdout
    assert not (project / "mprun-logs").exists()


def test_the_python_api(project: Path) -> None:
    import io

    import runner

    console = io.StringIO()
    result = runner.run(
        workflow(project, "processes: {p: {target: jobs:sleeper, args: [0]}}\n"),
        log_file=project / "api.jsonl",
        console=console,
    )
    assert (result.status, result.exitcode) == ("ok", 0)
    [outcome] = result.processes
    assert (outcome.name, outcome.exitcode, outcome.expected, outcome.returned) == ("p", 0, True, "None")
    assert result.log_file == project / "api.jsonl" and "p - ended with exit code 0" in console.getvalue()


PROGRAM_WITH_A_THREAD = """
import json, sys, threading
import runner

def main():
    found = {}
    def go():
        try:
            found["status"] = runner.run(sys.argv[1], log_file=sys.argv[2], timeout=30).status
        except BaseException as error:
            found["status"] = repr(error)
    worker = threading.Thread(target=go)
    worker.start()
    worker.join(60)
    print(json.dumps(found))

if __name__ == "__main__":
    main()
"""


@pytest.mark.parametrize("method", METHODS)
def test_runner_run_works_from_a_thread_other_than_the_main_one(project: Path, method: str) -> None:
    write(project, "program.py", PROGRAM_WITH_A_THREAD)
    body = (
        f"start_method: {method}\nqueues: {{q: {{}}}}\nprocesses:\n  p: {{target: jobs:sleeper, args: [60]}}\n"
        "  c: {target: jobs:sleeper, args: [0]}\n"
        "steps:\n  - start: [p, c]\n  - join: {process: p, timeout: 0.2}\n  - terminate: p\n  - join: c\n"
    )
    path, log_file = workflow(project, body), project / "run.jsonl"
    result = subprocess.run(
        [sys.executable, "program.py", str(path), str(log_file)],
        cwd=project,
        env=user_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == {"status": "ok"}
    log = Log(log_file, result.returncode, result.stderr)
    assert log.records[-1]["event"] == "run.end"
    assert log.exits()["p"]["signal"] == "SIGTERM" and log.exits()["c"]["exitcode"] == 0


CLASH = "raise SystemExit(f'the user file {__file__} was imported in place of mprun\\'s own')\n"


@pytest.mark.parametrize("method", METHODS)
def test_mprun_never_imports_a_user_s_module_in_place_of_its_own(project: Path, method: str) -> None:
    # Beside the workflow and first on its pythonpath, and the current folder as well.
    for name in ("difflib", "yaml", "structlog", "jsonschema", "queue", "inspect", "argparse"):
        write(project, f"{name}.py", CLASH)
    worker = (
        "import jobs\n\nclass Worker(jobs._mp.Process):\n    def run(self):\n        print('ran')\n\n"
        "def use(d, v, q):\n    d['k'] = v.value\n    q.put(1)\n"
    )
    write(project, "worker.py", worker)
    body = (
        f"start_method: {method}\ndicts: {{d: {{}}}}\nvalues: {{v: {{type: i}}}}\nqueues: {{q: {{}}}}\n"
        "processes:\n  p: {target: worker:use, args: [$d, $v, $q]}\n  w: {class: worker:Worker}\n"
        "steps:\n  - start: [p, w]\n  - get: {queue: q}\n  - join: [p, w]\n"
    )
    path = workflow(project, body)
    result = subprocess.run(
        [sys.executable, "-m", "runner", str(path), "--log-file", "run.jsonl"],
        cwd=project,
        env=user_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "in place of mprun" not in result.stdout + result.stderr
    log = Log(project / "run.jsonl", result.returncode, result.stderr)
    assert log.exits()["w"]["exitcode"] == 0 and log.lines("w") == ["ran"]


def test_a_target_module_that_starts_processes_on_import_is_refused_and_they_are_stopped(project: Path) -> None:
    write(
        project,
        "script.py",
        "import jobs, os, pathlib\n"
        "p = jobs._mp.Process(target=jobs.sleeper)\np.start()\n"
        "pathlib.Path(__file__).with_name('pid').write_text(str(p.pid))\n",
    )
    log = project / "run.jsonl"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "runner",
            str(workflow(project, "processes: {p: {target: script:p}}\n")),
            "--log-file",
            str(log),
        ],
        cwd=project,
        env=user_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "[import-side-effect]" in result.stderr, result.stderr
    assert not alive(int((project / "pid").read_text()))


def test_records_from_a_pool_inside_a_child_neither_garble_nor_hang_the_run(project: Path) -> None:
    log = run_mprun(workflow(project, "processes: {p: {target: jobs:pooled, args: [60]}}\n"), project / "run.jsonl")
    assert log.exitcode == 0, log.stderr
    assert log.lines("p")[-1] == "total 1770"
    warnings = [line for line in log.lines("p") if line.startswith("[WARNING/task] task ")]
    assert len(warnings) == 60
    assert not log.events("process.unreadable")


def test_a_console_that_goes_away_does_not_stop_the_run(project: Path) -> None:
    read, write_end = os.pipe()
    os.close(read)
    path = workflow(project, "processes: {p: {target: jobs:chatty}}\n")
    result = subprocess.run(
        [sys.executable, "-m", "runner", str(path), "--log-file", str(project / "run.jsonl")],
        cwd=ROOT,
        env=user_env(),
        stdout=subprocess.DEVNULL,
        stderr=write_end,
        timeout=60,
    )
    os.close(write_end)
    assert result.returncode == 0
    assert Log(project / "run.jsonl", 0, "").events("run.end")[0]["status"] == "ok"


def test_a_second_interrupt_while_stopping_is_ignored(project: Path) -> None:
    pids = project / "pids"
    path = workflow(project, f"processes: {{p: {{target: jobs:stubborn, args: ['{pids}']}}}}\n")
    mprun = start_mprun(str(path), "--log-file", str(project / "run.jsonl"), "--grace", "2")
    try:
        deadline = time.monotonic() + 30
        while not pids.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)
        [child] = [int(pid) for pid in pids.read_text().split()]
        mprun.send_signal(signal.SIGINT)
        time.sleep(0.3)
        mprun.send_signal(signal.SIGINT)
        assert mprun.wait(timeout=20) == 130
        assert not alive(child)
    finally:
        mprun.kill()
        mprun.wait()
    log = Log(project / "run.jsonl", 130, "")
    assert log.events("run.end")[0]["status"] == "interrupted"
    assert log.events("process.exit")[0]["signal"] == "SIGKILL"  # it ignored SIGTERM


def test_a_class_that_makes_itself_a_daemon_stays_one(project: Path) -> None:
    body = "processes:\n  d: {class: jobs:SelfDaemon}\n  p: {target: jobs:sleeper, args: [0.2]}\n"
    started = time.monotonic()
    log = run_mprun(workflow(project, body), project / "run.jsonl", "--grace", "1")
    assert time.monotonic() - started < 30
    assert log.exitcode == 0, log.stderr
    assert log.exits()["d"]["signal"] == "SIGTERM"


@pytest.mark.parametrize(
    "body,fragment",
    [
        (
            "queues: {q: {}}\nprocesses: {p: {target: jobs:sleeper, args: [$q]}}\nsteps:\n  - start: p\n"
            "  - put: {queue: q, from: jobs:failing_items}\n  - terminate: p\n",
            "ValueError: no items today",
        ),
        ("processes: {b: {class: jobs:Broken}}\n", "RuntimeError: cannot build"),
    ],
)
def test_user_code_that_fails_a_step_or_the_build_fails_the_run_not_mprun(
    project: Path, body: str, fragment: str
) -> None:
    log = run_mprun(workflow(project, body), project / "run.jsonl")
    assert log.exitcode == 1, log.stderr
    [end] = log.events("run.end")
    assert end["status"] == "failed" and any(fragment in failure for failure in end["failures"])


def test_a_start_step_that_fails_part_way_still_reads_and_joins_what_it_started(project: Path) -> None:
    body = (
        "start_method: spawn\nprocesses:\n  first: {target: jobs:chatty}\n  bad: {class: jobs:Unpicklable}\n"
        "  last: {target: jobs:chatty}\nsteps:\n  - start: [first, bad, last]\n  - join: first\n"
    )
    log = run_mprun(workflow(project, body), project / "run.jsonl")
    assert log.exitcode == 1, log.stderr
    [step] = log.events("step.end", step=1)
    assert step["outcome"] == "failed"
    assert step["detail"].startswith("'bad' cannot be sent to a spawn child: not picklable: "), step["detail"]
    assert [r["process"] for r in log.events("process.start")] == ["first"]
    stdout = [r["line"] for r in log.events("process.output", process="first", stream="stdout")]
    assert sorted(stdout) == sorted(["buffered, never flushed", "straight to fd 1", "no newline at the end"])
    events = [r["event"] for r in log.records if r.get("process") == "first"]
    assert events[0] == "process.start" and log.exits()["first"]["exitcode"] == 0


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("ignored", [False, True])
def test_a_child_gets_ctrl_c_as_mprun_got_it(project: Path, method: str, ignored: bool) -> None:
    # mprun holds Ctrl-C while it starts processes; a child must not keep that handler.
    body = f"start_method: {method}\nprocesses: {{p: {{target: jobs:ctrl_c_handler, replicas: 3}}}}\n"
    path, log_file = workflow(project, body), project / "run.jsonl"
    log = run_mprun(path, log_file, ignore_ctrl_c=ignored)
    assert log.exitcode == 0, log.stderr
    expected = "ignored" if ignored else "python"
    assert [log.lines(f"p-{n}") for n in range(3)] == [[expected]] * 3


def test_an_ignored_ctrl_c_during_a_start_step_starts_every_process(project: Path) -> None:
    body = "start_method: fork\nprocesses: {p: {target: jobs:ctrl_c_to_parent, replicas: 40}}\n"
    log = run_mprun(workflow(project, body), project / "run.jsonl", ignore_ctrl_c=True)
    assert log.exitcode == 0, log.stderr
    assert len(log.events("process.start")) == 40
    assert [r["exitcode"] for r in log.exits().values()] == [0] * 40


@pytest.mark.skipif(resource.getrlimit(resource.RLIMIT_NOFILE)[0] < 1500, reason="needs 1500 descriptors")
@pytest.mark.parametrize("method", METHODS)
def test_descriptors_numbered_past_1024_are_fine(project: Path, method: str) -> None:
    # mprun inherits 1100 open descriptors, so that every pipe it makes is numbered past
    # select()'s limit: nothing in mprun or its children may use select() on them.
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    path = workflow(project, f"start_method: {method}\nprocesses: {{p: {{target: jobs:chatty, replicas: 3}}}}\n")
    try:
        log = run_mprun(path, project / "run.jsonl", timeout=60, pass_fds=held)
    finally:
        for descriptor in held:
            os.close(descriptor)
    assert log.exitcode == 0, log.stderr[-3000:]
    assert [r["exitcode"] for r in log.exits().values()] == [0, 0, 0]
    assert len(log.events("process.output", stream="stdout")) == 9


def test_an_unwritable_log_file_is_a_usage_error(project: Path) -> None:
    path = workflow(project, "processes: {p: {target: jobs:sleeper, args: [0]}}\n")
    result = subprocess.run(
        [sys.executable, "-m", "runner", str(path), "--log-file", str(project)],
        cwd=ROOT,
        env=user_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "cannot write the log file" in result.stderr


def test_durations_run_from_start_to_exit_not_to_the_join(project: Path) -> None:
    body = (
        "processes: {slow: {target: jobs:sleeper, args: [1.5]}, quick: {target: jobs:sleeper, args: [0]}}\n"
        "steps:\n  - start: [slow, quick]\n  - join: [slow, quick]\n"
    )
    log = run_mprun(workflow(project, body), project / "run.jsonl")
    exits = log.exits()
    assert exits["slow"]["duration_s"] >= 1.4 and exits["quick"]["duration_s"] < 1.0


def test_events_from_threads_logging_big_records_arrive_whole(project: Path) -> None:
    log = run_mprun(workflow(project, "processes: {p: {target: jobs:threaded_logs}}\n"), project / "run.jsonl")
    assert log.exitcode == 0, log.stderr
    assert not log.events("process.unreadable")
    assert len(log.events("process.log", process="p")) == 120
    [ended] = log.events("process.exit")
    assert ended["cpu_s"] is not None


@pytest.mark.parametrize(
    "name",
    ['"../../escaped"', '"a\\0b"', '"new\\nline"', '"/abs/path"', "x" * 10_000, '"..."'],
    ids=["dots", "nul", "newline", "slash", "long", "only-dots"],
)
def test_the_default_log_file_stays_inside_mprun_logs_whatever_the_name(project: Path, name: str) -> None:
    path = write(
        project, "w.yaml", f"version: 1\nname: {name}\nprocesses: {{p: {{target: jobs:sleeper, args: [0]}}}}\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "runner", str(path)], cwd=project, env=user_env(), capture_output=True, timeout=60
    )
    assert result.returncode == 0, result.stderr[-2000:]
    [made] = (project / "mprun-logs").iterdir()
    assert made.is_file() and len(made.name) < 120 and made.suffix == ".jsonl"
    assert [p for p in project.rglob("*.jsonl")] == [made]


@pytest.mark.parametrize("method", METHODS)
def test_a_child_cannot_write_into_mprun_s_log(project: Path, method: str) -> None:
    log_file = project / "run.jsonl"
    path = workflow(project, f"processes: {{p: {{target: jobs:forge, args: ['{log_file}']}}}}\n")
    log = run_mprun(path, log_file, "--start-method", method)
    assert log.exitcode == 0, log.stderr
    assert log.lines("p") == ["found 0"]
    assert not [record for record in log.records if record.get("forged")]
