"""The scripts in benchmarks/ run, at a tiny size: their figures are measured, never asserted
as timings here."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from tests.support import ROOT, user_env

pytestmark = pytest.mark.timeout(300)


def quick(script: str) -> str:
    """What `python benchmarks/SCRIPT --quick` prints; it must exit 0."""
    result = subprocess.run(
        [sys.executable, f"benchmarks/{script}", "--quick"],
        cwd=ROOT,
        env=user_env(),
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    return result.stdout


def test_the_soak_script_runs_and_finds_nothing_wrong() -> None:
    printed = quick("soak.py")
    assert "| mprun SIGKILLed: processes alive 2 s later | 3 | 0 |" in printed
    assert "| fuzzed: documents from the schema | 10 | 0 |" in printed


def test_the_fault_count_runs_at_a_tiny_size_and_prints_both_sides() -> None:
    rows = [line.split(" | ") for line in quick("faults.py").splitlines() if line.startswith("| ")]
    assert [row[0] for row in rows] == ["|", "| mprun", "| hand-written"]  # the header, then each side
    assert all(len(row) == 5 for row in rows)


def test_the_benchmarks_run_at_a_tiny_size_and_print_every_row() -> None:
    rows = [line.split(" | ")[0] for line in quick("run.py").splitlines() if line.startswith("| P")]
    assert rows == ["| P1", "| P10", "| P10"] + ["| P2"] * 3 + ["| P3"] * 3 + ["| P4", "| P5", "| P5L", "| P6", "| P8"]


def test_the_benchmark_table_has_its_place_in_the_benchmarks_readme(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = importlib.util.spec_from_file_location("benchmark_run", ROOT / "benchmarks" / "run.py")
    assert spec is not None and spec.loader is not None
    run = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "benchmark_run", run)  # its dataclasses look themselves up there
    spec.loader.exec_module(run)
    assert run.README == ROOT / "benchmarks" / "README.md"
    text = run.README.read_text(encoding="utf-8")
    start, end = run.MARKERS
    assert text.count(start) == 1 and text.count(end) == 1 and text.index(start) < text.index(end)


def test_the_latency_script_prints_every_kind_on_both_backends() -> None:
    rows = [line for line in quick("latency.py").splitlines() if line.startswith("| ") and "µs" in line]
    assert len(rows) == 5 and all(row.count("µs") == 2 for row in rows)
