"""Hand-written: start N processes that do nothing, join them all.

    python processes.py METHOD N [--with-imports]

With `--with-imports` it first imports what mprun is built on (pyyaml, structlog): the floor
that mprun's own dependencies set, before any of its code runs."""

from __future__ import annotations

import multiprocessing
import sys
import time

from work import noop

if __name__ == "__main__":
    if "--with-imports" in sys.argv:
        import structlog  # noqa: F401
        import yaml  # noqa: F401
    multiprocessing.set_start_method(sys.argv[1])
    began = time.perf_counter()
    processes = [multiprocessing.Process(target=noop) for _ in range(int(sys.argv[2]))]
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    assert all(process.exitcode == 0 for process in processes)
    print(f"work_s={time.perf_counter() - began:.6f}")
    # VmHWM, as mprun reports it: rusage would count the pages of the process that started this one.
    with open("/proc/self/status") as status:
        print("max_rss_kb=" + next(line.split()[1] for line in status if line.startswith("VmHWM:")))
