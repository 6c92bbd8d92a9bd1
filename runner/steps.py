"""Taking a plan's steps, on any backend: one case per step kind (mypy names a kind left out,
see `assert_never`), each doing what the standard library call it names does, through the
backend's primitives. Each step is logged as `step.start` and `step.end` with its outcome.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from runner.child import resolve
from runner.errors import NotSendable, assert_never
from runner.plan import Plan
from runner.workflow import (
    ClearEvent,
    Get,
    Join,
    JoinQueue,
    Put,
    SetEvent,
    Sleep,
    Start,
    Step,
    Terminate,
    Wait,
    as_written,
)

if TYPE_CHECKING:
    from runner.backends import Backend

FAILING = ("failed", "timeout", "stuck")  # outcomes that fail the run
ITEM_REPR = 2000  # characters of a got item's repr kept for the log


def execute(plan: Plan, backend: Backend, log: Any, clock: Callable[[], float]) -> list[str]:
    """Take every step; the failures, in words (timeouts, steps that could not be taken). Ctrl-C,
    SIGTERM and the time limit go on up, once the step is logged as interrupted."""
    failures = []
    for index, step in enumerate(plan.steps):
        backend.loop.check()  # a signal that came during the last step, which did not wait
        subject = _subject(step)
        log.info("step.start", step=index + 1, kind=step.kind, subject=subject)
        began = clock()
        try:
            outcome, detail = take(step, plan, backend, log)
        except BaseException as error:
            if not isinstance(error, Exception):
                log.warning(
                    "step.end",
                    step=index + 1,
                    kind=step.kind,
                    subject=subject,
                    outcome="interrupted",
                    duration_s=round(clock() - began, 6),
                    detail=None,
                )
                raise
            # User code (a `put: from:` callable) raised, or multiprocessing refused (a start
            # that cannot pickle its process, no file descriptors left): this step failed.
            outcome = "failed"
            detail = str(error) if isinstance(error, NotSendable) else f"{type(error).__name__}: {error}"
            failures.append(f"step {index + 1} ({step.kind} {subject}): {detail}")
        (log.warning if outcome in FAILING else log.info)(
            "step.end",
            step=index + 1,
            kind=step.kind,
            subject=subject,
            outcome=outcome,
            duration_s=round(clock() - began, 6),
            detail=detail or None,
        )
        if outcome in ("timeout", "stuck"):
            failures.append(f"step {index + 1} ({step.kind} {subject}) {outcome}: {detail}")
    return failures


def take(step: Step, plan: Plan, backend: Backend, log: Any) -> tuple[str, str]:
    """Take one step: its outcome (ok, alive, timeout, stuck) and a detail in words."""
    match step:
        case Start():
            backend.start([name.text for name in step.processes])
            return "ok", ""
        case Join():
            return backend.join([name.text for name in step.processes], step.timeout)
        case Terminate():
            killed = backend.terminate([name.text for name in step.processes], step.grace)
            return ("ok", "killed after the grace: " + ", ".join(killed)) if killed else ("ok", "")
        case Put():
            items = _items(step, plan)
            backend.put(step.queue.text, items)
            return "ok", f"{len(items)} item(s)"
        case Get():
            name = step.queue.text

            def took(item: Any) -> None:
                log.info("queue.get", queue=name, item=_short_repr(item))

            got = backend.get(name, step.count, step.timeout, took)
            if got == step.count:
                return "ok", f"{step.count} item(s)"
            backend.dump_receivers(name, f"get from {name} timed out")
            return "timeout", f"{got} of {step.count} item(s) within {step.timeout} s"
        case JoinQueue():
            name = step.queue.text
            left = backend.join_queue(name, step.timeout)
            if left is None:
                return "ok", ""
            backend.dump_receivers(name, f"join_queue {name} timed out")
            return "timeout", f"items of {name} not all done within {step.timeout} s" + left
        case Wait():
            name = step.event.text
            if backend.wait_event(name, step.timeout):
                return "ok", ""
            backend.dump_receivers(name, f"waiting for event {name} timed out")
            return "timeout", f"event {name} not set within {step.timeout} s"
        case SetEvent():
            backend.set_event(step.event.text, True)
            return "ok", ""
        case ClearEvent():
            backend.set_event(step.event.text, False)
            return "ok", ""
        case Sleep():
            backend.loop.sleep(step.seconds)
            return "ok", ""
        case _:
            assert_never(step)


def _items(step: Put, plan: Plan) -> list[Any]:
    if step.source is not None:
        return list(resolve(step.source)(*as_written(step.args), **as_written(step.kwargs)))
    repeat = len(plan.replicas(step.per.text)) if step.per is not None else step.count
    return [as_written(item) for item in step.items for _ in range(repeat)]


def _short_repr(value: object, limit: int = ITEM_REPR) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"


def _subject(step: Step) -> str:
    for field_name in ("processes", "queue", "event"):
        value = getattr(step, field_name, None)
        if isinstance(value, tuple):
            return ", ".join(name.text for name in value)
        if value is not None:
            return str(value.text)
    seconds = getattr(step, "seconds", None)
    return f"{seconds:g} s" if seconds is not None else ""
