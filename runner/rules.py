"""Cross-field rules the schema cannot express, each a small function yielding problems.

Every rule takes the typed workflow and the document it came from (for positions), and may
assume the document passed the schema.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from runner.document import Document
from runner.problem import JsonPath, Problem, did_you_mean
from runner.workflow import (
    QUEUE_KINDS,
    RESERVED_NAMES,
    SECTIONS,
    ClearEvent,
    Get,
    Join,
    JoinQueue,
    Name,
    PerCpu,
    ProcessSpec,
    Put,
    Reference,
    SetEvent,
    Start,
    Step,
    Terminate,
    Wait,
    Workflow,
    references,
    template_fields,
)

Rule = Callable[[Workflow, Document], Iterator[Problem]]

_KIND_WORDS = {
    "queue": "a queue",
    "joinable_queue": "a joinable queue",
    "simple_queue": "a simple queue",
    "event": "an event",
    "lock": "a lock",
    "rlock": "an rlock",
    "semaphore": "a semaphore",
    "bounded_semaphore": "a bounded semaphore",
    "condition": "a condition",
    "barrier": "a barrier",
    "value": "a shared value",
    "array": "a shared array",
    "pipe": "a pipe",
    "dict": "a managed dict",
    "list": "a managed list",
    "namespace": "a managed namespace",
}


def _describe(workflow: Workflow, name: str) -> str:
    if name in workflow.processes:
        return "a process"
    return _KIND_WORDS[workflow.objects[name].kind]


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
    broken: set[str] = set()
    for spec in workflow.processes.values():
        if spec.name is None:
            continue
        try:
            fields = template_fields(spec.name)
        except ValueError as error:
            broken.add(spec.key)
            yield document.problem(
                (*spec.where, "name"), f"invalid process name: {error} (write '{{{{' for a brace)", "name-template"
            )
            continue
        unknown = [field for field in fields if field != "replica"]
        if unknown:
            broken.add(spec.key)
            yield document.problem(
                (*spec.where, "name"),
                f"unknown field '{{{unknown[0]}}}' in the process name: only '{{replica}}' is filled in",
                "name-template",
            )
    owners: dict[str, str] = {}
    named = [(spec, name) for spec in workflow.processes.values() if spec.key not in broken for name in spec.names()]
    for spec, name in named:
        if name is None:
            continue
        if name in owners and owners[name] != spec.key:
            yield document.problem(
                spec.where,
                f"process '{spec.key}' would be named '{name}', like a replica of "
                f"'{owners[name]}': give it another name",
                "duplicate-process-name",
                key=True,
            )
        elif name in owners:
            yield document.problem(
                (*spec.where, "name"),
                f"the replicas of '{spec.key}' would share the name '{name}'",
                "duplicate-process-name",
            )
        owners.setdefault(name, spec.key)


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
    if name in workflow.processes:
        yield document.problem(
            reference.where, f"'${name}' is a process: only shared objects can be passed to a process", "wrong-kind"
        )
        return
    shared = workflow.objects.get(name)
    if shared is None:
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
        if isinstance(step, (Start, Join, Terminate)):
            for name in step.processes:
                yield from _expect_kind(workflow, document, name, {"process"}, "a process", "unknown-process")
        elif isinstance(step, (Put, Get)):
            yield from _expect_kind(workflow, document, step.queue, QUEUE_KINDS, "a queue", "unknown-queue")
            if isinstance(step, Put) and step.per is not None:
                yield from _expect_kind(workflow, document, step.per, {"process"}, "a process", "unknown-process")
            if isinstance(step, Get) and step.timeout is not None and _kind(workflow, step.queue) == "simple_queue":
                yield document.problem(
                    (*step.where, "timeout"),
                    f"'{step.queue.text}' is a simple queue, whose "
                    "get() cannot time out: drop the timeout or use a plain queue",
                    "wrong-kind",
                )
        elif isinstance(step, JoinQueue):
            yield from _expect_kind(
                workflow, document, step.queue, {"joinable_queue"}, "a joinable queue", "unknown-queue"
            )
        elif isinstance(step, (Wait, SetEvent, ClearEvent)):
            yield from _expect_kind(workflow, document, step.event, {"event"}, "an event", "unknown-event")


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
    if workflow.steps:
        for spec in workflow.processes.values():
            if spec.key not in started:
                yield document.problem(
                    spec.where,
                    f"process '{spec.key}' is never started by the steps",
                    "never-started",
                    severity="warning",
                    key=True,
                )


def python_folders(workflow: Workflow, document: Document) -> Iterator[Problem]:
    """Each `pythonpath` entry is an existing folder."""
    for entry, folder in zip(workflow.pythonpath, workflow.python_folders(), strict=True):
        if not folder.is_dir():
            what = "is not a folder" if folder.exists() else "does not exist"
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


# -- warnings: the workflow is valid, but probably not what its author meant ------------------


def _receivers(workflow: Workflow) -> dict[str, list[ProcessSpec]]:
    """Shared object name -> the processes that get it as an argument."""
    found: dict[str, list[ProcessSpec]] = {}
    for spec in workflow.processes.values():
        for reference in [*references(spec.args), *references(spec.kwargs)]:
            if reference.name is not None and spec not in found.get(reference.name, []):
                found.setdefault(reference.name, []).append(spec)
    return found


def _uses(workflow: Workflow, kind: type[Step], subject: str) -> list[Step]:
    found = []
    for step in workflow.steps:
        if isinstance(step, kind):
            named = getattr(step, "queue", None) or getattr(step, "event", None)
            if named is not None and named.text == subject:
                found.append(step)
    return found


def unused_objects(workflow: Workflow, document: Document) -> Iterator[Problem]:
    """Shared objects that nothing uses, and queues that nothing reads or nothing writes."""
    receivers = _receivers(workflow)
    conditions = {o.options.get("lock") for o in workflow.objects.values() if o.kind == "condition"}
    for shared in workflow.objects.values():
        processes = receivers.get(shared.name, [])
        if shared.kind in QUEUE_KINDS:
            reads = processes or _uses(workflow, Get, shared.name)
            writes = processes or _uses(workflow, Put, shared.name)
            if not reads and not writes:
                message = f"queue '{shared.name}' is never used"
            elif not reads:
                message = f"nothing reads queue '{shared.name}': no process gets it and no step takes from it"
            elif not writes:
                message = f"nothing writes to queue '{shared.name}': no process gets it and no step puts on it"
            else:
                continue
            yield document.problem(shared.where, message, "unused-queue", severity="warning", key=True)
        elif shared.kind == "event":
            if not processes and not any(_uses(workflow, kind, shared.name) for kind in (Wait, SetEvent, ClearEvent)):
                yield document.problem(
                    shared.where, f"event '{shared.name}' is never used", "unused-object", severity="warning", key=True
                )
        elif not processes and shared.name not in conditions:
            yield document.problem(
                shared.where,
                f"{_KIND_WORDS[shared.kind]} '{shared.name}' is never used",
                "unused-object",
                severity="warning",
                key=True,
            )


def unset_events(workflow: Workflow, document: Document) -> Iterator[Problem]:
    """A `wait` on an event that no process gets, no step sets and that does not start set."""
    receivers = _receivers(workflow)
    for step in workflow.steps:
        if not isinstance(step, Wait) or _kind(workflow, step.event) != "event":
            continue
        event = workflow.objects[step.event.text]
        if receivers.get(event.name) or event.options.get("set") or _uses(workflow, SetEvent, event.name):
            continue
        yield document.problem(
            step.event.where,
            f"nothing can set event '{event.name}': no process gets it "
            "and no step sets it, so this wait can only time out",
            "event-never-set",
            severity="warning",
        )


def unconsumed_joins(workflow: Workflow, document: Document) -> Iterator[Problem]:
    """A `join_queue` on a joinable queue that no process gets: nothing calls task_done()."""
    receivers = _receivers(workflow)
    for step in workflow.steps:
        if (
            isinstance(step, JoinQueue)
            and _kind(workflow, step.queue) == "joinable_queue"
            and not receivers.get(step.queue.text)
        ):
            yield document.problem(
                step.queue.where,
                f"no process gets queue '{step.queue.text}', so nothing "
                "marks its items done and this join waits for ever",
                "join-unconsumed-queue",
                severity="warning",
            )


Amount = tuple[int, int]  # (fixed, per CPU): counts that depend on the machine stay comparable


def _amount(spec: ProcessSpec) -> Amount:
    return (0, spec.replicas.count) if isinstance(spec.replicas, PerCpu) else (spec.replicas, 0)


def _say(amount: Amount) -> str:
    fixed, per_cpu = amount
    parts = ([f"{fixed}"] if fixed else []) + ([f"{per_cpu} per CPU"] if per_cpu else [])
    return " + ".join(parts) or "0"


def poison_pills(workflow: Workflow, document: Document) -> Iterator[Problem]:
    """As many `null` pills are put on a queue as there are processes consuming it."""
    receivers = _receivers(workflow)
    for shared in workflow.objects.values():
        puts = [step for step in _uses(workflow, Put, shared.name) if isinstance(step, Put)]
        pills = [0, 0]
        for step in puts:
            nulls = sum(1 for item in step.items if item is None)
            if step.per is not None and step.per.text in workflow.processes:
                fixed, per_cpu = _amount(workflow.processes[step.per.text])
                pills[0] += nulls * fixed
                pills[1] += nulls * per_cpu
            else:
                pills[0] += nulls * step.count
        consumers = receivers.get(shared.name, [])
        if not puts or pills == [0, 0] or not consumers:
            continue
        wanted = (sum(_amount(s)[0] for s in consumers), sum(_amount(s)[1] for s in consumers))
        if tuple(pills) != wanted:
            last = puts[-1]
            who = ", ".join(f"'{spec.key}'" for spec in consumers)
            yield document.problem(
                last.where,
                f"{_say((pills[0], pills[1]))} poison pill(s) for queue "
                f"'{shared.name}', but {_say(wanted)} process(es) get it ({who})",
                "pill-count",
                severity="warning",
                key=True,
            )


def barrier_parties(workflow: Workflow, document: Document) -> Iterator[Problem]:
    """A barrier waits for more parties than there are processes to reach it."""
    receivers = _receivers(workflow)
    for shared in workflow.objects.values():
        if shared.kind != "barrier":
            continue
        getting = receivers.get(shared.name, [])
        if any(isinstance(spec.replicas, PerCpu) for spec in getting):
            continue
        total = sum(spec.replica_count() for spec in getting)
        parties = int(shared.options.get("parties", 2))
        if getting and total < parties:
            yield document.problem(
                (*shared.where, "parties"),
                f"barrier '{shared.name}' waits for {parties} parties but only {total} process(es) get it",
                "barrier-parties",
                severity="warning",
            )


RULES: tuple[Rule, ...] = (
    unique_names,
    process_name_templates,
    argument_references,
    condition_locks,
    step_subjects,
    step_order,
    python_folders,
    expected_signals,
    shared_memory_values,
    unused_objects,
    unset_events,
    unconsumed_joins,
    poison_pills,
    barrier_parties,
)


def check(workflow: Workflow, document: Document) -> list[Problem]:
    """Every semantic problem of a schema-valid workflow."""
    return [problem for rule in RULES for problem in rule(workflow, document)]
