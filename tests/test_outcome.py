"""Judging, without starting a process: records of what happened in, outcomes and statuses out."""

from __future__ import annotations

import signal
from dataclasses import replace

import pytest

from runner.errors import FAILED, INTERRUPTED, OK, TERMINATED
from runner.outcome import Ended, Stop, cause, judge, met, signal_name, verdict
from runner.workflow import Expectation, Name

RETURNED = Ended(
    name="worker-0",
    key="worker",
    replica=0,
    expect=None,
    pid=100,
    exitcode=0,
    started=10.0,
    ended=12.5,
    stopped_as_planned=False,
    cpu_s=0.1234567,
    max_rss_kb=9000,
    returned="None",
)


def expecting(*, codes: tuple[int, ...] = (), signals: tuple[str, ...] = ()) -> Expectation:
    return Expectation(codes, tuple(Name(text, ()) for text in signals))


def test_a_process_that_returned_is_as_expected_with_its_figures() -> None:
    outcome = judge(RETURNED)
    assert (outcome.expected, outcome.signal, outcome.duration_s, outcome.cpu_s) == (True, None, 2.5, 0.123457)
    assert (outcome.returned, outcome.exception, outcome.pid) == ("None", None, 100)


@pytest.mark.parametrize(
    ("exitcode", "planned", "expected"),
    [
        (0, False, True),
        (1, False, False),
        (-signal.SIGTERM, False, False),
        (-signal.SIGTERM, True, True),
        (0, True, False),
    ],
)
def test_without_expect_a_process_should_return_or_be_stopped_as_planned(
    exitcode: int, planned: bool, expected: bool
) -> None:
    assert met(replace(RETURNED, exitcode=exitcode, stopped_as_planned=planned)) is expected


def test_expect_takes_exit_codes_and_signal_names() -> None:
    assert met(replace(RETURNED, exitcode=3, expect=expecting(codes=(1, 3))))
    assert not met(replace(RETURNED, exitcode=0, expect=expecting(codes=(3,))))
    assert met(replace(RETURNED, exitcode=-signal.SIGKILL, expect=expecting(signals=("SIGKILL",))))
    assert not met(replace(RETURNED, exitcode=-signal.SIGTERM, expect=expecting(signals=("SIGKILL",))))


def test_a_process_still_running_or_never_started_is_not_as_expected() -> None:
    unfinished = judge(replace(RETURNED, exitcode=None, ended=None))
    assert (unfinished.expected, unfinished.duration_s) == (False, None)
    never = judge(replace(RETURNED, pid=None, exitcode=None, started=None, ended=None))
    assert (never.expected, never.duration_s, never.pid) == (False, None, None)


def test_signal_names() -> None:
    assert [signal_name(code) for code in (None, 0, 3, -9, -15)] == [None, None, None, "SIGKILL", "SIGTERM"]
    assert signal_name(-200) == "signal 200"
    assert signal_name(-(signal.SIGRTMIN + 2)) == "SIGRTMIN+2"


def test_the_verdict() -> None:
    good, bad = judge(RETURNED), judge(replace(RETURNED, exitcode=1))
    assert verdict((good,), (), None) == ("ok", OK)
    assert verdict((good, bad), (), None) == ("failed", FAILED)
    assert verdict((good,), ("step 2 (get q) timeout: ...",), None) == ("failed", FAILED)
    assert verdict((), (), None) == ("ok", OK)
    assert verdict((good,), ("interrupted (SIGINT)",), Stop("interrupted", "")) == ("interrupted", INTERRUPTED)
    assert verdict((good,), (), Stop("terminated", "")) == ("interrupted", TERMINATED)
    assert verdict((good,), (), Stop("failed", "the run took longer than --timeout 1 s")) == ("failed", FAILED)


def test_each_process_that_fails_the_run_is_named_with_why() -> None:
    assert cause(RETURNED) is None
    assert cause(replace(RETURNED, pid=None, started=None, exitcode=None)) is None  # never started
    assert cause(replace(RETURNED, exitcode=3)) == "worker-0 ended with exit code 3, not as expected (exit code 0)"
    killed = replace(RETURNED, exitcode=-signal.SIGKILL, stopped_as_planned=True)
    assert cause(killed) == "worker-0 ended by SIGKILL, not as expected (SIGTERM, as it was stopped)"
    picky = replace(RETURNED, exitcode=0, expect=expecting(codes=(1, 2), signals=("SIGTERM",)))
    assert cause(picky) == "worker-0 ended with exit code 0, not as expected (exit code 1 or exit code 2 or SIGTERM)"
