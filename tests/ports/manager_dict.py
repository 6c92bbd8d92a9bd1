"""Each process fills in one key of a managed dict (PyMOTW-3's multiprocessing_manager_dict.py)."""


def worker(d, key, value):
    d[key] = value
