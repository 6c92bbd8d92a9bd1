"""The backend registry and the multiprocessing backend's tables, without starting a process."""

from __future__ import annotations

from runner.backends import BACKENDS, load
from runner.backends.multiprocessing.objects import MAKERS
from runner.workflow import KIND_WORDS


def test_every_registered_backend_loads() -> None:
    for name in BACKENDS:
        assert callable(load(name))


def test_the_multiprocessing_backend_makes_every_kind_of_shared_object() -> None:
    assert set(MAKERS) == set(KIND_WORDS)
