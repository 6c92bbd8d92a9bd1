"""The acceptance corpus of `mprun check`: workflows with one deliberate mistake each, and valid ones.

`tests/acceptance/bad/*.yaml` each begin with `# expect: LINE:COL: SEVERITY: FRAGMENT` lines, one
per problem the checker must report: exactly those places, each with the fragment in its message.
`tests/acceptance/good/*.yaml` must check without a single problem, warnings included.
Their Python targets live in `tests/acceptance/modules/`.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

from runner.checker import check_file
from runner.problem import Problem

ACCEPTANCE = Path(__file__).resolve().parent / "acceptance"
BAD = ACCEPTANCE / "bad"
GOOD = ACCEPTANCE / "good"
ROOT = ACCEPTANCE.parent.parent
IMPORT_TIMEOUT = 3  # hangs_on_import.py sleeps 60 s: this bounds what it costs

_EXPECT = re.compile(r"#\s*(expect):\s*(\d+):(\d+):\s*(error|warning):\s*(.+?)\s*$")


@dataclass(frozen=True)
class Expectation:
    line: int
    column: int
    severity: str
    fragment: str

    @property
    def place(self) -> tuple[int, int, str]:
        return (self.line, self.column, self.severity)


def expectations(path: Path) -> list[Expectation]:
    """The `# expect:` lines of the comment block that opens the file."""
    found = []
    # Bytes, decoded leniently: one corpus file is deliberately not UTF-8.
    for line in path.read_bytes().decode("utf-8", errors="replace").splitlines():
        if not line.startswith("#"):
            break
        match = _EXPECT.match(line)
        if match:
            found.append(Expectation(int(match[2]), int(match[3]), match[4], match[5]))
    return found


def _files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.yaml"))


def _params(folder: Path) -> list[object]:
    return [pytest.param(path, id=path.name) for path in _files(folder)]


def _shown(problems: Iterable[Problem]) -> str:
    return "\n".join(f"  {p.line}:{p.column}: {p.severity}: {p.message} [{p.code}]" for p in problems)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("path", _params(BAD))
def test_bad_file_reports_exactly_the_expected_problems(path: Path) -> None:
    expected = expectations(path)
    assert expected, f"{path.name} has no '# expect:' line"
    result = check_file(path, import_timeout=IMPORT_TIMEOUT)
    reported = {(p.line, p.column, p.severity) for p in result.problems}
    assert reported == {e.place for e in expected}, (
        f"{path.name}: expected problems at {sorted(e.place for e in expected)}, got:\n{_shown(result.problems)}"
    )
    for expectation in expected:
        messages = [p.message for p in result.problems if (p.line, p.column, p.severity) == expectation.place]
        assert any(expectation.fragment in message for message in messages), (
            f"{path.name}:{expectation.line}:{expectation.column}: "
            f"no message contains {expectation.fragment!r}: {messages}"
        )
    assert result.ok == all(e.severity == "warning" for e in expected)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("path", _params(GOOD))
def test_good_file_has_no_problems(path: Path) -> None:
    result = check_file(path, import_timeout=IMPORT_TIMEOUT)
    assert result.problems == (), f"{path.name}:\n{_shown(result.problems)}"
    assert result.ok


def test_corpus_is_large_and_varied() -> None:
    bad = _files(BAD)
    assert len(bad) >= 40
    assert len(_files(GOOD)) >= 8
    by_expectation: dict[tuple[tuple[str, str], ...], str] = {}
    for path in bad:
        key = tuple(sorted((e.severity, e.fragment) for e in expectations(path)))
        assert key, f"{path.name} has no '# expect:' line"
        assert key not in by_expectation, f"{path.name} expects the same as {by_expectation[key]}: {key}"
        by_expectation[key] = path.name
    prefixes = {path.name.split("-", 1)[0] for path in bad}
    assert prefixes == {"syntax", "schema", "ref", "step", "target", "warn", "orch"}


@pytest.mark.timeout(300)
def test_cli_reports_every_expected_place() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "runner", "check", "--import-timeout", str(IMPORT_TIMEOUT), str(BAD)],
        capture_output=True,
        text=True,
        errors="replace",
        cwd=ROOT,
        timeout=280,
    )
    assert "Traceback" not in run.stdout + run.stderr, run.stderr
    assert run.returncode == 1, run.stderr
    missing = [
        f"{path}:{e.line}:{e.column}"
        for path in _files(BAD)
        for e in expectations(path)
        if f"{path}:{e.line}:{e.column}: {e.severity}: " not in run.stdout
    ]
    assert not missing, "not in the output of mprun check:\n" + "\n".join(missing)
