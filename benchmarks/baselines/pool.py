"""Hand-written: a Pool of two workers maps a small function over N items with a chunk size,
timed from the map's start to its last result (the pool started and both workers ready first)."""

from __future__ import annotations

import multiprocessing
import sys
import time

from work import double

if __name__ == "__main__":
    multiprocessing.set_start_method(sys.argv[1])
    with multiprocessing.Pool(2) as pool:
        pool.map(time.sleep, [0.05, 0.05], 1)
        began = time.perf_counter()
        results = pool.map(double, range(int(sys.argv[2])), int(sys.argv[3]))
        print(f"work_s={time.perf_counter() - began:.6f}")
    assert results[-1] == 2 * (int(sys.argv[2]) - 1)
