"""At most three workers at a time in a pool of names the parent shows (PyMOTW-3's
multiprocessing_semaphore.py)."""

import multiprocessing
import random
import time


class ActivePool:
    def __init__(self):
        super().__init__()
        self.mgr = multiprocessing.Manager()
        self.active = self.mgr.list()
        self.lock = multiprocessing.Lock()

    def __getstate__(self):  # the manager stays in the parent: its proxies go to the children
        return {"active": self.active, "lock": self.lock}

    def makeActive(self, name):
        with self.lock:
            self.active.append(name)

    def makeInactive(self, name):
        with self.lock:
            self.active.remove(name)

    def __str__(self):
        with self.lock:
            return str(self.active)


def worker(s, pool):
    name = multiprocessing.current_process().name
    with s:
        pool.makeActive(name)
        print(f"Activating {name} now running {pool}")
        time.sleep(random.random() * 0.1)
        pool.makeInactive(name)
