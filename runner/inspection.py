"""The Python checks: do a workflow's targets import, exist, fit their role and take its args?

User code runs on import, so the work happens in a child interpreter (`runner.probe`) under a
deadline per target. A target whose import hangs or kills the interpreter becomes a problem at
its own line; the child is then restarted for the targets after it.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

from runner.document import Document
from runner.problem import JsonPath, Problem
from runner.rules import TARGET, all_builds
from runner.target import IMPORT_TIMEOUT, split
from runner.workflow import Call, Map, Put, Workflow

Role = Literal["function", "class", "callable", "object"]  # object: only imported, never called


@dataclass(frozen=True)
class TargetCheck:
    """One Python object the workflow names, and how it will be called."""

    target: str
    role: Role
    nargs: int
    kwargs: tuple[str, ...]
    where: JsonPath
    call_where: JsonPath
    kwargs_where: JsonPath

    def request(self) -> dict[str, Any]:
        """What `runner.probe.examine` needs to know of this check."""
        return {"target": self.target, "role": self.role, "nargs": self.nargs, "kwargs": list(self.kwargs)}

    @property
    def module(self) -> str:
        return split(self.target)[0]


def _call(
    target: str, role: Role, args: tuple[Any, ...], kwargs: Mapping[str, Any], where: JsonPath, owner: JsonPath
) -> TargetCheck:
    """A check of `target`, whose signature problems point at the arguments that do not fit."""
    call_where = (*owner, "args") if args else (*owner, "kwargs") if kwargs else where
    return TargetCheck(target, role, len(args), tuple(kwargs), where, call_where, (*owner, "kwargs"))


def target_checks(workflow: Workflow) -> list[TargetCheck]:
    """Every target, process class, `put: from:` callable, barrier action and object to build
    of the workflow."""
    checks = []
    for spec in workflow.processes.values():
        role: Role = "class" if spec.is_class else "function"
        field = "class" if spec.is_class else "target"
        checks.append(_call(spec.target, role, spec.args, spec.kwargs, (*spec.where, field), spec.where))
    for step in workflow.steps:
        if isinstance(step, Put) and step.source is not None:
            checks.append(_call(step.source, "callable", step.args, step.kwargs, (*step.where, "from"), step.where))
    for shared in workflow.objects.values():
        action = shared.options.get("action") if shared.kind == "barrier" else None
        if isinstance(action, str):
            checks.append(_call(action, "callable", (), {}, (*shared.where, "action"), shared.where))
        if shared.kind == "object":
            options = shared.options
            checks.append(
                _call(
                    options["call"],
                    "callable",
                    options["args"],
                    options["kwargs"],
                    (*shared.where, "call"),
                    shared.where,
                )
            )
    for pool in workflow.pools.values():
        if pool.initializer is not None:
            where = (*pool.where, "initializer")
            given = (*pool.where, "initargs") if pool.initargs else where
            checks.append(TargetCheck(pool.initializer, "callable", len(pool.initargs), (), where, given, where))
    for step in workflow.steps:
        if isinstance(step, Call):
            where = (*step.where, "function")
            checks.append(_call(step.function, "callable", step.args, step.kwargs, where, step.where))
        elif isinstance(step, Map):
            checks.append(_mapped(step))
    for built in all_builds(workflow):
        if TARGET.fullmatch(built.target):  # else a rule said so
            key = "$call" if built.call else "$import"
            kind: Role = "callable" if built.call else "object"
            checks.append(_call(built.target, kind, built.args, built.kwargs, (*built.where, key), built.where))
    return checks


def _mapped(step: Map) -> TargetCheck:
    """The check of a pool step's function: called with one item (map, imap_unordered), with
    an item's elements (starmap: as many as the first item has, when the items are written
    out), or with the step's args and kwargs (apply)."""
    where = (*step.where, "function")
    if step.kind == "apply":
        return _call(step.function, "callable", step.args, step.kwargs, where, step.where)
    if step.kind == "starmap":
        first = step.items[0] if isinstance(step.items, tuple) and step.items else None
        if not isinstance(first, tuple):
            return TargetCheck(step.function, "object", 0, (), where, where, where)  # known when it runs
        return TargetCheck(step.function, "callable", len(first), (), where, (*step.where, "items", 0), where)
    return TargetCheck(step.function, "callable", 1, (), where, where, where)


@dataclass(frozen=True)
class _Stop:
    """Why the probe stopped before answering for `index`."""

    index: int
    message: str


def inspect_targets(
    workflow: Workflow, document: Document, *, timeout: float = IMPORT_TIMEOUT, probes: Probes | None = None
) -> list[Problem]:
    """Problems with the workflow's Python targets; each import bounded by `timeout` seconds.

    `probes` tracks the child interpreters, so that a caller running several checks at once can
    stop them all when it is interrupted.
    """
    probes = probes or Probes()
    checks = target_checks(workflow)
    folders = [str(folder) for folder in workflow.python_folders()]
    answers: dict[int, dict[str, str] | None] = {}
    pending = list(range(len(checks)))
    while pending:
        got, stop = probes.run(folders, [(index, checks[index]) for index in pending], timeout)
        answers.update(got)
        if stop is not None:
            # Every target in the module that hung or crashed would do the same again.
            failed = checks[stop.index].module
            for index in pending:
                if index not in answers and checks[index].module == failed:
                    answers[index] = {"code": "import", "message": stop.message}
        pending = [index for index in pending if index not in answers]
    return answer_problems(checks, answers, document)


def answer_problems(
    checks: list[TargetCheck], answers: Mapping[int, Mapping[str, str] | None], document: Document
) -> list[Problem]:
    """The probe's answers (by check index) as problems placed in the document."""
    problems = []
    for index, check in enumerate(checks):
        answer = answers.get(index)
        if answer is not None:
            if "keyword" in answer:
                where, key = (*check.kwargs_where, answer["keyword"]), True
            else:
                where, key = (check.call_where if answer["code"] == "signature" else check.where), False
            problems.append(document.problem(where, answer["message"], answer["code"], key=key))
    return problems


class Interrupted(Exception):
    """The run these probes belong to was stopped; no probe may start."""


# `python -m runner.probe` must find this package without the user's folder first on sys.path,
# where a `json.py` of theirs would shadow the probe's own imports.
_PACKAGE_PARENT = Path(__file__).resolve().parent.parent

# What a fresh child has imported when its target is about to be imported, then what mprun's
# own process has when it puts the workflow's folders first (execution.run).
_FIRST_IMPORTS = """
import sys
def tops():
    return sorted({name.partition(".")[0] for name in sys.modules})
import multiprocessing.spawn, runner.child
everywhere = tops()
import jsonschema, runner.main, runner.commands.run, runner.execution, runner.log, runner.checker
import runner.inspection, runner.probe, runner.backends.multiprocessing.backend
in_mprun = tops()
import json  # only now: it is not one of the first ones
print(json.dumps([everywhere, in_mprun]))
"""


@functools.lru_cache(maxsize=1)
def imported_first() -> tuple[frozenset[str], frozenset[str]]:
    """The top-level modules imported before any of a workflow's code runs: in every process,
    and in mprun's own process besides. Measured in a fresh interpreter (they differ between
    Python versions); empty sets if it cannot tell."""
    try:
        answer = subprocess.run(
            [sys.executable, "-c", _FIRST_IMPORTS],
            cwd="/",  # nothing of the user's first on its sys.path
            env={**os.environ, "PYTHONPATH": os.pathsep.join([str(_PACKAGE_PARENT), os.environ.get("PYTHONPATH", "")])},
            capture_output=True,
            text=True,
            timeout=30,
        )
        everywhere, in_mprun = json.loads(answer.stdout)
    except (OSError, subprocess.SubprocessError, ValueError):
        return frozenset(), frozenset()
    return frozenset(everywhere), frozenset(in_mprun) - frozenset(everywhere)


class Probes:
    """The child interpreters of one check run: started one per batch of targets, and all
    killable at once. Each runs in a session of its own, out of reach of the terminal's Ctrl-C,
    so that a hang can be killed together with everything user code started."""

    def __init__(self) -> None:
        self._live: set[subprocess.Popen[bytes]] = set()
        self._lock = threading.Lock()
        self._stopped = False

    def stop(self) -> None:
        """Kill every probe and what it started, and start no more."""
        with self._lock:
            self._stopped = True
            for child in self._live:
                _kill(child)

    def run(
        self, folders: list[str], batch: list[tuple[int, TargetCheck]], timeout: float
    ) -> tuple[dict[int, dict[str, str] | None], _Stop | None]:
        """Answers for a batch of targets, and why the probe stopped early, if it did."""
        request = {
            "path": folders,
            "targets": [{"id": index, **check.request()} for index, check in batch],
        }
        with tempfile.TemporaryFile() as stderr:
            child = self._start(stderr)
            assert child.stdin is not None and child.stdout is not None
            try:
                with child.stdin:
                    try:
                        child.stdin.write(json.dumps(request).encode())
                    except BrokenPipeError:
                        pass
                answers, current, outcome = _read_answers(child.stdout, timeout)
                if outcome == "eof":
                    # It died by itself: let it finish dying, so that its own exit status is reported.
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        child.wait(timeout=2)
            finally:
                _kill(child)  # also what user code left running in the group
                with self._lock:
                    self._live.discard(child)  # before the wait: a reaped group id may be reused
                code = child.wait()
                child.stdout.close()
            if outcome == "done":
                return answers, None
            if current is None:
                current = next((index for index, _ in batch if index not in answers), batch[0][0])
            module = next(check.module for index, check in batch if index == current)
            if outcome == "timeout":
                message = f"importing '{module}' did not finish within {timeout:g} s"
            else:
                message = f"importing '{module}' {_death(code)}{_last_line(stderr)}"
            return answers, _Stop(current, message)

    def _start(self, stderr: IO[bytes]) -> subprocess.Popen[bytes]:
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}  # checking must not write into the user's tree
        with self._lock:
            if self._stopped:
                raise Interrupted
            child = subprocess.Popen(
                [sys.executable, "-m", "runner.probe"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                cwd=_PACKAGE_PARENT,
                env=env,
                start_new_session=True,
            )
            self._live.add(child)
            return child


def _read_answers(stream: IO[bytes], timeout: float) -> tuple[dict[int, dict[str, str] | None], int | None, str]:
    """Answers by target index; the index begun but not answered; and how reading ended:
    `done` (the probe said so), `eof` (it died) or `timeout` (one target took too long)."""
    answers: dict[int, dict[str, str] | None] = {}
    current: int | None = None
    buffer = b""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not selector.select(left):
                return answers, current, "timeout"
            chunk = os.read(stream.fileno(), 65536)
            if not chunk:
                return answers, current, "eof"
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                message = json.loads(line)
                if "done" in message:
                    return answers, None, "done"
                if "begin" in message:
                    current = message["begin"]
                    deadline = time.monotonic() + timeout
                else:
                    answers[message["id"]] = message["problem"]
                    current = None


def _kill(child: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _death(code: int) -> str:
    if code < 0:
        try:
            return f"killed the interpreter ({signal.Signals(-code).name})"
        except ValueError:
            return f"killed the interpreter (signal {-code})"
    return f"ended the interpreter with exit status {code}"


def _last_line(stderr: IO[bytes]) -> str:
    stderr.seek(0)
    lines = [line.strip() for line in stderr.read().decode(errors="replace").splitlines() if line.strip()]
    return f": {lines[-1]}" if lines else ""
