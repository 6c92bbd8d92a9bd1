"""Targets that are callable but whose body never runs when a Process calls them."""

from typing import Any


async def fetch(url: str) -> None:
    print(url)


def numbers(count: int) -> Any:
    yield from range(count)


work = lambda task: print(task)  # noqa: E731 - deliberately a lambda: spawn cannot pickle it
