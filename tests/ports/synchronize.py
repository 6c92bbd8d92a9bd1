"""The tests of CPython's Doc/includes/mp_synchronize.py, each a group of processes."""

import multiprocessing
import random
import time


def value_func(running, mutex):
    random.seed()
    time.sleep(random.random() * 0.2)
    mutex.acquire()
    print("\n\t\t\t" + str(multiprocessing.current_process()) + " has finished")
    running.value -= 1
    mutex.release()


def queue_func(queue):
    for i in range(30):
        time.sleep(0.01 * random.random())
        queue.put(i * i)
    queue.put("STOP")


def condition_func(cond):
    cond.acquire()
    print("\t" + str(cond))
    time.sleep(0.2)
    print("\tchild is notifying")
    print("\t" + str(cond))
    cond.notify()
    cond.release()


def condition_waiter(cond):
    # What test_condition's parent does itself: hold the lock twice and wait to be notified.
    cond.acquire()
    print(cond)
    cond.acquire()
    print(cond)
    print("main is waiting")
    cond.wait()
    print("main has woken up")
    print(cond)
    cond.release()
    print(cond)
    cond.release()


def semaphore_func(sema, mutex, running):
    sema.acquire()
    mutex.acquire()
    running.value += 1
    print(running.value, "tasks are running")
    mutex.release()
    random.seed()
    time.sleep(random.random() * 0.1)
    mutex.acquire()
    running.value -= 1
    print("%s has finished" % multiprocessing.current_process())
    mutex.release()
    sema.release()


def join_timeout_func():
    print("\tchild sleeping")
    time.sleep(0.3)
    print("\n\tchild terminating")


def event_func(event):
    print("\t%r is waiting" % multiprocessing.current_process())
    event.wait()
    print("\t%r has woken up" % multiprocessing.current_process())


def sharedvalues_func(values, arrays, shared_values, shared_arrays):
    for i in range(len(values)):
        v = values[i][1]
        sv = shared_values[i].value
        assert v == sv
    for i in range(len(values)):
        a = arrays[i][1]
        sa = list(shared_arrays[i][:])
        assert a == sa
    print("Tests passed")
