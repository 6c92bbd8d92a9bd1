"""A server that takes a while to come up, then says "ready" and answers clients on a Unix
socket; clients that connect before it is listening would fail."""

from __future__ import annotations

import os
import tempfile
import time
from multiprocessing.connection import Client, Listener


def folder() -> str:
    """Where the server's socket goes: a fresh folder of the run's own."""
    return tempfile.mkdtemp(prefix="mprun-service-")


def serve(where: str, clients: int, warm_up: float) -> None:
    time.sleep(warm_up)  # loading a model, opening a database...
    address = os.path.join(where, "server.sock")
    with Listener(address, family="AF_UNIX") as listener:
        print(f"ready on {address}", flush=True)
        for _ in range(clients):
            with listener.accept() as connection:
                question = connection.recv()
                connection.send(f"answer to {question}")
    os.rmdir(where)


def ask(where: str, number: int) -> None:
    with Client(os.path.join(where, "server.sock"), family="AF_UNIX") as connection:
        connection.send(f"question {number}")
        print(connection.recv())
