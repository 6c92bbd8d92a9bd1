"""The typed workflow: what the checker's rules and the backends read."""

from __future__ import annotations

import pytest

from runner.document import parse
from runner.workflow import (
    Expectation,
    Join,
    Name,
    PerCpu,
    Put,
    Reference,
    ReplicaIndex,
    Start,
    Terminate,
    Workflow,
    from_data,
    parse_arguments,
)
from tests.support import WORKFLOWS


def load(text: str, path: str = "/somewhere/w.yaml") -> Workflow:
    document, problems = parse(text, path)
    assert document is not None and problems == []
    return from_data(document.data, path)


def test_arguments_turn_dollar_strings_into_references_at_any_depth() -> None:
    parsed = parse_arguments([1, "$q", ["$p.1", {"k": "$replica"}], "$$literal", "plain"], ("args",))
    assert parsed[0] == 1
    assert parsed[1] == Reference("$q", ("args", 1), "q", None)
    assert (parsed[1].name, parsed[1].end) == ("q", None)
    assert (parsed[2][0].name, parsed[2][0].end) == ("p", 1)
    assert parsed[2][1]["k"] == ReplicaIndex(("args", 2, 1, "k"))
    assert parsed[3:] == ("$literal", "plain")
    assert Reference.parse("$ no", ()).name is None
    assert Reference.parse("$p." + "9" * 5000, ()).name is None  # no int() of a 5000-digit end


@pytest.mark.parametrize(
    "entry,names",
    [
        ("{target: m:f}", ["w"]),
        ("{target: m:f, replicas: 3}", ["w-0", "w-1", "w-2"]),
        ("{target: m:f, replicas: 2, name: worker}", ["worker-0", "worker-1"]),
        ("{target: m:f, replicas: 2, name: 'worker {replica} of 2'}", ["worker 0 of 2", "worker 1 of 2"]),
        ("{target: m:f, name: worker 1}", ["worker 1"]),
        ("{target: m:f, replicas: 2, name: null}", [None, None]),
    ],
)
def test_process_names(entry: str, names: list[str | None]) -> None:
    workflow = load(f"version: 1\nprocesses:\n  w: {entry}\n")
    assert workflow.processes["w"].names() == names


def test_replicas_per_cpu_follow_the_machine() -> None:
    spec = load("version: 1\nprocesses:\n  w: {target: m:f, replicas: {per_cpu: 2}}\n").processes["w"]
    assert spec.replicas == PerCpu(2)
    assert spec.replica_count(cpus=3) == 6
    assert len(spec.names(cpus=3)) == 6


def test_steps_in_shorthand_and_full_form_read_the_same() -> None:
    workflow = load(
        "version: 1\nqueues: {q: {}}\nprocesses: {a: {target: m:f}, b: {target: m:f}}\nsteps:\n"
        "  - start: [a, b]\n  - join: a\n  - join: {process: [b], timeout: 2}\n  - terminate: a\n"
        "  - put: {queue: q, item: null, per: a}\n  - put: {queue: q, from: m:items, args: [3]}\n"
    )
    start, join_a, join_b, terminate, pills, produced = workflow.steps
    assert isinstance(start, Start) and [n.text for n in start.processes] == ["a", "b"]
    assert isinstance(join_a, Join) and (join_a.processes[0].text, join_a.timeout) == ("a", None)
    assert join_a.processes[0].where == ("steps", 1, "join")
    assert isinstance(join_b, Join) and (join_b.processes[0].where, join_b.timeout) == (
        ("steps", 2, "join", "process", 0),
        2,
    )
    assert isinstance(terminate, Terminate) and terminate.grace == 5.0
    assert isinstance(pills, Put) and pills.items == (None,) and pills.per is not None and pills.per.text == "a"
    assert isinstance(produced, Put) and (produced.source, produced.args) == ("m:items", (3,))


def test_object_kinds_and_defaults() -> None:
    workflow = load(
        "version: 1\nqueues: {a: {kind: joinable}, b: {kind: simple}, c: }\nlocks: {r: {kind: rlock}}\n"
        "semaphores: {s: {bounded: true}}\nprocesses: {p: {target: m:f, expect: {signal: SIGTERM}}}\n"
    )
    kinds = {name: shared.kind for name, shared in workflow.objects.items()}
    assert kinds == {"a": "joinable_queue", "b": "simple_queue", "c": "queue", "r": "rlock", "s": "bounded_semaphore"}
    assert workflow.name == "w" and workflow.start_method is None
    assert [str(folder) for folder in workflow.python_folders()] == ["/somewhere"]
    signal = Name("SIGTERM", ("processes", "p", "expect", "signal"))
    assert workflow.processes["p"].expect == Expectation((), (signal,))


def test_the_model_imports_nothing_of_multiprocessing() -> None:
    import ast

    source = (WORKFLOWS.parent / "runner" / "workflow.py").read_text()
    imported = {
        alias.name for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Import) for alias in node.names
    }
    imported |= {node.module or "" for node in ast.walk(ast.parse(source)) if isinstance(node, ast.ImportFrom)}
    assert not any(name.startswith("multiprocessing") for name in imported)


def test_defaults_written_in_the_model_are_the_schemas() -> None:
    from runner.schema import load_schema
    from runner.workflow import TERMINATE_GRACE

    terminate = load_schema()["$defs"]["step"]["properties"]["terminate"]["oneOf"][1]["properties"]
    assert terminate["grace"]["default"] == TERMINATE_GRACE
    assert load_schema()["properties"]["pythonpath"]["default"] == ["."]
    workflow = load("version: 1\nprocesses: {p: {target: m:f}}\n")
    assert [entry.text for entry in workflow.pythonpath] == ["."]


def test_dollars_in_put_data_are_escaped_as_everywhere() -> None:
    workflow = load(
        "version: 1\nqueues: {q: {}}\nprocesses: {p: {target: m:f, args: [$q]}}\nsteps:\n"
        "  - put: {queue: q, items: [$$5, plain, {cost: $$3}]}\n"
    )
    [put] = workflow.steps
    assert isinstance(put, Put) and put.items == ("$5", "plain", {"cost": "$3"})


def test_each_and_built_objects_and_the_parent_side_steps_read_as_written() -> None:
    flow = load(
        "version: 1\nvalues: {v: {}}\npipes: {p: {}}\n"
        "processes:\n  w: {target: m:f, each: [[1, 2], [3, 4]],\n"
        "      args: [$each.1, $number, {$call: m:Task, args: [$each]}]}\n"
        "steps:\n  - show: {object: v, timeout: null}\n  - show: v\n  - recv: {pipe: [p.0], until: eof}\n"
        "  - put: {queue: q, item: {$import: m:f}, each: {range: [1, 7, 2]}}\n"
    )
    from runner.plan import make_plan
    from runner.workflow import Built, Recv, Show

    spec = flow.processes["w"]
    assert spec.replica_count() == 2 and spec.names() == ["w-0", "w-1"]
    [first, second] = make_plan(flow).processes
    assert first.args[:2] == (2, 1) and second.args[:2] == (4, 2)
    built = second.args[2]
    assert isinstance(built, Built) and built.call and built.target == "m:Task" and built.args == ((3, 4),)
    show_forever, show = flow.steps[0], flow.steps[1]
    assert isinstance(show_forever, Show) and show_forever.timeout is None
    assert isinstance(show, Show) and show.timeout == 5.0
    recv = flow.steps[2]
    assert isinstance(recv, Recv) and recv.count is None and [end.text for end in recv.ends] == ["p.0"]
    put = flow.steps[3]
    assert isinstance(put, Put) and list(put.each or ()) == [1, 3, 5]


@pytest.mark.parametrize(
    "bounds", [(0, 10, 3), (10, 0, -3), (5, 1), (1, 5), (0,), (7,), (-4, 4, 2), (3, -3, -1), (0, 0)]
)
def test_the_size_of_a_range_is_its_length(bounds: tuple[int, ...]) -> None:
    from runner.workflow import range_size

    assert range_size(range(*bounds)) == len(range(*bounds))


def test_a_range_too_long_for_len_is_refused_without_an_error() -> None:
    from runner.checker import check_text

    text = "version: 1\nprocesses:\n  p: {target: os:getpid, each: {range: [0, 9223372036854775808]}}\n"
    [problem] = check_text(text, imports=False).problems
    assert problem.code == "range" and "9,223,372,036,854,775,808 items" in problem.message
