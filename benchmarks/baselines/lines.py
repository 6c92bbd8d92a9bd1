"""Hand-written: a child prints N lines into a file."""

from __future__ import annotations

import multiprocessing
import sys
import time

from work import flood

if __name__ == "__main__":
    multiprocessing.set_start_method(sys.argv[1])
    began = time.perf_counter()
    child = multiprocessing.Process(target=flood, args=(int(sys.argv[2]), sys.argv[3]))
    child.start()
    child.join()
    print(f"work_s={time.perf_counter() - began:.6f}")
