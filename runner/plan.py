"""A plan: every process of a workflow, replicas spelled out, and the steps to take.

Independent of any backend: names, arguments with `$replica`, `$number` and `$each` filled
in, references and objects to build still symbolic. The multiprocessing backend builds real
objects from it; another (a cluster) could.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from runner.workflow import (
    Built,
    Call,
    EachItem,
    Expectation,
    Name,
    PoolSpec,
    ProcessSpec,
    Reference,
    ReplicaIndex,
    RestartPolicy,
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
    restart: RestartPolicy | None = None
    max_run_time: float | None = None  # s each attempt may run before it is stopped
    env: Mapping[str, str | None] = field(default_factory=dict)  # None: removed
    cwd: str | None = None  # absolute

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


_NO_ITEM = object()


def fill(value: Any, replica: int = 0, item: Any = _NO_ITEM) -> Any:
    """Arguments with `$replica` and `$number` replaced by the replica's index (from 0 and from
    1), and `$each` by `item` (or the part of it that it names), inside objects to build too.
    The item is filled in as it is: it may hold references and objects to build itself."""
    if isinstance(value, ReplicaIndex):
        return replica + value.first
    if isinstance(value, EachItem) and item is not _NO_ITEM:
        return value.pick(item)
    if isinstance(value, Built):
        return Built(
            value.target, value.call, fill(value.args, replica, item), fill(value.kwargs, replica, item), value.where
        )
    if isinstance(value, tuple):
        return tuple(fill(part, replica, item) for part in value)
    if isinstance(value, dict):
        return {key: fill(part, replica, item) for key, part in value.items()}
    return value


def _item(spec: ProcessSpec, index: int) -> Any:
    return _NO_ITEM if spec.each is None else spec.each[index]


HOST = "runner.host:serve"  # the target of a pool's host process
CALLER = "runner.host:call"  # the target of a call step's process
CHANNELS = ("jobs", "births")  # what mprun and a pool's host talk over, each a pair of ends


def channel(pool: str, which: str) -> str:
    """The name a pool's channel has among the run's objects (no workflow name has a dot)."""
    return f"{pool}.{which}"


def _host(pool: PoolSpec, workflow: Workflow, cpus: int | None) -> PlannedProcess:
    """The process that holds the pool: runner.host.serve with its settings, and the host's
    ends (1) of the channels mprun makes for it."""
    ends = tuple(
        Reference(f"${channel(pool.name, which)}.1", pool.where, channel(pool.name, which), 1) for which in CHANNELS
    )
    folders = tuple(str(folder) for folder in workflow.python_folders())
    settings = (
        pool.size(cpus),
        pool.initializer,
        pool.initargs,
        pool.maxtasksperchild,
        workflow.multiprocessing_log,
        folders,
    )
    return PlannedProcess(
        key=pool.name,
        replica=0,
        name=pool.name,
        target=HOST,
        is_class=False,
        args=(*settings, *ends),
        kwargs={},
        daemon=False,
        expect=None,
    )


def call_key(index: int) -> str:
    """The key of the process of step `index`, a call (no workflow name has a slash)."""
    return f"steps/{index}"


def _caller(index: int, step: Call) -> PlannedProcess:
    """The process of a call step: made when the step comes, since its arguments may be what
    earlier steps kept; `runner.host.call` with the callable's name, its arguments, and the
    end of a pipe for what it returns (bound then)."""
    back = Reference(f"${call_key(index)}.1", step.where, call_key(index), 1)
    return PlannedProcess(
        key=call_key(index),
        replica=0,
        name=step.name,
        target=CALLER,
        is_class=False,
        args=(step.function, step.args, step.kwargs, back),
        kwargs={},
        daemon=False,
        expect=None,
    )


def make_plan(workflow: Workflow, cpus: int | None = None) -> Plan:
    """The plan of a checked workflow, on a machine with `cpus` CPUs (default: this one)."""
    hosts = tuple(_host(pool, workflow, cpus) for pool in workflow.pools.values())
    callers = tuple(_caller(index, step) for index, step in enumerate(workflow.steps) if isinstance(step, Call))
    processes = (
        hosts
        + callers
        + tuple(
            PlannedProcess(
                key=spec.key,
                replica=index,
                name=name,
                target=spec.target,
                is_class=spec.is_class,
                args=fill(spec.args, index, _item(spec, index)),
                kwargs=fill(dict(spec.kwargs), index, _item(spec, index)),
                daemon=spec.daemon,
                expect=spec.expect,
                restart=spec.restart,
                max_run_time=spec.max_run_time,
                env=spec.env,
                cwd=str(workflow.folder / spec.cwd.text) if spec.cwd is not None else None,
            )
            for spec in workflow.processes.values()
            for index, name in enumerate(spec.names(cpus))
        )
    )
    if workflow.steps:
        return Plan(workflow, processes, workflow.steps, default_steps=False)
    # Start everything but what its conditions start; the backend's finish then waits for the
    # non-daemons (whatever the classes decided) before it stops the daemons left.
    everyone = tuple(Name(spec.key, spec.where) for spec in workflow.processes.values() if not spec.start_after)
    return Plan(workflow, processes, (Start(everyone, ()),), default_steps=True)
