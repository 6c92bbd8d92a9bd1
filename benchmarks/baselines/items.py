"""Hand-written: a producer puts N small items on a queue, a consumer gets them."""

from __future__ import annotations

import multiprocessing
import sys
import time

from work import consume, produce

if __name__ == "__main__":
    multiprocessing.set_start_method(sys.argv[1])
    began = time.perf_counter()
    queue = multiprocessing.Queue()
    producer = multiprocessing.Process(target=produce, args=(queue, int(sys.argv[2])))
    consumer = multiprocessing.Process(target=consume, args=(queue,))
    consumer.start()
    producer.start()
    producer.join()
    consumer.join()
    print(f"work_s={time.perf_counter() - began:.6f}")
