"""Hand-written: the seed's consumers on a Dask LocalCluster, as a Dask user writes them.

`process`: each consumer is a task that runs the consumer loop in a real process on its worker
(multiprocessing's default context, the worker made non-daemonic as Dask's docs say), which
connects its own client; `thread`: the loop runs in the task itself. Items are pickled by the
side that puts them, so that the scheduler holds bytes. Usage: dask_consumers.py MODE TASKS
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import sys
import time

import dask
import distributed
from seed.consumers import Task


def consume(address: str | None, tasks_name: str, results_name: str) -> None:
    client = distributed.Client(address) if address else distributed.get_client()
    tasks, results = distributed.Queue(tasks_name, client=client), distributed.Queue(results_name, client=client)
    name = multiprocessing.current_process().name
    while True:
        task = pickle.loads(tasks.get())
        if task is None:
            print(f"{name}: Exiting")
            break
        print(f"{name}: {task}")
        results.put(pickle.dumps(task()))


def in_a_process(address: str, tasks_name: str, results_name: str) -> int:
    distributed.secede()
    process = multiprocessing.Process(target=consume, args=(address, tasks_name, results_name))
    process.start()
    process.join()
    return int(process.exitcode or 0)


def in_the_task(tasks_name: str, results_name: str) -> int:
    distributed.secede()
    consume(None, tasks_name, results_name)
    return 0


if __name__ == "__main__":
    # The functions by their module's name, not __main__'s: workers and their children import it.
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import dask_consumers as here

    mode, count = sys.argv[1], int(sys.argv[2])
    began = time.perf_counter()
    dask.config.set({"distributed.worker.daemon": False, "distributed.scheduler.allowed-failures": 0})
    env = {"PYTHONPATH": os.pathsep.join([sys.path[0], os.environ.get("PYTHONPATH", "")])}
    with (
        distributed.LocalCluster(processes=True, dashboard_address=None, env=env) as cluster,
        distributed.Client(cluster) as client,
    ):
        tasks, results = distributed.Queue("tasks"), distributed.Queue("results")
        consumers = multiprocessing.cpu_count() * 2
        if mode == "process":
            address = cluster.scheduler_address
            futures = [
                client.submit(here.in_a_process, address, "tasks", "results", pure=False, retries=0)
                for _ in range(consumers)
            ]
        else:
            futures = [
                client.submit(here.in_the_task, "tasks", "results", pure=False, retries=0) for _ in range(consumers)
            ]
        for number in range(count):
            tasks.put(pickle.dumps(Task(number, number)))
        for _ in range(consumers):
            tasks.put(pickle.dumps(None))
        for _ in range(count):
            print("Result:", pickle.loads(results.get(timeout=30)))
        assert client.gather(futures) == [0] * consumers
    print(f"work_s={time.perf_counter() - began:.6f}")
