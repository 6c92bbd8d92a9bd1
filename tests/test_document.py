from __future__ import annotations

from pathlib import Path

from runner.checker import check_text
from runner.document import MAX_BYTES, MAX_DEPTH, Position, load, parse
from runner.schema import MAX_PROBLEMS


def test_positions_of_keys_and_values_count_from_one() -> None:
    document, problems = parse("a: 1\nb:\n  - x\n  - {c: d}\n", "f.yaml")
    assert problems == [] and document is not None
    assert document.data == {"a": 1, "b": ["x", {"c": "d"}]}
    assert document.position(("a",), key=True) == Position(1, 1)
    assert document.position(("a",)) == Position(1, 4)
    assert document.position(("b", 1, "c")) == Position(4, 9)
    assert document.position(("b", 1, "c"), key=True) == Position(4, 6)


def test_a_missing_path_points_at_the_nearest_key_that_exists() -> None:
    document, _ = parse("# comment\nprocesses:\n  p:\n    daemon: true\n", "f.yaml")
    assert document is not None
    assert document.position(("processes", "p", "target")) == Position(3, 3)


def test_an_empty_value_points_at_its_key_not_the_next_line() -> None:
    document, _ = parse("events:\n  ready:\nprocesses: {}\n", "f.yaml")
    assert document is not None
    assert document.data["events"] == {"ready": None}
    assert document.position(("events", "ready")) == Position(2, 3)


def test_syntax_errors_carry_the_position_of_the_problem() -> None:
    document, problems = parse("a: [1, 2\nb: 3\n", "f.yaml")
    assert document is None
    [problem] = problems
    assert (problem.line, problem.column, problem.code) == (1, 4, "yaml-syntax")
    assert "the '[' here is never closed" in problem.message


def test_python_tags_are_refused_not_executed() -> None:
    document, problems = parse("a: !!python/object/apply:os.system [echo hi]\n", "f.yaml")
    assert [(p.line, p.column, p.code) for p in problems] == [(1, 4, "yaml")]
    assert document is not None and document.data == {"a": None}


def test_duplicate_keys_are_reported_at_the_second_one() -> None:
    _, problems = parse("a: 1\nb: 2\na: 3\n", "f.yaml")
    [problem] = problems
    assert (problem.line, problem.column, problem.code) == (3, 1, "duplicate-key")
    assert "first at line 1, column 1" in problem.message


def test_keys_that_yaml_reads_as_other_types_are_reported() -> None:
    document, problems = parse("on: 1\n2: x\n", "f.yaml")
    assert [(p.line, p.code) for p in problems] == [(1, "yaml-key"), (2, "yaml-key")]
    assert "read as bool" in problems[0].message
    assert document is not None and document.data == {"on": 1, "2": "x"}


def test_merge_keys_bring_entries_without_overriding_explicit_ones() -> None:
    document, problems = parse("base: &b {x: 1, y: 2}\nderived:\n  <<: *b\n  y: 3\n", "f.yaml")
    assert problems == [] and document is not None
    assert document.data["derived"] == {"x": 1, "y": 3}
    assert document.position(("derived", "y"), key=True) == Position(4, 3)


def test_an_alias_bomb_is_stopped_with_a_problem() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    _, problems = parse("\n".join(lines) + "\n", "bomb.yaml")
    [problem] = problems
    assert problem.code == "too-large" and problem.line >= 1


def test_deep_nesting_is_a_problem_not_a_crash() -> None:
    depth = MAX_DEPTH + 10
    _, problems = parse("a: " + "[" * depth + "]" * depth + "\n", "deep.yaml")
    assert [p.code for p in problems] == ["too-large"]


def test_empty_and_multi_document_files(tmp_path: Path) -> None:
    assert [p.code for p in parse("# only a comment\n", "f.yaml")[1]] == ["empty"]
    [problem] = parse("a: 1\n---\nb: 2\n", "f.yaml")[1]
    assert problem.code == "yaml-syntax" and problem.line == 2


def test_load_reports_unreadable_files_as_problems(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_bytes(b"a: 1\nb: \xff\xfe\n")
    [problem] = load(tmp_path / "bad.yaml")[1]
    assert (problem.line, problem.column, problem.code) == (2, 4, "encoding")
    [problem] = load(tmp_path)[1]
    assert problem.code == "file" and "directory" in problem.message
    [problem] = load(tmp_path / "missing.yaml")[1]
    assert problem.code == "file"


def test_a_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    (tmp_path / "bom.yaml").write_bytes(b"\xef\xbb\xbfa: 1\n")
    document, problems = load(tmp_path / "bom.yaml")
    assert problems == [] and document is not None and document.data == {"a": 1}


def test_files_over_the_size_limit_are_refused_without_reading_them_whole(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_bytes(b"a: " + b"x" * MAX_BYTES + b"\n")
    [problem] = load(big)[1]
    assert (problem.line, problem.column, problem.code) == (1, 1, "too-large")
    # A device that never ends is not read at all.
    [problem] = load("/dev/zero")[1]
    assert problem.code == "file" and "character device" in problem.message


def test_a_file_of_nothing_but_mistakes_stops_at_a_bounded_number_of_problems(tmp_path: Path) -> None:
    text = "".join(f"key{index}: {index}\n" for index in range(5000))
    result = check_text(text, "many.yaml", imports=False)
    assert len(result.problems) == MAX_PROBLEMS + 1
    [note] = [problem for problem in result.problems if problem.code == "too-many"]
    assert "stopped after" in note.message
