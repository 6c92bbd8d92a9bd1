"""Read a workflow file into plain data, remembering where each key and value stands.

PyYAML's constructors throw positions away, so we compose the node graph (with the safe
loader: no Python tags) and build the data ourselves, keeping each node's mark by JSON path.
"""

from __future__ import annotations

import copy
import os
import re
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from runner import variables
from runner.problem import JsonPath, Problem, Severity, format_path
from runner.syntax import explain

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_RESOLVER = yaml.resolver.Resolver()
_MERGE_TAG = "tag:yaml.org,2002:merge"
# Something that may be an alias (`*name`); `* 2` in a comment is not, and must not cost the
# slower loader. A false match only costs speed.
_ALIAS = re.compile(r"\*[^\s,\[\]{}]")
_PLAIN_TAGS = frozenset({"tag:yaml.org,2002:seq", "tag:yaml.org,2002:map"})

# A workflow has a few hundred values; these bounds stop alias bombs ("billion laughs") and
# pathological nesting long before they cost time or memory.
MAX_VALUES = 100_000
MAX_DEPTH = 64
# Workflows are a few kilobytes. Reading stops here: `mprun check /dev/zero` must end, and a
# multi-megabyte file would cost seconds and hundreds of megabytes just to be refused.
MAX_BYTES = 1 << 20


@dataclass(frozen=True)
class Position:
    """A place in a file; both numbers count from 1."""

    line: int
    column: int


_START = Position(1, 1)


@dataclass(frozen=True)
class Document:
    """A parsed workflow file: its data and where every key and value of it stands."""

    path: str
    data: Any
    values: dict[JsonPath, Position] = field(default_factory=dict, repr=False)
    keys: dict[JsonPath, Position] = field(default_factory=dict, repr=False)
    variables: dict[str, str | None] = field(default_factory=dict, repr=False)  # the environment's it read
    # A value a `--set` option gave: problems within it point at the option (its text, and the
    # column of its value).
    overrides: dict[JsonPath, tuple[str, int]] = field(default_factory=dict, repr=False)

    def position(self, path: JsonPath, *, key: bool = False) -> Position:
        """Where `path` stands: its key (when asked and it has one) or its value.

        A path that has no node of its own (a missing key) falls back to its nearest
        ancestor's key, so the message points at the mapping that lacks it.
        """
        while True:
            if key and path in self.keys:
                return self.keys[path]
            if not key and path in self.values:
                return self.values[path]
            if not path:
                return self.values.get((), _START)
            path, key = path[:-1], True

    def problem(
        self,
        path: JsonPath,
        message: str,
        code: str,
        *,
        severity: Severity = "error",
        key: bool = False,
    ) -> Problem:
        """A problem located at `path` in this document (or at the `--set` option that gave it)."""
        for length in range(len(path), 0, -1):
            if path[:length] in self.overrides:
                option, column = self.overrides[path[:length]]
                at = 1 if key and length == len(path) else column
                return Problem(option, 1, at, severity, message, code, format_path(path))
        where = self.position(path, key=key)
        return Problem(self.path, where.line, where.column, severity, message, code, format_path(path))


class _Abort(Exception):
    """Stops the walk of a document too large or too deep to read safely."""

    def __init__(self, node: Node, message: str) -> None:
        super().__init__(message)
        self.node = node


def _at(node: Node) -> Position:
    return Position(node.start_mark.line + 1, node.start_mark.column + 1)


class _Builder:
    """Turns a composed node graph into plain data, recording positions and problems."""

    def __init__(
        self, path: str, plain_data: Callable[[JsonPath], bool], environ: Mapping[str, str] | None = None
    ) -> None:
        self.path = path
        self.plain_data = plain_data
        self.environ = environ
        self.variables: dict[str, str | None] = {}
        self.aliased = False  # the document has aliases (`*name`)
        self.values: dict[JsonPath, Position] = {}
        self.keys: dict[JsonPath, Position] = {}
        self.problems: list[Problem] = []
        self.count = 0
        self.constructor = yaml.constructor.SafeConstructor()
        # Inside a node reached through an alias, every problem points at the alias.
        self.alias_at: Position | None = None

    def at(self, node: Node) -> Position:
        return self.alias_at or _at(node)

    def report(self, where: Position, message: str, code: str, path: JsonPath) -> None:
        self.problems.append(Problem(self.path, where.line, where.column, "error", message, code, format_path(path)))

    def build(self, node: Node, path: JsonPath, depth: int) -> Any:
        if self.alias_at is None and getattr(node, "seen_through_alias", False):
            self.alias_at = _at(node)
            try:
                return self.build(node, path, depth)
            finally:
                self.alias_at = None
        self.count += 1
        if self.count > MAX_VALUES:
            why = " through its aliases" if self.aliased else ""
            raise _Abort(node, f"the document expands{why} to more than {MAX_VALUES:,} values; a workflow has hundreds")
        if depth > MAX_DEPTH:
            raise _Abort(node, f"the document nests deeper than {MAX_DEPTH} levels")
        self.values.setdefault(path, self.at(node))
        if not isinstance(node, ScalarNode) and node.tag not in _PLAIN_TAGS:
            # Scalars with foreign tags are refused by the safe constructor; collections we build
            # ourselves, so refuse theirs here (`!!python/object/apply:os.system [...]`, `!!set`).
            self.report(self.at(node), f"unsupported YAML tag '{node.tag}': workflows hold plain data", "yaml", path)
            return None
        if isinstance(node, SequenceNode):
            return [self.build(item, (*path, index), depth + 1) for index, item in enumerate(node.value)]
        if isinstance(node, MappingNode):
            return self.mapping(node, path, depth)
        return self.scalar(node, path)

    def scalar(self, node: Node, path: JsonPath, *, substituted: bool = True) -> Any:
        if substituted and self.environ is not None and isinstance(node, ScalarNode) and "${" in node.value:
            node = self.substituted(node, path)
        try:
            return self.constructor.construct_object(node)
        except (yaml.YAMLError, ValueError, OverflowError) as error:
            problem = getattr(error, "problem", None) or str(error)
            self.report(self.at(node), f"cannot read this value: {problem}", "yaml", path)
            return None

    def mapping(self, node: MappingNode, path: JsonPath, depth: int) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        first_seen: dict[Any, Position] = {}
        for key_node, value_node, merged in self.entries(node, path, depth):
            name = self.key(key_node, path)
            if name is None:
                continue
            if name in first_seen:
                if merged:
                    continue  # an explicit key or an earlier merge wins, as YAML's merge key says
                seen = first_seen[name]
                self.report(
                    self.at(key_node),
                    f"duplicate key '{name}' (first at line {seen.line}, column {seen.column})",
                    "duplicate-key",
                    (*path, name),
                )
                continue
            first_seen[name] = self.at(key_node)
            child = (*path, name)
            self.keys[child] = self.at(key_node)
            if _is_empty(value_node):
                # An empty value's mark lies after the colon, often on the next line.
                self.values[child] = self.at(key_node)
            result[name] = self.build(value_node, child, depth + 1)
        return result

    def entries(self, node: MappingNode, path: JsonPath, depth: int) -> list[tuple[Node, Node, bool]]:
        """The mapping's entries, explicit ones first, then those brought in by `<<` merges."""
        explicit: list[tuple[Node, Node, bool]] = []
        merged: list[tuple[Node, Node, bool]] = []
        for key_node, value_node in node.value:
            if key_node.tag != _MERGE_TAG:
                explicit.append((key_node, value_node, False))
                continue
            sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
            for source in sources:
                self.count += 1
                if self.count > MAX_VALUES or depth > MAX_DEPTH:
                    raise _Abort(source, "the document's merge keys (<<) expand too far")
                if not isinstance(source, MappingNode):
                    self.report(self.at(source), "a merge key (<<) takes a mapping or a list of mappings", "yaml", path)
                    continue
                for key, value, _ in self.entries(source, path, depth + 1):
                    if getattr(source, "seen_through_alias", False):
                        key, value = _through(key, source.start_mark), _through(value, source.start_mark)
                    merged.append((key, value, True))
        return explicit + merged

    def substituted(self, node: ScalarNode, path: JsonPath) -> ScalarNode:
        """The scalar with the environment's variables in it, typed as YAML would type what it
        now says when it is written plain (`${N:-4}` is a number); as written, when one cannot
        be (its problem is reported, and a type error would only echo it)."""
        assert self.environ is not None
        text, problems, used = variables.substitute(node.value, self.environ)
        self.variables.update(used)
        for problem in problems:
            where = self.at(node)
            if "\n" not in node.value and self.alias_at is None:  # the column of the `${` itself
                quoted = node.style in ("'", '"')
                where = Position(where.line, where.column + problem.offset + quoted)
            self.report(where, problem.message, problem.code, path)
        if problems:
            return node
        plain = not node.style  # libyaml says '', PyYAML None
        tag = _RESOLVER.resolve(ScalarNode, text, (True, False)) if plain else node.tag  # type: ignore[no-untyped-call]
        return ScalarNode(tag, text, node.start_mark, node.end_mark, node.style)

    def key(self, node: Node, path: JsonPath) -> Any:
        if not isinstance(node, ScalarNode):
            self.report(self.at(node), "a key must be a plain string, not a list or a mapping", "yaml-key", path)
            return None
        value = self.scalar(node, path, substituted=False)
        if not isinstance(value, str) and not self.plain_data(path):
            kind = "null" if value is None else type(value).__name__
            self.report(
                self.at(node), f"key '{node.value}' is read as {kind}: quote it to make it a string", "yaml-key", path
            )
            return str(node.value)
        return value


def _through(node: Node, mark: yaml.Mark) -> Node:
    """`node` as seen through an alias written at `mark`: it stands where the alias is."""
    seen = copy.copy(node)
    seen.start_mark = mark
    seen.seen_through_alias = True  # type: ignore[attr-defined]
    return seen


def _is_empty(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.value == "" and not node.style  # libyaml says '', PyYAML None


def _position_of_offset(data: bytes | str, offset: int) -> Position:
    newline = b"\n" if isinstance(data, bytes) else "\n"
    line_start = data.rfind(newline, 0, offset) + 1  # type: ignore[arg-type]
    return Position(data.count(newline, 0, offset) + 1, offset - line_start + 1)  # type: ignore[arg-type]


def _syntax_problem(path: str, text: str, error: yaml.YAMLError, *, offsets_in_bytes: bool) -> Problem:
    if isinstance(error, yaml.MarkedYAMLError):
        explained = explain(text, error)
        where = Position(explained.line, explained.column)
        message = explained.message
    else:  # the reader's errors (control characters) carry an offset, not a mark
        offset = getattr(error, "position", None)
        if isinstance(offset, int) and offsets_in_bytes:  # libyaml counts UTF-8 bytes
            offset = len(text.encode()[:offset].decode(errors="ignore"))
        where = _position_of_offset(text, offset) if isinstance(offset, int) else _START
        message = str(error).splitlines()[0]
    return Problem(path, where.line, where.column, "error", f"invalid YAML: {message}", "yaml-syntax")


class _AliasAwareLoader(yaml.SafeLoader):
    """The pure-Python safe loader, but an alias's node carries the alias's own position.

    PyYAML hands out the anchored node itself for `*name`, so a problem inside it would point
    at the anchor. Slower than libyaml, so used only for documents that contain aliases.
    """

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        if not self.check_event(yaml.AliasEvent):
            return super().compose_node(parent, index)
        mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
        node = super().compose_node(parent, index)
        return None if node is None else _through(node, mark)


def _nowhere(path: JsonPath) -> bool:
    return False


def parse(
    text: str,
    path: str,
    *,
    plain_data: Callable[[JsonPath], bool] = _nowhere,
    environ: Mapping[str, str] | None = os.environ,
) -> tuple[Document | None, list[Problem]]:
    """Parse workflow text; the document is None when nothing usable could be read.

    Keys must be strings, as in JSON, except in mappings for which `plain_data(path)` is true:
    there `{1: a}` keeps its integer key, as Python data would. `${NAME}` in a value is the
    variable of `environ` (see variables.py; None: left as written).
    """
    loader = _AliasAwareLoader if _ALIAS.search(text) else _Loader
    try:
        root = yaml.compose(text, Loader=loader)
    except yaml.YAMLError as error:
        return None, [_syntax_problem(path, text, error, offsets_in_bytes=loader is not _AliasAwareLoader)]
    except RecursionError:
        return None, [Problem(path, 1, 1, "error", "the document nests too deeply to read", "yaml-syntax")]
    if root is None:
        return None, [Problem(path, 1, 1, "error", "the file holds no YAML document", "empty")]
    builder = _Builder(path, plain_data, environ)
    builder.aliased = loader is _AliasAwareLoader
    try:
        data = builder.build(root, (), 0)
    except _Abort as abort:
        where = _at(abort.node)
        return None, [Problem(path, where.line, where.column, "error", str(abort), "too-large")]
    document = Document(path, data, builder.values, builder.keys, builder.variables)
    return document, builder.problems


def load(
    path: str | Path,
    *,
    plain_data: Callable[[JsonPath], bool] = _nowhere,
    environ: Mapping[str, str] | None = os.environ,
) -> tuple[Document | None, list[Problem]]:
    """Read and parse a workflow file; unreadable files become problems too."""
    name = str(path)
    try:
        # Opened without blocking and looked at before any read: a FIFO with no writer would
        # block open() and read() for ever, and a device can be read without end.
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as error:
        return None, [Problem(name, 1, 1, "error", f"cannot read the file: {error.strerror}", "file")]
    kind = _kind(os.fstat(descriptor).st_mode)
    if kind:
        os.close(descriptor)
        message = f"is {kind}, not a regular file"
        if kind != "a directory":
            message += " (give '-' to read a workflow from standard input)"
        return None, [Problem(name, 1, 1, "error", message, "file")]
    with open(descriptor, "rb") as stream:
        try:
            raw = stream.read(MAX_BYTES + 1)
        except OSError as error:
            return None, [Problem(name, 1, 1, "error", f"cannot read the file: {error.strerror}", "file")]
    return parse_bytes(raw, name, plain_data=plain_data, environ=environ)


_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _kind(mode: int) -> str:
    """What a file that is not a regular one is, in words; empty for a regular file."""
    if stat.S_ISREG(mode):
        return ""
    return next((word for test, word in _KINDS if test(mode)), "not a file")


def parse_bytes(
    raw: bytes,
    name: str,
    *,
    plain_data: Callable[[JsonPath], bool] = _nowhere,
    environ: Mapping[str, str] | None = os.environ,
) -> tuple[Document | None, list[Problem]]:
    """Parse a workflow's bytes, which must be UTF-8 (a byte order mark is allowed)."""
    if len(raw) > MAX_BYTES:
        message = f"the file is larger than {MAX_BYTES // 1024:,} KiB, the limit for a workflow"
        return None, [Problem(name, 1, 1, "error", message, "too-large")]
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        where = _position_of_offset(raw, error.start)
        byte = raw[error.start : error.start + 1].hex()
        message = f"the file is not UTF-8: byte 0x{byte} cannot be decoded"
        return None, [Problem(name, where.line, where.column, "error", message, "encoding")]
    return parse(text, name, plain_data=plain_data, environ=environ)
