"""Cross-field rules the schema cannot express, each a small function yielding problems.

Every rule takes the typed workflow and the document it came from (for positions), and may
assume the document passed the schema.
"""

from __future__ import annotations

import array
import math
import signal
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, cast

from runner.document import Document
from runner.problem import JsonPath, Problem, did_you_mean
from runner.workflow import (
    KIND_WORDS,
    RESERVED_NAMES,
    SECTIONS,
    Get,
    Join,
    Name,
    Put,
    Reference,
    Start,
    Terminate,
    Workflow,
    placeholders,
    references,
    template_problem,
)

Rule = Callable[[Workflow, Document], Iterator[Problem]]


def _describe(workflow: Workflow, name: str) -> str:
    if name in workflow.processes:
        return "a process"
    return KIND_WORDS[workflow.objects[name].kind]


def unique_names(workflow: Workflow, document: Document) -> Iterator[Problem]:
    """Processes and shared objects share one namespace: `$name` must mean one thing."""
    seen: dict[str, str] = {}
    for section in (*SECTIONS, "processes"):
        for name in document.data.get(section) or {}:
            if name in RESERVED_NAMES:
                yield document.problem(
                    (section, name),
                    f"'{name}' is reserved (it is `$replica`, the replica's index): pick another name",
                    "reserved-name",
                    key=True,
                )
            if name in seen:
                yield document.problem(
                    (section, name),
                    f"'{name}' is already the name of {seen[name]}; names must be unique "
                    "across processes and shared objects",
                    "duplicate-name",
                    key=True,
                )
            else:
                seen[name] = f"an entry of '{section}'"


def process_name_templates(workflow: Workflow, document: Document) -> Iterator[Problem]:
    """Names may use `{replica}` and nothing else; every replica's final name is unique."""
    owners: dict[str, str] = {}
    for spec in workflow.processes.values():
        # An explicit name is pointed at; a default one (the key) falls back to the key.
        where = (*spec.where, "name")
        problem = template_problem(spec.name) if spec.name is not None else None
        if problem is not None:
            yield document.problem(where, f"invalid process name: {problem}", "name-template")
            continue
        for name in spec.names():
            if name is None:
                continue
            if name not in owners:
                owners[name] = spec.key
            elif owners[name] != spec.key:
                yield document.problem(
                    where,
                    f"process '{spec.key}' would be named '{name}', like '{owners[name]}': give it another name",
                    "duplicate-process-name",
                )
                break
            else:
                yield document.problem(
                    where, f"the replicas of '{spec.key}' would share the name '{name}'", "duplicate-process-name"
                )
                break


def argument_references(workflow: Workflow, document: Document) -> Iterator[Problem]:
    """Every `$reference` in args and kwargs names a shared object, and pipes name an end."""
    for spec in workflow.processes.values():
        for reference in [*references(spec.args), *references(spec.kwargs)]:
            yield from _check_reference(workflow, document, reference)


def _check_reference(workflow: Workflow, document: Document, reference: Reference) -> Iterator[Problem]:
    name, end = reference.name, reference.end
    if name is None:
        yield document.problem(
            reference.where,
            f"'{reference.text}' is not a reference: write '$name' (or "
            "'$pipe.0' for a pipe's end); start with '$$' for a literal '$'",
            "bad-reference",
        )
        return
    shared = workflow.objects.get(name)
    if shared is None and name in workflow.processes:
        yield document.problem(
            reference.where, f"'${name}' is a process: only shared objects can be passed to a process", "wrong-kind"
        )
    elif shared is None:
        yield document.problem(
            reference.where,
            f"unknown shared object '${name}'{did_you_mean(name, workflow.objects)}",
            "unknown-reference",
        )
    elif shared.kind == "pipe" and end is None:
        yield document.problem(
            reference.where, f"'${name}' is a pipe, which has two ends: pass '${name}.0' or '${name}.1'", "pipe-end"
        )
    elif shared.kind == "pipe" and end not in (0, 1):
        yield document.problem(reference.where, f"a pipe has ends 0 and 1, not {end}", "pipe-end")
    elif shared.kind != "pipe" and end is not None:
        yield document.problem(
            reference.where, f"'${name}' is {_describe(workflow, name)}; only pipes have ends like '.{end}'", "pipe-end"
        )


def condition_locks(workflow: Workflow, document: Document) -> Iterator[Problem]:
    """A condition's `lock:` names a lock or an rlock."""
    for shared in workflow.objects.values():
        lock = shared.options.get("lock") if shared.kind == "condition" else None
        if not isinstance(lock, str):
            continue
        where = (*shared.where, "lock")
        if lock not in workflow.objects and lock not in workflow.processes:
            locks = [o.name for o in workflow.objects.values() if o.kind in ("lock", "rlock")]
            yield document.problem(where, f"unknown lock '{lock}'{did_you_mean(lock, locks)}", "unknown-reference")
        elif _describe(workflow, lock) not in ("a lock", "an rlock"):
            yield document.problem(where, f"'{lock}' is {_describe(workflow, lock)}, not a lock", "wrong-kind")


def _expect_kind(
    workflow: Workflow, document: Document, name: Name, wanted: Iterable[str], word: str, code: str
) -> Iterator[Problem]:
    kinds = set(wanted)
    if name.text in workflow.processes or name.text in workflow.objects:
        actual = "process" if name.text in workflow.processes else workflow.objects[name.text].kind
        if actual not in kinds:
            yield document.problem(
                name.where, f"'{name.text}' is {_describe(workflow, name.text)}, not {word}", "wrong-kind"
            )
        return
    candidates = [n for n in workflow.processes if "process" in kinds]
    candidates += [o.name for o in workflow.objects.values() if o.kind in kinds]
    yield document.problem(
        name.where, f"unknown {word.split(' ', 1)[1]} '{name.text}'{did_you_mean(name.text, candidates)}", code
    )


def step_subjects(workflow: Workflow, document: Document) -> Iterator[Problem]:
    """Steps name things that exist and are of the right kind."""
    for step in workflow.steps:
        for subject in step.subjects():
            yield from _expect_kind(workflow, document, subject.name, subject.kinds, subject.word, subject.code)
        if isinstance(step, Get) and step.timeout is not None and _kind(workflow, step.queue) == "simple_queue":
            yield document.problem(
                (*step.where, "timeout"),
                f"'{step.queue.text}' is a simple queue, whose "
                "get() cannot time out: drop the timeout or use a plain queue",
                "wrong-kind",
            )


def _kind(workflow: Workflow, name: Name) -> str | None:
    shared = workflow.objects.get(name.text)
    return shared.kind if shared else None


def step_order(workflow: Workflow, document: Document) -> Iterator[Problem]:
    """A process is started once, and joined or terminated only after its start."""
    started: set[str] = set()
    for step in workflow.steps:
        if not isinstance(step, (Start, Join, Terminate)):
            continue
        for name in step.processes:
            if name.text not in workflow.processes:
                continue  # reported by step_subjects
            if isinstance(step, Start):
                if name.text in started:
                    yield document.problem(
                        name.where, f"'{name.text}' is started twice: a process can only be started once", "step-order"
                    )
                started.add(name.text)
            elif name.text not in started:
                verb = "joined" if isinstance(step, Join) else "terminated"
                yield document.problem(name.where, f"'{name.text}' is {verb} before any step starts it", "step-order")


def python_folders(workflow: Workflow, document: Document) -> Iterator[Problem]:
    """Each `pythonpath` entry is an existing folder."""
    for entry, folder in zip(workflow.pythonpath, workflow.python_folders(), strict=True):
        if "\0" in entry.text:
            yield document.problem(entry.where, "a path cannot contain a NUL character", "pythonpath")
            continue
        try:
            is_folder, exists = folder.is_dir(), folder.exists()
        except OSError as error:  # a name too long, a folder we may not enter
            yield document.problem(
                entry.where, f"pythonpath entry '{entry.text}' cannot be read: {error.strerror}", "pythonpath"
            )
            continue
        if not is_folder:
            what = "is not a folder" if exists else "does not exist"
            yield document.problem(
                entry.where, f"pythonpath entry '{entry.text}' {what} (looked for {_shown(folder)})", "pythonpath"
            )


def _shown(folder: Path) -> str:
    try:
        return str(folder.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(folder.resolve())


def expected_signals(workflow: Workflow, document: Document) -> Iterator[Problem]:
    """Expected signals are real signal names of this platform."""
    known = [name for name in signal.Signals.__members__ if not name.startswith("SIG_")]
    for spec in workflow.processes.values():
        for name in spec.expect.signals if spec.expect else ():
            if name.text not in known:
                message = f"unknown signal '{name.text}'{did_you_mean(name.text, known)}"
                yield document.problem(name.where, message, "unknown-signal")


_CHARACTER_TYPES = ("c", "u")


def shared_memory_values(workflow: Workflow, document: Document) -> Iterator[Problem]:
    """A shared value's or array's items fit its typecode."""
    for shared in workflow.objects.values():
        typecode = str(shared.options.get("type", "i"))
        if shared.kind == "value" and "value" in shared.options:
            yield from _fits_typecode(document, typecode, shared.options["value"], (*shared.where, "value"))
        elif shared.kind == "array":
            for index, item in enumerate(shared.options.get("items", [])):
                yield from _fits_typecode(document, typecode, item, (*shared.where, "items", index))


def _fits_typecode(document: Document, typecode: str, item: object, where: JsonPath) -> Iterator[Problem]:
    if typecode in _CHARACTER_TYPES:
        if not (isinstance(item, str) and len(item) == 1):
            yield document.problem(where, f"type '{typecode}' holds one character, not {item!r}", "value-type")
    elif isinstance(item, str):
        yield document.problem(where, f"type '{typecode}' holds numbers, not the string {item!r}", "value-type")
    elif isinstance(item, float) and typecode not in ("f", "d"):
        yield document.problem(where, f"type '{typecode}' holds integers, not {item!r}", "value-type")
    else:
        # ctypes wraps out-of-range integers silently (300 becomes 44 in a 'B'); array does not.
        try:
            array.array(typecode, [cast(Any, item)])
        except OverflowError:
            yield document.problem(where, f"type '{typecode}' cannot hold {item}{_range(typecode)}", "value-type")


def _range(typecode: str) -> str:
    if typecode in ("f", "d"):
        return ""
    bits = array.array(typecode).itemsize * 8
    low, high = (0, 2**bits - 1) if typecode.isupper() else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    return f": it holds {low} to {high}"


def put_data(workflow: Workflow, document: Document) -> Iterator[Problem]:
    """Items and arguments of a `put` are plain data: the parent cannot send shared objects."""
    for step in workflow.steps:
        if isinstance(step, Put):
            for found in placeholders((step.items, step.args, step.kwargs)):
                text = found.text
                yield document.problem(
                    found.where,
                    f"'{text}' is not resolved in a put: its items and arguments are plain data, and shared objects "
                    f"reach processes only through their args (write '${text}' for a literal '$')",
                    "bad-reference",
                )


def finite_durations(workflow: Workflow, document: Document) -> Iterator[Problem]:
    """Timeouts, graces and sleeps are finite: YAML's `.inf` and `.nan` are numbers to the schema."""
    for step in workflow.steps:
        for field in ("timeout", "grace", "seconds"):
            value = getattr(step, field, None)
            if isinstance(value, float) and not math.isfinite(value):
                where = step.where if field == "seconds" else (*step.where, field)
                hint = ": leave the timeout out (or null) to wait for ever" if field == "timeout" else ""
                yield document.problem(where, f"'{value}' is not a number of seconds{hint}", "duration")
    for shared in workflow.objects.values():
        timeout = shared.options.get("timeout")
        if isinstance(timeout, float) and not math.isfinite(timeout):
            yield document.problem(
                (*shared.where, "timeout"),
                f"'{timeout}' is not a number of seconds: leave the timeout out (or null) to wait for ever",
                "duration",
            )


RULES: tuple[Rule, ...] = (
    finite_durations,
    put_data,
    unique_names,
    process_name_templates,
    argument_references,
    condition_locks,
    step_subjects,
    step_order,
    expected_signals,
    shared_memory_values,
)


def check(workflow: Workflow, document: Document) -> list[Problem]:
    """Every cross-field error of a schema-valid workflow (`python_folders` is the checker's to call)."""
    return [problem for rule in RULES for problem in rule(workflow, document)]
