"""Well-known multiprocessing programs written as workflows, their worker code in the shape of
the original's: PyMOTW-3's multiprocessing chapter, the examples of CPython's multiprocessing
docs, `Doc/includes/mp_workers.py` and `mp_synchronize.py` (`tests/ports/`).

Each runs under fork, spawn and forkserver, as a user runs it (a real `mprun`, no
PYTHONUNBUFFERED), and its log must hold what the original prints: each process's lines, and
what the original's parent prints, here the values of its `show`, `recv` and `get` steps. Order
across processes and pids are the run's own.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support import ROOT, WORKFLOWS, user_env

PORTS = ROOT / "tests" / "ports"
# Ports that are shipped workflows too (workflows/), by the name of their file there.
SHIPPED = {"pool": "pool", "wordcount": "wordcount", "producer_consumer": "consumers"}
METHODS = ("fork", "spawn", "forkserver")


@dataclass
class Printed:
    """What a run's log says was printed: each process's lines, and the parent's."""

    lines: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    parent: list[str] = field(default_factory=list)
    status: str = ""

    def matching(self, pattern: str) -> dict[str, list[str]]:
        return {name: lines for name, lines in self.lines.items() if re.fullmatch(pattern, name)}


def run(name: str, method: str, tmp_path: Path) -> Printed:
    log = tmp_path / f"{name}-{method}.jsonl"
    path = WORKFLOWS / f"{SHIPPED[name]}.yaml" if name in SHIPPED else PORTS / f"{name}.yaml"
    command = [sys.executable, "-m", "runner", str(path), "--start-method", method]
    done = subprocess.run(
        [*command, "--log-file", str(log)], env=user_env(), capture_output=True, text=True, timeout=90
    )
    assert done.returncode == 0, done.stderr
    printed = Printed()
    for line in log.read_text().splitlines():
        record = json.loads(line)
        event = record["event"]
        if event == "process.output":
            printed.lines[record["process"]].append(record["line"])
        elif event == "object.show":
            printed.parent.append(record["value"])
        elif event in ("pipe.recv", "queue.get"):
            printed.parent.append(record["item"])
        elif event == "run.end":
            printed.status = record["status"]
    return printed


def manager_dict(printed: Printed) -> None:
    [shown] = printed.parent
    assert ast.literal_eval(shown) == {i: i * 2 for i in range(10)}


def namespaces(printed: Printed) -> None:
    assert printed.lines["consumer"] == [
        "Before event, error: 'Namespace' object has no attribute 'value'",
        "After event: This is the value",
    ]


def fancy(printed: Printed) -> None:
    assert dict(printed.lines) == {"Process-1": ["Doing something fancy in Process-1 for Fancy Dan!"]}


def producer_consumer(printed: Printed) -> None:
    assert sorted(printed.parent) == sorted(repr(f"{i} * {i} = {i * i}") for i in range(10))
    consumers = printed.matching(r"Consumer-\d+")
    assert len(consumers) == 2 * (os.cpu_count() or 1)
    done = []
    for name, lines in consumers.items():
        assert lines[-1] == f"{name}: Exiting"
        done += [line.partition(": ")[2] for line in lines[:-1]]
    assert sorted(done) == sorted(f"{i} * {i}" for i in range(10))


def semaphore(printed: Printed) -> None:
    assert sorted(printed.lines) == [str(i) for i in range(10)]
    for name, [line] in printed.lines.items():
        prefix = f"Activating {name} now running "
        assert line.startswith(prefix)
        running = ast.literal_eval(line[len(prefix) :])
        assert name in running and len(running) <= 3
    assert printed.parent == ["[]"]


def condition(printed: Printed) -> None:
    assert dict(printed.lines) == {
        "s1": ["Starting s1", "s1 done and ready for stage 2"],
        "stage_2[1]": ["Starting stage_2[1]", "stage_2[1] running"],
        "stage_2[2]": ["Starting stage_2[2]", "stage_2[2] running"],
    }


def docs_value_array(printed: Printed) -> None:
    assert printed.parent == ["3.1415927", str([-i for i in range(10)])]


def docs_manager(printed: Printed) -> None:
    assert printed.parent == ["{1: '1', '2': 2, 0.25: None}", str(list(range(9, -1, -1)))]


def docs_pipe(printed: Printed) -> None:
    assert printed.parent == ["[42, None, 'hello']"]


def docs_wait(printed: Printed) -> None:
    got = [ast.literal_eval(item) for item in printed.parent]
    writers = {name for _, name in got}
    assert writers == {f"Process-{k}" for k in range(1, 5)}
    for writer in writers:  # each pipe's messages in the order they were sent
        assert [i for i, name in got if name == writer] == list(range(10))


def docs_lock(printed: Printed) -> None:
    assert dict(printed.lines) == {f"Process-{k}": [f"hello world {k - 1}"] for k in range(1, 11)}


def mp_workers(printed: Printed) -> None:
    said = [ast.literal_eval(item) for item in printed.parent]
    pattern = re.compile(r"Process-[1-4] says that (mul|plus)\((\d+), (\d+)\) = (\d+)")
    found = [pattern.fullmatch(line) for line in said]
    assert all(found), said
    calls = [(m[1], int(m[2]), int(m[3]), int(m[4])) for m in found if m]
    assert sorted(calls[:20]) == [("mul", i, 7, i * 7) for i in range(20)]
    assert sorted(calls[20:]) == [("plus", i, 8, i + 8) for i in range(10)]


def synchronize(printed: Printed) -> None:
    process = r"<Process name='Process-\d+' parent=\d+ started>"
    # test_value: ten processes, each finishing once; the counter shown at the end.
    finished = [lines for lines in printed.lines.values() if any(line.endswith(" has finished") for line in lines)]
    values = [lines for lines in finished if lines[0] == ""]
    assert len(values) == 10
    assert all(re.fullmatch("\t\t\t" + process + " has finished", lines[1]) for lines in values)
    assert printed.parent[0] == "0"
    # test_queue: 30 squares then STOP, in order.
    assert printed.parent[1:] == [str(i * i) for i in range(30)] + ["'STOP'"]
    # test_condition: the parent's part, and the child's.
    main = printed.lines["condition_main"]
    assert [line for line in main if not line.startswith("<Condition")] == ["main is waiting", "main has woken up"]
    assert any("\tchild is notifying" in lines for lines in printed.lines.values())
    # test_semaphore: ten processes, each running then finishing.
    semaphores = [lines for lines in finished if lines[0] != ""]
    assert len(semaphores) == 10
    for lines in semaphores:
        assert re.fullmatch(r"[123] tasks are running", lines[0]) and re.fullmatch(process + " has finished", lines[1])
    # test_join_timeout, test_event, test_sharedvalues.
    assert ["\tchild sleeping", "", "\tchild terminating"] in printed.lines.values()
    waiters = [lines for lines in printed.lines.values() if lines and lines[0].endswith(" is waiting")]
    assert len(waiters) == 5
    assert all(re.fullmatch("\t" + process + " has woken up", lines[1]) for lines in waiters)
    assert ["Tests passed"] in printed.lines.values()


def _pool(printed: Printed, replaced: bool) -> None:
    assert printed.parent == [str([i * 2 for i in range(10)])]
    workers = printed.matching(r"(Fork|Spawn|ForkServer)PoolWorker-\d+")
    size = 2 * (os.cpu_count() or 1)
    # Each worker says it is starting; with two tasks a worker, more of them take turns.
    assert all(lines == [f"Starting {name}"] for name, lines in workers.items())
    assert len(workers) > size if replaced else len(workers) == size
    assert sorted(int(name.rpartition("-")[2]) for name in workers) == list(range(1, len(workers) + 1))


def pool(printed: Printed) -> None:
    _pool(printed, replaced=False)


def pool_maxtasksperchild(printed: Printed) -> None:
    _pool(printed, replaced=True)


def wordcount(printed: Printed) -> None:
    sys.path.insert(0, str(WORKFLOWS))
    try:
        from examples import wordcount as original
    finally:
        sys.path.remove(str(WORKFLOWS))
    files = original.input_files()
    counts = original.partition([original.file_to_words(name) for name in files])
    ranked = sorted((original.count_words(item) for item in counts), key=lambda pair: pair[1], reverse=True)
    top = [pair for pair in ranked if pair[1] >= ranked[19][1]]
    lines = printed.lines["report"]
    assert lines[:3] == ["", "TOP 20 WORDS BY FREQUENCY", ""]
    shown = [(word.strip(), int(count)) for word, _, count in (line.partition(":") for line in lines[3:])]
    assert len(shown) == 20 and set(shown) <= set(top)
    assert [count for _, count in shown] == sorted((count for _, count in shown), reverse=True)
    read = [line for lines in printed.matching(r".*PoolWorker-\d+").values() for line in lines]
    assert sorted(line.rpartition(" reading ")[2] for line in read) == sorted(Path(name).name for name in files)


EXPECTED: dict[str, Callable[[Printed], None]] = {
    check.__name__: check
    for check in (
        manager_dict,
        namespaces,
        fancy,
        producer_consumer,
        semaphore,
        condition,
        docs_value_array,
        docs_manager,
        docs_pipe,
        docs_wait,
        docs_lock,
        mp_workers,
        synchronize,
        pool,
        pool_maxtasksperchild,
        wordcount,
    )
}


def test_every_port_has_its_expectation() -> None:
    assert sorted([*(path.stem for path in PORTS.glob("*.yaml")), *SHIPPED]) == sorted(EXPECTED)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_port_prints_what_the_original_prints(name: str, method: str, tmp_path: Path) -> None:
    chosen = os.environ.get("MPRUN_START_METHOD")
    if chosen and chosen != method:
        pytest.skip(f"the suite's pass without MPRUN_START_METHOD runs it under {method}")
    printed = run(name, method, tmp_path)
    assert printed.status == "ok"
    EXPECTED[name](printed)
