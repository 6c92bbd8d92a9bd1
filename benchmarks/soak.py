"""The reliability soak: the fault suite's scenarios many times over, and the checker fuzzed with
tens of thousands of documents. Prints what it counted, as a Markdown table; exits 1 if any
process survived, any line was lost or any input got a traceback.

    python benchmarks/soak.py                  # the figures in benchmarks/README.md (about 3 minutes)
    python benchmarks/soak.py --quick          # a few of each, as the test suite runs it

Needs the test extra (hypothesis): `pip install -e '.[test]'`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from runner.backends.multiprocessing.reader import LINE_LIMIT  # noqa: E402
from tests.support import alive, descendants, pids_in, start_mprun, user_env, wait_for, whole_lines  # noqa: E402
from tests.test_faults import JOBS  # noqa: E402
from tests.test_trees import JOBS as TREES  # noqa: E402

METHODS = ("fork", "spawn", "forkserver")


@dataclass
class Row:
    """One line of the report: what was tried, how often, and how often it went wrong."""

    what: str
    trials: int = 0
    bad: int = 0
    notes: list[str] = field(default_factory=list)

    def count(self, ok: bool, note: str = "") -> None:
        self.trials += 1
        if not ok:
            self.bad += 1
            if note and len(self.notes) < 3:
                self.notes.append(note)


def _workflow(folder: Path, method: str, body: str) -> Path:
    path = folder / "w.yaml"
    path.write_text(f"version: 1\nstart_method: {method}\n{body}", encoding="utf-8")
    return path


def killed(folder: Path, method: str, row: Row) -> None:
    """SIGKILL mprun while three workers and a manager run: survivors after 2 s."""
    pids = folder / "pids"
    pids.unlink(missing_ok=True)
    body = f"dicts: {{d: {{}}}}\nprocesses: {{p: {{target: jobs:pid_file, args: ['{pids}'], replicas: 3}}}}\n"
    mprun = start_mprun(str(_workflow(folder, method, body)), "--log-file", str(folder / "run.jsonl"), console=False)
    try:
        if not wait_for(lambda: len(pids_in(pids)) == 3, 30):
            row.count(False, "workers did not start")
            return
        everyone = descendants(mprun.pid)
        mprun.kill()
        mprun.wait(timeout=10)
        wait_for(lambda: not any(alive(pid) for pid in everyone), 2)
        survivors = [pid for pid in everyone if alive(pid)]
        for pid in survivors:
            os.kill(pid, signal.SIGKILL)
        row.count(not survivors, f"{len(survivors)} survived ({method})")
    finally:
        mprun.kill()
        mprun.wait()


def interrupted(folder: Path, method: str, row: Row, signum: int) -> None:
    """SIGINT or SIGTERM to mprun: every child gone within grace + 1 s, the right exit status,
    `run.end` interrupted, every line valid JSON."""
    pids, grace = folder / "pids", 1.0
    pids.unlink(missing_ok=True)
    body = (
        f"processes:\n  polite: {{target: jobs:pid_file, args: ['{pids}'], replicas: 2}}\n"
        f"  stubborn: {{target: jobs:pid_file, args: ['{pids}', true]}}\n"
    )
    log_file = folder / "run.jsonl"
    mprun = start_mprun(
        str(_workflow(folder, method, body)), "--log-file", str(log_file), "--grace", "1", console=False
    )
    try:
        if not wait_for(lambda: len(pids_in(pids)) == 3, 30):
            row.count(False, "workers did not start")
            return
        started = pids_in(pids)
        mprun.send_signal(signum)
        stopped = wait_for(lambda: not any(alive(pid) for pid in started), grace + 1)
        status = mprun.wait(timeout=10)
    finally:
        mprun.kill()
        mprun.wait()
    expected = 130 if signum == signal.SIGINT else 143
    try:
        records = whole_lines(log_file)
        ends = [r for r in records if r["event"] == "run.end"]
        exits = [r for r in records if r["event"] == "process.exit"]
        complete = len(ends) == 1 and ends[0]["status"] == "interrupted" and len(exits) == 3
    except ValueError:
        complete = False
    ok = stopped and status == expected and complete
    row.count(ok, f"{signal.Signals(signum).name} {method}: stopped={stopped} status={status} complete={complete}")


SHAPES = ("helper", "daemon", "session", "pool")  # what tests/test_trees.py's JOBS can start


def trees(folder: Path, method: str, shape: str, ended: Row, killed: Row) -> None:
    """A process starts a descendant of this shape, then a `terminate` step stops it and the run
    ends, or mprun is SIGKILLed first: descendants alive 2 s later. (Not a daemon process ended by
    the run's end: a daemonic process may not start a Pool.)"""
    pids = folder / "tree-pids"
    for kill in (False, True):
        pids.unlink(missing_ok=True)
        body = (
            "events: {ready: {}}\n"
            f"processes: {{p: {{target: trees:started, args: [{shape}, '{pids}', $ready]}}}}\n"
            "steps:\n  - start: p\n  - wait: {event: ready, timeout: 30}\n"
            + ("  - sleep: 60\n" if kill else "  - terminate: p\n")  # killed while it holds them
        )
        mprun = start_mprun(
            str(_workflow(folder, method, body)), "--log-file", str(folder / "run.jsonl"), console=False
        )
        try:
            if kill:
                wait_for(lambda: len(pids_in(pids)) >= (2 if shape == "pool" else 1), 30)
                time.sleep(0.2)
                mprun.kill()
            mprun.wait(timeout=60)
            wait_for(lambda: not any(alive(pid) for pid in pids_in(pids)), 2)
            survivors = [pid for pid in pids_in(pids) if alive(pid)]
        finally:
            mprun.kill()
            mprun.wait()
        for pid in survivors:
            os.kill(pid, signal.SIGKILL)
        row = killed if kill else ended
        row.count(bool(pids_in(pids)) and not survivors, f"{shape} {method}: {len(survivors)} survived")


LONG_LINES = (10, 40, 100)  # MB in one line without a newline


def long_line(folder: Path, megabytes: int, row: Row) -> str:
    """A child writes one line of `megabytes` MB and no newline before it ends: the records must
    join up to it, none longer than the limit; how long it took and mprun's peak memory."""
    (folder / "long.py").write_text("import sys\n\ndef line(size):\n    sys.stdout.write('x' * size)\n")
    size = megabytes * 1_000_000
    log_file = folder / "long.jsonl"
    body = f"processes: {{p: {{target: long:line, args: [{size}]}}}}\n"
    began = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "runner", str(_workflow(folder, "fork", body)), "--log-file", str(log_file)],
        cwd=ROOT,
        env=user_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=600,
        check=False,
    )
    took = time.monotonic() - began
    got, whole, peak = 0, True, 0
    with log_file.open() as records:
        for text in records:
            record = json.loads(text)
            if record["event"] == "process.output":
                got += len(record["line"])
                whole = whole and len(record["line"]) <= LINE_LIMIT and not record["line"].strip("x")
            elif record["event"] == "run.end":
                peak = record["max_rss_kb"] // 1024
    row.count(whole and got == size, f"{megabytes} MB: {got:,} characters logged")
    log_file.unlink()
    return f"{megabytes} MB in {took:.1f} s, mprun's peak {peak} MB"


def lines(folder: Path, method: str, row: Row, count: int) -> None:
    """A child prints `count` lines as fast as it can: lost or misplaced lines."""
    log_file = folder / "run.jsonl"
    body = f"processes: {{p: {{target: jobs:flood, args: [{count}]}}}}\n"
    subprocess.run(
        [sys.executable, "-m", "runner", str(_workflow(folder, method, body)), "--log-file", str(log_file)],
        cwd=ROOT,
        env=user_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=600,
        check=False,
    )
    got = wrong = 0
    with log_file.open() as records:  # read as a stream: a million records need not be held
        for text in records:
            record = json.loads(text)
            if record["event"] == "process.output":
                wrong += record["line"] != f"line {got}"
                got += 1
    wrong += abs(count - got)
    row.trials += count
    row.bad += wrong
    if wrong and len(row.notes) < 3:
        row.notes.append(f"{method}: {got} of {count} lines, {wrong} wrong")


def fuzz(documents: int, rows: list[Row]) -> None:
    """Each fuzzer of the test suite, `documents` examples shared among them."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from tests.fuzzing import FUZZERS

    each = max(1, documents // len(FUZZERS))
    run = settings(max_examples=each, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    for fuzzer in FUZZERS:
        row = Row(f"fuzzed: {fuzzer.name}")
        rows.append(row)
        run(given(st.tuples(*fuzzer.strategies))(_counted(fuzzer.check, row)))()


def _counted(check: Callable[..., None], row: Row) -> Callable[[tuple[object, ...]], None]:
    """`check` as a property that never fails: each exception is counted and kept for the report."""

    def counted(args: tuple[object, ...]) -> None:
        try:
            check(*args)
        except Exception:  # noqa: BLE001 - counted and shown, not raised: the soak goes on
            row.count(False, traceback.format_exc(limit=-3))
        else:
            row.count(True)

    return counted


# Written in pieces, so that this process stays small: a child's peak memory counts the pages
# of the process it was started from.
BAD_INPUTS: dict[str, Callable[[Path], Path]] = {
    "a 50 MB file": lambda folder: _file(
        folder, "huge.yaml", [b"version: 1\nname: '", *[b"x" * 1_000_000] * 50, b"'\n"]
    ),
    "3,000,000 keys": lambda folder: _file(folder, "keys.yaml", (b"k%d: 1\n" % i for i in range(3_000_000))),
    "100,000 nested lists": lambda folder: _file(folder, "deep.yaml", [b"a: ", b"[" * 100_000, b"]" * 100_000]),
    "1,000 nested mappings": lambda folder: _file(folder, "deepmap.yaml", (b" " * i + b"k:\n" for i in range(1000))),
    "1 MiB of keys, just under the size limit": lambda folder: _file(folder, "mib.yaml", _keys_under(1 << 20)),
    "an alias bomb (10^9 values)": lambda folder: _file(
        folder,
        "bomb.yaml",
        [
            "\n".join(
                ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
                + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)]
            ).encode()
        ],
    ),
    "non-UTF-8 bytes": lambda folder: _file(folder, "latin1.yaml", ["version: 1\nname: café\n".encode("latin-1")]),
    "a directory": lambda folder: _directory(folder / "a-folder.yaml"),
    "an endless device": lambda folder: Path("/dev/zero"),
    "a FIFO nobody writes to": lambda folder: _fifo(folder / "pipe.yaml"),
}
BAD_INPUT_MEMORY = 1 << 30  # address space each check may use
BAD_INPUT_SECONDS = 30.0


def _keys_under(size: int) -> Iterator[bytes]:
    written, number = 0, 0
    while True:
        line = b"k%d: 1\n" % number
        written += len(line)
        if written > size:
            return
        yield line
        number += 1


def _file(folder: Path, name: str, pieces: Iterable[bytes]) -> Path:
    path = folder / name
    with path.open("wb") as out:
        out.writelines(pieces)
    return path


def _fifo(path: Path) -> Path:
    if not path.exists():
        os.mkfifo(path)
    return path


def _directory(path: Path) -> Path:
    path.mkdir(exist_ok=True)
    return path


def bad_input(folder: Path, rows: list[Row], details: list[str]) -> None:
    """`mprun check` and `mprun` (run) on each bad input, under a memory limit: a located error
    and a documented exit status (1 from check; 2 from a run: an invalid workflow), no
    traceback, within bounds of time and memory."""
    row = Row("bad input files (huge, deep, alias bombs, non-UTF-8, a directory, /dev/zero, a FIFO): no clear error")
    rows.append(row)
    for name, make in BAD_INPUTS.items():
        path = make(folder)
        # `mprun check FOLDER` checks the workflows in it: it has none, a usage error.
        results = [_limited(["check", "--no-import", str(path)], 2 if path.is_dir() else 1), _limited([str(path)], 2)]
        for result, command in zip(results, ("check", "run"), strict=True):
            ok, code, _, _, message = result
            row.count(ok, f"{name}: mprun {command} exit {code}: {message}")
        message = results[1][4].replace(str(folder) + "/", "")
        codes = " / ".join(str(result[1]) for result in results)
        slowest, memory = max(result[2] for result in results), max(result[3] for result in results)
        details.append(f"| {name} | {codes} | {slowest:.2f} s | {memory:.0f} MB | `{message}` |")


_LIMIT_THEN_EXEC = (
    "import os, resource, sys; limit = int(sys.argv[1]); "
    "resource.setrlimit(resource.RLIMIT_AS, (limit, limit)); os.execv(sys.executable, [sys.executable, *sys.argv[2:]])"
)


def _limited(arguments: list[str], expected: int) -> tuple[bool, int, float, float, str]:
    """Run `mprun ARGUMENTS` with bounded memory and time: whether it exited `expected` without
    a traceback, its exit status, seconds, peak memory in MB and its first error line."""

    began = time.monotonic()
    # The limit set by a small interpreter that then becomes mprun: a preexec_fn would fork
    # this big process, whose pages would count in the child's peak memory.
    process = subprocess.Popen(
        [sys.executable, "-c", _LIMIT_THEN_EXEC, str(BAD_INPUT_MEMORY), "-m", "runner", *arguments],
        cwd=ROOT,
        env=user_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    timer = threading.Timer(BAD_INPUT_SECONDS, process.kill)
    timer.start()
    assert process.stdout is not None
    out = process.stdout.read().decode(errors="replace")
    process.stdout.close()
    _, status, usage = os.wait4(process.pid, 0)  # its own peak memory, which Popen.wait would not give
    timer.cancel()
    process.returncode = code = os.waitstatus_to_exitcode(status)
    errors = [line for line in out.splitlines() if "error:" in line] or [out[:200]]
    ok = code == expected and "Traceback" not in out
    return ok, code, time.monotonic() - began, usage.ru_maxrss / 1024, errors[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a few of each (the test suite's smoke run)")
    parser.add_argument("--trials", type=int, default=10, help="kills and interrupts per start method")
    parser.add_argument("--documents", type=int, default=12_000, help="fuzzed documents in all")
    parser.add_argument("--lines", type=int, default=200_000, help="lines per flood")
    parser.add_argument("--floods", type=int, default=2, help="floods per start method")
    options = parser.parse_args()
    if options.quick:
        options.trials, options.documents, options.lines, options.floods = 1, 60, 2000, 1
    rows: list[Row] = []
    details: list[str] = []
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mprun-soak-") as name:
        folder = Path(name)
        (folder / "jobs.py").write_text(JOBS, encoding="utf-8")
        # First, while this process is small (see BAD_INPUTS).
        bad_input_base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        bad_input(folder, rows, details)
        kills = Row("mprun SIGKILLed: processes alive 2 s later")
        stops = Row("mprun sent SIGINT or SIGTERM: not all stopped within grace + 1 s, or log incomplete")
        flood = Row(f"lines printed ({options.lines:,} per run): lost or out of order")
        (folder / "trees.py").write_text(TREES, encoding="utf-8")
        ended = Row("a process's descendant (helper, daemon, new session, Pool): alive after its terminate step")
        orphaned = Row("the same, mprun SIGKILLed: alive 2 s later (see docs/running.md#process-trees)")
        long = Row("a line of 10, 40 and 100 MB without a newline: not logged whole, in records of at most 1 MiB")
        rows[:0] = [kills, stops, flood, long, ended, orphaned]
        for method in METHODS:
            for trial in range(options.trials):
                killed(folder, method, kills)
                interrupted(folder, method, stops, signal.SIGINT if trial % 2 == 0 else signal.SIGTERM)
                trees(folder, method, SHAPES[trial % len(SHAPES)], ended, orphaned)
            for _ in range(options.floods):
                lines(folder, method, flood, options.lines)
        sizes = (1, 4) if options.quick else LONG_LINES
        long.what += " (" + "; ".join(long_line(folder, megabytes, long) for megabytes in sizes) + ")"
    fuzz(options.documents, rows)
    print(f"mprun soak on {platform.platform()}, Python {platform.python_version()}, {os.cpu_count()} CPUs")
    print(f"(`python benchmarks/soak.py{' --quick' if options.quick else ''}`, {time.monotonic() - began:.0f} s)\n")
    print("| what | trials | went wrong |\n|---|---:|---:|")
    for row in rows:
        print(f"| {row.what} | {row.trials:,} | {row.bad:,} |")
    print(f"\nEach under a {BAD_INPUT_MEMORY >> 20} MiB address-space limit; peak memory includes the")
    print(f"{bad_input_base:.0f} MB this script held when it started them.\n")
    print("| bad input | exit: check / run | slowest | peak memory | message |\n|---|---:|---:|---:|---|")
    print("\n".join(details))
    problems = [note for row in rows for note in row.notes]
    if problems:
        print("\nwhat went wrong:\n" + "\n".join(problems))
    return 1 if any(row.bad for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
