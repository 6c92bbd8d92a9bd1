"""Writers on pipes of their own; the parent reads them all until end of file (CPython's docs,
multiprocessing.connection.wait)."""

from multiprocessing import current_process


def foo(w):
    for i in range(10):
        w.send((i, current_process().name))
    w.close()
