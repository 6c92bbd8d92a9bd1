from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _like_a_users_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    # This machine sets PYTHONUNBUFFERED; users' machines do not, and child interpreters started
    # by the tests must buffer output as they would there.
    monkeypatch.delenv("PYTHONUNBUFFERED", raising=False)
    # Nor do they set PYTHONDONTWRITEBYTECODE: a test that mprun writes no bytecode must mean it.
    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)
