"""The workflow as typed, immutable records: what the checker's rules read and backends run.

Nothing here knows about `multiprocessing`: a process is a target and its arguments, a queue is
a name and a kind. Every record keeps the JSON path it came from so a rule can point at it.
"""

from __future__ import annotations

import dataclasses
import os
import re
import string
from collections.abc import Iterable, Iterator, Mapping, Sequence
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
    # Last: an object made by user code may be given any of the others.
    "objects": "object",
}
TERMINATE_GRACE = 5.0  # the schema's default for a terminate step's `grace`; a test keeps them equal
QUEUE_KINDS = frozenset({"queue", "joinable_queue", "simple_queue"})
LOCK_KINDS = frozenset({"lock", "rlock", "semaphore", "bounded_semaphore", "condition"})  # held by a process
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
    "object": "an object of the workflow's own",
}
RESERVED_NAMES = frozenset({"replica", "number", "each"})  # what `$replica`, `$number`, `$each` mean
_REFERENCE = re.compile(r"\$(?P<name>[A-Za-z_][A-Za-z0-9_-]*)(?:\.(?P<end>[0-9]{1,3}))?")
_EACH = re.compile(r"\$each((?:\.(?:[0-9]{1,6}|[A-Za-z_][A-Za-z0-9_]*))*)")
BUILDS = ("$call", "$import")  # the keys of a mapping that stands for an object made by user code


@dataclass(frozen=True)
class Reference:
    """A `$name` in arguments: the shared object of that name (or a pipe's end), or an object
    of the `objects` section.

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
    """`$replica` (the replica's index, from 0) or `$number` (from 1) in a process's arguments."""

    where: JsonPath
    first: int = 0

    @property
    def text(self) -> str:
        return "$number" if self.first else "$replica"


@dataclass(frozen=True)
class EachItem:
    """`$each` in arguments: the item of `each` this replica (or put item) is made for; with a
    path (`$each.0`, `$each.key`), a part of it."""

    where: JsonPath
    path: tuple[int | str, ...] = ()

    @property
    def text(self) -> str:
        return "$each" + "".join(f".{part}" for part in self.path)

    def pick(self, item: Any) -> Any:
        """The part of `item` it stands for; raises LookupError or TypeError where there is none."""
        for part in self.path:
            item = item[part]
        return item


@dataclass(frozen=True)
class Built:
    """`{$call: module:callable, args: [...], kwargs: {...}}`: what the callable returns, made
    in mprun's parent where the standard library's caller would make it (before a start, or a
    put); `{$import: module:name}`: the object itself (a function to send, a class)."""

    target: str
    call: bool
    args: tuple[Any, ...]
    kwargs: Mapping[str, Any]
    where: JsonPath
    extra: tuple[str, ...] = ()  # keys beside $call, args and kwargs: a rule reports them

    @property
    def text(self) -> str:
        return f"{{{'$call' if self.call else '$import'}: {self.target}}}"


def _built(value: Mapping[Any, Any], where: JsonPath) -> Built:
    key = "$call" if "$call" in value else "$import"
    allowed = {"$call", "args", "kwargs"} if key == "$call" else {"$import"}
    return Built(
        target=str(value[key]),
        call=key == "$call",
        args=parse_arguments(value.get("args", []) if key == "$call" else [], (*where, "args")),
        kwargs=parse_arguments(value.get("kwargs", {}) if key == "$call" else {}, (*where, "kwargs")),
        where=where,
        extra=tuple(str(name) for name in value if name not in allowed),
    )


def holds_plain_data(path: JsonPath) -> bool:
    """Whether the mapping at `path` is user data (arguments, items), whose keys may be any scalar."""
    match path:
        case ("processes", _, "args", *_) | ("processes", _, "kwargs", _, *_) | ("processes", _, "each", *_):
            return True
        case ("steps", _, "put", "item" | "items" | "args" | "each", *_) | ("steps", _, "put", "kwargs", _, *_):
            return True
        case ("dicts", _, "items", *_) | ("lists", _, "items", *_) | ("namespaces", _, "attributes", _, *_):
            return True
        case ("objects", _, "args", *_) | ("objects", _, "kwargs", _, *_) | ("pools", _, "initargs", *_):
            return True
        case ("steps", _, "map" | "starmap" | "imap_unordered" | "apply", "items" | "args", *_):
            return True
        case ("steps", _, "apply" | "call", "kwargs", _, *_) | ("steps", _, "call", "args", *_):
            return True
    return False


def parse_arguments(value: Any, where: JsonPath) -> Any:
    """Plain data with `$` strings turned into placeholders and `{$call: ...}` mappings into
    objects to build; `$$` escapes a literal `$` (in a mapping's keys too)."""
    if isinstance(value, str) and value.startswith("$"):
        if value.startswith("$$"):
            return value[1:]
        if value in ("$replica", "$number"):
            return ReplicaIndex(where, 1 if value == "$number" else 0)
        each = _EACH.fullmatch(value)
        if each is not None:
            parts = each[1].split(".")[1:]
            return EachItem(where, tuple(int(part) if part.isdigit() else part for part in parts))
        return Reference.parse(value, where)
    if isinstance(value, list):
        return tuple(parse_arguments(item, (*where, index)) for index, item in enumerate(value))
    if isinstance(value, dict):
        if any(key in value for key in BUILDS):
            return _built(value, where)
        return {_unescaped(key): parse_arguments(item, (*where, key)) for key, item in value.items()}
    return value


def _unescaped(key: Any) -> Any:
    return key[1:] if isinstance(key, str) and key.startswith("$$") else key


def as_written(value: Any) -> Any:
    """Plain data as the file wrote it, for user code: the plan holds a YAML list as a tuple
    (records are immutable), and a target must get the list back, at every depth."""
    if isinstance(value, tuple):
        return [as_written(item) for item in value]
    if isinstance(value, dict):
        return {key: as_written(item) for key, item in value.items()}
    return value


Placeholder = Reference | ReplicaIndex | EachItem | Built


def leaves(value: Any, where: JsonPath) -> Iterator[tuple[JsonPath, Any]]:
    """Every leaf of parsed arguments (neither tuple nor dict) with its path, depth first; an
    object to build is a leaf, and so is each leaf of its arguments."""
    if isinstance(value, (tuple, dict)):
        for key, item in value.items() if isinstance(value, dict) else enumerate(value):
            yield from leaves(item, (*where, key))
    else:
        yield where, value
        if isinstance(value, Built):
            yield from leaves((value.args, value.kwargs), value.where)


def placeholders(value: Any) -> Iterator[Placeholder]:
    """Every `$` placeholder and object to build in parsed arguments, depth first."""
    return (leaf for _, leaf in leaves(value, ()) if isinstance(leaf, (Reference, ReplicaIndex, EachItem, Built)))


def references(value: Any) -> Iterator[Reference]:
    """Every reference to a shared object in parsed arguments, depth first."""
    return (found for found in placeholders(value) if isinstance(found, Reference))


def builds(value: Any) -> Iterator[Built]:
    """Every object to build in parsed arguments, depth first."""
    return (found for found in placeholders(value) if isinstance(found, Built))


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


RESTART_WHEN = ("on-failure", "always")  # the policies that restart (`never` is no policy)


@dataclass(frozen=True)
class RestartPolicy:
    """When to start a process again after it ended, how often at most, and how long to wait."""

    when: str  # on-failure or always
    max_restarts: int = 3
    within: float | None = None  # s: only the restarts of this last while count (None: the whole run's)
    initial: float = 0.1  # s before the first restart
    factor: float = 2.0
    longest: float = 5.0
    where: JsonPath = ()

    def pause(self, restarts: int) -> float:
        """The wait before the restart that follows `restarts` earlier ones (of the window)."""
        return float(min(self.initial * self.factor**restarts, self.longest))


CONDITION_KINDS = ("started", "completed", "printed", "event")


@dataclass(frozen=True)
class StartCondition:
    """One condition of `start_after`: `subject` (a process key, or an event) has started,
    completed as expected, printed a line `pattern` finds, or (an event) is set."""

    kind: str  # one of CONDITION_KINDS
    subject: Name
    pattern: str | None
    where: JsonPath

    @property
    def text(self) -> str:
        """The condition in words, for messages."""
        if self.kind == "printed":
            return f"{self.subject.text} printed a line matching {self.pattern!r}"
        if self.kind == "event":
            return f"event {self.subject.text} is set"
        return f"{self.subject.text} {'has started' if self.kind == 'started' else 'completed as expected'}"


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
    each: Sequence[Any] | None = None  # one replica per item (a tuple, or a range), for `$each`
    fail_fast: bool | None = None  # None: as the workflow says
    restart: RestartPolicy | None = None
    start_after: tuple[StartCondition, ...] = ()
    start_timeout: float | None = None
    max_run_time: float | None = None
    env: Mapping[str, str | None] = dataclasses.field(default_factory=dict)
    cwd: Name | None = None

    def replica_count(self, cpus: int | None = None) -> int:
        """How many processes this entry runs on a machine with `cpus` CPUs (default: this one)."""
        if self.each is not None:
            return len(self.each)
        if isinstance(self.replicas, PerCpu):
            return self.replicas.count * (cpus or os.cpu_count() or 1)
        return self.replicas

    @property
    def name_template(self) -> str | None:
        """The name with `{replica}` (or `{number}`) where the index goes; None keeps
        multiprocessing's name."""
        if self.name is None:
            return None
        alone = self.replicas == 1 and (self.each is None or len(self.each) == 1)
        if alone or "{replica" in self.name or "{number" in self.name:
            return self.name
        return self.name + "-{replica}"

    def names(self, cpus: int | None = None) -> list[str | None]:
        """The process name of each replica (None: multiprocessing picks it)."""
        template = self.name_template
        count = self.replica_count(cpus)
        if template is None:
            return [None] * count
        return [template.format(replica=index, number=index + 1) for index in range(count)]


_REPLICA_FORMAT = re.compile(r"0?[0-9]{0,2}d?")  # `{replica:02d}` and the like: a width, zero-padded or not


def template_problem(template: str) -> str | None:
    """What is wrong with a process name template, or None: only `{replica}` and `{number}`
    are filled in."""
    try:
        fields = [(field, spec, conversion) for _, field, spec, conversion in string.Formatter().parse(template)]
    except ValueError as error:
        return f"{error} (write '{{{{' for a literal brace)"
    for field, spec, conversion in fields:
        if field is None:
            continue
        if field not in ("replica", "number"):
            return f"unknown field '{{{field}}}': only '{{replica}}' (from 0) and '{{number}}' (from 1) are filled in"
        if conversion or not _REPLICA_FORMAT.fullmatch(spec or ""):
            written = "{" + field + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
            return f"'{{{field}}}' takes at most a width, like '{{{field}:02d}}', not '{written}'"
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
    of `per`), one `items[0]` made for each item of `each`, or whatever the `source` callable
    returns."""

    kind: ClassVar[str] = "put"
    queue: Name
    items: tuple[Any, ...]
    count: int
    per: Name | None
    source: str | None
    args: tuple[Any, ...]
    kwargs: Mapping[str, Any]
    where: JsonPath
    each: Sequence[Any] | None = None

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


@dataclass(frozen=True)
class PipeEnd:
    """`name.0` or `name.1` in a step: one end of a pipe."""

    text: str
    where: JsonPath

    @property
    def pipe(self) -> str:
        return self.text.rpartition(".")[0]

    @property
    def end(self) -> int:
        return int(self.text.rpartition(".")[2])


def _pipes(ends: Iterable[PipeEnd]) -> tuple[Subject, ...]:
    return tuple(Subject(Name(end.pipe, end.where), frozenset({"pipe"}), "a pipe", "unknown-pipe") for end in ends)


SHOWN_KINDS = frozenset(KIND_WORDS) - {"pipe", "lock", "rlock", "condition"} | {"result"}  # what `show` reads


@dataclass(frozen=True)
class Show:
    """Log the state of these objects, as a script's parent prints them."""

    kind: ClassVar[str] = "show"
    objects: tuple[Name, ...]
    timeout: float | None  # None: as long as it takes
    where: JsonPath

    def subjects(self) -> tuple[Subject, ...]:
        """What it names, to be checked (see rules.step_subjects)."""
        return tuple(Subject(name, SHOWN_KINDS, "an object to show", "unknown-object") for name in self.objects)


@dataclass(frozen=True)
class Recv:
    """Receive `count` messages on these pipe ends (None: until each is at end of file)."""

    kind: ClassVar[str] = "recv"
    ends: tuple[PipeEnd, ...]
    count: int | None
    timeout: float | None
    where: JsonPath

    def subjects(self) -> tuple[Subject, ...]:
        """What it names, to be checked (see rules.step_subjects)."""
        return _pipes(self.ends)


@dataclass(frozen=True)
class Close:
    """Close the parent's copy of these pipe ends."""

    kind: ClassVar[str] = "close"
    ends: tuple[PipeEnd, ...]
    where: JsonPath

    def subjects(self) -> tuple[Subject, ...]:
        """What it names, to be checked (see rules.step_subjects)."""
        return _pipes(self.ends)


@dataclass(frozen=True)
class PoolSpec:
    """One `pools` entry: a multiprocessing.Pool, hosted by a process of its own."""

    name: str
    processes: int | PerCpu | None  # None: one per CPU, as Pool() has it
    initializer: str | None
    initargs: tuple[Any, ...]
    maxtasksperchild: int | None
    where: JsonPath

    def size(self, cpus: int | None = None) -> int:
        """How many workers the pool has on a machine with `cpus` CPUs (default: this one)."""
        cpus = cpus or os.cpu_count() or 1
        if isinstance(self.processes, PerCpu):
            return self.processes.count * cpus
        return self.processes or cpus


MAP_KINDS = ("map", "starmap", "imap_unordered", "apply")


@dataclass(frozen=True)
class Map:
    """Calls of `function` in a pool's workers: over `items` (map, starmap, imap_unordered), or
    one with `args` and `kwargs` (apply); the results logged, and kept or put on a queue."""

    kind: str  # one of MAP_KINDS
    pool: Name
    function: str
    items: Any  # parsed: a tuple, a range, a Reference, a Built; None for apply
    args: tuple[Any, ...]
    kwargs: Mapping[str, Any]
    chunksize: int | None
    timeout: float | None
    keep: Name | None
    put: Name | None
    log: str  # all, chunks, each or none
    may_fail: bool
    where: JsonPath

    def subjects(self) -> tuple[Subject, ...]:
        """What it names, to be checked (see rules.step_subjects)."""
        pool = Subject(self.pool, frozenset({"pool"}), "a pool", "unknown-pool")
        return (pool, *(_queue(self.put) if self.put is not None else ()))


@dataclass(frozen=True)
class Call:
    """A call of `function` in a short-lived process of its own, its return value logged and
    kept as `keep`."""

    kind: ClassVar[str] = "call"
    function: str
    args: tuple[Any, ...]
    kwargs: Mapping[str, Any]
    keep: Name | None
    name: str  # its process's: `name`, or the callable's own
    timeout: float | None
    where: JsonPath

    def subjects(self) -> tuple[Subject, ...]:
        """What it names, to be checked (see rules.step_subjects)."""
        return ()


Step = (
    Start
    | Join
    | Terminate
    | Put
    | Get
    | JoinQueue
    | Wait
    | SetEvent
    | ClearEvent
    | Sleep
    | Show
    | Recv
    | Close
    | Map
    | Call
)
SHOW_TIMEOUT = 5.0  # the schema's default for a show step's `timeout`


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
    pools: Mapping[str, PoolSpec] = dataclasses.field(default_factory=dict)
    backend: str | None = None  # multiprocessing (None: as the command line says) or dask
    fail_fast: bool = False

    def fails_fast(self, spec: ProcessSpec) -> bool:
        """Whether this process's unexpected last end stops the run: its own say, else the run's."""
        return self.fail_fast if spec.fail_fast is None else spec.fail_fast

    def kept(self) -> dict[str, tuple[int, Name]]:
        """The results steps keep (`keep: NAME`), by name: the index of the first step that
        keeps each, and where."""
        found: dict[str, tuple[int, Name]] = {}
        for index, step in enumerate(self.steps):
            if isinstance(step, (Map, Call)) and step.keep is not None:
                found.setdefault(step.keep.text, (index, step.keep))
        return found

    @property
    def folder(self) -> Path:
        return Path(self.path).resolve().parent

    def python_folders(self) -> list[Path]:
        """The `pythonpath` folders as absolute paths, in order."""
        return [self.folder / entry.text for entry in self.pythonpath]

    def receivers(self, name: str) -> list[ProcessSpec]:
        """The processes that get the shared object `name` in their args, kwargs or `each`,
        itself or inside an object of `objects` they get (an object of the user's holding a
        lock)."""
        holders = {name} | {
            shared.name
            for shared in self.objects.values()
            if shared.kind == "object"
            and any(ref.name == name for ref in references((shared.options["args"], shared.options["kwargs"])))
        }
        return [
            spec
            for spec in self.processes.values()
            if any(reference.name in holders for reference in references((spec.args, spec.kwargs, spec.each or ())))
        ]

    def shown(self, name: str) -> bool:
        """Whether a step of the parent's reads the object `name` (shows it, or reads a pipe of
        that name), or an object of `objects` that the parent puts on a queue holds it."""
        for step in self.steps:
            if isinstance(step, Show) and any(shown.text == name for shown in step.objects):
                return True
            if isinstance(step, (Recv, Close)) and any(end.pipe == name for end in step.ends):
                return True
            if isinstance(step, Put) and any(ref.name == name for ref in references((step.items, step.each or ()))):
                return True
        return False

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


def callable_name(function: str) -> str:
    """The name a call step's process has by default: `partition` for `jobs:Mapper.partition`."""
    return function.rpartition(":")[2].rpartition(".")[2]


def _pool_items(value: Any, where: JsonPath) -> Any:
    if isinstance(value, dict) and "range" in value and "$call" not in value:
        return as_range(value["range"])
    return parse_arguments(value, where)


def _pool(name: str, entry: Mapping[str, Any] | None, where: JsonPath) -> PoolSpec:
    entry = entry or {}
    processes = entry.get("processes")
    return PoolSpec(
        name=name,
        processes=PerCpu(int(processes["per_cpu"])) if isinstance(processes, dict) else processes,
        initializer=entry.get("initializer"),
        initargs=parse_arguments(entry.get("initargs", []), (*where, "initargs")),
        maxtasksperchild=entry.get("maxtasksperchild"),
        where=where,
    )


def _ends(value: Any, where: JsonPath) -> tuple[PipeEnd, ...]:
    return tuple(PipeEnd(name.text, name.where) for name in _names(value, where))


def _tuple(values: Any) -> tuple[Any, ...]:
    return tuple(values) if isinstance(values, list) else (values,)


EACH_LIMIT = 100_000  # items of `each` or of a range: the schema's bound for a list, a rule's for a range


def as_range(bounds: Any) -> range:
    """`{range: N}` or `{range: [start, stop, step]}` as Python's range, lazily: a range of
    10**12 items costs nothing until a rule finds it too long. A step of 0 (which range()
    refuses) is an empty range here; `rules.ranges` says what is wrong."""
    arguments = bounds if isinstance(bounds, list) else [bounds]
    try:
        return range(*arguments)
    except (ValueError, TypeError):
        return range(0)


def range_size(items: range) -> int:
    """len(items), also for a range longer than len() can say (sys.maxsize items)."""
    if items.step > 0:
        return max(0, (items.stop - items.start + items.step - 1) // items.step)
    return max(0, (items.start - items.stop - items.step - 1) // -items.step)


def each_items(value: Any, where: JsonPath) -> Sequence[Any] | None:
    """`each:` as its items: a list as written, or `{range: ...}` as Python's range has it."""
    if value is None:
        return None
    if isinstance(value, dict):
        items = as_range(value["range"])
        # Too many to spell out as replicas (the rule `ranges` says so): none, for the rest.
        return items if range_size(items) <= EACH_LIMIT else range(0)
    return tuple(parse_arguments(value, where))


def _restart(value: Any, where: JsonPath) -> RestartPolicy | None:
    options: Mapping[str, Any] = value if isinstance(value, dict) else {"when": value}
    if options.get("when", "never") == "never":
        return None
    backoff = options.get("backoff") or {}
    return RestartPolicy(
        when=options["when"],
        max_restarts=int(options.get("max_restarts", 3)),
        within=options.get("within"),
        initial=float(backoff.get("initial", 0.1)),
        factor=float(backoff.get("factor", 2)),
        longest=float(backoff.get("max", 5)),
        where=where,
    )


def _conditions(value: Any, where: JsonPath) -> tuple[StartCondition, ...]:
    if value is None:
        return ()
    listed = value if isinstance(value, list) else [value]
    found = []
    for index, condition in enumerate(listed):
        at = (*where, index) if isinstance(value, list) else where
        kind = next(kind for kind in CONDITION_KINDS if kind in condition)
        found.append(StartCondition(kind, Name(condition[kind], (*at, kind)), condition.get("pattern"), at))
    return tuple(found)


def _environment(value: Mapping[str, Any]) -> dict[str, str | None]:
    """`env:` as the strings os.environ holds (`true` as `true`, as a shell would write it)."""

    def text(item: Any) -> str | None:
        if item is None or isinstance(item, str):
            return item
        return str(item).lower() if isinstance(item, bool) else str(item)

    return {str(name): text(item) for name, item in value.items()}


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
        each=each_items(entry.get("each"), (*where, "each")),
        fail_fast=entry.get("fail_fast"),
        restart=_restart(entry.get("restart", "never"), (*where, "restart")),
        start_after=_conditions(entry.get("start_after"), (*where, "start_after")),
        start_timeout=entry.get("start_timeout"),
        max_run_time=entry.get("max_run_time"),
        env=_environment(entry.get("env") or {}),
        cwd=Name(entry["cwd"], (*where, "cwd")) if entry.get("cwd") else None,
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
            each_items(options.get("each"), (*where, "each")),
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
    if kind == "show":
        shown = _names(options["object"], (*where, "object")) if options else _names(value, where)
        return Show(shown, options.get("timeout", SHOW_TIMEOUT), where)
    if kind == "recv":
        ends = _ends(options["pipe"], (*where, "pipe")) if options else _ends(value, where)
        count = None if options.get("until") == "eof" else int(options.get("count", 1))
        return Recv(ends, count, options.get("timeout"), where)
    if kind == "close":
        return Close(_ends(value, where), where)
    if kind == "call":
        function = options["function"]
        return Call(
            function=function,
            args=parse_arguments(options.get("args", []), (*where, "args")),
            kwargs=parse_arguments(options.get("kwargs", {}), (*where, "kwargs")),
            keep=Name(options["keep"], (*where, "keep")) if "keep" in options else None,
            name=options.get("name") or callable_name(function),
            timeout=options.get("timeout"),
            where=where,
        )
    if kind in MAP_KINDS:
        return Map(
            kind=kind,
            pool=Name(options["pool"], (*where, "pool")),
            function=options["function"],
            items=None if kind == "apply" else _pool_items(options["items"], (*where, "items")),
            args=parse_arguments(options.get("args", []), (*where, "args")),
            kwargs=parse_arguments(options.get("kwargs", {}), (*where, "kwargs")),
            chunksize=options.get("chunksize"),
            timeout=options.get("timeout"),
            keep=Name(options["keep"], (*where, "keep")) if "keep" in options else None,
            put=Name(options["put"], (*where, "put")) if "put" in options else None,
            log=options.get("log", "all"),
            may_fail=bool(options.get("may_fail", False)),
            where=where,
        )
    raise ValueError(f"unknown step kind {kind!r}")  # the schema admits no other


def from_data(data: Mapping[str, Any], path: str) -> Workflow:
    """The workflow of a document that passed the schema."""
    objects: dict[str, SharedObject] = {}
    for section in SECTIONS:
        for name, options in (data.get(section) or {}).items():
            options = options or {}
            if section == "objects":
                where = (section, name)
                options = {
                    "call": options["call"],
                    "args": parse_arguments(options.get("args", []), (*where, "args")),
                    "kwargs": parse_arguments(options.get("kwargs", {}), (*where, "kwargs")),
                }
            # A name in two sections is a rule's problem to report; the first one stands.
            objects.setdefault(name, SharedObject(name, _object_kind(section, options), options, (section, name)))
    processes = {key: _process(key, entry, ("processes", key)) for key, entry in (data.get("processes") or {}).items()}
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
        backend=data.get("backend"),
        fail_fast=bool(data.get("fail_fast", False)),
        pythonpath=_names(data.get("pythonpath", ["."]), ("pythonpath",)),
        multiprocessing_log=data.get("multiprocessing_log"),
        objects=objects,
        processes=processes,
        steps=steps,
        pools={name: _pool(name, entry, ("pools", name)) for name, entry in (data.get("pools") or {}).items()},
    )
