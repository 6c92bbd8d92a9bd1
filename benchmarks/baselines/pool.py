"""Hand-written: a Pool of two workers maps a small function over N items with a chunk size,
timed from each map's start to its last result (the pool started and both workers ready
first); the median of M maps."""

from __future__ import annotations

import multiprocessing
import statistics
import sys
import time

from work import double

if __name__ == "__main__":
    multiprocessing.set_start_method(sys.argv[1])
    count, chunksize, maps = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    timings = []
    with multiprocessing.Pool(2) as pool:
        pool.map(time.sleep, [0.05, 0.05], 1)
        for _ in range(maps):
            began = time.perf_counter()
            results = pool.map(double, range(count), chunksize)
            timings.append(time.perf_counter() - began)
            assert results[-1] == 2 * (count - 1)
    print(f"work_s={statistics.median(timings):.6f}")
