"""A managed namespace read before and after an event (PyMOTW-3's multiprocessing_namespaces.py)."""


def producer(ns, event):
    ns.value = "This is the value"
    event.set()


def consumer(ns, event):
    try:
        print("Before event:", ns.value)
    except Exception as err:
        print("Before event, error:", str(err))
    event.wait()
    print("After event:", ns.value)
