"""The workflow as typed, immutable records: what the checker's rules read and backends run.

Nothing here knows about `multiprocessing`: a process is a target and its arguments, a queue is
a name and a kind. Every record keeps the JSON path it came from so a rule can point at it.
"""

from __future__ import annotations

import os
import re
import string
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from runner.problem import JsonPath

# A section of the file -> the kind of object it holds, which is also the name of its schema
# definition; options such as `kind: joinable` pick a variant (see `_object_kind`).
SECTIONS: dict[str, str] = {
    "queues": "queue",
    "events": "event",
    "locks": "lock",
    "semaphores": "semaphore",
    "conditions": "condition",
    "barriers": "barrier",
    "values": "value",
    "arrays": "array",
    "pipes": "pipe",
    "dicts": "dict",
    "lists": "list",
    "namespaces": "namespace",
}
TERMINATE_GRACE = 5.0  # the schema's default for a terminate step's `grace`; a test keeps them equal
QUEUE_KINDS = frozenset({"queue", "joinable_queue", "simple_queue"})
# What each kind of shared object is called in messages.
KIND_WORDS = {
    "queue": "a queue",
    "joinable_queue": "a joinable queue",
    "simple_queue": "a simple queue",
    "event": "an event",
    "lock": "a lock",
    "rlock": "an rlock",
    "semaphore": "a semaphore",
    "bounded_semaphore": "a bounded semaphore",
    "condition": "a condition",
    "barrier": "a barrier",
    "value": "a shared value",
    "array": "a shared array",
    "pipe": "a pipe",
    "dict": "a managed dict",
    "list": "a managed list",
    "namespace": "a managed namespace",
}
RESERVED_NAMES = frozenset({"replica"})
_REFERENCE = re.compile(r"\$(?P<name>[A-Za-z_][A-Za-z0-9_-]*)(?:\.(?P<end>[0-9]{1,3}))?")


@dataclass(frozen=True)
class Reference:
    """A `$name` in a process's arguments: the shared object of that name (or a pipe's end).

    `name` is None when the text is not a well-formed reference; a rule reports it.
    """

    text: str
    where: JsonPath
    name: str | None = None
    end: int | None = None

    @classmethod
    def parse(cls, text: str, where: JsonPath) -> Reference:
        match = _REFERENCE.fullmatch(text)
        if match is None:
            return cls(text, where)
        return cls(text, where, match["name"], int(match["end"]) if match["end"] else None)


@dataclass(frozen=True)
class ReplicaIndex:
    """`$replica` in a process's arguments: the replica's index, counting from 0."""

    where: JsonPath
    text: ClassVar[str] = "$replica"


def holds_plain_data(path: JsonPath) -> bool:
    """Whether the mapping at `path` is user data (arguments, items), whose keys may be any scalar."""
    match path:
        case ("processes", _, "args", *_) | ("processes", _, "kwargs", _, *_):
            return True
        case ("steps", _, "put", "item" | "items" | "args", *_) | ("steps", _, "put", "kwargs", _, *_):
            return True
        case ("dicts", _, "items", *_) | ("lists", _, "items", *_) | ("namespaces", _, "attributes", _, *_):
            return True
    return False


def parse_arguments(value: Any, where: JsonPath) -> Any:
    """Plain data with `$` strings turned into references; `$$` escapes a literal `$`."""
    if isinstance(value, str) and value.startswith("$"):
        if value.startswith("$$"):
            return value[1:]
        if value == "$replica":
            return ReplicaIndex(where)
        return Reference.parse(value, where)
    if isinstance(value, list):
        return tuple(parse_arguments(item, (*where, index)) for index, item in enumerate(value))
    if isinstance(value, dict):
        return {key: parse_arguments(item, (*where, key)) for key, item in value.items()}
    return value


def as_written(value: Any) -> Any:
    """Plain data as the file wrote it, for user code: the plan holds a YAML list as a tuple
    (records are immutable), and a target must get the list back, at every depth."""
    if isinstance(value, tuple):
        return [as_written(item) for item in value]
    if isinstance(value, dict):
        return {key: as_written(item) for key, item in value.items()}
    return value


def leaves(value: Any, where: JsonPath) -> Iterator[tuple[JsonPath, Any]]:
    """Every leaf of parsed arguments (neither tuple nor dict) with its path, depth first."""
    if isinstance(value, (tuple, dict)):
        for key, item in value.items() if isinstance(value, dict) else enumerate(value):
            yield from leaves(item, (*where, key))
    else:
        yield where, value


def placeholders(value: Any) -> Iterator[Reference | ReplicaIndex]:
    """Every `$` placeholder in parsed arguments, depth first."""
    return (leaf for _, leaf in leaves(value, ()) if isinstance(leaf, (Reference, ReplicaIndex)))


def references(value: Any) -> Iterator[Reference]:
    """Every reference to a shared object in parsed arguments, depth first."""
    return (found for found in placeholders(value) if isinstance(found, Reference))


@dataclass(frozen=True)
class Name:
    """A name a step or an option refers to, and where it was written."""

    text: str
    where: JsonPath


@dataclass(frozen=True)
class SharedObject:
    """A queue, event, lock, ... by name; `options` are its settings from the file."""

    name: str
    kind: str
    options: Mapping[str, Any]
    where: JsonPath


@dataclass(frozen=True)
class PerCpu:
    """`replicas: {per_cpu: N}`: N processes for each CPU of the machine that runs it."""

    count: int


@dataclass(frozen=True)
class Expectation:
    """The exit codes and signal names a process may end with; any one passes."""

    exitcodes: tuple[int, ...] = ()
    signals: tuple[Name, ...] = ()


@dataclass(frozen=True)
class ProcessSpec:
    """One `processes` entry: what to run, with what, how many times, and how it should end."""

    key: str
    target: str
    is_class: bool
    args: tuple[Any, ...]
    kwargs: Mapping[str, Any]
    name: str | None
    daemon: bool | None  # None: not said (a `class:` may set it in its own __init__)
    replicas: int | PerCpu
    expect: Expectation | None
    where: JsonPath

    def replica_count(self, cpus: int | None = None) -> int:
        """How many processes this entry runs on a machine with `cpus` CPUs (default: this one)."""
        if isinstance(self.replicas, PerCpu):
            return self.replicas.count * (cpus or os.cpu_count() or 1)
        return self.replicas

    @property
    def name_template(self) -> str | None:
        """The name with `{replica}` where the index goes; None keeps multiprocessing's name."""
        if self.name is None:
            return None
        if self.replicas == 1 or "{replica}" in self.name:
            return self.name
        return self.name + "-{replica}"

    def names(self, cpus: int | None = None) -> list[str | None]:
        """The process name of each replica (None: multiprocessing picks it)."""
        template = self.name_template
        count = self.replica_count(cpus)
        return [None if template is None else template.format(replica=index) for index in range(count)]


_REPLICA_FORMAT = re.compile(r"0?[0-9]{0,2}d?")  # `{replica:02d}` and the like: a width, zero-padded or not


def template_problem(template: str) -> str | None:
    """What is wrong with a process name template, or None: only `{replica}` is filled in."""
    try:
        fields = [(field, spec, conversion) for _, field, spec, conversion in string.Formatter().parse(template)]
    except ValueError as error:
        return f"{error} (write '{{{{' for a literal brace)"
    for field, spec, conversion in fields:
        if field is None:
            continue
        if field != "replica":
            return f"unknown field '{{{field}}}': only '{{replica}}' is filled in"
        if conversion or not _REPLICA_FORMAT.fullmatch(spec or ""):
            written = "{replica" + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
            return f"'{{replica}}' takes at most a width, like '{{replica:02d}}', not '{written}'"
    return None


@dataclass(frozen=True)
class Subject:
    """What a step names, and what it must be: the kinds it may be, as messages call it, and
    the problem code when no such thing exists."""

    name: Name
    kinds: frozenset[str]
    word: str  # "a process"
    code: str  # "unknown-process"


def _processes(names: Iterable[Name]) -> tuple[Subject, ...]:
    return tuple(Subject(name, frozenset({"process"}), "a process", "unknown-process") for name in names)


def _queue(name: Name, kinds: frozenset[str] = QUEUE_KINDS, word: str = "a queue") -> tuple[Subject, ...]:
    return (Subject(name, kinds, word, "unknown-queue"),)


def _event(name: Name) -> tuple[Subject, ...]:
    return (Subject(name, frozenset({"event"}), "an event", "unknown-event"),)


@dataclass(frozen=True)
class Start:
    """Start every replica of these processes, in order."""

    kind: ClassVar[str] = "start"
    processes: tuple[Name, ...]
    where: JsonPath

    def subjects(self) -> tuple[Subject, ...]:
        """What it names, to be checked (see rules.step_subjects)."""
        return _processes(self.processes)


@dataclass(frozen=True)
class Join:
    """Wait for these processes to end, at most `timeout` seconds; a timeout leaves them running."""

    kind: ClassVar[str] = "join"
    processes: tuple[Name, ...]
    timeout: float | None
    where: JsonPath

    def subjects(self) -> tuple[Subject, ...]:
        """What it names, to be checked (see rules.step_subjects)."""
        return _processes(self.processes)


@dataclass(frozen=True)
class Terminate:
    """SIGTERM these processes, SIGKILL those still alive after `grace` seconds, then join them."""

    kind: ClassVar[str] = "terminate"
    processes: tuple[Name, ...]
    grace: float
    where: JsonPath

    def subjects(self) -> tuple[Subject, ...]:
        """What it names, to be checked (see rules.step_subjects)."""
        return _processes(self.processes)


@dataclass(frozen=True)
class Put:
    """Items for a queue: literal `items`, each repeated `count` times (or once per replica
    of `per`), or whatever the `source` callable returns."""

    kind: ClassVar[str] = "put"
    queue: Name
    items: tuple[Any, ...]
    count: int
    per: Name | None
    source: str | None
    args: tuple[Any, ...]
    kwargs: Mapping[str, Any]
    where: JsonPath

    def subjects(self) -> tuple[Subject, ...]:
        """What it names, to be checked (see rules.step_subjects)."""
        return _queue(self.queue) + (_processes([self.per]) if self.per is not None else ())


@dataclass(frozen=True)
class Get:
    """Take `count` items off a queue in the parent, waiting at most `timeout` seconds for each."""

    kind: ClassVar[str] = "get"
    queue: Name
    count: int
    timeout: float | None
    where: JsonPath

    def subjects(self) -> tuple[Subject, ...]:
        """What it names, to be checked (see rules.step_subjects)."""
        return _queue(self.queue)


@dataclass(frozen=True)
class JoinQueue:
    """Wait until every item put on a joinable queue is marked done, at most `timeout` seconds."""

    kind: ClassVar[str] = "join_queue"
    queue: Name
    timeout: float | None
    where: JsonPath

    def subjects(self) -> tuple[Subject, ...]:
        """What it names, to be checked (see rules.step_subjects)."""
        return _queue(self.queue, frozenset({"joinable_queue"}), "a joinable queue")


@dataclass(frozen=True)
class Wait:
    """Wait for an event to be set, at most `timeout` seconds."""

    kind: ClassVar[str] = "wait"
    event: Name
    timeout: float | None
    where: JsonPath

    def subjects(self) -> tuple[Subject, ...]:
        """What it names, to be checked (see rules.step_subjects)."""
        return _event(self.event)


@dataclass(frozen=True)
class SetEvent:
    """Set an event."""

    kind: ClassVar[str] = "set"
    event: Name
    where: JsonPath

    def subjects(self) -> tuple[Subject, ...]:
        """What it names, to be checked (see rules.step_subjects)."""
        return _event(self.event)


@dataclass(frozen=True)
class ClearEvent:
    """Clear an event."""

    kind: ClassVar[str] = "clear"
    event: Name
    where: JsonPath

    def subjects(self) -> tuple[Subject, ...]:
        """What it names, to be checked (see rules.step_subjects)."""
        return _event(self.event)


@dataclass(frozen=True)
class Sleep:
    """Pause the parent."""

    kind: ClassVar[str] = "sleep"
    seconds: float
    where: JsonPath

    def subjects(self) -> tuple[Subject, ...]:
        """What it names, to be checked (see rules.step_subjects)."""
        return ()


Step = Start | Join | Terminate | Put | Get | JoinQueue | Wait | SetEvent | ClearEvent | Sleep


@dataclass(frozen=True)
class Workflow:
    """A whole workflow file, valid against the schema."""

    path: str
    name: str
    description: str
    start_method: str | None
    pythonpath: tuple[Name, ...]
    multiprocessing_log: str | None
    objects: Mapping[str, SharedObject]
    processes: Mapping[str, ProcessSpec]
    steps: tuple[Step, ...]

    @property
    def folder(self) -> Path:
        return Path(self.path).resolve().parent

    def python_folders(self) -> list[Path]:
        """The `pythonpath` folders as absolute paths, in order."""
        return [self.folder / entry.text for entry in self.pythonpath]

    def receivers(self, name: str) -> list[ProcessSpec]:
        """The processes that get the shared object `name` in their args or kwargs."""
        return [
            spec
            for spec in self.processes.values()
            if any(reference.name == name for reference in (*references(spec.args), *references(spec.kwargs)))
        ]

    def steps_on(self, name: str, *kinds: type[Step]) -> list[tuple[int, Step]]:
        """The steps (with their index) of these kinds that act on the queue or event `name`."""
        found = []
        for index, step in enumerate(self.steps):
            subject = getattr(step, "queue", None) or getattr(step, "event", None)
            if isinstance(step, kinds) and subject is not None and subject.text == name:
                found.append((index, step))
        return found


def _object_kind(section: str, options: Mapping[str, Any]) -> str:
    if section == "queues":
        kind = options.get("kind", "queue")
        return "queue" if kind == "queue" else f"{kind}_queue"
    if section == "locks":
        return str(options.get("kind", "lock"))
    if section == "semaphores" and options.get("bounded"):
        return "bounded_semaphore"
    return SECTIONS[section]


def _names(value: Any, where: JsonPath) -> tuple[Name, ...]:
    if isinstance(value, list):
        return tuple(Name(item, (*where, index)) for index, item in enumerate(value))
    return (Name(value, where),)


def _tuple(values: Any) -> tuple[Any, ...]:
    return tuple(values) if isinstance(values, list) else (values,)


def _process(key: str, entry: Mapping[str, Any], where: JsonPath) -> ProcessSpec:
    replicas = entry.get("replicas", 1)
    expect = entry.get("expect")
    return ProcessSpec(
        key=key,
        target=entry.get("target") or entry["class"],
        is_class="class" in entry,
        args=parse_arguments(entry.get("args", []), (*where, "args")),
        kwargs=parse_arguments(entry.get("kwargs", {}), (*where, "kwargs")),
        name=entry["name"] if "name" in entry else key,
        daemon=entry.get("daemon"),
        # JSON Schema counts 2.0 as an integer; Python's range() does not.
        replicas=PerCpu(int(replicas["per_cpu"])) if isinstance(replicas, dict) else int(replicas),
        expect=None
        if expect is None
        else Expectation(
            exitcodes=_tuple(expect["exitcode"]) if "exitcode" in expect else (),
            signals=_names(expect["signal"], (*where, "expect", "signal")) if "signal" in expect else (),
        ),
        where=where,
    )


def _step(kind: str, value: Any, where: JsonPath) -> Step:
    """One step from its `kind: value`; shorthand forms (a bare name) take the defaults."""
    options: Mapping[str, Any] = value if isinstance(value, dict) else {}

    def named(field: str) -> Name:
        return Name(options[field], (*where, field)) if options else Name(value, where)

    if kind == "start":
        return Start(_names(value, where), where)
    if kind in ("join", "terminate"):
        processes = _names(options["process"], (*where, "process")) if options else _names(value, where)
        if kind == "join":
            return Join(processes, options.get("timeout"), where)
        return Terminate(processes, options.get("grace", TERMINATE_GRACE), where)
    if kind == "put":
        # `$` strings are parsed here too, so that `$$` means `$` everywhere and a rule can
        # refuse references, which a parent-side put cannot resolve.
        if "item" in options:
            items = (parse_arguments(options["item"], (*where, "item")),)
        else:
            items = parse_arguments(options.get("items", []), (*where, "items"))
        per = Name(options["per"], (*where, "per")) if "per" in options else None
        return Put(
            named("queue"),
            items,
            int(options.get("count", 1)),
            per,
            options.get("from"),
            parse_arguments(options.get("args", []), (*where, "args")),
            parse_arguments(options.get("kwargs", {}), (*where, "kwargs")),
            where,
        )
    if kind == "get":
        return Get(named("queue"), int(options.get("count", 1)), options.get("timeout"), where)
    if kind == "join_queue":
        return JoinQueue(named("queue"), options.get("timeout"), where)
    if kind == "wait":
        return Wait(named("event"), options.get("timeout"), where)
    if kind == "set":
        return SetEvent(Name(value, where), where)
    if kind == "clear":
        return ClearEvent(Name(value, where), where)
    if kind == "sleep":
        return Sleep(float(value), where)
    raise ValueError(f"unknown step kind {kind!r}")  # the schema admits no other


def from_data(data: Mapping[str, Any], path: str) -> Workflow:
    """The workflow of a document that passed the schema."""
    objects: dict[str, SharedObject] = {}
    for section in SECTIONS:
        for name, options in (data.get(section) or {}).items():
            options = options or {}
            # A name in two sections is a rule's problem to report; the first one stands.
            objects.setdefault(name, SharedObject(name, _object_kind(section, options), options, (section, name)))
    processes = {key: _process(key, entry, ("processes", key)) for key, entry in data["processes"].items()}
    steps = tuple(
        _step(kind, value, ("steps", index, kind))
        for index, step in enumerate(data.get("steps", []))
        for kind, value in step.items()
    )
    return Workflow(
        path=path,
        name=data.get("name") or Path(path).stem,
        description=data.get("description", ""),
        start_method=data.get("start_method"),
        pythonpath=_names(data.get("pythonpath", ["."]), ("pythonpath",)),
        multiprocessing_log=data.get("multiprocessing_log"),
        objects=objects,
        processes=processes,
        steps=steps,
    )
