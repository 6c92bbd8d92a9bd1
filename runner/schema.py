"""The workflow JSON Schema: where it lives, and its verdict on a document as problems.

jsonschema's own messages name no line and read like a validator's internals ("is not valid
under any of the given schemas"); here each error is pinned to the key or value at fault and
worded for the person who wrote the file.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.conformance import conforms
from runner.problem import JsonPath, Problem, did_you_mean

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator, ValidationError

    from runner.document import Document

SCHEMA_NAME = "workflow.schema.json"


def schema_path() -> Path:
    """The schema file: inside the installed package, or in the checkout's `schemas/`."""
    here = Path(__file__).resolve().parent
    packaged = here / "schemas" / SCHEMA_NAME  # where the wheel build puts it
    return packaged if packaged.is_file() else here.parent / "schemas" / SCHEMA_NAME


@functools.cache
def load_schema() -> dict[str, Any]:
    """The workflow schema as data."""
    schema: dict[str, Any] = json.loads(schema_path().read_text(encoding="utf-8"))
    return schema


@functools.cache
def _validator() -> Draft202012Validator:
    from jsonschema import Draft202012Validator  # costly to import; only checks need it

    return Draft202012Validator(load_schema())


MAX_PROBLEMS = 200


def validate(document: Document) -> list[Problem]:
    """Every schema problem of the document, worded for people and located in the file."""
    data, misplaced = _misplaced(document)
    if not misplaced and conforms(data, load_schema()):
        return []  # the common case, without jsonschema: it is only needed to explain
    found: dict[tuple[int, int, str], Problem] = {(p.line, p.column, p.message): p for p in misplaced}
    for error in _validator().iter_errors(data):
        if misplaced and tuple(error.absolute_path) == ("processes",) and error.validator == "minProperties":
            continue  # every entry was moved out as misplaced: "must not be empty" would repeat it
        for problem in _explain(error, document):
            found.setdefault((problem.line, problem.column, problem.message), problem)
            if len(found) >= MAX_PROBLEMS:
                # Past this the file is not a workflow gone wrong but something else entirely,
                # and wording each of 100,000 problems would take minutes.
                message = f"more problems not shown: stopped after {MAX_PROBLEMS}"
                return [*sorted(found.values()), Problem(document.path, 1, 1, "error", message, "too-many")]
    return sorted(found.values())


def _misplaced(document: Document) -> tuple[Any, list[Problem]]:
    """Keys indented one level off, explained once (and set right for the rest of validation).

    A wrong indent makes valid YAML of another shape: a step's options beside its kind instead
    of under it, `steps:` inside `processes`. Validated as written, each gives a handful of
    errors that all miss the point.
    """
    data = document.data
    if not isinstance(data, dict):
        return data, []
    problems: list[Problem] = []
    schema = load_schema()
    step_kinds = set(schema["$defs"]["step"]["properties"])
    steps = data.get("steps")
    if isinstance(steps, list):
        steps = list(steps)
        for index, step in enumerate(steps):
            if not (isinstance(step, dict) and len(step) > 1):
                continue
            kind, *options = list(step)
            if kind in step_kinds and step[kind] is None and not step_kinds & set(options):
                names = _quote_all(options)
                message = (
                    f"{names} look{'s' if len(options) == 1 else ''} like options of '{kind}': indent them under it"
                )
                problems.append(document.problem(("steps", index, options[0]), message, "indentation", key=True))
                steps[index] = {kind: {name: step[name] for name in options}}
        data = {**data, "steps": steps}
    processes = data.get("processes")
    if isinstance(processes, dict):
        process_keys = set(schema["$defs"]["process"]["properties"])
        kept = {}
        for name, entry in processes.items():
            looks_like_process = isinstance(entry, dict) and ("target" in entry or "class" in entry)
            if name in schema["properties"] and not looks_like_process:
                message = f"'{name}' is indented inside 'processes': move it out, to the top level"
            elif name in process_keys and not looks_like_process:
                message = f"'{name}' is indented as a process name: indent it under its process"
            else:
                kept[name] = entry
                continue
            problems.append(document.problem(("processes", name), message, "indentation", key=True))
        data = {**data, "processes": kept}
    return data, problems


_TYPE_NAMES = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "null": "empty (null)",
}


def _type_of(instance: object) -> str:
    if instance is None:
        return "null"
    if isinstance(instance, bool):
        return "boolean"
    if isinstance(instance, int):
        return "integer"
    if isinstance(instance, float):
        return "number"
    if isinstance(instance, str):
        return "string"
    if isinstance(instance, list):
        return "array"
    if isinstance(instance, dict):
        return "object"
    return type(instance).__name__


def definition(schema: Any) -> Any:
    """A subschema with its `$ref` followed: the definition's keywords, overridden by its own."""
    if not (isinstance(schema, dict) and isinstance(schema.get("$ref"), str)):
        return schema
    target = definition(load_schema()["$defs"][schema["$ref"].rsplit("/", 1)[-1]])
    return {**target, **{key: value for key, value in schema.items() if key != "$ref"}}


def _types(schema: Any) -> set[str] | None:
    """The JSON types a schema admits, or None when it does not say."""
    schema = definition(schema)
    if not isinstance(schema, dict):
        return None
    declared = schema.get("type")
    if isinstance(declared, str):
        return {declared}
    if isinstance(declared, list):
        return set(declared)
    branches = schema.get("oneOf") or schema.get("anyOf")
    if branches:
        found: set[str] = set()
        for branch in branches:
            types = _types(branch)
            if types is None:
                return None
            found |= types
        return found
    return None


def _fits(schema: Any, instance: object) -> bool:
    types = _types(schema)
    if types is None:
        return True
    kind = _type_of(instance)
    return kind in types or (kind == "integer" and "number" in types)


def _label(path: JsonPath) -> str:
    """How a message names a place: `'replicas'`, `step 3`, `item 2 of 'args'` (people count from 1)."""
    if not path:
        return "the workflow"
    last = path[-1]
    if isinstance(last, int):
        return f"step {last + 1}" if path[:-1] == ("steps",) else f"item {last + 1} of {_label(path[:-1])}"
    return f"'{last}'"


def _quote_all(names: list[str]) -> str:
    return ", ".join(f"'{name}'" for name in names)


_EXPONENT = re.compile(r"([-+]?)(\d+)(?:\.(\d*))?[eE]([-+]?)(\d+)")


def _yaml11_number(instance: object) -> str:
    """YAML 1.1, which PyYAML reads, takes `1e9` for a string: a number in exponent form needs a
    dot and a signed exponent there. Say what to write instead."""
    match = _EXPONENT.fullmatch(instance) if isinstance(instance, str) else None
    if not match:
        return ""
    sign, whole, fraction, exponent_sign, exponent = match.groups()
    written = f"{sign}{whole}.{fraction or '0'}e{exponent_sign or '+'}{exponent}"
    value = float(instance)  # type: ignore[arg-type]
    plain = f" or {int(value)}" if value.is_integer() and abs(value) < 1e16 else ""
    return f" (YAML reads '{instance}' as a string: write {written}{plain})"


def _first_sentence(text: str) -> str:
    return text.split(". ")[0].rstrip(".")


def _required_only(branches: list[Any]) -> list[str] | None:
    """The key names when every branch is just `{"required": [name]}`."""
    names = []
    for branch in branches:
        if not (isinstance(branch, dict) and set(branch) == {"required"} and len(branch["required"]) == 1):
            return None
        names.append(branch["required"][0])
    return names


def _explain(error: ValidationError, document: Document) -> Iterator[Problem]:
    path: JsonPath = tuple(error.absolute_path)
    keyword = error.validator
    value: Any = error.validator_value
    instance = error.instance
    schema = error.schema if isinstance(error.schema, dict) else {}
    label = _label(path)

    def at(message: str, where: JsonPath = path, *, key: bool = False) -> Problem:
        return document.problem(where, message, f"schema-{keyword}", key=key)

    if keyword == "additionalProperties" and isinstance(instance, dict):
        allowed = list(schema.get("properties", {}))
        noun = "step" if schema.get("title") == "Step" else "key"
        for name in instance:
            if name not in allowed:
                yield at(f"unknown {noun} '{name}'{did_you_mean(str(name), allowed)}", (*path, name), key=True)
    elif keyword == "required":
        match = re.match(r"'(.+)' is a required property", error.message)
        name = match.group(1) if match else error.message
        yield at(f"missing required key '{name}' in {label}", key=True)
    elif keyword in ("oneOf", "anyOf"):
        yield from _explain_choice(error, document, at, label)
    elif "propertyNames" in error.relative_schema_path or "propertyNames" in error.schema_path:
        hint = _first_sentence(schema.get("description", "")) or f"it must match {schema.get('pattern')}"
        yield at(f"'{instance}' is not a valid name: {hint}", (*path, str(instance)), key=True)
    elif keyword == "type":
        wanted = [value] if isinstance(value, str) else list(value)
        expected = " or ".join(_TYPE_NAMES.get(name, name) for name in wanted)
        hint = _yaml11_number(instance) if {"number", "integer"} & set(wanted) else ""
        yield at(f"{label} must be {expected}, not {_TYPE_NAMES.get(_type_of(instance), _type_of(instance))}{hint}")
    elif keyword == "enum":
        choices = [str(choice) for choice in value if choice is not None]
        hint = did_you_mean(str(instance), choices, list_all=False)
        yield at(f"{label} must be one of {', '.join(choices)}, not '{instance}'{hint}")
    elif keyword == "const":
        why = f": {schema['description']}" if "description" in schema else ""
        yield at(f"{label} must be {json.dumps(value)}, not {json.dumps(instance, default=str)}{why}")
    elif keyword in ("minimum", "exclusiveMinimum"):
        yield at(f"{label} must be at least {value}, not {instance}")
    elif keyword in ("maximum", "exclusiveMaximum"):
        yield at(f"{label} must be at most {value}, not {instance}")
    elif keyword == "minLength":
        yield at(f"{label} must not be empty")
    elif keyword == "minItems":
        yield at(f"{label} needs at least {value} item{'s' if value != 1 else ''}")
    elif keyword == "minProperties":
        if schema.get("title") == "Step":
            yield at("an empty step: give it one kind, such as 'start: NAME'")
        else:
            yield at(f"{label} must not be empty")
    elif keyword == "maxProperties" and isinstance(instance, dict):
        names = list(instance)
        if schema.get("title") == "Step":
            yield at(
                f"a step does one thing, this one has {len(names)}: {_quote_all(names)}; split it into steps",
                (*path, names[value]),
                key=True,
            )
        else:
            yield at(f"{label} takes at most {value} keys")
    elif keyword == "dependentRequired":
        match = re.match(r"'(.+)' is a dependency of '(.+)'", error.message)
        needed, owner = match.groups() if match else ("?", "?")
        yield at(f"'{owner}' only goes with '{needed}'", (*path, owner), key=True)
    elif keyword == "not" and isinstance(value, dict) and "required" in value:
        names = value["required"]
        yield at(f"{' and '.join(repr(n) for n in names)} cannot be used together", (*path, names[-1]), key=True)
    elif keyword == "pattern":
        hint = _first_sentence(schema.get("description", "")) or f"it must match {value}"
        yield at(f"'{instance}' is not in the expected form: {hint}")
    else:
        yield at(f"{label}: {error.message}")


def _explain_choice(error: ValidationError, document: Document, at: Any, label: str) -> Iterator[Problem]:
    """A `oneOf`/`anyOf` failure, explained by the branch the value was evidently meant for."""
    options: Any = error.validator_value
    branches: list[Any] = list(options)
    instance = error.instance
    path: JsonPath = tuple(error.absolute_path)
    names = _required_only(branches)
    if names is not None:
        if not isinstance(instance, dict):
            return  # the type error of the same mapping says it better
        present = [name for name in names if name in instance]
        if present:
            yield at(f"{_quote_all(present)} cannot be used together: give only one", (*path, present[-1]), key=True)
        else:
            choices = " or ".join(repr(name) for name in names) if len(names) == 2 else f"one of {_quote_all(names)}"
            yield at(f"{label} needs {choices}", key=True)
        return
    fitting = [index for index, branch in enumerate(branches) if _fits(branch, instance)]
    if len(fitting) == 1:
        inner = [sub for sub in (error.context or []) if sub.relative_schema_path[0] == fitting[0]]
        if inner:
            for sub in inner:
                yield from _explain(sub, document)
            return
    if not fitting:
        kinds: list[str] = []
        for branch in branches:
            for kind in sorted(_types(branch) or ()):
                if _TYPE_NAMES.get(kind, kind) not in kinds:
                    kinds.append(_TYPE_NAMES.get(kind, kind))
        actual = _TYPE_NAMES.get(_type_of(instance), _type_of(instance))
        yield at(f"{label} must be {' or '.join(kinds)}, not {actual}")
        return
    yield at(f"{label} does not fit any of its allowed forms: {error.message}")
