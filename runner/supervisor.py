"""The workflow's policies that act while the steps run, on any backend: fail fast (stop the
run when a process ends otherwise than expected) and start conditions (start a process once
another has started, completed, printed a line, or an event is set).

It listens to the run's records (records.py) as the log does, and never acts inside a read:
what it starts goes through `Loop.soon`, what stops the run through `Loop.interrupt` (a
`Halt`, raised at the run's next wait as a signal is). Restart policies are the backend's,
since a join must wait through them (outcome.restart_pause decides).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from runner import records
from runner.errors import Halt
from runner.outcome import cause, met
from runner.workflow import StartCondition

if TYPE_CHECKING:
    from runner.backends import Backend
    from runner.plan import Plan
    from runner.records import Record

EVENT_POLL = 0.01  # s between looks at the events start conditions wait for (they have no descriptor)


class Supervisor:
    """Fail fast and start conditions for one run; a listener of its loop."""

    def __init__(self, plan: Plan, backend: Backend, log: Any, clock: Callable[[], float]) -> None:
        self.backend = backend
        self.loop = backend.loop
        self.log = log
        self.clock = clock
        workflow = plan.workflow
        self.fail_fast = {key: workflow.fails_fast(spec) for key, spec in workflow.processes.items()}
        self.replicas = Counter(planned.key for planned in plan.processes)
        self.waiting = {key: spec.start_after for key, spec in workflow.processes.items() if spec.start_after}
        self.timeouts = {key: workflow.processes[key].start_timeout for key in self.waiting}
        self.keys: dict[str, str] = {}  # process name -> its key, once started
        self.started: dict[str, set[str]] = {}  # process key -> the names of its replicas that started
        self.live: set[str] = set()  # started, and not at their last end yet
        self.steps_done = False
        self.starting: set[str] = set()  # keys whose conditions hold, about to start
        self.ended: Counter[str] = Counter()  # last ends (after any restarts)
        self.completed: Counter[str] = Counter()  # last ends as expected
        self.gone: dict[str, set[str]] = {}  # process key -> the names of its replicas that ended
        # (process key, pattern) -> the names of its replicas that printed a line it finds
        self.printed: dict[tuple[str, str], set[str]] = {}
        self.patterns: dict[str, list[tuple[re.Pattern[str], set[str]]]] = {}  # process key -> what to seek
        for conditions in self.waiting.values():
            for condition in conditions:
                if condition.kind == "printed" and _printed(condition) not in self.printed:
                    found = self.printed[_printed(condition)] = set()
                    seek = (re.compile(str(condition.pattern)), found)
                    self.patterns.setdefault(condition.subject.text, []).append(seek)
        self.events: set[str] = set()  # those set, as last looked at (not from inside a read)
        self.stopped: set[str] = set()  # names mprun itself stops at the end of the steps
        self.halted = False
        if self.waiting or any(self.fail_fast.values()):  # else nothing to do: not a listener on the hot path
            self.loop.listen(self)

    def begin(self) -> None:
        """The steps begin: start conditions count their time from now."""
        if not self.waiting:
            return
        self.backend.expect_start(list(self.waiting))
        now = self.clock()
        for key, timeout in self.timeouts.items():
            if timeout is not None:
                self.loop.at(now + timeout, partial(self._late, key, timeout))
        if any(condition.kind == "event" for conditions in self.waiting.values() for condition in conditions):
            self.loop.soon(self._look_at_events)
        self._review()

    def __call__(self, record: Record) -> None:
        match record:
            case records.Output() | records.Logged() if record.process in self.keys:
                key = self.keys[record.process]
                if key in self.patterns:
                    lines = record.lines if isinstance(record, records.Output) else [record.message]
                    self._seek(key, record.process, lines)
            case records.Started():
                self.keys[record.process] = record.key
                self.started.setdefault(record.key, set()).add(record.process)
                self.live.add(record.process)
                self._review()
            case records.Exited() if record.ended.restart_in is None:
                self._ended(record)
            case records.Stopping():
                self.stopped.update(record.names)

    def _seek(self, key: str, name: str, lines: list[str]) -> None:
        news = False
        for pattern, found in self.patterns[key]:
            if name not in found and any(pattern.search(line) for line in lines):
                found.add(name)
                news = True
        if news:
            self._review()

    def _ended(self, record: records.Exited) -> None:
        ended = record.ended
        self.ended[ended.key] += 1
        self.gone.setdefault(ended.key, set()).add(ended.name)
        self.live.discard(ended.name)
        self.completed[ended.key] += met(ended)
        failed = cause(ended)
        planned_stop = ended.stopped_as_planned or ended.name in self.stopped
        if failed is not None and not planned_stop and self.fail_fast.get(ended.key) and not self.halted:
            self._halt(f"fail fast: {failed}")
        self._review()

    def end_of_steps(self) -> None:
        """The steps are over: nothing but the run's processes can set an event now."""
        self.steps_done = True
        self._review()

    def _halt(self, reason: str) -> None:
        self.halted = True
        self.loop.interrupt(Halt(reason))

    def _review(self) -> None:
        """Start each process whose conditions all hold now; stop the run if one cannot."""
        for key, conditions in list(self.waiting.items()):
            states = [self._state(condition) for condition in conditions]
            if self.steps_done and not self.live and not self.starting and "not yet" in states:
                # Nothing runs that could make it hold, and no step is left to: it never will.
                unmet = [c.text for c, state in zip(conditions, states, strict=True) if state == "not yet"]
                states.append(
                    f"the steps are over and every other process has ended, and still not: {'; '.join(unmet)}"
                )
            impossible = next((state for state in states if state not in ("yes", "not yet")), None)
            if impossible is not None:
                del self.waiting[key]
                if not self.halted:
                    self._halt(f"{key} cannot start: {impossible}")
            elif all(state == "yes" for state in states):
                del self.waiting[key]
                self.starting.add(key)
                self.loop.soon(partial(self._start, key, conditions))

    def _state(self, condition: StartCondition) -> str:
        """`yes`, `not yet`, or why it can never hold now."""
        subject = condition.subject.text
        count = self.replicas[subject]
        if condition.kind == "started":
            return "yes" if len(self.started.get(subject, ())) >= count else "not yet"
        if condition.kind == "completed":
            if self.completed[subject] >= count:
                return "yes"
            if self.ended[subject] > self.completed[subject]:
                return f"{subject} did not end as expected"
            return "not yet"
        if condition.kind == "printed":
            found = self.printed[_printed(condition)]
            if len(found) >= count:
                return "yes"
            if self.gone.get(subject, set()) - found:
                return f"{subject} ended without printing a line matching {condition.pattern!r}"
            return "not yet"
        return "yes" if subject in self.events else "not yet"

    def _start(self, key: str, conditions: tuple[StartCondition, ...]) -> None:
        self.log.info("run.condition", key=key, conditions=[condition.text for condition in conditions])
        try:
            self.backend.start([key])
        finally:
            self.starting.discard(key)
            self._review()

    def _late(self, key: str, timeout: float) -> None:
        if key in self.waiting and not self.halted:
            unmet = [condition.text for condition in self.waiting.pop(key) if self._state(condition) != "yes"]
            self._halt(f"{key} did not start within its start_timeout of {timeout:g} s: not yet {'; '.join(unmet)}")

    def _look_at_events(self) -> None:
        waits = {c.subject.text for conditions in self.waiting.values() for c in conditions if c.kind == "event"}
        if waits:
            self.events.update(name for name in waits if self.backend.wait_event(name, 0))
            self._review()
            self.loop.at(self.clock() + EVENT_POLL, self._look_at_events)


def _printed(condition: StartCondition) -> tuple[str, str]:
    assert condition.pattern is not None
    return condition.subject.text, condition.pattern
