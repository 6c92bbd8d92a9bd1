"""A plan: every process of a workflow, replicas spelled out, and the steps to take.

Independent of any backend: names, arguments with `$replica` filled in, references still
symbolic. The multiprocessing backend builds real objects from it; another (a cluster) could.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from runner.workflow import (
    Expectation,
    Name,
    ReplicaIndex,
    Start,
    Step,
    Workflow,
)


@dataclass(frozen=True)
class PlannedProcess:
    """One process to start: replica `replica` of the `processes` entry `key`."""

    key: str
    replica: int
    name: str | None  # None: multiprocessing names it (Process-3, Worker-1)
    target: str
    is_class: bool
    args: tuple[Any, ...]
    kwargs: Mapping[str, Any]
    daemon: bool | None  # None: as the process class decides (not a daemon for a plain target)
    expect: Expectation | None

    @property
    def label(self) -> str:
        """How logs refer to it before it has its multiprocessing name."""
        return self.name or f"{self.key}[{self.replica}]"


@dataclass(frozen=True)
class Plan:
    """What to build and what to do, in order."""

    workflow: Workflow
    processes: tuple[PlannedProcess, ...]
    steps: tuple[Step, ...]
    default_steps: bool

    def replicas(self, key: str) -> list[PlannedProcess]:
        """The processes of one `processes` entry, in replica order."""
        return [process for process in self.processes if process.key == key]


def _fill(value: Any, replica: int) -> Any:
    """Arguments with each `$replica` replaced by the replica's index."""
    if isinstance(value, ReplicaIndex):
        return replica
    if isinstance(value, tuple):
        return tuple(_fill(item, replica) for item in value)
    if isinstance(value, dict):
        return {key: _fill(item, replica) for key, item in value.items()}
    return value


def make_plan(workflow: Workflow, cpus: int | None = None) -> Plan:
    """The plan of a checked workflow, on a machine with `cpus` CPUs (default: this one)."""
    processes = tuple(
        PlannedProcess(
            key=spec.key,
            replica=index,
            name=name,
            target=spec.target,
            is_class=spec.is_class,
            args=_fill(spec.args, index),
            kwargs=_fill(dict(spec.kwargs), index),
            daemon=spec.daemon,
            expect=spec.expect,
        )
        for spec in workflow.processes.values()
        for index, name in enumerate(spec.names(cpus))
    )
    if workflow.steps:
        return Plan(workflow, processes, workflow.steps, default_steps=False)
    # Start everything; the backend's finish then waits for the non-daemons (whatever the
    # classes decided) before it stops the daemons left.
    everyone = tuple(Name(spec.key, spec.where) for spec in workflow.processes.values())
    return Plan(workflow, processes, (Start(everyone, ()),), default_steps=True)
