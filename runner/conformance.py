"""A yes-or-no verdict of the workflow schema on a document, fast and with the standard library.

Most files mprun reads are valid, and jsonschema costs about 60 ms to import and a millisecond
a file to run; its errors are only needed to explain a file that is not valid. So the checker
asks here first, and only a document that does not conform goes to jsonschema (schema.py).

Only the keywords the workflow schema uses are known; meeting any other is a bug, caught by
`test_conformance`, which also holds this verdict equal to jsonschema's on thousands of
generated documents.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache
from typing import Any

_ANNOTATIONS = frozenset({"$schema", "$id", "$defs", "title", "description", "default", "examples"})


def conforms(instance: Any, schema: dict[str, Any]) -> bool:
    """Whether `instance` is valid under `schema` (a draft 2020-12 schema, the workflow's)."""
    return _valid(instance, schema, schema)


def _valid(instance: Any, schema: dict[str, Any], root: dict[str, Any]) -> bool:
    for keyword, value in schema.items():
        if keyword in _ANNOTATIONS:
            continue
        check = _KEYWORDS.get(keyword)
        if check is None:
            if keyword in ("then", "else"):
                continue  # taken with `if`
            raise NotImplementedError(f"schema keyword {keyword!r}")
        if not check(instance, value, schema, root):
            return False
    return True


def _is_type(instance: Any, name: str) -> bool:
    if name == "object":
        return isinstance(instance, dict)
    if name == "array":
        return isinstance(instance, list)
    if name == "string":
        return isinstance(instance, str)
    if name == "boolean":
        return isinstance(instance, bool)
    if name == "null":
        return instance is None
    if isinstance(instance, bool):
        return False  # JSON's numbers are not Python's: True is no integer
    if name == "integer":
        return isinstance(instance, int) or (isinstance(instance, float) and instance.is_integer())
    if name == "number":
        return isinstance(instance, (int, float))
    raise NotImplementedError(f"type {name!r}")


def _equal(one: Any, other: Any) -> bool:
    # As JSON compares: 1 == 1.0, but True is not 1.
    if isinstance(one, bool) or isinstance(other, bool):
        return isinstance(one, bool) and isinstance(other, bool) and one == other
    if isinstance(one, list) and isinstance(other, list):
        return len(one) == len(other) and all(_equal(a, b) for a, b in zip(one, other, strict=True))
    if isinstance(one, dict) and isinstance(other, dict):
        return one.keys() == other.keys() and all(_equal(one[key], other[key]) for key in one)
    return bool(type(one) is type(other) or (_is_type(one, "number") and _is_type(other, "number"))) and one == other


@cache
def _pattern(text: str) -> re.Pattern[str]:
    return re.compile(text)


def _resolve(reference: str, root: dict[str, Any]) -> dict[str, Any]:
    if not reference.startswith("#/"):
        raise NotImplementedError(f"$ref {reference!r}")
    found: Any = root
    for part in reference[2:].split("/"):
        found = found[part.replace("~1", "/").replace("~0", "~")]
    return found  # type: ignore[no-any-return]


def _properties(instance: Any, value: dict[str, Any], schema: dict[str, Any], root: dict[str, Any]) -> bool:
    if not isinstance(instance, dict):
        return True
    return all(_valid(instance[name], sub, root) for name, sub in value.items() if name in instance)


def _additional(instance: Any, value: Any, schema: dict[str, Any], root: dict[str, Any]) -> bool:
    if not isinstance(instance, dict):
        return True
    known = schema.get("properties", {})
    patterns = [_pattern(text) for text in schema.get("patternProperties", {})]
    extra = [name for name in instance if name not in known and not any(p.search(name) for p in patterns)]
    if value is False:
        return not extra
    return all(_valid(instance[name], value, root) for name in extra)


def _if(instance: Any, value: dict[str, Any], schema: dict[str, Any], root: dict[str, Any]) -> bool:
    if _valid(instance, value, root):
        return "then" not in schema or _valid(instance, schema["then"], root)
    return "else" not in schema or _valid(instance, schema["else"], root)


def _objects(check: Callable[[dict[str, Any], Any], bool]) -> Callable[..., bool]:
    return lambda instance, value, schema, root: not isinstance(instance, dict) or check(instance, value)


def _strings(check: Callable[[str, Any], bool]) -> Callable[..., bool]:
    return lambda instance, value, schema, root: not isinstance(instance, str) or check(instance, value)


def _numbers(check: Callable[[float, Any], bool]) -> Callable[..., bool]:
    return lambda instance, value, schema, root: not _is_type(instance, "number") or check(instance, value)


def _arrays(check: Callable[[list[Any], Any], bool]) -> Callable[..., bool]:
    return lambda instance, value, schema, root: not isinstance(instance, list) or check(instance, value)


_KEYWORDS: dict[str, Callable[[Any, Any, dict[str, Any], dict[str, Any]], bool]] = {
    "$ref": lambda instance, value, schema, root: _valid(instance, _resolve(value, root), root),
    "type": lambda instance, value, schema, root: any(
        _is_type(instance, name) for name in ([value] if isinstance(value, str) else value)
    ),
    "enum": lambda instance, value, schema, root: any(_equal(instance, option) for option in value),
    "const": lambda instance, value, schema, root: _equal(instance, value),
    "oneOf": lambda instance, value, schema, root: sum(_valid(instance, sub, root) for sub in value) == 1,
    "allOf": lambda instance, value, schema, root: all(_valid(instance, sub, root) for sub in value),
    "anyOf": lambda instance, value, schema, root: any(_valid(instance, sub, root) for sub in value),
    "not": lambda instance, value, schema, root: not _valid(instance, value, root),
    "if": _if,
    "properties": _properties,
    "additionalProperties": _additional,
    "patternProperties": lambda instance, value, schema, root: (
        not isinstance(instance, dict)
        or all(
            _valid(instance[name], sub, root)
            for text, sub in value.items()
            for name in instance
            if _pattern(text).search(name)
        )
    ),
    "required": _objects(lambda instance, value: all(name in instance for name in value)),
    "minProperties": _objects(lambda instance, value: len(instance) >= value),
    "maxProperties": _objects(lambda instance, value: len(instance) <= value),
    "dependentRequired": _objects(
        lambda instance, value: all(
            all(need in instance for need in needs) for name, needs in value.items() if name in instance
        )
    ),
    "propertyNames": lambda instance, value, schema, root: (
        not isinstance(instance, dict) or all(_valid(name, value, root) for name in instance)
    ),
    "items": lambda instance, value, schema, root: (
        not isinstance(instance, list) or all(_valid(item, value, root) for item in instance)
    ),
    "minItems": _arrays(lambda instance, value: len(instance) >= value),
    "maxItems": _arrays(lambda instance, value: len(instance) <= value),
    "minLength": _strings(lambda instance, value: len(instance) >= value),
    "maxLength": _strings(lambda instance, value: len(instance) <= value),
    "pattern": _strings(lambda instance, value: _pattern(value).search(instance) is not None),
    "minimum": _numbers(lambda instance, value: instance >= value),
    "maximum": _numbers(lambda instance, value: instance <= value),
    "exclusiveMinimum": _numbers(lambda instance, value: instance > value),
    "exclusiveMaximum": _numbers(lambda instance, value: instance < value),
}
