"""Random, generated and mutated documents never crash the checker; every problem has a place."""

from __future__ import annotations

import re
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner.checker import CheckResult, check_bytes, check_text
from runner.schema import load_schema
from tests.support import WORKFLOWS

SHIPPED = sorted(WORKFLOWS.glob("*.yaml"))
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _vocabulary() -> list[str]:
    words: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            words.update(node.get("properties", {}))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(load_schema())
    return sorted(words | {"p", "q", "e", "$q", "$e", "$p.0", "$replica", "m:f", "null", "SIGTERM"})


WORDS = st.sampled_from(_vocabulary())
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 100),
    st.integers(),  # also far beyond any limit: 10**400 must be a problem, not an OverflowError
    st.floats(),
    WORDS,
    st.text(),
    st.text(min_size=200, max_size=2000),
    WORDS.map(lambda word: "$" + word + "." + "9" * 50),
)
DATA = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(WORDS, inner, max_size=5)),
    max_leaves=30,
)


def assert_placed(result: CheckResult, text: str) -> None:
    # YAML breaks lines at \r and NEL too, as editors do.
    lines = len(re.split("\r\n|\r|\n|\x85|\u2028|\u2029", text)) + 1
    for problem in result.problems:
        assert 1 <= problem.line <= lines, problem
        assert problem.column >= 1, problem
        assert problem.message and problem.code, problem


@FUZZ
@given(st.text(max_size=300))
def test_random_text(text: str) -> None:
    assert_placed(check_text(text, "fuzz.yaml", imports=False), text)


@FUZZ
@given(DATA, st.booleans())
def test_generated_documents(data: Any, with_version: bool) -> None:
    if with_version and isinstance(data, dict):
        data = {"version": 1, **data}
    text = yaml.safe_dump(data, default_flow_style=False)
    assert_placed(check_text(text, "fuzz.yaml", imports=False), text)


@FUZZ
@given(st.dictionaries(st.sampled_from(["processes", "queues", "events", "pipes", "steps"]), DATA, max_size=4))
def test_documents_shaped_like_workflows(sections: dict[str, Any]) -> None:
    text = yaml.safe_dump({"version": 1, **sections})
    assert_placed(check_text(text, "fuzz.yaml", imports=False), text)


MUTATIONS = st.sampled_from(["delete", "duplicate", "indent", "dedent", "insert", "truncate", "swap"])


@FUZZ
@given(st.sampled_from(SHIPPED), st.lists(st.tuples(MUTATIONS, st.integers(0, 10_000), WORDS), min_size=1, max_size=4))
def test_mutated_shipped_workflows(path: Any, mutations: list[tuple[str, int, str]]) -> None:
    lines = path.read_text().splitlines()
    for kind, where, word in mutations:
        if not lines:
            break
        index = where % len(lines)
        if kind == "delete":
            del lines[index]
        elif kind == "duplicate":
            lines.insert(index, lines[index])
        elif kind == "indent":
            lines[index] = "  " + lines[index]
        elif kind == "dedent":
            lines[index] = lines[index][2:]
        elif kind == "insert":
            column = where % (len(lines[index]) + 1)
            lines[index] = lines[index][:column] + word + lines[index][column:]
        elif kind == "truncate":
            lines[index] = lines[index][: where % (len(lines[index]) + 1)]
        else:
            other = (index + 1) % len(lines)
            lines[index], lines[other] = lines[other], lines[index]
    text = "\n".join(lines) + "\n"
    # Anchored in workflows/ so pythonpath resolves as for the real file.
    assert_placed(check_text(text, str(path), imports=False), text)


@FUZZ
@given(st.binary(max_size=300), st.sampled_from(SHIPPED))
def test_random_bytes_as_from_standard_input(raw: bytes, shipped: Any) -> None:
    for data in (raw, shipped.read_bytes()[: len(raw)] + raw):
        result = check_bytes(data, "<stdin>", imports=False)
        text = data.decode(errors="replace")
        assert_placed(result, text)
