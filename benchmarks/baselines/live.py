"""Hand-written: a child prints N timed lines into a pipe, line-buffered as on a terminal; the
parent reads them as they come and prints the latency of each line (p50 and p99, seconds).

    python live.py METHOD N PAUSE
"""

from __future__ import annotations

import io
import multiprocessing
import os
import statistics
import sys
import time

from work import ticks


def child(write: int, count: int, pause: float) -> None:
    os.dup2(write, 1)
    sys.stdout = io.TextIOWrapper(open(1, "wb", closefd=False), line_buffering=True)
    ticks(count, pause)


if __name__ == "__main__":
    multiprocessing.set_start_method(sys.argv[1])
    count, pause = int(sys.argv[2]), float(sys.argv[3])
    read, write = os.pipe()
    began = time.perf_counter()
    process = multiprocessing.Process(target=child, args=(write, count, pause))
    process.start()
    os.close(write)
    latencies, pending = [], b""
    with open(read, "rb", buffering=0) as pipe:
        while chunk := pipe.read(65536):
            now = time.time()
            *lines, pending = (pending + chunk).split(b"\n")
            latencies.extend(now - float(line.split()[1]) for line in lines)
    process.join()
    print(f"work_s={time.perf_counter() - began:.6f}")
    cuts = statistics.quantiles(latencies, n=100)
    print(f"p50_s={cuts[49]:.6f}\np99_s={cuts[98]:.6f}")
