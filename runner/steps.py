"""Taking a plan's steps, on any backend: one case per step kind (mypy names a kind left out,
see `assert_never`), each doing what the standard library call it names does, through the
backend's primitives. Each step is logged as `step.start` and `step.end` with its outcome.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from runner.child import resolve
from runner.errors import NotSendable, assert_never
from runner.plan import Plan, call_key, fill
from runner.workflow import (
    TERMINATE_GRACE,
    Call,
    ClearEvent,
    Close,
    Get,
    Join,
    JoinQueue,
    Map,
    Put,
    Recv,
    SetEvent,
    Show,
    Sleep,
    Start,
    Step,
    Terminate,
    Wait,
)

if TYPE_CHECKING:
    from runner.backends import Backend

FAILING = ("failed", "timeout", "stuck", "lost")  # outcomes that fail the run (lost: a worker of the cluster died)
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
        elif outcome == "failed" and not (failures and failures[-1].startswith(f"step {index + 1} ")):
            failures.append(f"step {index + 1} ({step.kind} {subject}): {detail}")  # a task raised, say
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
            items = _items(step, plan, backend)
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
        case Show():
            for shown in step.objects:
                ready, state = backend.show(shown.text, step.timeout)
                if not ready:
                    return (
                        "timeout",
                        f"{shown.text} could not be read within {step.timeout} s: a process holds its lock",
                    )
                log.info("object.show", object=shown.text, value=_short_repr(state, str))
            return "ok", ""
        case Recv():

            def received(end: str, message: Any) -> None:
                log.info("pipe.recv", pipe=end, item=_short_repr(message))

            ends = [(end.pipe, end.end) for end in step.ends]
            got, still_open = backend.recv(ends, step.count, step.timeout, received)
            if step.count is None and not still_open:
                return "ok", f"{got} message(s), then end of file"
            if step.count is not None and got == step.count:
                return "ok", f"{got} message(s)"
            for pipe in dict.fromkeys(end.pipe for end in step.ends):
                backend.dump_receivers(pipe, f"recv on {pipe} timed out")
            if step.count is None:
                return (
                    "timeout",
                    f"{got} message(s), and no end of file on {', '.join(still_open)} within {step.timeout} s",
                )
            if not still_open:
                return "failed", f"{got} of {step.count} message(s), then end of file"
            return "timeout", f"{got} of {step.count} message(s) within {step.timeout} s"
        case Close():
            for end in step.ends:
                backend.close_end(end.pipe, end.end)
            return "ok", ""
        case Map():
            return _map(step, backend, log)
        case Call():
            outcome, value = backend.call(call_key(int(step.where[1])), step.timeout, TERMINATE_GRACE)
            if outcome == "timeout":
                return "timeout", f"{step.name} did not return within {step.timeout} s"
            if outcome == "failed":
                return "failed", f"{step.name} did not return (see its exit)"
            if step.keep is not None:
                backend.keep(step.keep.text, value)
            # Its process.return record has the value: said once, not again here.
            return "ok", f"kept as {step.keep.text}" if step.keep is not None else ""
        case _:
            assert_never(step)


def _map(step: Map, backend: Backend, log: Any) -> tuple[str, str]:
    pool = step.pool.text

    def progressed(done: int, total: int, unit: str) -> None:
        log.info("map.progress", pool=pool, kind=step.kind, done=done, total=total, unit=unit)

    # The results stay with the pool's host unless a queue must have them now: a later step
    # passes them on from there (to the same pool without their coming here at all).
    want = "values" if step.put is not None else "keep" if step.keep is not None else "none"
    outcome = backend.map(
        pool,
        step.kind,
        step.function,
        step.items,
        step.chunksize,
        step.args,
        dict(step.kwargs),
        step.timeout,
        progressed,
        log=step.log,
        want=want,
    )
    if outcome.how == "timeout":
        return "timeout", f"no results from {pool} within {step.timeout} s"
    if outcome.how == "ended":
        return "failed", f"the process of pool {pool} ended"
    if outcome.how == "lost" and outcome.error is not None:
        worker, how = outcome.error[:2]
        # The standard library's Pool would wait for ever: the task dies with its worker.
        return "failed", f"{worker} of pool {pool} ended with {how} while the step ran, and its task with it"
    if outcome.error is not None:
        kind, message, trace = outcome.error
        log.warning("map.error", pool=pool, type=kind, message=message, traceback=trace)
        return ("ok" if step.may_fail else "failed"), f"a task raised {kind}: {message}"
    summary = outcome.summary
    count = summary["count"]
    if "shown" in summary:
        log.info("map.result", pool=pool, count=count, items=summary["shown"])
    for number, shown in enumerate(summary.get("chunks", ()), start=1):
        log.info("map.result", pool=pool, chunk=number, chunks=len(summary["chunks"]), items=shown)
    for index, shown in enumerate(summary.get("each", ())):
        log.info("map.result", pool=pool, index=index, item=shown)
    if step.keep is not None:
        values = outcome.values if step.kind != "apply" or outcome.values is None else outcome.values[0]
        backend.keep(step.keep.text, values if values is not None else outcome.remote)
    if step.put is not None:
        assert outcome.values is not None  # asked for
        values = outcome.values[:1] if step.kind == "apply" else outcome.values
        backend.put(step.put.text, values)
    return "ok", "" if step.kind == "apply" else f"{count} result(s)"  # an apply's value: its map.result


def _items(step: Put, plan: Plan, backend: Backend) -> list[Any]:
    """The items to put, made as a script's loop would make them: each object to build once
    per item (a repeated item is one object put several times)."""
    if step.source is not None:
        made = resolve(step.source)(*backend.value(step.args), **backend.value(dict(step.kwargs)))
        return list(made)
    if step.each is not None:
        return [backend.value(fill(step.items[0], item=item)) for item in step.each]
    repeat = len(plan.replicas(step.per.text)) if step.per is not None else step.count
    return [made for made in (backend.value(item) for item in step.items) for _ in range(repeat)]


def _short_repr(value: object, show: Callable[[object], str] = repr, limit: int = ITEM_REPR) -> str:
    text = show(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"


def _subject(step: Step) -> str:
    for field_name in ("processes", "queue", "event", "objects", "ends", "pool"):
        value = getattr(step, field_name, None)
        if isinstance(value, tuple):
            return ", ".join(name.text for name in value)
        if value is not None:
            return str(value.text)
    seconds = getattr(step, "seconds", None)
    return f"{seconds:g} s" if seconds is not None else ""
