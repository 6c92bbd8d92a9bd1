"""Creating processes: one function, five processes, each with its own argument."""


def worker(num: int) -> None:
    """thread worker function"""
    print("Worker:", num)
