"""The format reference in Markdown, written from the schema so the two cannot drift apart."""

from __future__ import annotations

import json
from typing import Any

from runner.schema import definition, load_schema
from runner.workflow import SECTIONS


def _type(schema: dict[str, Any]) -> str:
    schema = definition(schema)
    if "const" in schema:
        return f"`{json.dumps(schema['const'])}`"
    if "enum" in schema:
        return " | ".join(f"`{json.dumps(value) if value is None else value}`" for value in schema["enum"])
    branches = schema.get("oneOf") or schema.get("anyOf")
    if branches and all(set(definition(b)) - {"required"} for b in branches):
        return " or ".join(dict.fromkeys(_type(branch) for branch in branches))
    declared = schema.get("type")
    names = [declared] if isinstance(declared, str) else list(declared or ["any"])
    words = {"object": "mapping", "array": "list", "null": "null"}
    return " or ".join(words.get(name, name) for name in names)


def _default(schema: dict[str, Any]) -> str:
    if "default" not in schema:
        return ""
    return f"`{json.dumps(schema['default'])}`"


def _flow(value: Any) -> str:
    """A value as YAML flow style, the way the examples are written in workflow files."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}: {_flow(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_flow(item) for item in value) + "]"
    return value if isinstance(value, str) else json.dumps(value)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(properties: dict[str, Any], required: list[str]) -> list[str]:
    lines = ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
    for name, prop in properties.items():
        prop = definition(prop)
        key = f"`{name}`" + (" (required)" if name in required else "")
        lines.append(f"| {key} | {_cell(_type(prop))} | {_default(prop)} | {_cell(prop.get('description', ''))} |")
    return lines


def _object_options(schema: dict[str, Any]) -> dict[str, Any]:
    """The options of a step given as a mapping (the branch of its `oneOf` that is one)."""
    schema = definition(schema)
    if schema.get("type") == "object":
        return schema
    for branch in schema.get("oneOf", []):
        options: dict[str, Any] = definition(branch)
        if options.get("type") == "object":
            return options
    return {}


def _orchestration(defs: dict[str, Any]) -> list[str]:
    """A process's restart policy (and its backoff) and its start conditions, key by key."""
    out = []
    for key, name in (("restart", "restart"), ("start_after", "startCondition")):
        entry = defs[name]
        options = _object_options(entry)
        out += ["", f"#### `{key}`", "", entry["description"], ""]
        out += _table(options["properties"], options.get("required", []))
        for example in entry.get("examples", [])[:3]:
            out += ["", f"```yaml\n{key}: {_flow(example)}\n```"]
    backoff = _object_options(defs["restart"])["properties"]["backoff"]
    out += ["", "#### `restart: backoff`", "", backoff["description"], "", *_table(backoff["properties"], [])]
    return out


def markdown() -> str:
    """The whole format reference."""
    schema = load_schema()
    defs = schema["$defs"]
    out = [
        "### Top level",
        "",
        *_table(schema["properties"], schema["required"]),
        "",
        "### Shared objects",
        "",
        "Each section maps names to options; an empty value (`name: {}` or `name:`) takes every default. "
        "Pass an object to a process as `$name`.",
    ]
    for section, name in SECTIONS.items():
        entry = defs[name]
        out += ["", f"#### `{section}`", "", entry["description"], ""]
        out += _table(entry["properties"], entry.get("required", []))
    process = defs["process"]
    out += ["", "### Processes", "", process["description"], ""]
    out += _table(process["properties"], [])
    out += ["", "#### `expect`", "", defs["expect"]["description"], ""]
    out += _table(defs["expect"]["properties"], [])
    out += _orchestration(defs)
    step = defs["step"]
    out += ["", "### Steps", "", step["description"]]
    for kind, prop in step["properties"].items():
        prop = definition(prop)
        out += ["", f"#### `{kind}`", "", prop["description"]]
        options = _object_options(prop)
        shorthand = prop.get("type") != "object"
        if options.get("properties"):
            if shorthand:
                forms = f"`{kind}: NAME`" + (f" or `{kind}: [NAME, ...]`" if "list" in _type(prop) else "")
                out += ["", f"Also written as {forms}, with every option at its default."]
            out += ["", *_table(options["properties"], options.get("required", []))]
        else:
            out += ["", f"Value: {_type(prop)}."]
        for example in prop.get("examples", [])[:2]:
            out += ["", f"```yaml\n- {kind}: {_flow(example)}\n```"]
    return "\n".join(out) + "\n"
