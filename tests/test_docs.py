"""The README tells the truth: its reference is the schema's, and CI runs its test command."""

from __future__ import annotations

import re

import yaml

from runner.reference import markdown
from tests.support import ROOT, WORKFLOWS

README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_reference_in_the_readme_is_written_from_the_schema() -> None:
    section = README.split("<!-- reference:start -->\n", 1)[1].split("<!-- reference:end -->", 1)[0]
    assert section == markdown(), "run: mprun schema --format markdown, and paste it between the markers"


def _commands() -> list[str]:
    return re.findall(r"```sh\n(.+?)\n```", README)


def test_the_readme_opens_with_an_install_and_run_command_and_a_test_command() -> None:
    run, test = _commands()[:2]
    assert "pip install ." in run and "mprun " in run
    assert "'.[test]'" in test and "pytest" in test
    assert README.index(run) < 400


def test_ci_runs_exactly_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert _commands()[1] in ci.splitlines()


def test_the_pre_commit_hook_runs_mprun_check() -> None:
    [hook] = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "mprun-check" and hook["entry"] == "mprun check"


def test_the_shipped_workflows_carry_the_schema_modeline() -> None:
    for path in sorted(WORKFLOWS.glob("*.yaml")):
        first = path.read_text(encoding="utf-8").splitlines()[0]
        assert first == "# yaml-language-server: $schema=../schemas/workflow.schema.json", path


def test_the_check_example_in_the_readme_is_what_mprun_prints() -> None:
    import subprocess
    import sys

    printed = re.search(r"`mprun check (\S+)` prints, and exits 1:\n\n```text\n(.+?)```", README, re.S)
    assert printed is not None
    path, expected = printed.groups()
    example = re.search(r"For\n\[`" + re.escape(path) + r"`\]\(\S+\):\n\n```yaml\n(.+?)```", README, re.S)
    assert example is not None and example.group(1) == (ROOT / path).read_text(), "the README shows another file"
    result = subprocess.run(
        [sys.executable, "-m", "runner", "check", path], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert (result.returncode, result.stdout) == (1, expected)
