"""Signalling between processes with an Event: one waits for ever, one for a while."""

from multiprocessing.synchronize import Event


def wait_for_event(e: Event) -> None:
    """Wait for the event to be set before doing anything"""
    print("wait_for_event: starting")
    e.wait()
    print("wait_for_event: e.is_set()->", e.is_set())


def wait_for_event_timeout(e: Event, t: float) -> None:
    """Wait t seconds and then timeout"""
    print("wait_for_event_timeout: starting")
    e.wait(t)
    print("wait_for_event_timeout: e.is_set()->", e.is_set())
