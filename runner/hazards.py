"""Warnings: workflows that are valid but probably not what their author meant.

Unused objects, waits that cannot end, joins that deadlock, poison-pill counts that do not add
up. Each rule is a function like those in `runner.rules`, yielding warnings (errors under
`--strict`). They assume the workflow passed the rules, so every name resolves.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Iterator
from pathlib import Path

from runner import orchestration
from runner.document import Document
from runner.problem import Problem
from runner.workflow import (
    KIND_WORDS,
    QUEUE_KINDS,
    ClearEvent,
    Close,
    Get,
    Join,
    JoinQueue,
    Map,
    PerCpu,
    ProcessSpec,
    Put,
    Recv,
    Reference,
    SetEvent,
    Start,
    Terminate,
    Wait,
    Workflow,
    leaves,
    references,
)


def _warning(
    document: Document, where: tuple[str | int, ...], message: str, code: str, *, key: bool = False
) -> Problem:
    return document.problem(where, message, code, severity="warning", key=key)


def unused_objects(workflow: Workflow, document: Document) -> Iterator[Problem]:
    """Shared objects nothing uses, queues nothing reads or writes, pipes used at one end only."""
    condition_locks = {o.options.get("lock") for o in workflow.objects.values() if o.kind == "condition"}
    for shared in workflow.objects.values():
        processes = workflow.receivers(shared.name)
        if shared.kind in QUEUE_KINDS:
            reads = processes or workflow.steps_on(shared.name, Get)
            writes = processes or workflow.steps_on(shared.name, Put)
            if not reads and not writes:
                message = f"queue '{shared.name}' is never used"
            elif not reads:
                message = f"nothing reads queue '{shared.name}': no process gets it and no step takes from it"
            elif not writes:
                message = f"nothing writes to queue '{shared.name}': no process gets it and no step puts on it"
            else:
                continue
            yield _warning(document, shared.where, message, "unused-queue", key=True)
        elif shared.kind == "event":
            if not processes and not workflow.steps_on(shared.name, Wait, SetEvent, ClearEvent):
                yield _warning(
                    document, shared.where, f"event '{shared.name}' is never used", "unused-object", key=True
                )
        elif not processes and shared.name not in condition_locks and not workflow.shown(shared.name):
            message = f"{KIND_WORDS[shared.kind]} '{shared.name}' is never used"
            yield _warning(document, shared.where, message, "unused-object", key=True)
        elif shared.kind == "pipe":
            ends = {ref.end for spec in processes for ref in _references_to(spec, shared.name)}
            ends |= {
                end.end
                for step in workflow.steps
                if isinstance(step, (Recv, Close))
                for end in step.ends
                if end.pipe == shared.name
            }
            if len(ends) == 1:
                [end] = ends
                message = (
                    f"only end {end} of pipe '{shared.name}' is used: nothing receives what is sent on it, "
                    "or sends what it waits for"
                )
                yield _warning(document, shared.where, message, "unused-pipe-end", key=True)


def _references_to(spec: ProcessSpec, name: str) -> list[Reference]:
    return [ref for ref in references((spec.args, spec.kwargs, spec.each or ())) if ref.name == name]


def shared_pipe_ends(workflow: Workflow, document: Document) -> Iterator[Problem]:
    """A pipe end given to more than one process: their messages interleave."""
    for shared in workflow.objects.values():
        if shared.kind != "pipe":
            continue
        for end in (0, 1):
            holders = [
                (spec, ref)
                for spec in workflow.processes.values()
                for ref in _references_to(spec, shared.name)
                if ref.end == end
            ]
            # Any machine has at least one CPU, and two show whether per-CPU replicas share it.
            # An end in an item of `each` goes to that item's replica alone.
            count = sum(1 if _in_each(spec, ref) else spec.replica_count(cpus=2) for spec, ref in holders)
            if count > 1:
                spec, ref = holders[-1]
                per_cpu = any(isinstance(s.replicas, PerCpu) for s, _ in holders)
                who = (
                    f"the replicas of '{spec.key}'"
                    if len(holders) == 1
                    else ", ".join(f"'{s.key}'" for s, _ in holders)
                )
                message = (
                    f"pipe end '${shared.name}.{end}' goes to {'several' if per_cpu else count} processes "
                    f"({who}): a pipe end is for one process"
                )
                yield _warning(document, ref.where, message, "shared-pipe-end")


def _in_each(spec: ProcessSpec, ref: Reference) -> bool:
    return ref.where[: len(spec.where) + 1] == (*spec.where, "each")


def waits_that_cannot_end(workflow: Workflow, document: Document) -> Iterator[Problem]:
    """A `wait` on an event nothing can set, or (without a timeout) only processes started later."""
    started: set[str] = set()
    for step in workflow.steps:
        if isinstance(step, Start):
            started.update(name.text for name in step.processes)
        if not isinstance(step, Wait):
            continue
        event = workflow.objects[step.event.text]
        setters = workflow.receivers(event.name)
        if event.options.get("set") or workflow.steps_on(event.name, SetEvent):
            continue
        if not setters:
            message = (
                f"nothing can set event '{event.name}': no process gets it and no step sets it, so this wait "
                "can only time out"
            )
            yield _warning(document, step.event.where, message, "event-never-set")
        elif step.timeout is None and not any(spec.key in started for spec in setters):
            who = ", ".join(f"'{spec.key}'" for spec in setters)
            message = (
                f"only {who} can set event '{event.name}', and no step has started it before this wait "
                "(with no timeout): the wait never returns"
            )
            yield _warning(document, step.event.where, message, "event-set-later")


def unconsumed_joins(workflow: Workflow, document: Document) -> Iterator[Problem]:
    """A `join_queue` on a joinable queue that no process gets: nothing calls task_done()."""
    for step in workflow.steps:
        if isinstance(step, JoinQueue) and not workflow.receivers(step.queue.text):
            message = (
                f"no process gets queue '{step.queue.text}', so nothing marks its items done and this join "
                "waits for ever"
            )
            yield _warning(document, step.queue.where, message, "join-unconsumed-queue")


Amount = tuple[int, int]  # (fixed, per CPU): counts that depend on the machine stay comparable


def _amount(spec: ProcessSpec) -> Amount:
    return (0, spec.replicas.count) if isinstance(spec.replicas, PerCpu) else (spec.replicas, 0)


def _say(amount: Amount) -> str:
    fixed, per_cpu = amount
    parts = ([f"{fixed}"] if fixed else []) + ([f"{per_cpu} per CPU"] if per_cpu else [])
    return " + ".join(parts) or "0"


def _put_amount(workflow: Workflow, step: Put, *, pills_only: bool) -> Amount | None:
    """How many items (or `null` pills) a put step puts; None when a callable decides."""
    if step.source is not None:
        return None
    count = sum(1 for item in step.items if item is None or not pills_only)
    if step.per is not None:
        fixed, per_cpu = _amount(workflow.processes[step.per.text])
        return (count * fixed, count * per_cpu)
    return (count * step.count, 0)


def poison_pills(workflow: Workflow, document: Document) -> Iterator[Problem]:
    """The `null` pills put on a queue stop its consumers: as many as one process's replicas, or
    all of them together (a producer that gets the queue too is no consumer)."""
    for shared in workflow.objects.values():
        puts = [step for _, step in workflow.steps_on(shared.name, Put) if isinstance(step, Put)]
        consumers = workflow.receivers(shared.name)
        for step in puts:
            if step.per is not None and workflow.processes[step.per.text] not in consumers:
                message = f"pills are put per replica of '{step.per.text}', which does not get queue '{shared.name}'"
                yield _warning(document, step.per.where, message, "pill-count")
        amounts = [_put_amount(workflow, step, pills_only=True) for step in puts]
        if not consumers or None in amounts:
            continue
        pills = (sum(a[0] for a in amounts if a), sum(a[1] for a in amounts if a))
        if pills == (0, 0):
            continue
        total = (sum(_amount(s)[0] for s in consumers), sum(_amount(s)[1] for s in consumers))
        if pills != total and all(pills != _amount(spec) for spec in consumers):
            who = ", ".join(f"'{spec.key}' ({_say(_amount(spec))})" for spec in consumers)
            message = (
                f"{_say(pills)} poison pill(s) for queue '{shared.name}', but {_say(total)} process(es) get it: {who}"
            )
            yield _warning(document, puts[-1].where, message, "pill-count", key=True)


def joins_before_pills(workflow: Workflow, document: Document) -> Iterator[Problem]:
    """A join (without a timeout) of a consumer before the step that puts its poison pill."""
    for index, step in enumerate(workflow.steps):
        if not isinstance(step, Join) or step.timeout is not None:
            continue
        for name in step.processes:
            spec = workflow.processes[name.text]
            for later, put in enumerate(workflow.steps[index + 1 :], start=index + 1):
                if not isinstance(put, Put) or None not in put.items or spec not in workflow.receivers(put.queue.text):
                    continue
                if put.per is None or put.per.text == spec.key:
                    message = (
                        f"'{spec.key}' is joined before the poison pill for it is put on '{put.queue.text}' "
                        f"(step {later + 1}): the join waits for ever"
                    )
                    yield _warning(document, name.where, message, "join-before-pill")
                    break


def bounded_queue_puts(workflow: Workflow, document: Document) -> Iterator[Problem]:
    """More items put on a bounded queue than it holds, before any process that reads it starts."""
    for shared in workflow.objects.values():
        maxsize = int(shared.options.get("maxsize") or 0)
        if shared.kind not in QUEUE_KINDS or maxsize <= 0:
            continue
        readers = {spec.key for spec in workflow.receivers(shared.name)}
        queued = 0
        for step in workflow.steps:
            if isinstance(step, Start) and readers & {name.text for name in step.processes}:
                break
            if isinstance(step, Put) and step.queue.text == shared.name:
                amount = _put_amount(workflow, step, pills_only=False)
                if amount is None or amount[1]:
                    break
                queued += amount[0]
                if queued > maxsize:
                    message = (
                        f"{queued} items are put on '{shared.name}' (maxsize {maxsize}) before any process "
                        "that gets it is started: the put blocks for ever"
                    )
                    yield _warning(document, step.where, message, "queue-full", key=True)
                    break


def terminated_expectations(workflow: Workflow, document: Document) -> Iterator[Problem]:
    """A process stopped by a `terminate` step that expects only exit codes."""
    terminated = {name.text for step in workflow.steps if isinstance(step, Terminate) for name in step.processes}
    for key in sorted(terminated):
        spec = workflow.processes[key]
        if spec.expect is not None and spec.expect.exitcodes and not spec.expect.signals:
            codes = ", ".join(str(code) for code in spec.expect.exitcodes)
            message = (
                f"'{key}' is terminated by a step, so it ends by SIGTERM (unless it handles the signal), "
                f"not with exit code {codes}: expect {{signal: SIGTERM}}"
            )
            yield _warning(document, (*spec.where, "expect", "exitcode"), message, "terminate-expectation")


def barrier_parties(workflow: Workflow, document: Document) -> Iterator[Problem]:
    """A barrier waits for more parties than there are processes to reach it."""
    for shared in workflow.objects.values():
        getting = workflow.receivers(shared.name) if shared.kind == "barrier" else []
        if not getting or any(isinstance(spec.replicas, PerCpu) for spec in getting):
            continue
        total = sum(spec.replica_count() for spec in getting)
        parties = int(shared.options.get("parties", 2))
        if total < parties:
            message = f"barrier '{shared.name}' waits for {parties} parties but only {total} process(es) get it"
            yield _warning(document, (*shared.where, "parties"), message, "barrier-parties")


def never_started(workflow: Workflow, document: Document) -> Iterator[Problem]:
    """With explicit steps, a process that no step starts."""
    if not workflow.steps:
        return
    started = {name.text for step in workflow.steps if isinstance(step, Start) for name in step.processes}
    for spec in workflow.processes.values():
        if spec.key not in started and not spec.start_after:
            message = f"process '{spec.key}' is never started by the steps"
            yield _warning(document, spec.where, message, "never-started", key=True)


def forgotten_dollars(workflow: Workflow, document: Document) -> Iterator[Problem]:
    """A process argument that is the bare name of a shared object: `tasks` for `$tasks`."""
    for spec in workflow.processes.values():
        arguments = [*leaves(spec.args, (*spec.where, "args")), *leaves(spec.kwargs, (*spec.where, "kwargs"))]
        for where, text in arguments:
            if not isinstance(text, str):
                continue
            name, _, end = text.partition(".")
            shared = workflow.objects.get(name)
            if shared is not None and (not end or shared.kind == "pipe"):
                message = (
                    f"'{text}' is passed as plain text, though it is the name of {KIND_WORDS[shared.kind]}: "
                    f"write '${text}' to pass the object"
                )
                yield _warning(document, where, message, "missing-dollar")


def gets_before_writers(workflow: Workflow, document: Document) -> Iterator[Problem]:
    """A `get` with no timeout before anything that could put on the queue has started."""
    started: set[str] = set()
    for index, step in enumerate(workflow.steps):
        if isinstance(step, Start):
            started.update(name.text for name in step.processes)
        if not isinstance(step, Get) or step.timeout is not None:
            continue
        writers = [spec.key for spec in workflow.receivers(step.queue.text)]
        put_before = any(i < index for i, _ in workflow.steps_on(step.queue.text, Put))
        if not put_before and not started & set(writers):
            message = (
                f"nothing that puts on '{step.queue.text}' has been started before this get (with no "
                "timeout): it waits for ever"
            )
            yield _warning(document, step.queue.where, message, "get-before-writer")


# Modules a user's file may be named like that are not the standard library's: mprun's own
# package and what it imports. Only when a folder holds one of these (or a standard library
# name) is it worth asking what mprun imports before the workflow's code (inspection.py).
MPRUN_NAMES = frozenset(
    {"runner", "yaml", "_yaml", "structlog", "jsonschema", "jsonschema_specifications", "referencing", "rpds"}
    | {"attr", "attrs", "typing_extensions", "idna"}
)


@functools.lru_cache(maxsize=64)
def _clashing_names_in(folder: Path) -> list[str]:
    """Cached: a run checks many workflows from the same folder."""
    names = {path.stem for path in folder.glob("*.py")}
    names |= {path.parent.name for path in folder.glob("*/__init__.py")}
    if (folder / "runner").resolve() == Path(__file__).resolve().parent:
        names.discard("runner")  # mprun's own source tree: the package is this one
    return sorted(names & (sys.stdlib_module_names | MPRUN_NAMES))


def shadowed_modules(workflow: Workflow, document: Document) -> Iterator[Problem]:
    """A module in a `pythonpath` folder named like one of the standard library's (`queue.py`)
    or one mprun imports (`yaml.py`, `runner.py`). mprun imports its own before it puts the
    folders first on sys.path, in its process and in every child; so a file named like a module
    imported then can never be imported by the workflow's code (an error), and one named like
    a module only mprun's process imports is the user's under spawn alone (a warning)."""
    from runner.inspection import imported_first

    for index, folder in enumerate(workflow.python_folders()):
        names = _clashing_names_in(folder)
        if not names:
            continue
        everywhere, in_mprun = imported_first()
        written = workflow.pythonpath[index].text
        for name in names:
            where = ("pythonpath", index)
            if name == "runner" or name in everywhere:
                owner = "mprun's own package" if name == "runner" else f"the module '{name}'"
                message = (
                    f"'{name}' in pythonpath folder '{written}' can never be imported: {owner} is imported "
                    "before the workflow's code runs, in mprun and in every process: rename it"
                )
                yield document.problem(where, message, "shadows-mprun")
            elif name in in_mprun:
                whose = "the standard library's" if name in sys.stdlib_module_names else "the installed"
                message = (
                    f"'{name}' in pythonpath folder '{written}' hides {whose} '{name}' module only in spawn "
                    "and forkserver children (mprun's own process and fork children have imported it "
                    "first): rename it"
                )
                yield _warning(document, where, message, "shadows-mprun")
            elif name in sys.stdlib_module_names:
                message = (
                    f"'{name}' in pythonpath folder '{written}' hides the standard library's '{name}' module "
                    "from every process of this workflow: rename it"
                )
                yield _warning(document, where, message, "shadows-stdlib")


# What each live process costs, measured on a 2-CPU Linux host with 20 sleeping no-op
# processes (Pss from /proc/PID/smaps_rollup, mprun's descriptors from /proc/PID/fd): about
# 3 MB each under fork, 8 MB under spawn and forkserver, and 7 descriptors held by mprun.
MEMORY_PER_PROCESS_KB = {"fork": 3_100, "spawn": 8_300, "forkserver": 8_300}
DESCRIPTORS_PER_PROCESS = 7
DESCRIPTORS_OF_MPRUN = 40


def _available_memory_kb() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def too_many_processes(workflow: Workflow, document: Document) -> Iterator[Problem]:
    """More processes than this machine can hold at once: their memory, mprun's descriptors
    (it raises its own soft limit to the hard one), the user's process limit. An estimate,
    so a warning: not every process need be alive at once."""
    import resource

    if not workflow.processes:
        return
    total = sum(spec.replica_count() for spec in workflow.processes.values())
    method = workflow.start_method or "fork"
    reasons = []
    memory = _available_memory_kb()
    need_kb = total * MEMORY_PER_PROCESS_KB.get(method, MEMORY_PER_PROCESS_KB["spawn"])
    if memory is not None and need_kb > memory:
        reasons.append(
            f"about {need_kb / 1024 / 1024:.1f} GiB of memory at {MEMORY_PER_PROCESS_KB[method] / 1024:.0f} MB "
            f"a process under {method}, where {memory / 1024 / 1024:.1f} GiB is available"
        )
    descriptors = DESCRIPTORS_OF_MPRUN + total * DESCRIPTORS_PER_PROCESS
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and descriptors > hard:
        reasons.append(
            f"about {descriptors:,} file descriptors in mprun ({DESCRIPTORS_PER_PROCESS} a process), "
            f"where the limit is {hard:,} (ulimit -Hn)"
        )
    processes = resource.getrlimit(resource.RLIMIT_NPROC)[0]
    if processes != resource.RLIM_INFINITY and total > processes:
        reasons.append(f"more processes than the limit of {processes:,} (ulimit -u)")
    if reasons:
        message = f"{total:,} processes in all may not fit on this machine if they run at once: " + "; ".join(reasons)
        yield _warning(document, ("processes",), message, "too-many-processes")


def unused_pools(workflow: Workflow, document: Document) -> Iterator[Problem]:
    """A pool no step uses: its process is never started."""
    used = {step.pool.text for step in workflow.steps if isinstance(step, Map)}
    for pool in workflow.pools.values():
        if pool.name not in used:
            yield _warning(
                document, pool.where, f"pool '{pool.name}' is never used by a step", "unused-object", key=True
            )


HAZARDS = (
    unused_pools,
    shadowed_modules,
    too_many_processes,
    forgotten_dollars,
    gets_before_writers,
    unused_objects,
    shared_pipe_ends,
    waits_that_cannot_end,
    unconsumed_joins,
    poison_pills,
    joins_before_pills,
    bounded_queue_puts,
    terminated_expectations,
    barrier_parties,
    never_started,
    *orchestration.HAZARDS,
)


def check(workflow: Workflow, document: Document) -> list[Problem]:
    """Every warning of a workflow that has no error."""
    return [problem for hazard in HAZARDS for problem in hazard(workflow, document)]
