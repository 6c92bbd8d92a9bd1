"""Hand-written: the seed tutorial's JoinableQueue consumers, as its readers write it."""

from __future__ import annotations

import multiprocessing
import sys
import time

from seed.consumers import Consumer, Task

if __name__ == "__main__":
    multiprocessing.set_start_method(sys.argv[1])
    began = time.perf_counter()
    task_queue = multiprocessing.JoinableQueue()
    result_queue = multiprocessing.Queue()
    consumers = [Consumer(task_queue, result_queue) for _ in range(multiprocessing.cpu_count() * 2)]
    for consumer in consumers:
        consumer.start()
    for task in [Task(i, i) for i in range(int(sys.argv[2]))]:
        task_queue.put(task)
    for _ in consumers:
        task_queue.put(None)
    task_queue.join()
    for _ in range(int(sys.argv[2])):
        print("Result:", result_queue.get(timeout=5))
    for consumer in consumers:
        consumer.join(10)
    print(f"work_s={time.perf_counter() - began:.6f}")
