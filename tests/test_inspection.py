"""The Python checks, on real modules imported by a real child interpreter."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from runner.checker import check_file
from tests.support import alive

pytestmark = pytest.mark.timeout(60)

MODULES = {
    "jobs.py": (
        "import multiprocessing\n"
        "print('noise on stdout at import')\n"
        "def worker(a, b, *, c=1): pass\n"
        "def items(n): return range(n)\n"
        "class Consumer(multiprocessing.Process):\n"
        "    def __init__(self, tasks): super().__init__()\n"
        "class Plain: pass\n"
        "CONSTANT = 3\n"
    ),
    "raises.py": "raise RuntimeError('configuration missing')\n",
    "exits.py": "import sys\nsys.exit(4)\n",
    "hangs.py": "import time\ntime.sleep(60)\n",
    "crashes.py": "import ctypes\nctypes.string_at(0)\n",
    "quits.py": "import os\nos._exit(3)\n",
    "threads.py": "import threading, time\nthreading.Thread(target=time.sleep, args=(60,)).start()\ndef f(): pass\n",
    "broken_dep.py": "import not_installed_anywhere\n",
    "forks.py": (
        "import os, pathlib, time\n"
        "child = os.fork()\n"
        "if child == 0:\n"
        "    time.sleep(30)\n"
        "    os._exit(0)\n"
        "pathlib.Path(__file__).with_name('forked.pid').write_text(str(child))\n"
        "def f(): pass\n"
    ),
    "odd.py": (
        "class Sig:\n"
        "    def __get__(self, obj, kind):\n"
        "        raise RuntimeError('no signature today')\n"
        "def good(): pass\n"
        "def bad(): pass\n"
        "bad.__signature__ = property(lambda self: 1)\n"
        "class Weird:\n"
        "    __signature__ = Sig()\n"
        "    def __call__(self): pass\n"
        "weird = Weird()\n"
    ),
    "json.py": "raise RuntimeError('a user module named like the standard library')\n",
}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for name, text in MODULES.items():
        (tmp_path / name).write_text(text)
    return tmp_path


def check(project: Path, processes: str, steps: str = "", timeout: float = 10) -> list[tuple[int, str, str]]:
    path = project / "w.yaml"
    path.write_text(f"version: 1\nprocesses:\n{processes}{steps}")
    result = check_file(path, import_timeout=timeout)
    return [(p.line, p.code, p.message) for p in result.problems if p.severity == "error"]


def test_good_targets_pass(project: Path) -> None:
    processes = "  a: {target: jobs:worker, args: [1, 2], kwargs: {c: 3}}\n  b: {class: jobs:Consumer, args: [1]}\n"
    assert check(project, processes) == []
    assert not list(project.glob("__pycache__")), "checking must not write bytecode into the user's tree"


def test_each_kind_of_mistake_is_reported_at_its_line(project: Path) -> None:
    processes = (
        "  a: {target: jobs:worker, args: [1]}\n"
        "  b: {target: jobs:wroker, args: [1, 2]}\n"
        "  c: {target: nowhere:f}\n"
        "  d: {target: jobs:Consumer, args: [1]}\n"
        "  e: {class: jobs:Plain}\n"
        "  f: {target: jobs:CONSTANT}\n"
        "  g: {target: jobs:worker, args: [1, 2], kwargs: {d: 1}}\n"
        "  h: {target: broken_dep:f}\n"
    )
    steps = "steps:\n  - start: [a, b, c, d, e, f, g, h]\n  - put: {queue: q, from: jobs:items, args: [1, 2]}\n"
    found = check(project, processes, "queues: {q: {}}\n" + steps)
    codes = [(line, code) for line, code, _ in found]
    assert codes == [
        (3, "signature"),
        (4, "attribute"),
        (5, "import"),
        (6, "not-callable"),
        (7, "not-process-class"),
        (8, "not-callable"),
        (9, "signature"),
        (10, "import"),
        (14, "signature"),
    ]
    text = "\n".join(message for _, _, message in found)
    assert "did you mean 'worker'?" in text
    assert "use 'class:' instead of 'target:'" in text
    assert "not_installed_anywhere" in text


@pytest.mark.parametrize(
    "module,fragment",
    [
        ("raises", "raised RuntimeError: configuration missing (raises.py:1)"),
        ("exits", "raised SystemExit: 4"),
        ("crashes", "killed the interpreter (SIGSEGV)"),
        ("quits", "ended the interpreter with exit status 3"),
    ],
)
def test_imports_that_fail_or_crash_become_problems(project: Path, module: str, fragment: str) -> None:
    [(line, code, message)] = check(project, f"  p: {{target: {module}:f}}\n")
    assert (line, code) == (3, "import")
    assert fragment in message


def test_a_hanging_import_times_out_and_the_other_targets_are_still_checked(project: Path) -> None:
    processes = (
        "  a: {target: hangs:f}\n  b: {target: hangs:g}\n  c: {target: jobs:worker}\n  d: {target: quits:f}\n"
        "  e: {target: jobs:nothing}\n"
    )
    started = time.monotonic()
    found = check(project, processes, timeout=1)
    assert time.monotonic() - started < 8, "a hung module must cost its timeout once, not once per target"
    assert [(line, code) for line, code, _ in found] == [
        (3, "import"),
        (4, "import"),
        (5, "signature"),
        (6, "import"),
        (7, "attribute"),
    ]
    assert "did not finish within 1 s" in found[0][2]


def test_no_import_runs_no_user_code(project: Path, tmp_path: Path) -> None:
    path = project / "w.yaml"
    path.write_text("version: 1\nprocesses:\n  p: {target: raises:f}\n")
    result = check_file(path, imports=False)
    assert result.ok and not [problem for problem in result.problems if problem.code == "import"]


def test_a_module_that_leaves_a_child_running_does_not_cost_the_timeout(project: Path) -> None:
    started = time.monotonic()
    [(_, code, message)] = check(project, "  p: {target: forks:f}\n", timeout=20)
    assert code == "import-side-effect" and "importing 'forks' started 1 process: " in message
    assert time.monotonic() - started < 5
    forked = int((project / "forked.pid").read_text())
    deadline = time.monotonic() + 3
    while alive(forked) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(forked), "what user code started at import must not outlive the check"


def test_a_module_that_starts_threads_or_processes_on_import_is_an_error(project: Path) -> None:
    # A script without an `if __name__ == "__main__":` guard: its code would run in mprun itself.
    (project / "script.py").write_text(
        "import multiprocessing, threading, time\n"
        "def work():\n    time.sleep(30)\n"
        "for _ in range(2):\n    multiprocessing.Process(target=work).start()\n"
        "threading.Thread(target=time.sleep, args=(30,), daemon=True).start()\n"
    )
    [(line, code, message)] = check(project, "  p: {target: script:work}\n  t: {target: threads:f}\n")[:1]
    assert (line, code) == (3, "import-side-effect")
    assert message.startswith("importing 'script' started 2 processes and 1 thread: ")
    assert "'if __name__ == \"__main__\":'" in message
    assert [code for _, code, _ in check(project, "  t: {target: threads:f}\n")] == ["import-side-effect"]


def test_a_target_whose_inspection_raises_is_reported_alone(project: Path) -> None:
    found = check(project, "  a: {target: odd:weird}\n  b: {target: odd:good}\n")
    assert [(line, code) for line, code, _ in found] == [(3, "signature")]
    assert "RuntimeError: no signature today" in found[0][2]


def test_user_modules_named_like_the_standard_library_do_not_break_the_probe(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project)  # where the user runs mprun, with their json.py beside them
    assert check(project, "  p: {target: jobs:worker, args: [1, 2]}\n") == []
