"""Ten processes print under one lock (CPython's docs, "Synchronization between processes")."""


def f(l, i):
    l.acquire()
    try:
        print("hello world", i)
    finally:
        l.release()
