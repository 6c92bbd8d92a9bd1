from __future__ import annotations

import signal

import pytest


@pytest.fixture(autouse=True)
def _like_a_users_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    # This machine sets PYTHONUNBUFFERED; users' machines do not, and child interpreters started
    # by the tests must buffer output as they would there.
    monkeypatch.delenv("PYTHONUNBUFFERED", raising=False)
    # Nor do they set PYTHONDONTWRITEBYTECODE: a test that mprun writes no bytecode must mean it.
    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)


def pytest_configure(config: pytest.Config) -> None:
    # Started with `pytest &` from a script, under nohup, or by a runner that ignores SIGINT,
    # this process and every mprun the tests start would ignore Ctrl-C (mprun leaves an ignored
    # Ctrl-C ignored, as it must for its children): the tests that send it need Python's own.
    # An ignored disposition survives exec; a handler does not, so the children get the default.
    signal.signal(signal.SIGINT, signal.default_int_handler)
