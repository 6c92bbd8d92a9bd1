"""The rules and warnings of the orchestration keys: start conditions, restart policies, fail
fast, a process's environment and folder. Rules as rules.py's (errors), hazards as hazards.py's
(warnings); both modules run these with their own.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator

from runner.document import Document
from runner.problem import Problem
from runner.workflow import KIND_WORDS, LOCK_KINDS, ProcessSpec, Put, Start, Workflow, references

# Read once, as the interpreter starts: setting them in os.environ later changes nothing.
STARTUP_VARIABLES = re.compile(r"PYTHON|LD_|MALLOC_|PYTHONMALLOC")


def condition_patterns(workflow: Workflow, document: Document) -> Iterator[Problem]:
    """A condition's pattern is a regular expression (what it names: rules.step_subjects)."""
    for spec in workflow.processes.values():
        for condition in spec.start_after:
            if condition.pattern is not None:
                try:
                    re.compile(condition.pattern)
                except re.error as error:
                    where = (*condition.where, "pattern")
                    yield document.problem(where, f"not a regular expression: {error}", "pattern")


def started_once(workflow: Workflow, document: Document) -> Iterator[Problem]:
    """A process with start conditions is started by them alone, never by a step too."""
    for step in workflow.steps:
        if isinstance(step, Start):
            for name in step.processes:
                spec = workflow.processes.get(name.text)
                if spec is not None and spec.start_after:
                    message = (
                        f"'{name.text}' is started by its start_after conditions: a step cannot start it too "
                        "(leave it out here, or drop its start_after)"
                    )
                    yield document.problem(name.where, message, "start-condition")


def condition_cycles(workflow: Workflow, document: Document) -> Iterator[Problem]:
    """Start conditions that wait on one another (or on their own process) never hold."""
    waits = {
        key: [c.subject.text for c in spec.start_after if c.kind != "event" and c.subject.text in workflow.processes]
        for key, spec in workflow.processes.items()
    }
    reported: set[str] = set()
    for key in waits:
        cycle = _cycle_from(key, waits)
        if cycle is None or reported & set(cycle):
            continue
        reported.update(cycle)
        spec = workflow.processes[key]
        condition = next(c for c in spec.start_after if c.subject.text == cycle[1 % len(cycle)] or len(cycle) == 1)
        path = " -> ".join([*cycle, cycle[0]])
        message = f"start conditions wait on one another, so none of them can hold: {path}"
        yield document.problem(condition.subject.where, message, "start-cycle")


def _cycle_from(start: str, waits: dict[str, list[str]]) -> list[str] | None:
    """A cycle of waits through `start`, in order from it, if there is one."""
    path = [start]
    seen = {start}

    def walk(key: str) -> list[str] | None:
        for after in waits.get(key, []):
            if after == start:
                return list(path)
            if after not in seen:
                seen.add(after)
                path.append(after)
                found = walk(after)
                if found:
                    return found
                path.pop()
        return None

    return walk(start)


def reachable_conditions(workflow: Workflow, document: Document) -> Iterator[Problem]:
    """A condition on a process that never starts (with steps, none starts it and it has no
    conditions of its own) never holds."""
    if not workflow.steps:
        return
    started = {name.text for step in workflow.steps if isinstance(step, Start) for name in step.processes}
    for spec in workflow.processes.values():
        for condition in spec.start_after:
            subject = workflow.processes.get(condition.subject.text)
            if condition.kind == "event" or subject is None or subject.key in started or subject.start_after:
                continue
            message = (
                f"'{subject.key}' is never started (no step starts it, and it has no start_after), "
                f"so this condition never holds and '{spec.key}' never starts"
            )
            yield document.problem(condition.subject.where, message, "start-unreachable")


def working_folders(workflow: Workflow, document: Document) -> Iterator[Problem]:
    """A process's `cwd` is a folder that exists (relative to the workflow's folder)."""
    for spec in workflow.processes.values():
        if spec.cwd is None:
            continue
        if "\0" in spec.cwd.text:
            yield document.problem(spec.cwd.where, "a path cannot contain a NUL character", "cwd")
            continue
        folder = workflow.folder / spec.cwd.text
        try:
            is_folder, exists = folder.is_dir(), folder.exists()
        except OSError as error:
            yield document.problem(spec.cwd.where, f"cwd '{spec.cwd.text}' cannot be read: {error.strerror}", "cwd")
            continue
        if not is_folder:
            what = "is not a folder" if exists else "does not exist"
            yield document.problem(spec.cwd.where, f"cwd '{spec.cwd.text}' {what} (looked for {folder})", "cwd")


def finite_settings(workflow: Workflow, document: Document) -> Iterator[Problem]:
    """The orchestration's durations and factors are numbers: YAML's `.nan` passes the schema's bounds."""
    for spec in workflow.processes.values():
        found: list[tuple[tuple[str, ...], object]] = [
            (("start_timeout",), spec.start_timeout),
            (("max_run_time",), spec.max_run_time),
        ]
        if spec.restart is not None:
            policy = spec.restart
            found += [(("within",), policy.within), (("backoff", "initial"), policy.initial)]
            found += [(("backoff", "factor"), policy.factor), (("backoff", "max"), policy.longest)]
        for where, value in found:
            if isinstance(value, float) and not math.isfinite(value):
                at = (
                    (*spec.where, *where)
                    if where[0] in ("start_timeout", "max_run_time")
                    else (*spec.where, "restart", *where)
                )
                yield document.problem(at, f"'{value}' is not a number", "duration")


RULES = (finite_settings, condition_patterns, started_once, condition_cycles, reachable_conditions, working_folders)


def _warning(document: Document, where: tuple[str | int, ...], message: str, code: str) -> Problem:
    return document.problem(where, message, code, severity="warning")


def _pill_queues(workflow: Workflow) -> set[str]:
    """The queues the steps put `null` pills on."""
    return {
        step.queue.text for step in workflow.steps if isinstance(step, Put) and any(item is None for item in step.items)
    }


def _given(spec: ProcessSpec) -> set[str]:
    return {str(ref.name) for ref in references((spec.args, spec.kwargs, spec.each or ()))}


def restarted_holders(workflow: Workflow, document: Document) -> Iterator[Problem]:
    """A restart policy on a process that consumes poison pills, or is given a lock or a
    joinable queue: what one attempt took with it is not given back to the next."""
    pills = _pill_queues(workflow)
    for spec in workflow.processes.values():
        if spec.restart is None:
            continue
        given = _given(spec)
        where = spec.restart.where
        for name in sorted(given & pills):
            message = (
                f"'{spec.key}' restarts, and consumes the poison pills of '{name}': an attempt that took its "
                "pill and then failed leaves the next one without any, and it never ends"
            )
            yield _warning(document, where, message, "restart-pill")
        for name in sorted(given):
            shared = workflow.objects.get(name)
            if shared is None:
                continue
            if shared.kind in LOCK_KINDS:
                message = (
                    f"'{spec.key}' restarts, and is given {KIND_WORDS[shared.kind]} '{name}': an attempt that "
                    "dies holding it leaves it held for ever, for every process that waits on it"
                )
                yield _warning(document, where, message, "restart-lock")
            elif shared.kind == "joinable_queue":
                message = (
                    f"'{spec.key}' restarts, and is given a joinable queue '{name}': an attempt that dies between "
                    "get() and task_done() leaves an item never done, and join_queue waits for ever"
                )
                yield _warning(document, where, message, "restart-joinable")


def fail_fast_daemons(workflow: Workflow, document: Document) -> Iterator[Problem]:
    """Under fail fast, a daemon expected to end with an exit code: the end of the steps stops
    it by SIGTERM if it still runs, which is not what it expects."""
    for spec in workflow.processes.values():
        if not workflow.fails_fast(spec) or not spec.daemon or spec.expect is None or spec.expect.signals:
            continue
        message = (
            f"'{spec.key}' is a daemon: if it still runs after the last step it is stopped by SIGTERM, "
            "which its expect does not allow (the run fails, though fail fast does not stop it for that): "
            "add {signal: SIGTERM} to it"
        )
        yield _warning(document, (*spec.where, "expect"), message, "fail-fast-daemon")


def startup_variables(workflow: Workflow, document: Document) -> Iterator[Problem]:
    """Variables only an interpreter's start reads, in `env` of a process that is not spawned."""
    if workflow.start_method == "spawn":
        return
    for spec in workflow.processes.values():
        for name in spec.env:
            if STARTUP_VARIABLES.match(name):
                method = workflow.start_method or "the default start method"
                message = (
                    f"{name} is read as an interpreter starts, and under {method} the process starts none: "
                    "it changes os.environ only (start_method: spawn makes it count)"
                )
                yield _warning(document, (*spec.where, "env", name), message, "env-startup")


HAZARDS = (restarted_holders, fail_fast_daemons, startup_variables)
