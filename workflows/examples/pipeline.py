"""A two-stage pipeline: a producer reads records onto a bounded queue, a parser takes them off.
One record is malformed and the parser dies on it, leaving the producer blocked on the full
queue for ever: the hang a hand-written pipeline gets, and what fail fast ends."""

from __future__ import annotations

from multiprocessing.queues import Queue


def produce(records: Queue[str | None], count: int) -> None:
    for number in range(count):
        records.put("bad record" if number == 7 else f"{number},{number * number}")
    records.put(None)
    print(f"produced {count} records")


def parse(records: Queue[str | None]) -> None:
    while True:
        record = records.get()
        if record is None:
            break
        key, value = record.split(",")  # the malformed record raises ValueError here
        print(f"parsed {key} -> {value}")
