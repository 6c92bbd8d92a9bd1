"""Data reaches targets as the file wrote it: a YAML list is a list at every depth, in
arguments, keyword arguments, queue items and shared objects' initial values, under every
start method."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import workflow, write
from tests.test_run import METHODS, run_mprun

pytestmark = pytest.mark.timeout(60)

JOBS = """
def check(values, q, d, l, arr, nested=None):
    item = q.get()
    # CPython's mp_synchronize.py test_sharedvalues: values given as lists compare as lists.
    assert values == [1, 2, 3] and [v for v in arr] == values, values
    assert nested == {"k": [4, [5, {"m": [6]}]]}, nested
    assert item == [7, [8, {"x": [9]}]], item
    assert dict(d) == {"a": [1, [2]]} and list(l) == [[1, 2], [3]]

def items(counts):
    assert counts == [3], counts
    return [[n, [n]] for n in range(counts[0])]

def take(q, count):
    assert [q.get() for _ in range(count)] == [[n, [n]] for n in range(count)]
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write(tmp_path, "data_jobs.py", JOBS)
    return tmp_path


@pytest.mark.parametrize("method", METHODS)
def test_yaml_lists_reach_targets_as_lists_at_every_depth(project: Path, method: str) -> None:
    path = workflow(
        project,
        "queues: {q: {}}\ndicts: {d: {items: {a: [1, [2]]}}}\nlists: {l: {items: [[1, 2], [3]]}}\n"
        "arrays: {arr: {type: i, items: [1, 2, 3]}}\n"
        "processes:\n  p:\n    target: data_jobs:check\n    args: [[1, 2, 3], $q, $d, $l, $arr]\n"
        "    kwargs: {nested: {k: [4, [5, {m: [6]}]]}}\n"
        "steps:\n  - start: p\n  - put: {queue: q, item: [7, [8, {x: [9]}]]}\n  - join: p\n",
    )
    log = run_mprun(path, project / "run.jsonl", "--start-method", method)
    assert log.exitcode == 0, [r for r in log.records if r["event"] == "process.exception"]


def test_a_put_from_a_function_gets_its_arguments_as_lists(project: Path) -> None:
    path = workflow(
        project,
        "queues: {q: {}}\nprocesses: {p: {target: data_jobs:take, args: [$q, 3]}}\n"
        "steps:\n  - start: p\n  - put: {queue: q, from: data_jobs:items, args: [[3]]}\n  - join: p\n",
    )
    log = run_mprun(path, project / "run.jsonl")
    assert log.exitcode == 0, [r for r in log.records if r["event"] == "process.exception"]
