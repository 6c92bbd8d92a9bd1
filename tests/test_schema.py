from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from runner.document import parse
from runner.schema import definition, load_schema, schema_path, validate

# Keys that are required, that pick one of several alternatives (every step kind), or whose
# default depends on the context (a process's name is its key): they declare no default.
NO_DEFAULT = {
    "when",  # a restart policy's, and the start conditions' own keys: required where they are
    "started",
    "completed",
    "printed",
    "pattern",
    "target",
    "class",
    "item",
    "items",
    "from",
    "size",
    "process",
    "queue",
    "event",
    "per",
    "processes",
    "version",
    "parties",
    "name",
    "start",
    "join",
    "terminate",
    "put",
    "get",
    "join_queue",
    "wait",
    "set",
    "clear",
    "sleep",
    "show",
    "recv",
    "close",
    "each",
    "call",
    "object",
    "pipe",
    "until",
    "range",
    "map",
    "starmap",
    "imap_unordered",
    "apply",
    "function",
    "keep",
    "initializer",
    "pool",
}


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    Draft202012Validator.check_schema(load_schema())
    assert load_schema()["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema_path().name == "workflow.schema.json"


def _properties(schema: Any, where: str = "") -> Iterator[tuple[str, str, dict[str, Any]]]:
    if isinstance(schema, dict):
        for name, sub in schema.get("properties", {}).items():
            yield f"{where}.{name}", name, sub
        for key, sub in schema.items():
            if key != "properties":
                yield from _properties(sub, f"{where}/{key}")
        for name, sub in schema.get("properties", {}).items():
            yield from _properties(sub, f"{where}.{name}")
    elif isinstance(schema, list):
        for index, sub in enumerate(schema):
            yield from _properties(sub, f"{where}[{index}]")


PROPERTIES = list(_properties(load_schema()))


@pytest.mark.parametrize("where,name,prop", PROPERTIES, ids=[where for where, _, _ in PROPERTIES])
def test_every_property_documents_itself_for_editors(where: str, name: str, prop: dict[str, Any]) -> None:
    prop = definition(prop)
    if "/if" in where or "/then" in where:
        return  # conditional constraints, not properties a user writes
    assert prop.get("title"), f"{where} has no title"
    assert prop.get("description"), f"{where} has no description"
    if name not in NO_DEFAULT:
        assert "default" in prop, f"{where} has no default"


def _messages(text: str) -> list[tuple[int, int, str]]:
    document, problems = parse(text, "t.yaml")
    assert document is not None and problems == []
    return [(p.line, p.column, p.message) for p in validate(document)]


@pytest.mark.parametrize(
    "text,line,column,fragment",
    [
        ("version: 2\nprocesses: {p: {target: a:b}}\n", 1, 10, "'version' must be 1"),
        ("version: 1\nstart_method: sapwn\nprocesses: {p: {target: a:b}}\n", 2, 15, "did you mean 'spawn'?"),
        ("version: 1\nprcesses: {}\n", 2, 1, "unknown key 'prcesses'; did you mean 'processes'?"),
        ("version: 1\nprocesses: {p: {target: a:b}}\nsteps:\n  - strat: p\n", 4, 5, "unknown step 'strat'"),
        ("version: 1\nprocesses:\n  p:\n    daemon: true\n", 3, 3, "'p' needs 'target' or 'class'"),
        ("version: 1\nprocesses:\n  p: {target: a:b, class: a:C}\n", 3, 20, "cannot be used together"),
        ("version: 1\nprocesses:\n  p: {target: a:b, replicas: 0}\n", 3, 30, "'replicas' must be at least 1"),
        ("version: 1\nprocesses:\n  p: {target: a.b}\n", 3, 15, "'a.b' is not in the expected form"),
        ("version: 1\nprocesses:\n  p: {target: a:b, expect: {exitcode: '0'}}\n", 3, 39, "an integer or a list"),
        (
            "version: 1\nprocesses: {p: {target: a:b}}\nsteps:\n  - join: {process: p, timout: 1}\n",
            4,
            24,
            "did you mean 'timeout'?",
        ),
        ("version: 1\nprocesses: {p: {target: a:b}}\nsteps:\n  - {start: p, join: p}\n", 4, 16, "does one thing"),
        (
            "version: 1\nprocesses: {p: {target: a:b}}\nsteps:\n  - put: {queue: q}\n",
            4,
            5,
            "needs one of 'item', 'items', 'from'",
        ),
        (
            "version: 1\nprocesses: {p: {target: a:b}}\nsteps:\n  - put: {queue: q, item: 1, count: 2, per: p}\n",
            4,
            40,
            "'count' and 'per' cannot be used together",
        ),
        (
            "version: 1\nqueues: {q: {kind: simple, maxsize: 2}}\nprocesses: {p: {target: a:b}}\n",
            2,
            37,
            "A simple queue has no maximum size",
        ),
        ("version: 1\nqueues: {1q: {}}\nprocesses: {p: {target: a:b}}\n", 2, 10, "'1q' is not a valid name"),
        ("processes: {p: {target: a:b}}\n", 1, 1, "missing required key 'version'"),
        (
            "version: 1\nprocesses: {p: {target: a:b}}\nsteps:\n  - get: 5\n",
            4,
            10,
            "must be a string or a mapping, not an integer",
        ),
        (
            "version: 1\nprocesses: {p: {target: a:b}}\nsteps:\n  - join: {process: p, timeout: 1e9}\n",
            4,
            33,
            "YAML reads '1e9' as a string: write 1.0e+9 or 1000000000",
        ),
        (
            "version: 1\nprocesses: {p: {target: a:b}}\nsteps:\n  - sleep: -2.5E3\n",
            4,
            12,
            "YAML reads '-2.5E3' as a string: write -2.5e+3 or -2500",
        ),
    ],
)
def test_schema_errors_are_worded_for_people_and_placed_on_the_culprit(
    text: str, line: int, column: int, fragment: str
) -> None:
    found = _messages(text)
    assert any((at, col) == (line, column) and fragment in m for at, col, m in found), found
