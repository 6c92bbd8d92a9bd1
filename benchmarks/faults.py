"""Where P3's time goes under fork: page faults and CPU per started process, for mprun and for
the hand-written script, split between the parent and its children.

    python benchmarks/faults.py                # 200 processes, 5 rounds, medians
    python benchmarks/faults.py --quick        # 5 processes, one round (the test suite's smoke run)

After a fork the parent and the child share every page until one of them writes to it; the
writer then faults and gets its own copy. So each page the parent writes between two starts,
and each page a child writes, costs a fault: the more Python a side runs per process, the more
pages it touches. Each figure is (a run of N processes - a run of 1) / (N - 1), so that start-up
and imports cancel out.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import runpy
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
FIGURES = ("parent faults", "parent CPU ms", "children faults", "children CPU ms")


def _inner(side: str, count: int, folder: str) -> None:
    """Run one side in this process, then print its own and its children's resource use."""

    def report() -> None:
        own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        used = [own.ru_minflt, own.ru_utime + own.ru_stime, children.ru_minflt, children.ru_utime + children.ru_stime]
        print(json.dumps(used), file=sys.__stderr__, flush=True)

    if side == "mprun":
        workflow = Path(folder) / f"noop{count}.yaml"
        paths = json.dumps([str(HERE)])
        workflow.write_text(
            f"version: 1\nname: noop\npythonpath: {paths}\nprocesses: {{p: {{target: work:noop, replicas: {count}}}}}\n"
        )
        sys.argv = ["mprun", "--start-method", "fork", "--log-file", str(Path(folder) / "run.jsonl"), str(workflow)]
        try:
            runpy.run_module("runner", run_name="__main__")
        except SystemExit as stop:
            if stop.code:
                raise
    else:
        sys.path.insert(0, str(HERE))
        sys.argv = ["processes.py", "fork", str(count)]
        runpy.run_path(str(HERE / "baselines" / "processes.py"), run_name="__main__")
    report()


def _measure(side: str, count: int, folder: str) -> list[float]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE")}
    result = subprocess.run(
        [sys.executable, __file__, "--inner", side, str(count), folder],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{side} with {count} processes exited {result.returncode}:\n{result.stderr[-2000:]}")
    used: list[float] = json.loads(result.stderr.strip().splitlines()[-1])
    return used


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="5 processes, one round")
    parser.add_argument("--inner", nargs=3, metavar=("SIDE", "N", "FOLDER"), help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.inner:
        side, count, folder = options.inner
        _inner(side, int(count), folder)
        return 0
    count, rounds = (5, 1) if options.quick else (options.processes, options.rounds)
    per_process: dict[str, list[list[float]]] = {"mprun": [], "hand-written": []}
    with tempfile.TemporaryDirectory(prefix="mprun-faults-") as folder:
        for _ in range(rounds):
            for side in per_process:
                inner = "mprun" if side == "mprun" else "baseline"
                many, one = _measure(inner, count, folder), _measure(inner, 1, folder)
                per_process[side].append([(m - o) / (count - 1) for m, o in zip(many, one, strict=True)])
    print(f"Per started process, fork, {count} processes, medians of {rounds} (`python benchmarks/faults.py`):\n")
    print("| | " + " | ".join(FIGURES) + " |")
    print("|---|" + "---:|" * len(FIGURES))
    for side, runs in per_process.items():
        medians = [statistics.median(column) for column in zip(*runs, strict=True)]
        shown = [
            f"{value:,.0f}" if "faults" in name else f"{value * 1000:.2f}"
            for name, value in zip(FIGURES, medians, strict=True)
        ]
        print(f"| {side} | " + " | ".join(shown) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
