"""A workflow changed without editing it: `${NAME}` from the environment, `--set PATH=VALUE`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from runner.checker import check_file, check_text
from runner.document import parse
from runner.plan import make_plan
from tests.support import ROOT, user_env, workflow

pytestmark = pytest.mark.timeout(60)

BODY = """\
name: ${NAME:-counted}
processes:
  p:
    target: os:getpid
    replicas: ${N:-2}
    daemon: ${DAEMON-false}
    env:
      HOME_TOO: "${HOME}"
      LITERAL: '$${NOT_A_VARIABLE}'
"""


def test_variables_are_substituted_before_a_value_is_typed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("N", "5")
    monkeypatch.setenv("HOME", "/home/someone")
    monkeypatch.setenv("NAME", "")  # empty: `:-` takes the default
    monkeypatch.delenv("DAEMON", raising=False)
    result = check_text("version: 1\n" + BODY, imports=False)
    assert result.ok, result.problems
    assert result.workflow is not None
    spec = result.workflow.processes["p"]
    assert (spec.replicas, spec.daemon, result.workflow.name) == (5, False, "counted")
    assert dict(spec.env) == {"HOME_TOO": "/home/someone", "LITERAL": "${NOT_A_VARIABLE}"}
    monkeypatch.setenv("DAEMON", "true")  # `-`: set, even empty, it is the value
    result = check_text("version: 1\n" + BODY, imports=False)
    assert result.workflow is not None and result.workflow.processes["p"].daemon is True


def test_a_quoted_variable_stays_a_string(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("N", "3")
    result = check_text('version: 1\nprocesses:\n  p: {target: os:getpid, replicas: "${N}"}\n', imports=False)
    assert [p.code for p in result.problems] == ["schema-oneOf"]  # "3", a string


def test_an_unset_variable_is_an_error_at_its_own_column(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MPRUN_TEST_UNSET", raising=False)
    text = "version: 1\nprocesses:\n  p:\n    target: os:getpid\n    name: 'worker ${MPRUN_TEST_UNSET}'\n"
    text += "    description: x ${1}\n"
    result = check_text(text, "w.yaml", imports=False)
    assert [(p.line, p.column, p.code) for p in result.problems] == [(5, 19, "unset-variable"), (6, 20, "bad-variable")]
    assert "MPRUN_TEST_UNSET is not set" in result.problems[0].message


def test_the_variables_a_file_reads_are_known(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("N", "4")
    monkeypatch.delenv("DAEMON", raising=False)
    document, _ = parse("a: ${N}\nb: ${DAEMON-x}\n", "w.yaml")
    assert document is not None and document.variables == {"N": "4", "DAEMON": None}
    document, _ = parse("a: ${N}\n", "w.yaml", environ=None)  # not substituted
    assert document is not None and document.data == {"a": "${N}"}


def test_set_changes_any_key_and_is_checked_as_the_file_is(tmp_path: Path) -> None:
    path = workflow(tmp_path, "processes:\n  p: {target: os:getpid}\nsteps:\n  - start: p\n  - join: p\n")
    options = ["processes.p.replicas=3", "processes.p.env.MODE=fast", "steps.1={join: {process: p, timeout: 5}}"]
    result = check_file(path, imports=False, overrides=options)
    assert result.ok, result.problems
    assert result.workflow is not None
    assert [p.name for p in make_plan(result.workflow).processes] == ["p-0", "p-1", "p-2"]
    assert dict(result.workflow.processes["p"].env) == {"MODE": "fast"}
    assert result.workflow.steps[1].timeout == 5  # type: ignore[union-attr]


def test_a_bad_set_points_at_the_option(tmp_path: Path) -> None:
    path = workflow(tmp_path, "processes:\n  p: {target: os:getpid}\n")
    options = ["processes.p.replicas=lots", "processes.p.replcas=2", "nothing", "processes.p.target.x=1"]
    result = check_file(path, imports=False, overrides=options)
    found = sorted((p.file, p.column, p.code) for p in result.problems)
    assert found == [
        ("--set nothing", 1, "set"),
        ("--set processes.p.replcas=2", 1, "schema-additionalProperties"),
        ("--set processes.p.replicas=lots", 22, "schema-oneOf"),
        ("--set processes.p.target.x=1", 1, "set"),
    ]


def test_the_command_line_takes_set_for_a_run_and_a_check(tmp_path: Path) -> None:
    path = workflow(tmp_path, "processes:\n  p: {target: os:getpid}\n")

    def mprun(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "runner", *args]
        return subprocess.run(command, cwd=ROOT, env=user_env(), capture_output=True, text=True, timeout=50)

    ran = mprun("run", str(path), "--set", "processes.p.replicas=2", "--log-file", str(tmp_path / "run.jsonl"))
    assert ran.returncode == 0, ran.stderr
    assert (tmp_path / "run.jsonl").read_text().count('"event": "process.exit"') == 2
    checked = mprun("check", "--no-import", str(path), "--set", "processes.p.replicas=0")
    assert checked.returncode == 1
    assert "--set processes.p.replicas=0:1:22: error: 'replicas' must be at least 1, not 0" in checked.stdout
    refused = mprun(str(path), "--set", "processes.p.daemon=maybe")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
