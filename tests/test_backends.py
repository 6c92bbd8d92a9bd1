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


def test_the_fork_server_keeps_the_private_attributes_mprun_reads() -> None:
    # backend.py reads the host's preload list (to keep it) and the server's pid (to leave it
    # running at the end): a Python that renames them must fail here, not in users' runs.
    from multiprocessing import forkserver

    server = forkserver.ForkServer()
    assert server._preload_modules == ["__main__"]  # type: ignore[attr-defined]
    forkserver.ForkServer.set_forkserver_preload(server, ["__main__", "runner.child"])
    assert server._preload_modules == ["__main__", "runner.child"]  # type: ignore[attr-defined]
    assert server._forkserver_pid is None  # type: ignore[attr-defined]  # set once it starts
    assert isinstance(forkserver._forkserver, forkserver.ForkServer)  # type: ignore[attr-defined]


def test_the_dask_backend_makes_or_refuses_every_kind_of_shared_object() -> None:
    from runner.backends.dask.backend import MAKERS as DASK
    from runner.backends.dask.support import REFUSED_KINDS

    assert set(DASK) | set(REFUSED_KINDS) | {"object"} == set(KIND_WORDS)
    assert not set(DASK) & set(REFUSED_KINDS)
