"""Stage 2 waits on a condition that stage 1 notifies (PyMOTW-3's multiprocessing_condition.py)."""

import multiprocessing


def stage_1(cond):
    name = multiprocessing.current_process().name
    print("Starting", name)
    with cond:
        print(f"{name} done and ready for stage 2")
        cond.notify_all()


def stage_2(cond):
    name = multiprocessing.current_process().name
    print("Starting", name)
    with cond:
        cond.wait()
        print(f"{name} running")
