"""The Dask backend against the multiprocessing backend: the same workflows, the same outcomes.

Each run on Dask starts a LocalCluster of its own (about a second); one test starts a real
cluster from the `dask scheduler` and `dask worker` commands on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import ROOT, WORKFLOWS, alive, kill_all, user_env, wait_for, workflow

pytest.importorskip("distributed")

pytestmark = pytest.mark.timeout(240)

# The shipped workflows the Dask backend runs; the others use what it refuses.
SUPPORTED = (
    "consumers",
    "daemons",
    "events",
    "exitcodes",
    "logs",
    "messages",
    "names",
    "subclass",
    "terminate",
    "workers",
)
# The good corpus's files the Dask backend runs (tests/acceptance/good).
GOOD = ("anchors", "events", "producer-consumer", "queues", "replicas", "steps")
REFUSED = {
    "flaky": "'attempts'",
    "locks": "'counter'",
    "pool": "pool 'pool'",
    "service": "'client'",
    "shared": "'num'",
    "wordcount": "pool 'mapper'",
}


def mprun(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runner", *args], cwd=cwd, env=user_env(), capture_output=True, text=True, timeout=200
    )


def outcome(path: Path, log: Path, *options: str) -> dict[str, Any]:
    """What a user sees of a run, in a form both backends must give alike: the exit status,
    each process's exit code and signal and its lines (in order, per process), what get took."""
    done = mprun(str(path), "--log-file", str(log), *options)
    lines: dict[str, list[str]] = defaultdict(list)
    ends: dict[str, tuple[Any, Any]] = {}
    got: list[str] = []
    workers = set()
    unplaced = 0  # process records that do not say where the process ran
    for record in map(json.loads, log.read_text().splitlines()):
        event = record["event"]
        unplaced += event.startswith("process.") and "worker" not in record
        if event == "process.output":
            lines[record["process"]].append(record["line"])
        elif event == "process.exit":
            ends[record["process"]] = (record["exitcode"], record["signal"])
        elif event == "queue.get":
            got.append(record["item"])
        elif event == "process.start" and "worker" in record:
            workers.add(record["worker"])
    # Which consumer takes which item is a race on either backend: the lines are compared as one
    # multiset, each process's name in them made the same.
    names = sorted(set(lines) | set(ends), key=len, reverse=True)
    every = []
    for written in lines.values():
        for line in written:
            for name in names:
                line = line.replace(name, "<process>")
            every.append(line)
    return {
        "status": done.returncode,
        "ends": ends,
        "lines": sorted(every),
        "by_process": dict(lines),
        "got": sorted(got),
        "workers": workers,
        "unplaced": unplaced,
        "stderr": done.stderr,
    }


def _same(mp: dict[str, Any], dask: dict[str, Any]) -> None:
    assert dask["status"] == mp["status"] == 0, dask["stderr"][-3000:]
    for key in ("ends", "lines", "got"):
        assert dask[key] == mp[key], key
    assert dask["workers"] and not mp["workers"]  # each process record says where it ran
    assert dask["unplaced"] == 0


@pytest.mark.parametrize("name", SUPPORTED)
def test_a_shipped_workflow_runs_alike_on_both_backends(name: str, tmp_path: Path) -> None:
    path = WORKFLOWS / f"{name}.yaml"
    _same(outcome(path, tmp_path / "mp.jsonl"), outcome(path, tmp_path / "dask.jsonl", "--backend", "dask"))


@pytest.mark.parametrize("name", GOOD)
def test_a_good_corpus_workflow_runs_alike_on_both_backends(name: str, tmp_path: Path) -> None:
    path = ROOT / "tests" / "acceptance" / "good" / f"{name}.yaml"
    _same(outcome(path, tmp_path / "mp.jsonl"), outcome(path, tmp_path / "dask.jsonl", "--backend", "dask"))


def test_fail_fast_stops_a_run_on_dask_as_on_one_machine(tmp_path: Path) -> None:
    path = WORKFLOWS / "pipeline.yaml"
    mp, dask = outcome(path, tmp_path / "mp.jsonl"), outcome(path, tmp_path / "dask.jsonl", "--backend", "dask")
    assert dask["status"] == mp["status"] == 1
    assert dask["ends"] == mp["ends"] and dask["ends"]["producer"][1] == "SIGTERM"
    [end] = [json.loads(line) for line in (tmp_path / "dask.jsonl").read_text().splitlines()][-1:]
    assert end["failures"] == ["fail fast: parser ended with exit code 1, not as expected (exit code 0)"]


@pytest.mark.parametrize(("name", "word"), sorted(REFUSED.items()))
def test_what_dask_cannot_run_is_refused_where_it_is_written(name: str, word: str) -> None:
    checked = mprun("check", "--backend", "dask", "--no-import", f"workflows/{name}.yaml")
    assert checked.returncode == 1
    assert f"workflows/{name}.yaml:" in checked.stdout and "[unsupported-on-dask]" in checked.stdout
    assert f"error: {word} cannot run on the Dask backend" in checked.stdout
    assert "slow-on-dask" not in checked.stdout  # warnings only for a file without errors
    ran = mprun(f"workflows/{name}.yaml", "--backend", "dask")
    assert ran.returncode == 2 and "unsupported-on-dask" in ran.stderr and "Traceback" not in ran.stderr
    assert mprun("check", "--no-import", f"workflows/{name}.yaml").returncode == 0  # fine on multiprocessing


def test_the_shared_objects_keep_multiprocessing_s_promises_on_both_backends(tmp_path: Path) -> None:
    path = workflow(
        tmp_path,
        textwrap.dedent(f"""\
        pythonpath: [{ROOT}]
        queues:
          plain: {{}}
          bounded: {{maxsize: 1}}
          tasks: {{kind: joinable}}
        events: {{event: {{}}}}
        locks: {{lock: {{}}}}
        semaphores: {{semaphore: {{value: 2, bounded: true}}}}
        processes:
          check:
            target: tests.contract.semantics:check
            args: [$plain, $bounded, $tasks, $event, $lock, $semaphore]
        """),
    )
    mp, dask = outcome(path, tmp_path / "mp.jsonl"), outcome(path, tmp_path / "dask.jsonl", "--backend", "dask")
    promises = mp["by_process"]["check"]
    assert len(promises) == 18 and all(line.startswith("kept: ") for line in promises), promises
    _same(mp, dask)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """A scheduler and two workers from Dask's own commands, on 127.0.0.1: its address."""
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    bin_folder = Path(sys.executable).parent
    env = {**user_env(), "PYTHONPATH": f"{WORKFLOWS}{os.pathsep}{ROOT}"}
    commands = [[str(bin_folder / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"]]
    commands += [[str(bin_folder / "dask"), "worker", address, "--nthreads", "2", "--no-dashboard"]] * 2
    started = []
    try:
        for command in commands:
            started.append(
                subprocess.Popen(
                    command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
                )
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and _workers(address) < 2:
            time.sleep(0.3)
        assert _workers(address) == 2
        yield address
    finally:
        for process in started:
            os.killpg(process.pid, signal.SIGTERM)
        for process in started:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def test_the_seed_consumers_run_on_a_real_cluster_of_two_workers(cluster: str, tmp_path: Path) -> None:
    path = WORKFLOWS / "consumers.yaml"
    mp = outcome(path, tmp_path / "mp.jsonl")
    dask = outcome(path, tmp_path / "dask.jsonl", "--cluster", cluster)
    _same(mp, dask)
    assert len(dask["workers"]) == 2  # the consumers were spread over both


SLEEPERS = """\
def sleep(path):
    import os, time
    with open(path, "a") as pids:
        pids.write(f"{os.getpid()}\\n")
    print("asleep", flush=True)
    time.sleep(300)


def kill_my_worker():
    import os, signal, time
    def parent(pid):
        with open(f"/proc/{pid}/stat") as stat:
            return int(stat.read().rsplit(")", 1)[1].split()[1])
    print("killing my worker", flush=True)
    os.kill(parent(parent(os.getpid())), signal.SIGKILL)  # its parent is the worker's fork server
    time.sleep(300)
"""


def test_a_run_whose_client_is_killed_leaves_nothing_running_on_the_cluster(cluster: str, tmp_path: Path) -> None:
    (tmp_path / "sleepers.py").write_text(SLEEPERS)
    pids = tmp_path / "pids"
    path = workflow(
        tmp_path,
        f"pythonpath: [.]\nprocesses:\n  sleeper: {{target: sleepers:sleep, args: [{str(pids)!r}], replicas: 4}}\n",
    )
    run = subprocess.Popen(
        [sys.executable, "-m", "runner", str(path), "--cluster", cluster, "--log-file", str(tmp_path / "log.jsonl")],
        cwd=tmp_path,
        env=user_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert wait_for(lambda: pids.exists() and len(pids.read_text().split()) == 4, 60)
        run.kill()  # SIGKILL: mprun stops nothing itself
        run.wait()
        started = [int(pid) for pid in pids.read_text().split()]
        assert wait_for(lambda: not any(alive(pid) for pid in started), 30)  # each agent saw its client go
    finally:
        if run.poll() is None:
            run.kill()
        if pids.exists():
            kill_all(int(pid) for pid in pids.read_text().split())


def test_a_worker_that_dies_under_a_process_ends_it_as_lost(tmp_path: Path) -> None:
    (tmp_path / "sleepers.py").write_text(SLEEPERS)
    path = workflow(
        tmp_path,
        "pythonpath: [.]\nprocesses:\n  killer: {target: sleepers:kill_my_worker}\n"
        "steps:\n  - start: killer\n  - join: {process: killer, timeout: 60}\n",
    )
    log = tmp_path / "log.jsonl"
    done = mprun(str(path), "--backend", "dask", "--log-file", str(log), cwd=tmp_path)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "killer - lost: its worker tcp://127.0.0.1:" in done.stderr
    events = [json.loads(line) for line in log.read_text().splitlines()]
    [joined] = [e for e in events if e["event"] == "step.end" and e["kind"] == "join"]
    assert joined["outcome"] == "lost"
    [ended] = [e for e in events if e["event"] == "process.exit"]
    assert ended["lost"].startswith("its worker") and ended["expected"] is False
    assert events[-1]["event"] == "run.end" and events[-1]["failures"] == [f"killer was lost: {ended['lost']}"]


def _workers(address: str) -> int:
    probe = (
        "import distributed, sys\n"
        "try:\n"
        f"    c = distributed.Client({address!r}, timeout=2)\n"
        "except Exception:\n"
        "    print(0); sys.exit()\n"
        "print(len(c.scheduler_info(n_workers=-1)['workers'])); c.close()\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=30)
    try:
        return int(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return 0
