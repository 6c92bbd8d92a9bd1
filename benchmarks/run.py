"""mprun against hand-written multiprocessing, side by side: each comparison runs both in
alternation for several rounds and reports the medians and their ratio.

    python benchmarks/run.py                   # every comparison, 7 rounds (about 3 minutes)
    python benchmarks/run.py --write-readme    # and put the table into benchmarks/README.md
    python benchmarks/run.py --quick           # tiny sizes, one round (the test suite's smoke run)

Needs the test extra (check-jsonschema): `pip install -e '.[test]'`.

What each side's time is: P2 and P6 time the whole command, from the shell to its exit. P1,
P3, P4 and P5 time the work, from before the first queue or process is made to the end (mprun's
`run.end` duration; the baseline's own timer): interpreter start-up and imports are P2's.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BASELINES = HERE / "baselines"
README = HERE / "README.md"  # where the table lives, between MARKERS
MARKERS = ("<!-- benchmarks:start -->\n", "<!-- benchmarks:end -->")
MAPS = 5  # maps timed in each round of P8, whose median counts: one map is about 20 ms


@dataclass(frozen=True)
class Measure:
    """What one run of one side gave: the seconds that count, and what else it reported."""

    seconds: float
    extra: dict[str, float] = field(default_factory=dict)


@dataclass
class Comparison:
    """One row: mprun (A) against the hand-written baseline (B), doing the same work."""

    key: str
    work: str
    method: str
    goal: str  # "<= 1.05" or ">= 0.95"
    mprun: Callable[[], Measure]
    baseline: Callable[[], Measure]
    higher_is_better: bool = False  # the measure is a throughput, not a time
    # The baseline again, importing what mprun imports: what mprun's dependencies alone cost.
    floor: Callable[[], Measure] | None = None
    a: list[Measure] = field(default_factory=list)
    b: list[Measure] = field(default_factory=list)
    c: list[Measure] = field(default_factory=list)

    def median(self, side: list[Measure], name: str | None = None) -> float:
        return statistics.median(m.extra[name] if name else m.seconds for m in side)

    @property
    def ratio(self) -> float:
        return self.median(self.a) / self.median(self.b)

    @property
    def met(self) -> bool:
        if self.goal.startswith("p99"):  # a bound on the measure itself, not on the ratio
            return self.median(self.a) <= float(self.goal.split()[2]) / 1000
        limit = float(self.goal.split()[1])
        return self.ratio >= limit if self.goal.startswith(">=") else self.ratio <= limit


def _env() -> dict[str, str]:
    """As on a user's machine (no PYTHONUNBUFFERED), the baselines finding their modules."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE")}
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), str(ROOT / "workflows")])
    return env


def _mprun() -> list[str]:
    script = Path(sys.executable).parent / "mprun"
    return [str(script)] if script.exists() else [sys.executable, "-m", "runner"]


def _timed(command: list[str], cwd: Path) -> tuple[float, str]:
    began = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=900, check=False)
    seconds = time.perf_counter() - began
    if result.returncode != 0:
        said = result.stdout[-2000:] + result.stderr[-2000:]
        raise RuntimeError(f"{' '.join(command)} exited {result.returncode}:\n{said}")
    return seconds, result.stdout


def _reported(text: str) -> dict[str, float]:
    return {name: float(value) for name, value in re.findall(r"^(\w+)=([\d.]+)$", text, re.MULTILINE)}


class Workspace:
    """A folder for one benchmark run: the mprun workflows, their logs, the baselines' files."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def workflow(self, name: str, body: str) -> Path:
        path = self.folder / f"{name}.yaml"
        paths = json.dumps([str(HERE), str(ROOT / "workflows")])
        path.write_text(f"version: 1\nname: {name}\npythonpath: {paths}\n{body}", encoding="utf-8")
        return path

    def run_mprun(self, workflow: Path, method: str, *, whole: bool = False) -> Measure:
        """A run under start method `method`, or (`dask`) on a LocalCluster of its own."""
        log = self.folder / f"{workflow.stem}.jsonl"
        how = ["--backend", "dask"] if method == "dask" else ["--start-method", method]
        seconds, _ = _timed([*_mprun(), *how, "--log-file", str(log), str(workflow)], self.folder)
        extra: dict[str, float] = {}
        with log.open() as lines:  # read as a stream: P5's log has 200,000 records
            for line in lines:
                record = json.loads(line)
                if record["event"] == "run.end":
                    end = record
                elif record["event"] == "process.output" and "=" in record["line"]:
                    extra.update(_reported(record["line"]))
        extra["max_rss_kb"] = float(end.get("max_rss_kb") or 0)
        return Measure(seconds if whole else float(end["duration_s"]), extra)

    def run_baseline(self, script: str, *args: str, whole: bool = False) -> Measure:
        seconds, out = _timed([sys.executable, str(BASELINES / script), *args], self.folder)
        extra = _reported(out)
        return Measure(seconds if whole else extra["work_s"], extra)


def comparisons(space: Workspace, quick: bool) -> list[Comparison]:
    tasks, processes, items, lines, files = (4, 10, 2000, 2000, 10) if quick else (10, 200, 200_000, 200_000, 200)
    pool_items = 2_000 if quick else 100_000
    ticks = 20 if quick else 400
    found: list[Comparison] = []
    consumers = space.workflow(
        "consumers",
        # workflows/consumers.yaml, with the number of tasks as the baseline's
        "queues:\n  tasks: {kind: joinable}\n  results: {}\n"
        "processes:\n  consumer:\n    class: seed.consumers:Consumer\n    replicas: {per_cpu: 2}\n"
        "    name: null\n    args: [$tasks, $results]\n"
        "steps:\n  - start: consumer\n"
        "  - put: {queue: tasks, item: {$call: seed.consumers:Task, args: [$each, $each]}, "
        f"each: {{range: {tasks}}}}}\n"
        "  - put: {queue: tasks, item: null, per: consumer}\n  - join_queue: {queue: tasks, timeout: 30}\n"
        f"  - get: {{queue: results, count: {tasks}, timeout: 5}}\n  - join: {{process: consumer, timeout: 10}}\n",
    )
    found.append(
        Comparison(
            "P1",
            f"the seed's consumers: cpu_count()*2 consumers, {tasks} tasks of 0.1 s",
            "fork",
            "<= 1.05",
            lambda: space.run_mprun(consumers, "fork"),
            lambda: space.run_baseline("consumers.py", "fork", str(tasks)),
        )
    )
    for form, goal in (("process", "<= 1.10"), ("thread", "report")):
        found.append(
            Comparison(
                "P10",
                f"P1's consumers on a Dask LocalCluster, the whole command, against Dask by hand: each consumer a "
                f"task that runs the loop in {'a process on its worker' if form == 'process' else 'itself'}",
                "dask",
                goal,
                lambda: space.run_mprun(consumers, "dask", whole=True),
                lambda form=form: space.run_baseline("dask_consumers.py", form, str(tasks), whole=True),
            )
        )
    one = space.workflow("one", "processes: {p: {target: work:noop}}\n")
    for method in ("fork", "forkserver", "spawn"):
        found.append(
            Comparison(
                "P2",
                "one no-op process, the whole command",
                method,
                "<= 1.3" if method != "spawn" else "report",
                lambda method=method: space.run_mprun(one, method, whole=True),
                lambda method=method: space.run_baseline("processes.py", method, "1", whole=True),
                floor=lambda method=method: space.run_baseline(
                    "processes.py", method, "1", "--with-imports", whole=True
                ),
            )
        )
    many = space.workflow("many", f"processes: {{p: {{target: work:noop, replicas: {processes}}}}}\n")
    for method in ("fork", "forkserver", "spawn"):
        found.append(
            Comparison(
                "P3",
                f"{processes} no-op processes started and joined",
                method,
                "<= 1.10",
                lambda method=method: space.run_mprun(many, method),
                lambda method=method: space.run_baseline("processes.py", method, str(processes)),
                floor=lambda method=method: space.run_baseline(
                    "processes.py", method, str(processes), "--with-imports"
                ),
            )
        )
    queue = space.workflow(
        "queue",
        "queues: {q: {}}\nprocesses:\n"
        f"  producer: {{target: work:produce, args: [$q, {items}]}}\n  consumer: {{target: work:consume, args: [$q]}}\n"
        "steps:\n  - start: [consumer, producer]\n  - join: [producer, consumer]\n",
    )
    found.append(
        Comparison(
            "P4",
            f"{items:,} small items, producer to consumer (items/s)",
            "fork",
            ">= 0.95",
            lambda: _rate(space.run_mprun(queue, "fork")),
            lambda: _rate(space.run_baseline("items.py", "fork", str(items))),
            higher_is_better=True,
        )
    )
    printed = space.workflow("lines", f"processes: {{p: {{target: work:flood, args: [{lines}]}}}}\n")
    found.append(
        Comparison(
            "P5",
            f"{lines:,} printed lines: into mprun's JSON log, against into a file",
            "fork",
            "<= 1.5",
            lambda: space.run_mprun(printed, "fork"),
            lambda: space.run_baseline("lines.py", "fork", str(lines), str(space.folder / "lines.txt")),
        )
    )
    ticking = space.workflow("ticks", f"processes: {{p: {{target: work:ticks, args: [{ticks}, 0.005]}}}}\n")
    found.append(
        Comparison(
            "P5L",
            f"latency of a line printed without flush, {ticks} lines 5 ms apart: p99 (p50)",
            "fork",
            "p99 <= 100 ms",
            lambda: _latency(ticking),
            lambda: _quantiles(space.run_baseline("live.py", "fork", str(ticks), "0.005")),
        )
    )
    checked = space.folder / "check"
    checked.mkdir()
    for number in range(files):
        shutil.copy(ROOT / "workflows" / "consumers.yaml", checked / f"w{number:03}.yaml")
    names = sorted(str(path) for path in checked.iterdir())
    schema = str(ROOT / "schemas" / "workflow.schema.json")
    check_jsonschema = str(Path(sys.executable).parent / "check-jsonschema")
    found.append(
        Comparison(
            "P6",
            f"`mprun check --no-import` against `check-jsonschema`, {files} files",
            "-",
            "<= 0.33",
            lambda: Measure(_timed([*_mprun(), "check", "--no-import", *names], space.folder)[0]),
            lambda: Measure(_timed([check_jsonschema, "--schemafile", schema, *names], space.folder)[0]),
        )
    )
    pooled = space.workflow(
        "pool",
        # The pool started and both workers ready first, as the script's: the map alone is timed.
        "pools: {workers: {processes: 2}}\nsteps:\n"
        "  - map: {pool: workers, function: time:sleep, items: [0.05, 0.05], chunksize: 1}\n"
        + f"  - map: {{pool: workers, function: work:double, items: {{range: {pool_items}}}, chunksize: 1000}}\n"
        * MAPS,
    )
    found.append(
        Comparison(
            "P8",
            f"a Pool map of {pool_items:,} small items, chunksize 1,000: from the map's start to its last result "
            f"(the median of {MAPS} maps a round)",
            "fork",
            "<= 1.05",
            lambda: _map_step(space.run_mprun(pooled, "fork"), pooled),
            lambda: space.run_baseline("pool.py", "fork", str(pool_items), "1000", str(MAPS)),
        )
    )
    return found


def _map_step(measure: Measure, workflow: Path) -> Measure:
    """The median duration of the run's timed maps (every step but the first), as their
    `step.end` records say."""
    log = workflow.with_suffix(".jsonl")
    ends = [json.loads(line) for line in log.read_text().splitlines() if '"step.end"' in line]
    return Measure(statistics.median(float(end["duration_s"]) for end in ends[1:]), measure.extra)


def _latency(workflow: Path) -> Measure:
    """mprun's side of P5L: from the time in each line to its record's timestamp, as the
    parent wrote it to the log."""
    log = workflow.parent / f"{workflow.stem}.jsonl"
    _timed([*_mprun(), "--start-method", "fork", "--log-file", str(log), str(workflow)], workflow.parent)
    latencies = []
    with log.open() as lines:
        for line in lines:
            record = json.loads(line)
            if record["event"] == "process.output" and record["line"].startswith("t "):
                written = datetime.datetime.fromisoformat(record["timestamp"].replace("Z", "+00:00")).timestamp()
                latencies.append(written - float(record["line"].split()[1]))
    cuts = statistics.quantiles(latencies, n=100)
    return _quantiles(Measure(0.0, {"p50_s": cuts[49], "p99_s": cuts[98]}))


def _quantiles(measure: Measure) -> Measure:
    return Measure(measure.extra["p99_s"], measure.extra)


def _rate(measure: Measure) -> Measure:
    return Measure(measure.extra["items_per_s"], measure.extra)


def run(rounds: int, quick: bool, only: set[str] | None) -> tuple[list[Comparison], float]:
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mprun-bench-") as name:
        space = Workspace(Path(name))
        rows = [row for row in comparisons(space, quick) if not only or row.key in only]
        for number in range(rounds):
            for row in rows:
                # Alternating which side goes first, so that neither always runs on a warmer machine.
                sides = [(row.mprun, row.a), (row.baseline, row.b)]
                if row.floor is not None:
                    sides.append((row.floor, row.c))
                for measure, into in sides if number % 2 == 0 else reversed(sides):
                    into.append(measure())
            print(f"round {number + 1} of {rounds} done", file=sys.stderr)
    return rows, time.monotonic() - began


def table(rows: list[Comparison], rounds: int, seconds: float, command: str) -> str:
    lines = [
        f"Measured on {platform.platform()}, Python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"{rounds} rounds, medians (`{command}`, {seconds:.0f} s).",
        "",
        "| # | work | start method | mprun | hand-written | ratio | goal | met"
        " | hand-written importing yaml, structlog |",
        "|---|---|---|---:|---:|---:|---:|---|---:|",
    ]
    for row in rows:
        a, b = row.median(row.a), row.median(row.b)
        if row.higher_is_better:
            shown_a, shown_b = f"{a:,.0f}/s", f"{b:,.0f}/s"
        else:
            shown_a, shown_b = f"{a * 1000:,.0f} ms", f"{b * 1000:,.0f} ms"
        if row.key == "P2":
            shown_a += f" (+{(a - b) * 1000:.0f} ms)"
        if row.key == "P3":
            shown_a += f"; peak {row.median(row.a, 'max_rss_kb') / 1024:.0f} MB"
            shown_b += f"; peak {row.median(row.b, 'max_rss_kb') / 1024:.0f} MB"
        if row.key == "P5L":
            shown_a = f"{a * 1000:.2f} ms ({row.median(row.a, 'p50_s') * 1000:.2f} ms)"
            shown_b = f"{b * 1000:.2f} ms ({row.median(row.b, 'p50_s') * 1000:.2f} ms)"
        if row.key == "P5":
            lines_count = float(re.sub(r"\D", "", row.work.split()[0]))
            shown_a += f" ({lines_count / a:,.0f} lines/s)"
            shown_b += f" ({lines_count / b:,.0f} lines/s)"
        met = "-" if row.goal == "report" else ("yes" if row.met else "**no**")
        floor = "-"
        if row.c:
            c = row.median(row.c)
            floor = f"{c * 1000:,.0f} ms, ratio {c / b:.2f}"
        lines.append(
            f"| {row.key} | {row.work} | {row.method} | {shown_a} | {shown_b} | {row.ratio:.2f} | {row.goal} | {met}"
            f" | {floor} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one round")
    parser.add_argument("--only", nargs="*", metavar="P", help="only these comparisons (P1 ... P6)")
    parser.add_argument("--write-readme", action="store_true", help="put the table into benchmarks/README.md")
    options = parser.parse_args()
    rounds = 1 if options.quick else options.rounds
    rows, seconds = run(rounds, options.quick, set(options.only or ()))
    command = "python benchmarks/run.py" + (" --quick" if options.quick else "")
    text = table(rows, rounds, seconds, command)
    print(text)
    if options.write_readme:
        readme = README.read_text()
        start, end = readme.index(MARKERS[0]) + len(MARKERS[0]), readme.index(MARKERS[1])
        README.write_text(readme[:start] + text + readme[end:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
