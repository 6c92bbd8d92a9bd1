"""`mprun WORKFLOW` (or `mprun run WORKFLOW`): run a workflow and say whether it met its expectations."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import TextIO

from runner import execution
from runner.errors import OK, USAGE, InvalidWorkflow
from runner.log import visible
from runner.outcome import RunResult
from runner.plan import CALLER, HOST, Plan, make_plan
from runner.reporter import REPORTERS


def _table(result: RunResult) -> str:
    restarts = any(p.restarts for p in result.processes)  # a column only when a policy restarted one
    rows = [("process", "pid", "exit", "signal", "duration", *(("restarts",) if restarts else ()), "expected")]
    for p in result.processes:
        rows.append(
            (
                visible(p.name),
                "-" if p.pid is None else str(p.pid),
                "-" if p.exitcode is None else str(p.exitcode),
                p.signal or "-",
                "-" if p.duration_s is None else f"{p.duration_s:.3f} s",
                *((str(p.restarts),) if restarts else ()),
                "yes" if p.expected else "NO",
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    summary = f"run {result.status}: exit status {result.exitcode}; log: {visible(str(result.log_file))}"
    return "\n".join([*lines, *(f"- {visible(failure)}" for failure in result.failures), summary]) + "\n"


def _describe(plan: Plan, start_method: str | None) -> str:
    workflow = plan.workflow
    default = execution.default_start_method()
    chosen = os.environ.get(execution.START_METHOD_VARIABLE)
    method = (
        start_method
        or workflow.start_method
        or (f"{default} (from {execution.START_METHOD_VARIABLE})" if chosen else f"the platform's default ({default})")
    )
    lines = [f"workflow {workflow.name} ({workflow.path})", f"start method: {method}"]
    lines.append("shared objects:" if workflow.objects else "shared objects: none")
    lines += [
        f"  {shared.name}: {shared.kind} {dict(shared.options) or ''}".rstrip() for shared in workflow.objects.values()
    ]
    if workflow.pools:
        lines.append("pools:")
    for pool in workflow.pools.values():
        settings = [f"{pool.size()} workers"]
        if pool.initializer:
            settings.append(f"initializer {pool.initializer}({', '.join(_plain(arg) for arg in pool.initargs)})")
        if pool.maxtasksperchild:
            settings.append(f"{pool.maxtasksperchild} tasks a worker")
        lines.append(f"  {pool.name}: Pool, {', '.join(settings)}; in a process of its own, started by its first step")
    lines.append("processes:")
    for process in plan.processes:
        name = process.name if process.name is not None else f"{process.label} (multiprocessing names it)"
        if process.target == HOST:
            lines.append(f"  {name}: the process of pool {process.key}")
            continue
        if process.target == CALLER:
            lines.append(f"  {name}: the call of step {int(process.key.rpartition('/')[2]) + 1}, {process.args[0]}")
            continue
        role = "class" if process.is_class else "target"
        daemon = ", daemon" if process.daemon else ""
        lines.append(f"  {name}: {role} {process.target}{daemon}")
    lines.append("steps (the default: start all, then wait for the non-daemons):" if plan.default_steps else "steps:")
    for index, step in enumerate(plan.steps, start=1):
        # What the file said: options left at their defaults (empty, none, off) are not shown.
        fields = {key: value for key, value in vars(step).items() if key not in ("where", "kind")}
        said = {key: value for key, value in fields.items() if value not in (None, (), {}, False)}
        shown = ", ".join(f"{key}={_plain(value)}" for key, value in said.items())
        lines.append(f"  {index}. {step.kind}: {shown}")
    lines.append("then: stop the daemons still running, join the others")
    return "\n".join(lines) + "\n"


def _plain(value: object) -> str:
    text = getattr(value, "text", None)
    if text is not None:
        return str(text)
    if isinstance(value, tuple):
        return "[" + ", ".join(_plain(item) for item in value) + "]"
    return repr(value)


def run(
    workflow: str,
    *,
    log_file: str | None = None,
    log_format: str = "console",
    dry_run: bool = False,
    timeout: float | None = None,
    grace: float = execution.DEFAULT_GRACE,
    start_method: str | None = None,
    backend: str | None = None,
    cluster: str | None = None,
    overrides: Sequence[str] = (),
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Run the workflow; 0 when every process met its expectation and no step failed."""
    out, err = out or sys.stdout, err or sys.stderr
    try:
        if dry_run:
            checked = execution.check_only(workflow, imports=True, backend=backend, overrides=overrides)
            out.write(_describe(make_plan(checked), start_method))
            return OK
        result = execution.run(
            workflow,
            log_file=log_file,
            console=err,
            console_format=log_format,
            timeout=timeout,
            grace=grace,
            start_method=start_method,
            backend=backend,
            cluster=cluster,
            overrides=overrides,
        )
    except InvalidWorkflow as invalid:
        REPORTERS["text"]([invalid.result], err, err)
        return USAGE
    if log_format == "console":
        try:
            err.write(_table(result))
        except OSError:
            pass  # the console went away; the log file has it all, and the exit status says it
    return result.exitcode
