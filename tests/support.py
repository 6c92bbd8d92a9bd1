"""Paths and small helpers shared by the tests."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / "workflows"
MINIMAL = "version: 1\nprocesses:\n  p: {target: os:getpid}\n"


def user_env() -> dict[str, str]:
    """The environment for a child interpreter, as on a user's machine (no PYTHONUNBUFFERED)."""
    return {
        key: value for key, value in os.environ.items() if key not in ("PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE")
    }


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def workflow(project: Path, body: str, name: str = "w.yaml") -> Path:
    """A workflow file in `project`, of version 1 with this body."""
    return write(project, name, "version: 1\n" + body)


def alive(pid: int) -> bool:
    """Whether process `pid` exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def pids_in(path: Path) -> list[int]:
    """The process ids written one a line to `path` (none if it is not there)."""
    return [int(word) for word in path.read_text().split()] if path.exists() else []


def kill_all(pids: Iterable[int]) -> None:
    """SIGKILL each of these processes still there: what a failed test left behind."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid`."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def descendants(pid: int) -> list[int]:
    """Every process below `pid`: its children, theirs, and so on."""
    found, todo = [], [pid]
    while todo:
        for child in children(todo.pop()):
            found.append(child)
            todo.append(child)
    return found


def whole_lines(path: Path) -> list[dict[str, object]]:
    """Every complete line of a JSON-lines file, parsed: each must be valid JSON (a last line
    cut short by a kill is left out)."""
    text = path.read_text()
    return [json.loads(line) for line in text[: text.rfind("\n") + 1].splitlines()]


def wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    """Poll `condition` until it holds or `timeout` seconds pass; whether it held."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def start_mprun(*args: str, console: bool = True) -> subprocess.Popen[str]:
    """The real `mprun ARGS...` in the background, as a user's shell would start it; without
    `console` its output goes nowhere (a pipe nobody reads would fill up and stop it)."""
    output = subprocess.PIPE if console else subprocess.DEVNULL
    return subprocess.Popen(
        [sys.executable, "-m", "runner", *args],
        cwd=ROOT,
        env=user_env(),
        stdout=output,
        stderr=output,
        text=True,
    )
