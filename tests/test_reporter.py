from __future__ import annotations

import io
import json

from runner.checker import CheckResult
from runner.problem import Problem
from runner.reporter import github, json_lines, text

PROBLEMS = (
    Problem("w.yaml", 3, 5, "error", "unknown key 'a,b'; 50% off\nsecond line", "schema-additionalProperties", "x"),
    Problem("w.yaml", 7, 1, "warning", "queue 'q' is never used", "unused-queue", "queues.q"),
)
RESULTS = [CheckResult("w.yaml", PROBLEMS), CheckResult("ok.yaml", ())]


def render(reporter: object) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    reporter(RESULTS, out, err)  # type: ignore[operator]
    return out.getvalue(), err.getvalue()


def test_text_is_file_line_col_severity_message() -> None:
    out, err = render(text)
    assert out.splitlines()[0] == (
        "w.yaml:3:5: error: unknown key 'a,b'; 50% off second line [schema-additionalProperties]"
    )
    assert "w.yaml:7:1: warning: queue 'q' is never used [unused-queue]" in out
    assert err == "2 files checked: 1 error, 1 warning\n"


def test_json_carries_every_field() -> None:
    out, _ = render(json_lines)
    document = json.loads(out)
    assert document["ok"] is False
    first = document["files"][0]["problems"][0]
    assert first == {
        "file": "w.yaml",
        "line": 3,
        "column": 5,
        "severity": "error",
        "code": "schema-additionalProperties",
        "path": "x",
        "message": PROBLEMS[0].message,
    }
    assert document["files"][1] == {"file": "ok.yaml", "ok": True, "problems": []}


def test_github_annotations_are_escaped_as_actions_requires() -> None:
    out, _ = render(github)
    first, second = out.splitlines()
    assert first == (
        "::error file=w.yaml,line=3,col=5,title=mprun schema-additionalProperties::"
        "unknown key 'a,b'; 50%25 off%0Asecond line"
    )
    assert second.startswith("::warning file=w.yaml,line=7,col=1,")


def test_github_properties_escape_colons_and_commas() -> None:
    out = io.StringIO()
    github([CheckResult("a,b:c.yaml", (Problem("a,b:c.yaml", 1, 1, "error", "m", "c"),))], out, io.StringIO())
    assert out.getvalue().startswith("::error file=a%2Cb%3Ac.yaml,line=1,col=1,")
