"""What a workflow may use on the Dask backend, and why the rest is refused: `mprun check
--backend dask` (and a run on Dask) report each refusal where the workflow uses it, with what
to use instead. Imports nothing of Dask's.
"""

from __future__ import annotations

from collections.abc import Iterator

from runner.document import Document
from runner.problem import Problem
from runner.workflow import Call, Close, Recv, Show, Workflow

# Kind of shared object -> why it is refused, and what to use instead.
REFUSED_KINDS = {
    "rlock": "Dask has no re-entrant lock: use a lock (`kind: lock`)",
    "semaphore": "Dask's semaphore is bounded (a release past its value raises): use `bounded: true`",
    "condition": "Dask has no condition variable (dask/distributed#2007): use an event, or a queue of notices",
    "barrier": "Dask has no barrier: use an event the parent sets once every party has put a notice on a queue",
    "value": "shared memory does not reach across machines: send values on a queue",
    "array": "shared memory does not reach across machines: send values on a queue",
    "pipe": "a pipe joins two processes of one machine: use two queues, one per direction",
    "dict": "manager objects are not served on Dask: send updates on a queue to a process that holds the dict",
    "list": "manager objects are not served on Dask: send items on a queue",
    "namespace": "manager objects are not served on Dask: send values on a queue",
}
REFUSED_STEPS = {
    Call: "call steps do not run on the Dask backend yet: run the callable as a process",
    Show: "show does not run on the Dask backend yet",
    Recv: "pipes are refused on the Dask backend: use a queue and a get step",
    Close: "pipes are refused on the Dask backend: use a queue",
}
# A process's key -> why the Dask backend refuses it (its workers run one part of the plan each,
# and these act across processes or restart them, on one machine's loop).
REFUSED_KEYS = {
    "restart": "its restart policy does not run there yet",
    "start_after": "its start conditions do not run there yet: start it by a step after a wait or a get",
    "max_run_time": "its max_run_time does not run there yet: give its join a timeout, then terminate it",
}
CODE = "unsupported-on-dask"
# Kinds whose every use is a round trip to the scheduler that costs a thousand times what it
# does on one machine (benchmarks/latency.py): a workflow that uses them per item is slow there.
SLOW_KINDS = {
    "joinable_queue": "about 2.8 ms for a put, a get and a task_done, against 0.1 ms on one machine",
    "event": "about 0.7 ms a use, against 1 µs on one machine",
    "lock": "about 0.8 ms an acquire and release, against 0.1 µs on one machine",
    "bounded_semaphore": "about 0.9 ms an acquire and release, against 0.1 µs on one machine",
}


def refusals(workflow: Workflow, document: Document) -> list[Problem]:
    """Every use of what the Dask backend cannot give multiprocessing's semantics (errors), and
    else of what costs milliseconds a use there (warnings, as the others: for a sound file)."""
    refused = list(_refused(workflow, document))
    return refused or list(_slow(workflow, document))


def _refused(workflow: Workflow, document: Document) -> Iterator[Problem]:
    for shared in workflow.objects.values():
        why = REFUSED_KINDS.get(shared.kind)
        if why is not None:
            yield document.problem(shared.where, f"'{shared.name}' cannot run on the Dask backend: {why}", CODE)
    for pool in workflow.pools.values():  # its map steps are refused with it
        yield document.problem(
            pool.where,
            f"pool '{pool.name}' cannot run on the Dask backend yet: run its function in processes fed by a queue",
            CODE,
        )
    for spec in workflow.processes.values():
        used = {"restart": spec.restart, "start_after": spec.start_after, "max_run_time": spec.max_run_time}
        for key, why in REFUSED_KEYS.items():
            if used[key]:
                yield document.problem(
                    (*spec.where, key), f"'{spec.key}' cannot run on the Dask backend: {why}", CODE, key=True
                )
    for step in workflow.steps:
        for kind, why in REFUSED_STEPS.items():
            if isinstance(step, kind):
                yield document.problem(step.where, why, CODE)


def _slow(workflow: Workflow, document: Document) -> Iterator[Problem]:
    for shared in workflow.objects.values():
        slow = SLOW_KINDS.get(shared.kind)
        if slow is not None and workflow.receivers(shared.name):
            yield document.problem(
                shared.where,
                f"on Dask each use of '{shared.name}' is a round trip to the scheduler ({slow}): "
                "use it per batch of work, not per item",
                "slow-on-dask",
                severity="warning",
            )
