"""A pool's map, each worker announcing itself as it starts (PyMOTW-3's multiprocessing_pool.py
and multiprocessing_pool_maxtasksperchild.py)."""

import multiprocessing


def do_calculation(data):
    return data * 2


def start_process():
    print("Starting", multiprocessing.current_process().name)
