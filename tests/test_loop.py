"""The parent's one loop: no thread of mprun's runs while it forks, and every wait reads the
children meanwhile, so that none of them blocks on a full pipe while mprun waits for it."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import pytest

from runner import records
from runner.backends.multiprocessing.backend import MultiprocessingBackend
from runner.errors import Terminated, TimeLimit
from runner.execution import check_only
from runner.loop import Loop, Signals
from runner.plan import make_plan
from tests.support import start_mprun, wait_for, whole_lines, workflow, write
from tests.test_run import METHODS, run_mprun

pytestmark = pytest.mark.timeout(60)

JOBS = """
import os, sys, time

def threads_of_parent():
    print(len(os.listdir(f"/proc/{os.getppid()}/task")))

def chatty_then_set(event, size):
    for _ in range(size // 100):
        print("x" * 99)
    event.set()
    time.sleep(30)

def chatty_then_put(queue, size):
    for _ in range(size // 100):
        print("x" * 99)
    queue.put("done")

def waiter(event):
    event.wait()

def slow_consumer(queue, count):
    for _ in range(count):
        item = queue.get()
        print("got", item, "y" * 2000)
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write(tmp_path, "jobs.py", JOBS)
    return tmp_path


@pytest.mark.parametrize("method", ["fork", "spawn"])  # the parent of a forkserver child is the fork server
def test_mprun_has_no_thread_of_its_own_while_it_starts_processes(project: Path, method: str) -> None:
    path = workflow(project, "processes: {p: {target: jobs:threads_of_parent, replicas: 3}}\n")
    log = run_mprun(path, project / "run.jsonl", "--start-method", method)
    assert log.exitcode == 0, log.stderr
    assert [r["line"] for r in log.events("process.output")] == ["1", "1", "1"]


@pytest.mark.parametrize("method", METHODS)
def test_a_wait_for_an_event_reads_what_the_process_prints_before_it_sets_it(project: Path, method: str) -> None:
    path = workflow(
        project,
        "events: {e: {}}\n"
        "processes: {p: {target: jobs:chatty_then_set, args: [$e, 1000000]}}\n"
        "steps:\n  - start: p\n  - wait: {event: e, timeout: 30}\n  - terminate: p\n",
    )
    log = run_mprun(path, project / "run.jsonl", "--start-method", method)
    assert log.exitcode == 0, log.stderr
    assert len(log.lines("p")) == 10000
    assert log.events("step.end", kind="wait")[0]["outcome"] == "ok"


@pytest.mark.parametrize("method", METHODS)
def test_a_get_reads_what_the_process_prints_before_it_puts(project: Path, method: str) -> None:
    path = workflow(
        project,
        "queues: {q: {}}\n"
        "processes: {p: {target: jobs:chatty_then_put, args: [$q, 1000000]}}\n"
        "steps:\n  - start: p\n  - get: {queue: q, timeout: 30}\n  - join: p\n",
    )
    log = run_mprun(path, project / "run.jsonl", "--start-method", method)
    assert log.exitcode == 0, log.stderr
    assert [r["item"] for r in log.events("queue.get")] == ["'done'"]


@pytest.mark.parametrize("kind", ["{maxsize: 2}", "{kind: simple}"])
def test_a_put_on_a_full_queue_waits_for_room_and_reads_meanwhile(project: Path, kind: str) -> None:
    count = 200  # of 2 KB lines each: the consumer prints far more than a pipe holds
    path = workflow(
        project,
        f"queues: {{q: {kind}}}\n"
        f"processes: {{c: {{target: jobs:slow_consumer, args: [$q, {count}]}}}}\n"
        f"steps:\n  - start: c\n  - put: {{queue: q, item: {'z' * 1000}, count: {count}}}\n  - join: c\n",
    )
    log = run_mprun(path, project / "run.jsonl")
    assert log.exitcode == 0, log.stderr
    assert len(log.lines("c")) == count


class FakeTime:
    """A clock that moves only when the loop polls: the loop driven without processes."""

    def __init__(self) -> None:
        self.now = 0.0
        self.polls: list[float | None] = []

    def clock(self) -> float:
        return self.now

    def poll(self, timeout: float | None) -> None:
        self.polls.append(timeout)
        self.now += timeout if timeout is not None else 1.0


def test_a_wait_polls_until_done_or_its_timeout() -> None:
    time = FakeTime()
    loop = Loop(time.poll, Signals(), clock=time.clock)
    assert loop.wait(lambda: time.now >= 0.3, 10, every=0.1)
    assert not loop.wait(lambda: False, 1.0, every=0.4)
    assert time.polls[-3:] == [0.4, 0.4, pytest.approx(0.2)]  # the last slice ends at the deadline


def test_the_time_limit_stops_a_wait_at_the_deadline_and_not_while_stopping() -> None:
    time = FakeTime()
    loop = Loop(time.poll, Signals(), time_limit=5, clock=time.clock)
    with pytest.raises(TimeLimit, match="--timeout 5 s"):
        loop.wait(lambda: False, None)
    assert time.now == 5
    loop.stop()
    assert not loop.wait(lambda: False, 2)  # a stop, bounded by its own grace, runs to its end


@pytest.mark.parametrize(("number", "raised"), [(signal.SIGINT, KeyboardInterrupt), (signal.SIGTERM, Terminated)])
def test_a_signal_noted_stops_the_next_wait(number: int, raised: type[BaseException]) -> None:
    time = FakeTime()
    signals = Signals()
    loop = Loop(time.poll, signals, clock=time.clock)
    signals(number, None)  # as the handler is called
    with pytest.raises(raised):
        loop.wait(lambda: True, None)
    assert loop.wait(lambda: True, None)  # acted on once


def test_a_second_ctrl_c_stops_mprun_stuck_in_a_call_that_never_returns(project: Path) -> None:
    # Event.set() waits for every waiter to wake; one killed while it waited never does.
    path = workflow(
        project,
        "events: {e: {}}\nprocesses: {p: {target: jobs:waiter, args: [$e]}}\n"
        "steps:\n  - start: p\n  - sleep: 0.5\n  - terminate: p\n  - set: e\n",
    )
    log_file = project / "run.jsonl"
    mprun = start_mprun("--log-file", str(log_file), str(path), console=False)
    try:

        def setting() -> bool:
            return log_file.exists() and any(r.get("kind") == "set" for r in whole_lines(log_file))

        assert wait_for(setting, 30)
        time.sleep(0.5)
        mprun.send_signal(signal.SIGINT)  # noted: the loop would act on it at its next wait
        time.sleep(0.5)
        assert mprun.poll() is None
        mprun.send_signal(signal.SIGINT)
        assert mprun.wait(timeout=30) == 130
        assert [r["status"] for r in whole_lines(log_file) if r["event"] == "run.end"] == ["interrupted"]
    finally:
        mprun.kill()
        mprun.wait()


def test_every_listener_gets_each_record_and_one_may_stop_the_run_at_the_next_wait() -> None:
    time = FakeTime()
    loop = Loop(time.poll, Signals(), clock=time.clock)
    heard: list[tuple[str, object]] = []
    loop.listen(lambda record: heard.append(("log", record)))
    loop.listen(lambda record: heard.append(("policy", record)))
    started = records.Started("p", 42, "p", 0, False)
    loop.emit(started)
    assert heard == [("log", started), ("policy", started)]
    loop.interrupt(TimeLimit("fail fast"))
    with pytest.raises(TimeLimit, match="fail fast"):
        loop.wait(lambda: True, None)
    assert loop.wait(lambda: True, None)  # raised once


def test_an_exit_is_told_while_the_run_waits_for_something_else(project: Path) -> None:
    # The seam fail-fast and restarts build on: the backend's loop tells each exit to its
    # listeners as it happens, here during a sleep, with all the process wrote before it.
    write(project, "told_jobs.py", JOBS)  # imported here, by this name only: not another test's jobs
    path = workflow(
        project,
        "events: {e: {}}\nprocesses:\n  quick: {target: told_jobs:chatty_then_put, args: [$q, 20000]}\n"
        "  slow: {target: told_jobs:waiter, args: [$e]}\nqueues: {q: {}}\n",
    )
    plan = make_plan(check_only(path, imports=False))
    heard: list[tuple[float, records.Record]] = []
    sys.path.insert(0, str(project))
    backend = MultiprocessingBackend(plan, lambda record: heard.append((time.monotonic(), record)))
    try:
        backend.build()
        backend.start(["quick", "slow"])
        began = time.monotonic()
        backend.loop.sleep(1.5)
        [(when, exited)] = [(at, r) for at, r in heard if isinstance(r, records.Exited)]
        assert exited.process == "quick" and exited.ended.exitcode == 0
        assert when - began < 1.0  # told during the sleep, not after it
        told = [r for _, r in heard if r.process == "quick"]
        assert told[-1] is exited
        assert sum(len(r.lines) for r in told if isinstance(r, records.Output)) == 200
    finally:
        backend.loop.stop()
        backend.stop_everything(1.0)
        backend.close()
        sys.path.remove(str(project))
    assert {r.process for _, r in heard if isinstance(r, records.Exited)} == {"quick", "slow"}


def test_the_console_shows_an_exit_as_it_happens(project: Path) -> None:
    path = workflow(project, "processes: {p: {target: jobs:threads_of_parent}}\nsteps:\n  - start: p\n  - sleep: 1\n")
    log = run_mprun(path, project / "run.jsonl")
    assert log.exitcode == 0, log.stderr
    [exited] = log.events("process.exit")
    [slept] = log.events("step.end", kind="sleep")
    assert log.records.index(exited) < log.records.index(slept)
    shown = log.stderr.splitlines()
    assert shown.index("p - ended with exit code 0, as expected") < shown.index("mprun < sleep: ok")


def test_timed_actions_run_in_order_at_their_time_outside_one_another_and_not_while_stopping() -> None:
    time = FakeTime()
    loop = Loop(time.poll, Signals(), clock=time.clock)
    ran: list[tuple[str, float]] = []

    def nested() -> None:  # an action that waits itself: the due one after it waits for it
        ran.append(("nested", time.now))
        loop.wait(lambda: False, 1.0)

    loop.at(2.0, lambda: ran.append(("second", time.now)))
    loop.at(0.5, nested)
    loop.at(0.5, lambda: ran.append(("first", time.now)))
    loop.soon(lambda: ran.append(("soon", time.now)))
    loop.sleep(3.0)
    assert ran == [("soon", 0.0), ("nested", 0.5), ("first", 1.5), ("second", 2.0)]
    assert 0.5 in time.polls  # the poll ended when the first one was due, not at the sleep's end
    loop.at(time.now, lambda: ran.append(("late", time.now)))
    loop.stop()
    loop.sleep(1.0)
    assert ran[-1][0] == "second"  # the run is being stopped: no policy acts any more
