"""The docs tell the truth: the reference is the schema's, CI runs the README's test command, and
every relative link leads somewhere."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from runner.reference import markdown
from tests.support import ROOT, WORKFLOWS

README = (ROOT / "README.md").read_text(encoding="utf-8")
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "benchmarks" / "README.md"]


def test_the_reference_in_the_docs_is_written_from_the_schema() -> None:
    text = (ROOT / "docs" / "reference.md").read_text(encoding="utf-8")
    section = text.split("<!-- reference:start -->\n", 1)[1].split("<!-- reference:end -->", 1)[0]
    assert section == markdown(), "run: mprun schema --format markdown, and paste it between the markers"


def _anchors(page: Path) -> set[str]:
    """The anchors GitHub gives a page's headings: lower case, punctuation dropped, spaces to -."""
    headings = re.findall(r"^#+ (.+)$", _prose(page.read_text(encoding="utf-8")), re.M)
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


def _prose(text: str) -> str:
    """The text without its fenced code blocks, where brackets and # are code, not Markdown."""
    return re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)


def test_every_relative_link_in_the_docs_leads_to_a_file_and_heading_that_exist() -> None:
    broken = []
    for page in PAGES:
        for target in re.findall(r"\]\(([^)\s]+)\)", _prose(page.read_text(encoding="utf-8"))):
            if re.match(r"[a-z]+:", target):
                continue  # https:, mailto:
            path, _, anchor = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            if not linked.exists() or (anchor and linked.suffix == ".md" and anchor not in _anchors(linked)):
                broken.append(f"{page.relative_to(ROOT)}: {target}")
    assert not broken, broken


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
