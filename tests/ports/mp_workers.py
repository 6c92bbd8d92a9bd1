"""Workers run (function, args) tasks off a queue (CPython's Doc/includes/mp_workers.py)."""

import random
import time
from multiprocessing import current_process


def worker(input, output):
    for func, args in iter(input.get, "STOP"):
        result = calculate(func, args)
        output.put(result)


def calculate(func, args):
    result = func(*args)
    return f"{current_process().name} says that {func.__name__}{args} = {result}"


def mul(a, b):
    time.sleep(0.05 * random.random())
    return a * b


def plus(a, b):
    time.sleep(0.05 * random.random())
    return a + b
