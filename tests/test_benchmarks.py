"""The scripts in benchmarks/ run, at a tiny size: their figures are measured, never asserted
as timings here."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support import ROOT, user_env

pytestmark = pytest.mark.timeout(300)


def test_the_soak_script_runs_and_finds_nothing_wrong() -> None:
    result = subprocess.run(
        [sys.executable, "benchmarks/soak.py", "--quick"],
        cwd=ROOT,
        env=user_env(),
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "| mprun SIGKILLed: processes alive 2 s later | 3 | 0 |" in result.stdout
    assert "| fuzzed: documents from the schema | 10 | 0 |" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_the_benchmarks_run_at_a_tiny_size_and_print_every_row() -> None:
    result = subprocess.run(
        [sys.executable, "benchmarks/run.py", "--quick"],
        cwd=ROOT,
        env=user_env(),
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("| P")]
    assert [row.split(" | ")[0] for row in rows] == [
        "| P1",
        "| P2",
        "| P2",
        "| P2",
        "| P3",
        "| P3",
        "| P3",
        "| P4",
        "| P5",
        "| P6",
    ]
