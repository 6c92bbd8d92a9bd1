"""Cross-field rules the schema cannot express, each a small function yielding problems.

Every rule takes the typed workflow and the document it came from (for positions), and may
assume the document passed the schema.
"""

from __future__ import annotations

import array
import math
import re
import signal
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, cast

from runner import orchestration
from runner.document import Document
from runner.problem import JsonPath, Problem, did_you_mean
from runner.workflow import (
    EACH_LIMIT,
    KIND_WORDS,
    RESERVED_NAMES,
    SECTIONS,
    Built,
    Call,
    Close,
    EachItem,
    Get,
    Join,
    Map,
    Name,
    Put,
    Recv,
    Reference,
    ReplicaIndex,
    Start,
    Terminate,
    Workflow,
    as_written,
    builds,
    callable_name,
    placeholders,
    range_size,
    references,
    template_problem,
)

Rule = Callable[[Workflow, Document], Iterator[Problem]]

# The schema's pattern for a target (a test keeps them equal), for the targets it cannot see:
# those inside plain data, such as `{$call: jobs:Task}`.
TARGET = re.compile(
    r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*"
)


def _describe(workflow: Workflow, name: str) -> str:
    if name in workflow.processes:
        return "a process"
    if name in workflow.pools:
        return "a pool"
    if name in workflow.kept():
        return "a result a step keeps"
    return KIND_WORDS[workflow.objects[name].kind]


def _kind_of(workflow: Workflow, name: str) -> str | None:
    """What `name` is: process, pool, result (kept by a step), or a shared object's kind."""
    if name in workflow.processes:
        return "process"
    if name in workflow.pools:
        return "pool"
    if name in workflow.objects:
        return workflow.objects[name].kind
    if name in workflow.kept():
        return "result"
    return None


_RESERVED_MEANINGS = {
    "replica": "the replica's index",
    "number": "the replica's number from 1",
    "each": "the item of `each`",
}


def unique_names(workflow: Workflow, document: Document) -> Iterator[Problem]:
    """Processes and shared objects share one namespace: `$name` must mean one thing."""
    seen: dict[str, str] = {}
    for section in (*SECTIONS, "pools", "processes"):
        for name in document.data.get(section) or {}:
            if name in RESERVED_NAMES:
                yield document.problem(
                    (section, name),
                    f"'{name}' is reserved (`${name}` means {_RESERVED_MEANINGS[name]}): pick another name",
                    "reserved-name",
                    key=True,
                )
            if name in seen:
                yield document.problem(
                    (section, name),
                    f"'{name}' is already the name of {seen[name]}; names must be unique "
                    "across processes and shared objects",
                    "duplicate-name",
                    key=True,
                )
            else:
                seen[name] = f"an entry of '{section}'"


def process_name_templates(workflow: Workflow, document: Document) -> Iterator[Problem]:
    """Names may use `{replica}` and nothing else; every replica's final name is unique."""
    owners: dict[str, str] = {}
    for spec in workflow.processes.values():
        # An explicit name is pointed at; a default one (the key) falls back to the key.
        where = (*spec.where, "name")
        problem = template_problem(spec.name) if spec.name is not None else None
        if problem is not None:
            yield document.problem(where, f"invalid process name: {problem}", "name-template")
            continue
        for name in spec.names():
            if name is None:
                continue
            if name not in owners:
                owners[name] = spec.key
            elif owners[name] != spec.key:
                yield document.problem(
                    where,
                    f"process '{spec.key}' would be named '{name}', like '{owners[name]}': give it another name",
                    "duplicate-process-name",
                )
                break
            else:
                yield document.problem(
                    where, f"the replicas of '{spec.key}' would share the name '{name}'", "duplicate-process-name"
                )
                break
    owners.update(dict.fromkeys(workflow.pools, "a pool"))
    for step in workflow.steps:
        if isinstance(step, Call) and step.name in owners:
            where = (*step.where, "name") if step.name != callable_name(step.function) else (*step.where, "function")
            yield document.problem(
                where,
                f"the process of this call would be named '{step.name}', like '{owners[step.name]}': give it a `name`",
                "duplicate-process-name",
            )


def argument_references(workflow: Workflow, document: Document) -> Iterator[Problem]:
    """Every `$reference` in args and kwargs names a shared object, and pipes name an end; an
    object of the `objects` section is given only shared objects and objects above it."""
    for spec in workflow.processes.values():
        for reference in references((spec.args, spec.kwargs, spec.each or ())):
            yield from _check_reference(workflow, document, reference)
    above: set[str] = set()
    for shared in workflow.objects.values():
        if shared.kind != "object":
            continue
        for reference in references((shared.options["args"], shared.options["kwargs"])):
            made = workflow.objects.get(str(reference.name))
            if made is not None and made.kind == "object":
                if reference.name not in above:
                    yield document.problem(
                        reference.where,
                        f"'${reference.name}' is made "
                        + ("by this very entry" if reference.name == shared.name else "after this object")
                        + ": an object is given only those above it in `objects`",
                        "object-order",
                    )
                continue
            yield from _check_reference(workflow, document, reference)
        above.add(shared.name)


def placeholders_in_place(workflow: Workflow, document: Document) -> Iterator[Problem]:
    """`$replica`, `$number` and `$each` where there is a replica or an item to fill them with,
    `$each.part` a part every item has, and objects to build written in their one form."""
    for spec in workflow.processes.values():
        for found in placeholders((spec.args, spec.kwargs)):
            if isinstance(found, EachItem):
                yield from _each_fits(document, found, spec.each, f"process '{spec.key}'")
        yield from _only_data(document, spec.each or (), "in `each`", "an item of `each` is data for one replica")
    for shared in workflow.objects.values():
        if shared.kind == "object":
            arguments = (shared.options["args"], shared.options["kwargs"])
            yield from _only_data(document, arguments, "here", "an object of `objects` is made once, for every process")
    for pool in workflow.pools.values():
        yield from _only_data(document, pool.initargs, "here", "a pool's workers share its initargs")
    for step in workflow.steps:
        if isinstance(step, (Map, Call)):
            given = (step.items if isinstance(step, Map) else (), step.args, step.kwargs)
            yield from _only_data(document, given, f"in a {step.kind} step", "it has no replicas nor `each`")
        if isinstance(step, Put):
            for found in placeholders(step.items):
                if isinstance(found, EachItem):
                    yield from _each_fits(document, found, step.each, "this put")
            yield from _only_data(document, (step.args, step.kwargs), "in a put's arguments", "they are given once")
            yield from _only_data(document, step.each or (), "in `each`", "an item of `each` is data for one item")
            for found in placeholders(step.items):
                if isinstance(found, ReplicaIndex):
                    yield document.problem(
                        found.where,
                        f"'{found.text}' has no replica to stand for in a put "
                        f"(write '${found.text}' for a literal '$')",
                        "bad-reference",
                    )
    for built in all_builds(workflow):
        yield from _built_form(document, built)


def _each_fits(document: Document, found: EachItem, items: Sequence[Any] | None, owner: str) -> Iterator[Problem]:
    if items is None:
        yield document.problem(
            found.where,
            f"'{found.text}' stands for an item of `each`, and {owner} has no `each` "
            f"(write '${found.text}' for a literal '$')",
            "bad-reference",
        )
        return
    for index, item in enumerate(items):
        try:
            found.pick(item)
        except (LookupError, TypeError):
            yield document.problem(
                found.where,
                f"'{found.text}' does not fit item {index} of `each`, {_shown_item(item)}",
                "bad-reference",
            )
            return


def _shown_item(item: Any) -> str:
    text = repr(as_written(item))
    return text if len(text) <= 60 else text[:60] + "..."


def _only_data(document: Document, value: Any, place: str, why: str) -> Iterator[Problem]:
    for found in placeholders(value):
        if isinstance(found, (EachItem, ReplicaIndex)):
            yield document.problem(
                found.where,
                f"'{found.text}' cannot be used {place}: {why} (write '${found.text}' for a literal '$')",
                "bad-reference",
            )


def all_builds(workflow: Workflow) -> Iterator[Built]:
    """Every object to build the workflow writes (`{$call: ...}`, `{$import: ...}`), in order."""
    for spec in workflow.processes.values():
        yield from builds((spec.args, spec.kwargs, spec.each or ()))
    for shared in workflow.objects.values():
        if shared.kind == "object":
            yield from builds((shared.options["args"], shared.options["kwargs"]))
    for pool in workflow.pools.values():
        yield from builds(pool.initargs)
    for step in workflow.steps:
        if isinstance(step, Put):
            yield from builds((step.items, step.args, step.kwargs, step.each or ()))
        elif isinstance(step, Map):
            yield from builds((step.items, step.args, step.kwargs))
        elif isinstance(step, Call):
            yield from builds((step.args, step.kwargs))


def _built_form(document: Document, built: Built) -> Iterator[Problem]:
    key = "$call" if built.call else "$import"
    if built.extra:
        allowed = "'args' and 'kwargs'" if built.call else "nothing else"
        yield document.problem(
            (*built.where, built.extra[0]),
            f"'{built.extra[0]}' does not go with '{key}', which takes {allowed}"
            + ("" if built.call else " (use '$call' to call it)"),
            "built-object",
            key=True,
        )
    if not TARGET.fullmatch(built.target):
        yield document.problem(
            (*built.where, key),
            f"'{built.target}' is not in the expected form: `module:attribute`, such as `jobs:Task`",
            "built-object",
        )


def _check_reference(workflow: Workflow, document: Document, reference: Reference) -> Iterator[Problem]:
    name, end = reference.name, reference.end
    if name is None:
        yield document.problem(
            reference.where,
            f"'{reference.text}' is not a reference: write '$name' (or "
            "'$pipe.0' for a pipe's end); start with '$$' for a literal '$'",
            "bad-reference",
        )
        return
    shared = workflow.objects.get(name)
    if shared is None and name in workflow.kept():
        return  # a result: kept_results says where it may go
    if shared is None and (name in workflow.processes or name in workflow.pools):
        yield document.problem(
            reference.where,
            f"'${name}' is {_describe(workflow, name)}: only shared objects can be passed to a process",
            "wrong-kind",
        )
    elif shared is None:
        yield document.problem(
            reference.where,
            f"unknown shared object '${name}'{did_you_mean(name, workflow.objects)}",
            "unknown-reference",
        )
    elif shared.kind == "pipe" and end is None:
        yield document.problem(
            reference.where, f"'${name}' is a pipe, which has two ends: pass '${name}.0' or '${name}.1'", "pipe-end"
        )
    elif shared.kind == "pipe" and end not in (0, 1):
        yield document.problem(reference.where, f"a pipe has ends 0 and 1, not {end}", "pipe-end")
    elif shared.kind != "pipe" and end is not None:
        yield document.problem(
            reference.where, f"'${name}' is {_describe(workflow, name)}; only pipes have ends like '.{end}'", "pipe-end"
        )


def condition_locks(workflow: Workflow, document: Document) -> Iterator[Problem]:
    """A condition's `lock:` names a lock or an rlock."""
    for shared in workflow.objects.values():
        lock = shared.options.get("lock") if shared.kind == "condition" else None
        if not isinstance(lock, str):
            continue
        where = (*shared.where, "lock")
        if lock not in workflow.objects and lock not in workflow.processes:
            locks = [o.name for o in workflow.objects.values() if o.kind in ("lock", "rlock")]
            yield document.problem(where, f"unknown lock '{lock}'{did_you_mean(lock, locks)}", "unknown-reference")
        elif _describe(workflow, lock) not in ("a lock", "an rlock"):
            yield document.problem(where, f"'{lock}' is {_describe(workflow, lock)}, not a lock", "wrong-kind")


def _expect_kind(
    workflow: Workflow, document: Document, name: Name, wanted: Iterable[str], word: str, code: str
) -> Iterator[Problem]:
    kinds = set(wanted)
    actual = _kind_of(workflow, name.text)
    if actual is not None:
        if actual not in kinds:
            yield document.problem(
                name.where, f"'{name.text}' is {_describe(workflow, name.text)}, not {word}", "wrong-kind"
            )
        return
    candidates = [n for n in workflow.processes if "process" in kinds]
    candidates += [n for n in workflow.pools if "pool" in kinds]
    candidates += [n for n in workflow.kept() if "result" in kinds]
    candidates += [o.name for o in workflow.objects.values() if o.kind in kinds]
    yield document.problem(
        name.where, f"unknown {word.split(' ', 1)[1]} '{name.text}'{did_you_mean(name.text, candidates)}", code
    )


def step_subjects(workflow: Workflow, document: Document) -> Iterator[Problem]:
    """Steps, and start conditions, name things that exist and are of the right kind."""
    for spec in workflow.processes.values():
        for condition in spec.start_after:
            kind, word = ("event", "an event") if condition.kind == "event" else ("process", "a process")
            yield from _expect_kind(workflow, document, condition.subject, {kind}, word, f"unknown-{kind}")
    for step in workflow.steps:
        for subject in step.subjects():
            yield from _expect_kind(workflow, document, subject.name, subject.kinds, subject.word, subject.code)
        if isinstance(step, Get) and step.timeout is not None and _kind(workflow, step.queue) == "simple_queue":
            yield document.problem(
                (*step.where, "timeout"),
                f"'{step.queue.text}' is a simple queue, whose "
                "get() cannot time out: drop the timeout or use a plain queue",
                "wrong-kind",
            )


def _kind(workflow: Workflow, name: Name) -> str | None:
    shared = workflow.objects.get(name.text)
    return shared.kind if shared else None


def step_order(workflow: Workflow, document: Document) -> Iterator[Problem]:
    """A process is started once, and joined or terminated only after its start."""
    started: set[str] = set()
    for step in workflow.steps:
        if not isinstance(step, (Start, Join, Terminate)):
            continue
        for name in step.processes:
            if name.text not in workflow.processes:
                continue  # reported by step_subjects
            if isinstance(step, Start):
                if name.text in started:
                    yield document.problem(
                        name.where, f"'{name.text}' is started twice: a process can only be started once", "step-order"
                    )
                started.add(name.text)
            elif name.text not in started:
                verb = "joined" if isinstance(step, Join) else "terminated"
                yield document.problem(name.where, f"'{name.text}' is {verb} before any step starts it", "step-order")


def python_folders(workflow: Workflow, document: Document) -> Iterator[Problem]:
    """Each `pythonpath` entry is an existing folder."""
    for entry, folder in zip(workflow.pythonpath, workflow.python_folders(), strict=True):
        if "\0" in entry.text:
            yield document.problem(entry.where, "a path cannot contain a NUL character", "pythonpath")
            continue
        try:
            is_folder, exists = folder.is_dir(), folder.exists()
        except OSError as error:  # a name too long, a folder we may not enter
            yield document.problem(
                entry.where, f"pythonpath entry '{entry.text}' cannot be read: {error.strerror}", "pythonpath"
            )
            continue
        if not is_folder:
            what = "is not a folder" if exists else "does not exist"
            yield document.problem(
                entry.where, f"pythonpath entry '{entry.text}' {what} (looked for {_shown(folder)})", "pythonpath"
            )


def _shown(folder: Path) -> str:
    try:
        return str(folder.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(folder.resolve())


def expected_signals(workflow: Workflow, document: Document) -> Iterator[Problem]:
    """Expected signals are real signal names of this platform."""
    known = [name for name in signal.Signals.__members__ if not name.startswith("SIG_")]
    for spec in workflow.processes.values():
        for name in spec.expect.signals if spec.expect else ():
            if name.text not in known:
                message = f"unknown signal '{name.text}'{did_you_mean(name.text, known)}"
                yield document.problem(name.where, message, "unknown-signal")


_CHARACTER_TYPES = ("c", "u")


def shared_memory_values(workflow: Workflow, document: Document) -> Iterator[Problem]:
    """A shared value's or array's items fit its typecode."""
    for shared in workflow.objects.values():
        typecode = str(shared.options.get("type", "i"))
        if shared.kind == "value" and "value" in shared.options:
            yield from _fits_typecode(document, typecode, shared.options["value"], (*shared.where, "value"))
        elif shared.kind == "array":
            for index, item in enumerate(shared.options.get("items", [])):
                yield from _fits_typecode(document, typecode, item, (*shared.where, "items", index))


def _fits_typecode(document: Document, typecode: str, item: object, where: JsonPath) -> Iterator[Problem]:
    if typecode in _CHARACTER_TYPES:
        if not (isinstance(item, str) and len(item) == 1):
            yield document.problem(where, f"type '{typecode}' holds one character, not {item!r}", "value-type")
    elif isinstance(item, str):
        yield document.problem(where, f"type '{typecode}' holds numbers, not the string {item!r}", "value-type")
    elif isinstance(item, float) and typecode not in ("f", "d"):
        yield document.problem(where, f"type '{typecode}' holds integers, not {item!r}", "value-type")
    else:
        # ctypes wraps out-of-range integers silently (300 becomes 44 in a 'B'); array does not.
        try:
            array.array(typecode, [cast(Any, item)])
        except OverflowError:
            yield document.problem(where, f"type '{typecode}' cannot hold {item}{_range(typecode)}", "value-type")


def _range(typecode: str) -> str:
    if typecode in ("f", "d"):
        return ""
    bits = array.array(typecode).itemsize * 8
    low, high = (0, 2**bits - 1) if typecode.isupper() else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    return f": it holds {low} to {high}"


def step_data(workflow: Workflow, document: Document) -> Iterator[Problem]:
    """What a `put` or a pool step sends is data: the parent cannot send shared objects through
    a queue, but it can send objects of the workflow's own and the results steps kept before.
    A `call` starts a process: it may be given shared objects too."""
    kept = workflow.kept()
    for index, step in enumerate(workflow.steps):
        if isinstance(step, Put):
            found = references((step.items, step.args, step.kwargs, step.each or ()))
        elif isinstance(step, (Map, Call)):
            found = references((step.items if isinstance(step, Map) else (), step.args, step.kwargs))
        else:
            continue
        for reference in found:
            name = str(reference.name)
            if name in kept and name not in workflow.objects:
                if kept[name][0] >= index:
                    yield document.problem(
                        reference.where,
                        f"'${name}' is kept by step {kept[name][0] + 1}: only later steps can pass it on",
                        "step-order",
                    )
                continue
            shared = workflow.objects.get(name)
            if shared is not None and (shared.kind == "object" or isinstance(step, Call)):
                yield from _check_reference(workflow, document, reference)
                continue
            if shared is None and name not in workflow.processes and name not in workflow.pools:
                yield from _check_reference(workflow, document, reference)
                continue
            text = reference.text
            yield document.problem(
                reference.where,
                f"'{text}' is not resolved in a {step.kind}: what it sends is data (or an object of `objects`, or a "
                f"result a step kept), and shared objects reach processes only through their args (write '${text}' "
                "for a literal '$')",
                "bad-reference",
            )


def kept_results(workflow: Workflow, document: Document) -> Iterator[Problem]:
    """A name a step keeps is its own (not a process's, an object's or another step's), and
    only steps use it: processes and objects are made before the first step."""
    kept = workflow.kept()
    for index, step in enumerate(workflow.steps):
        keep = getattr(step, "keep", None)
        if keep is None:
            continue
        taken = _kind_of(workflow, keep.text)
        if taken not in (None, "result") or keep.text in RESERVED_NAMES:
            yield document.problem(
                keep.where, f"'{keep.text}' is already the name of {_describe(workflow, keep.text)}", "duplicate-name"
            )
        elif kept[keep.text][0] != index:
            yield document.problem(
                keep.where, f"'{keep.text}' is kept by step {kept[keep.text][0] + 1} already", "duplicate-name"
            )
    made_first = [references((spec.args, spec.kwargs, spec.each or ())) for spec in workflow.processes.values()]
    made_first += [references(pool.initargs) for pool in workflow.pools.values()]
    made_first += [
        references((shared.options["args"], shared.options["kwargs"]))
        for shared in workflow.objects.values()
        if shared.kind == "object"
    ]
    for found in made_first:
        for reference in found:
            if reference.name in kept and reference.name not in workflow.objects:
                yield document.problem(
                    reference.where,
                    f"'${reference.name}' is a result step {kept[reference.name][0] + 1} keeps, and processes, pools "
                    "and objects are made before the first step: pass it to a later step instead",
                    "step-order",
                )


def ranges(workflow: Workflow, document: Document) -> Iterator[Problem]:
    """A `{range: ...}` has a step other than 0; one in `each` makes 1 to EACH_LIMIT items."""
    places: list[tuple[JsonPath, bool]] = []
    for spec in workflow.processes.values():
        places.append(((*spec.where, "each"), True))
    for step in workflow.steps:
        if isinstance(step, Put):
            places.append(((*step.where, "each"), True))
        elif isinstance(step, Map):
            places.append(((*step.where, "items"), False))
    for where, each in places:
        written = _written(document.data, where)
        if not (isinstance(written, dict) and "range" in written and "$call" not in written):
            continue
        bounds = written["range"]
        arguments = bounds if isinstance(bounds, list) else [bounds]
        at = (*where, "range")
        if len(arguments) == 3 and arguments[2] == 0:
            yield document.problem(at, "a range's step cannot be 0", "range")
            continue
        count = range_size(range(*arguments))
        if each and count == 0:
            yield document.problem(at, f"range{tuple(arguments)} is empty: nothing would run", "range")
        elif each and count > EACH_LIMIT:
            yield document.problem(
                at, f"range{tuple(arguments)} has {count:,} items; `each` takes at most {EACH_LIMIT:,}", "range"
            )


def _written(data: Any, where: JsonPath) -> Any:
    """The value at `where` in the document's data, or None."""
    for part in where:
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int) and part < len(data):
            data = data[part]
        else:
            return None
    return data


def pipe_ends(workflow: Workflow, document: Document) -> Iterator[Problem]:
    """A pipe end is closed after the processes given it start, and read after that only if
    it is still open; reading to end of file needs the parent's copy of the other end closed
    first (or the end of file never comes)."""
    started: set[str] = set()
    closed: dict[str, int] = {}  # "p.1" -> the step that closed it
    for index, step in enumerate(workflow.steps):
        if isinstance(step, Start):
            for name in step.processes:
                started.add(name.text)
                spec = workflow.processes.get(name.text)
                given = (
                    {f"{ref.name}.{ref.end}" for ref in references((spec.args, spec.kwargs, spec.each or ()))}
                    if spec
                    else set()
                )
                for gone, at in closed.items():
                    if gone in given:
                        yield document.problem(
                            name.where,
                            f"'{name.text}' is given {gone}, which step {at + 1} closed before this start",
                            "step-order",
                        )
        ends = step.ends if isinstance(step, (Recv, Close)) else ()
        for end in ends:
            if _kind(workflow, Name(end.pipe, end.where)) != "pipe":
                continue  # reported by step_subjects
            if end.text in closed:
                yield document.problem(end.where, f"{end.text} was closed by step {closed[end.text] + 1}", "step-order")
            elif isinstance(step, Recv) and step.count is None:
                other = f"{end.pipe}.{1 - end.end}"
                if other not in closed:
                    yield document.problem(
                        end.where,
                        f"reading {end.text} to end of file needs mprun's copy of {other} closed first "
                        f"(a `close: {other}` step after the processes given it start), or the end of file never comes",
                        "recv-eof",
                    )
        if isinstance(step, Close):
            for end in step.ends:
                closed.setdefault(end.text, index)


def finite_durations(workflow: Workflow, document: Document) -> Iterator[Problem]:
    """Timeouts, graces and sleeps are finite: YAML's `.inf` and `.nan` are numbers to the schema."""
    for step in workflow.steps:
        for field in ("timeout", "grace", "seconds"):
            value = getattr(step, field, None)
            if isinstance(value, float) and not math.isfinite(value):
                where = step.where if field == "seconds" else (*step.where, field)
                hint = ": leave the timeout out (or null) to wait for ever" if field == "timeout" else ""
                yield document.problem(where, f"'{value}' is not a number of seconds{hint}", "duration")
    for shared in workflow.objects.values():
        timeout = shared.options.get("timeout")
        if isinstance(timeout, float) and not math.isfinite(timeout):
            yield document.problem(
                (*shared.where, "timeout"),
                f"'{timeout}' is not a number of seconds: leave the timeout out (or null) to wait for ever",
                "duration",
            )


RULES: tuple[Rule, ...] = (
    finite_durations,
    step_data,
    kept_results,
    ranges,
    placeholders_in_place,
    pipe_ends,
    unique_names,
    process_name_templates,
    argument_references,
    condition_locks,
    step_subjects,
    step_order,
    expected_signals,
    shared_memory_values,
    *orchestration.RULES,
)


def check(workflow: Workflow, document: Document) -> list[Problem]:
    """Every cross-field error of a schema-valid workflow (`python_folders` is the checker's to call)."""
    return [problem for rule in RULES for problem in rule(workflow, document)]
