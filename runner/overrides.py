"""`--set PATH=VALUE`: a value of the workflow given on the command line instead of in the file.

PATH is the keys down to the value, joined by dots (`processes.consumer.replicas`; a number
picks an item of a list: `steps.2.join.timeout`), VALUE is YAML (`8` is a number, `[a, b]` a
list, `${N}` the environment's). Missing mappings on the way are made. The document is then
checked as a whole, and a problem within a value an option gave points at that option.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from runner.document import Document, parse
from runner.problem import JsonPath, Problem
from runner.workflow import holds_plain_data

OPTION = "--set"


def apply(
    document: Document, assignments: Sequence[str], environ: Mapping[str, str] | None
) -> tuple[Document, list[Problem]]:
    """The document with these assignments made, in order, and what was wrong with them."""
    data = _copy(document.data)
    overrides = dict(document.overrides)
    problems: list[Problem] = []
    variables = dict(document.variables)
    for assignment in assignments:
        option = f"{OPTION} {assignment}"
        name, equals, text = assignment.partition("=")
        column = len(name) + 2  # of the value, in PATH=VALUE
        if not equals or not name:
            problems.append(
                Problem(option, 1, 1, "error", "give it as PATH=VALUE, such as processes.p.replicas=4", "set")
            )
            continue
        path: JsonPath = tuple(int(part) if part.isdigit() else part for part in name.split("."))
        value, found = _value(text, option, column, path, environ)
        if found:
            problems += found
            continue
        why = _assign(data, path, value.data if value is not None else None)
        if why is not None:
            problems.append(Problem(option, 1, 1, "error", f"cannot set {name}: {why}", "set"))
            continue
        overrides[path] = (option, column)
        if value is not None:
            variables.update(value.variables)
    return dataclasses.replace(document, data=data, overrides=overrides, variables=variables), problems


def _value(
    text: str, option: str, column: int, path: JsonPath, environ: Mapping[str, str] | None
) -> tuple[Document | None, list[Problem]]:
    """VALUE read as YAML (empty: null), for the place `path`; its problems placed in the option."""
    if not text.strip():
        return None, []
    value, problems = parse(text, option, plain_data=lambda inner: holds_plain_data((*path, *inner)), environ=environ)
    return value, [dataclasses.replace(p, column=p.column + column - 1) for p in problems if p.line == 1] + [
        p for p in problems if p.line != 1
    ]


def _assign(data: Any, path: JsonPath, value: Any) -> str | None:
    """Put `value` at `path` in `data`; why it cannot be, or None."""
    if not isinstance(data, dict):
        return "the workflow is not a mapping"
    node: Any = data
    for depth, part in enumerate(path):
        last = depth == len(path) - 1
        where = ".".join(str(p) for p in path[:depth]) or "the top level"
        if isinstance(node, dict):
            key = str(part)
            if last:
                node[key] = value
            else:
                if node.get(key) is None:
                    node[key] = {}
                node = node[key]
        elif isinstance(node, list):
            if not isinstance(part, int) or not 0 <= part < len(node):
                return f"{where} is a list of {len(node)} item(s): '{part}' is not the number of one"
            if last:
                node[part] = value
            else:
                node = node[part]
        else:
            return f"{where} is {type(node).__name__}, not a mapping or a list"
    return None


def _copy(data: Any) -> Any:
    if isinstance(data, dict):
        return {key: _copy(value) for key, value in data.items()}
    if isinstance(data, list):
        return [_copy(value) for value in data]
    return data
