"""The semantic rules, each on a small workflow written out as a user would."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.checker import check_text

HEAD = "version: 1\n"


def problems(body: str, folder: Path | None = None) -> list[tuple[int, int, str, str]]:
    path = str(folder / "w.yaml") if folder else "w.yaml"
    result = check_text(HEAD + body, path, imports=False)
    return [(p.line, p.column, p.severity, p.code) for p in result.problems]


def messages(body: str) -> list[str]:
    return [p.message for p in check_text(HEAD + body, "w.yaml", imports=False).problems]


def test_names_are_unique_across_processes_and_objects() -> None:
    body = "queues: {jobs: {}}\nevents: {jobs: {}}\nprocesses:\n  jobs: {target: m:f, args: [$jobs]}\n"
    found = problems(body)
    assert [(line, code) for line, _, _, code in found if code == "duplicate-name"] == [
        (3, "duplicate-name"),
        (5, "duplicate-name"),
    ]


def test_replica_is_a_reserved_name() -> None:
    assert (2, 10, "error", "reserved-name") in problems("queues: {replica: {}}\nprocesses: {p: {target: m:f}}\n")


def test_a_reference_must_name_a_shared_object() -> None:
    body = "queues: {tasks: {}}\nprocesses:\n  p: {target: m:f, args: [$taks]}\n  q: {target: m:f, args: [$p]}\n"
    assert (4, 27, "error", "unknown-reference") in problems(body)
    assert (5, 27, "error", "wrong-kind") in problems(body)
    assert "did you mean 'tasks'?" in " ".join(messages(body))


def test_references_inside_nested_arguments_and_kwargs_are_checked() -> None:
    body = "queues: {q: {}}\nprocesses:\n  p: {target: m:f, args: [[1, {a: $nope}]], kwargs: {out: $q, x: $$q}}\n"
    assert [code for *_, code in problems(body)] == ["unknown-reference"]


def test_pipes_are_passed_by_their_ends() -> None:
    body = (
        "pipes: {link: {}}\nqueues: {q: {}}\nprocesses:\n"
        "  a: {target: m:f, args: [$link]}\n  b: {target: m:f, args: [$link.2]}\n"
        "  c: {target: m:f, args: [$q.0]}\n  d: {target: m:f, args: [$link.0, $link.1, $q]}\n"
        "  e: {target: m:f, args: ['$ x']}\n"
    )
    codes = [(line, code) for line, _, _, code in problems(body)]
    assert codes == [(5, "pipe-end"), (6, "pipe-end"), (7, "pipe-end"), (9, "bad-reference")]


def test_a_condition_lock_must_be_a_lock() -> None:
    body = "events: {e: {}}\nconditions: {c: {lock: e}}\nprocesses: {p: {target: m:f, args: [$c, $e]}}\n"
    assert (3, 24, "error", "wrong-kind") in problems(body)


def test_steps_name_things_of_the_right_kind() -> None:
    body = (
        "queues: {q: {}, s: {kind: simple}}\nevents: {e: {}}\n"
        "processes: {p: {target: m:f, args: [$q, $s, $e]}}\nsteps:\n"
        "  - start: [p, ghost]\n  - put: {queue: e, item: 1}\n  - join_queue: q\n  - wait: q\n"
        "  - put: {queue: q, item: null, per: q}\n  - get: {queue: s, timeout: 1}\n  - join: p\n"
    )
    found = [(line, code) for line, _, _, code in problems(body)]
    assert found == [
        (6, "unknown-process"),
        (7, "wrong-kind"),
        (8, "wrong-kind"),
        (9, "wrong-kind"),
        (10, "wrong-kind"),
        (11, "wrong-kind"),
    ]


def test_joins_and_terminates_come_after_the_start_and_a_start_happens_once() -> None:
    body = (
        "processes: {p: {target: m:f}, q: {target: m:f}, r: {target: m:f}}\nsteps:\n"
        "  - join: p\n  - start: [p, q]\n  - start: q\n  - terminate: {process: [p, r]}\n"
    )
    found = [(line, severity, code) for line, _, severity, code in problems(body)]
    assert found == [
        (4, "error", "step-order"),
        (6, "error", "step-order"),
        (7, "error", "step-order"),
    ]


def test_process_names_use_only_replica_and_stay_unique() -> None:
    body = (
        "processes:\n  a: {target: m:f, replicas: 2, name: 'w {index}'}\n"
        "  b: {target: m:f, replicas: 2, name: 'w-{replica}'}\n  c: {target: m:f, name: w-1}\n"
        "  d: {target: m:f, name: 'x {'}\n"
    )
    found = [(line, code) for line, _, _, code in problems(body)]
    assert found == [(3, "name-template"), (5, "duplicate-process-name"), (6, "name-template")]


def test_pythonpath_folders_must_exist(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "file.py").write_text("")
    body = "pythonpath: [src, missing, file.py]\nprocesses: {p: {target: m:f}}\n"
    assert [(line, col, code) for line, col, _, code in problems(body, tmp_path)] == [
        (2, 19, "pythonpath"),
        (2, 28, "pythonpath"),
    ]


def test_expected_signals_must_exist() -> None:
    body = "processes:\n  p: {target: m:f, expect: {signal: [SIGTERM, SIGTREM]}}\n"
    assert problems(body) == [(3, 47, "error", "unknown-signal")]
    assert "did you mean 'SIGTERM'?" in messages(body)[0]


def test_shared_values_fit_their_type() -> None:
    body = (
        "values: {a: {type: c, value: ab}, b: {type: i, value: 1.5}, c: {type: d, value: 1.5}}\n"
        "arrays: {d: {type: i, items: [1, x]}}\nprocesses: {p: {target: m:f, args: [$a, $b, $c, $d]}}\n"
    )
    assert [(line, code) for line, _, _, code in problems(body)] == [
        (2, "value-type"),
        (2, "value-type"),
        (3, "value-type"),
    ]


@pytest.mark.parametrize(
    "body,code,line",
    [
        ("queues: {q: {}}\nprocesses: {p: {target: m:f}}\n", "unused-queue", 2),
        (
            "queues: {q: {}}\nprocesses: {p: {target: m:f}}\nsteps:\n  - start: p\n  - put: {queue: q, item: 1}\n"
            "  - join: p\n",
            "unused-queue",
            2,
        ),
        (
            "queues: {q: {}}\nprocesses: {p: {target: m:f}}\nsteps:\n  - start: p\n  - get: q\n  - join: p\n",
            "unused-queue",
            2,
        ),
        ("locks: {l: {}}\nprocesses: {p: {target: m:f}}\n", "unused-object", 2),
        (
            "events: {e: {}}\nprocesses: {p: {target: m:f}}\nsteps:\n  - start: p\n  - wait: {event: e, timeout: 1}\n",
            "event-never-set",
            6,
        ),
        (
            "queues: {q: {kind: joinable}}\nprocesses: {p: {target: m:f}}\nsteps:\n  - start: p\n"
            "  - put: {queue: q, item: 1}\n  - join_queue: q\n",
            "join-unconsumed-queue",
            7,
        ),
        (
            "queues: {q: {}}\nprocesses: {p: {target: m:f, replicas: 3, args: [$q]}}\nsteps:\n  - start: p\n"
            "  - put: {queue: q, item: null, count: 2}\n",
            "pill-count",
            6,
        ),
        (
            "queues: {q: {}}\nprocesses: {p: {target: m:f, replicas: {per_cpu: 2}, args: [$q]}}\nsteps:\n"
            "  - start: p\n  - put: {queue: q, items: [null, null, null, null]}\n",
            "pill-count",
            6,
        ),
        ("barriers: {b: {parties: 3}}\nprocesses: {p: {target: m:f, replicas: 2, args: [$b]}}\n", "barrier-parties", 2),
        ("processes: {p: {target: m:f}, q: {target: m:f}}\nsteps:\n  - start: p\n", "never-started", 2),
    ],
)
def test_warnings_point_at_likely_mistakes(body: str, code: str, line: int) -> None:
    found = problems(body)
    assert (line, "warning", code) in [(at, severity, kind) for at, _, severity, kind in found], found
    assert all(severity == "warning" for _, _, severity, _ in found)


def test_pills_per_consumer_and_a_used_queue_raise_no_warning() -> None:
    body = (
        "queues: {q: {kind: joinable}, r: {}}\nevents: {go: {set: true}}\n"
        "processes: {c: {target: m:f, replicas: {per_cpu: 2}, args: [$q, $r]}}\nsteps:\n  - start: c\n"
        "  - put: {queue: q, items: [1, 2]}\n  - put: {queue: q, item: null, per: c}\n  - join_queue: q\n"
        "  - wait: go\n  - get: {queue: r, count: 2}\n  - join: c\n"
    )
    assert problems(body) == []


def test_more_processes_than_the_machine_holds_is_a_warning_with_the_estimates() -> None:
    entries = "".join(f"  p{n}: {{target: m:f, replicas: 4096}}\n" for n in range(5))
    found = check_text(HEAD + "start_method: spawn\nprocesses:\n" + entries, "w.yaml", imports=False).problems
    [warning] = [p for p in found if p.code == "too-many-processes"]
    assert warning.severity == "warning" and warning.line == 4
    assert warning.message.startswith("20,480 processes in all may not fit on this machine if they run at once: about ")
    assert "GiB of memory at 8 MB a process under spawn" in warning.message  # more than any host of ours has
    few = check_text(HEAD + "processes: {p: {target: m:f, replicas: 50}}\n", "w.yaml", imports=False).problems
    assert not [p for p in few if p.code == "too-many-processes"]
