"""What the checker is fuzzed with, in the tests (a few hundred documents) and in the soak
script (tens of thousands): random text and bytes, documents generated from the schema,
documents shaped like workflows, and mutations of every shipped workflow.

Each fuzzer is a strategy and a property: the checker never raises, and every problem it
reports has a line and column inside the document and a message.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml
from hypothesis import strategies as st

from runner.checker import CheckResult, check_bytes, check_text
from runner.schema import load_schema
from tests.support import WORKFLOWS

SHIPPED = sorted(WORKFLOWS.glob("*.yaml"))
# Names a generated workflow uses again and again, so that its references often resolve.
NAMES = ("p", "q", "e", "consumer", "tasks", "results", "worker", "lock", "done", "jobs:work", "seed.workers:worker")


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


def from_schema(schema: dict[str, Any], root: dict[str, Any] | None = None, depth: int = 0) -> st.SearchStrategy[Any]:
    """Instances of (a part of) the workflow schema: mostly valid, sometimes not (`not`, `if`
    and dependent keys are ignored), which is what reaches the rules and the hazards."""
    root = root or schema
    if depth > 12:
        return st.none()
    if "$ref" in schema:
        target: Any = root
        for part in schema["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        return from_schema(target, root, depth + 1)
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    for choice in ("oneOf", "anyOf"):
        if choice in schema:
            rest = {key: value for key, value in schema.items() if key != choice}
            return st.one_of([from_schema(_merged(rest, branch), root, depth + 1) for branch in schema[choice]])
    kinds = schema.get("type")
    if isinstance(kinds, list):
        return st.one_of([from_schema({**schema, "type": kind}, root, depth) for kind in kinds])
    if kinds == "object" or "properties" in schema:
        return _object(schema, root, depth)
    if kinds == "array":
        items = from_schema(schema.get("items", {}), root, depth + 1)
        return st.lists(items, min_size=schema.get("minItems", 0), max_size=max(schema.get("minItems", 0), 4))
    if kinds == "string":
        return _string(schema)
    if kinds in ("integer", "number"):
        low, high = schema.get("minimum"), schema.get("maximum")
        if kinds == "integer":
            return st.integers(min_value=low, max_value=high)
        return st.floats(min_value=low, max_value=high, allow_nan=False, allow_infinity=False)
    if kinds == "boolean":
        return st.booleans()
    if kinds == "null":
        return st.none()
    return SCALARS


def _merged(schema: dict[str, Any], branch: dict[str, Any]) -> dict[str, Any]:
    """A schema with one branch of its `oneOf`/`anyOf` in it: both their required keys."""
    merged = {**schema, **branch}
    if "required" in schema and "required" in branch:
        merged["required"] = [*schema["required"], *branch["required"]]
    return merged


def _string(schema: dict[str, Any]) -> st.SearchStrategy[str]:
    pattern = schema.get("pattern")
    if pattern is None:
        return st.one_of(st.sampled_from(NAMES), st.text(min_size=schema.get("minLength", 0), max_size=20))
    fitting = [name for name in NAMES if re.search(pattern, name)]
    generated = st.from_regex(pattern, fullmatch=False).filter(lambda text: len(text) < 200)
    return st.one_of(st.sampled_from(fitting), generated) if fitting else generated


def _object(schema: dict[str, Any], root: dict[str, Any], depth: int) -> st.SearchStrategy[dict[str, Any]]:
    properties = schema.get("properties", {})
    required = [name for name in schema.get("required", []) if name in properties]
    optional = [name for name in properties if name not in required]
    extra = schema.get("additionalProperties")

    @st.composite
    def build(draw: Callable[..., Any]) -> dict[str, Any]:
        chosen = required + draw(st.lists(st.sampled_from(optional), unique=True, max_size=4)) if optional else required
        if schema.get("maxProperties") == 1 and not required and optional:
            chosen = chosen[:1] or [draw(st.sampled_from(optional))]
        result = {name: draw(from_schema(properties[name], root, depth + 1)) for name in chosen}
        if isinstance(extra, dict):
            names = st.sampled_from(NAMES)
            for name in draw(st.lists(names, unique=True, min_size=schema.get("minProperties", 0), max_size=3)):
                result.setdefault(name, draw(from_schema(extra, root, depth + 1)))
        return result

    return build()


def _placed(result: CheckResult, text: str) -> None:
    # YAML breaks lines at \r and NEL too, as editors do.
    lines = len(re.split("\r\n|\r|\n|\x85|\u2028|\u2029", text)) + 1
    for problem in result.problems:
        assert 1 <= problem.line <= lines, problem
        assert problem.column >= 1, problem
        assert problem.message and problem.code, problem


def random_text(text: str) -> None:
    _placed(check_text(text, "fuzz.yaml", imports=False), text)


def generated_document(data: Any, with_version: bool) -> None:
    if with_version and isinstance(data, dict):
        data = {"version": 1, **data}
    text = yaml.safe_dump(data, default_flow_style=False)
    _placed(check_text(text, "fuzz.yaml", imports=False), text)


def schema_document(data: dict[str, Any], flow: bool) -> None:
    text = yaml.safe_dump(data, default_flow_style=flow, sort_keys=False)
    _placed(check_text(text, "fuzz.yaml", imports=False), text)


def workflow_shaped(sections: dict[str, Any]) -> None:
    text = yaml.safe_dump({"version": 1, **sections})
    _placed(check_text(text, "fuzz.yaml", imports=False), text)


MUTATIONS = st.sampled_from(["delete", "duplicate", "indent", "dedent", "insert", "truncate", "swap"])


def mutated_shipped(path: Any, mutations: list[tuple[str, int, str]]) -> None:
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
    _placed(check_text(text, str(path), imports=False), text)


def random_bytes(raw: bytes, shipped: Any) -> None:
    for data in (raw, shipped.read_bytes()[: len(raw)] + raw):
        _placed(check_bytes(data, "<stdin>", imports=False), data.decode(errors="replace"))


@dataclass(frozen=True)
class Fuzzer:
    name: str
    check: Callable[..., None]
    strategies: tuple[st.SearchStrategy[Any], ...]


FUZZERS = (
    Fuzzer("random text", random_text, (st.text(max_size=300),)),
    Fuzzer("random bytes", random_bytes, (st.binary(max_size=300), st.sampled_from(SHIPPED))),
    Fuzzer("generated documents", generated_document, (DATA, st.booleans())),
    Fuzzer("documents from the schema", schema_document, (from_schema(load_schema()), st.booleans())),
    Fuzzer(
        "workflow-shaped documents",
        workflow_shaped,
        (st.dictionaries(st.sampled_from(["processes", "queues", "events", "pipes", "steps"]), DATA, max_size=4),),
    ),
    Fuzzer(
        "mutated shipped workflows",
        mutated_shipped,
        (
            st.sampled_from(SHIPPED),
            st.lists(st.tuples(MUTATIONS, st.integers(0, 10_000), WORDS), min_size=1, max_size=4),
        ),
    ),
)
