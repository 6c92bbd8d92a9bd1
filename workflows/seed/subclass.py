"""Subclassing Process: the work lives in run()."""

import multiprocessing


class Worker(multiprocessing.Process):
    def run(self) -> None:
        print(f"In {self.name}")
        return
