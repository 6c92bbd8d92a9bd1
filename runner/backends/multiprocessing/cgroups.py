"""One cgroup (v2) per process, where mprun may make them: what a process starts stays in its
cgroup whatever it does (fork, double-fork, a new session), so it can be told whose it is and
stopped with it, and a guard process kills them all if mprun itself is killed.

They are made inside mprun's own cgroup, in a folder for the run (`mprun-PID-RANDOM`), when
that folder can be made and processes can be moved into it: as root, or in a cgroup delegated
to the user (a systemd user session's). Elsewhere `Cgroups.create` gives None and trees.py's
parentage alone is used.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

SETTLE = 2.0  # s to wait for killed processes to leave a cgroup before it is removed


def own_cgroup() -> Path | None:
    """The folder of this process's cgroup v2, if the unified hierarchy is mounted."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
        mounts = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return None
    relative = next((line[3:] for line in lines if line.startswith("0::")), None)
    if relative is None:
        return None
    for mount in mounts:
        before, _, after = mount.partition(" - ")
        if after.split(" ", 1)[0] != "cgroup2":
            continue
        fields = before.split()
        root, point = fields[3], fields[4]
        inside = os.path.relpath(relative, root)
        if inside.startswith(".."):
            continue  # this mount shows another part of the tree
        return (Path(point) / inside).resolve()
    return None


class Cgroups:
    """The run's cgroup folder and one cgroup in it per started process."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.folders: list[Path] = []

    @classmethod
    def create(cls) -> Cgroups | None:
        """The run's folder, made; None where processes cannot be moved into one, or where
        MPRUN_CGROUPS=off says not to."""
        if os.environ.get("MPRUN_CGROUPS") == "off":
            return None
        own = own_cgroup()
        if own is None or not os.access(own / "cgroup.procs", os.W_OK):
            return None
        try:
            # Processes may not sit in a cgroup whose controllers are handed down to its
            # children (the "no internal processes" rule), except at the root.
            handed_down = (own / "cgroup.subtree_control").read_text().strip()
            if handed_down and (own / "cgroup.type").exists():  # the root has no type
                return None
            root = own / f"mprun-{os.getpid()}-{os.urandom(3).hex()}"
            root.mkdir()
        except OSError:
            return None
        return cls(root)

    @classmethod
    def available(cls) -> bool:
        """Whether runs here get cgroups (one is made and removed to find out)."""
        made = cls.create()
        if made is None:
            return False
        made.close()
        return True

    def make(self) -> str | None:
        """A new cgroup for the next process to start (it moves itself in); None if it cannot."""
        folder = self.root / str(len(self.folders))
        try:
            folder.mkdir()
        except OSError:
            return None
        self.folders.append(folder)
        return str(folder)

    @staticmethod
    def members(folder: str) -> list[int]:
        """The processes in this cgroup and any below it (user code may make some)."""
        found: list[int] = []
        for inside, _, _ in os.walk(folder):
            try:
                found.extend(int(word) for word in Path(inside, "cgroup.procs").read_text().split())
            except (OSError, ValueError):
                continue
        return found

    def close(self) -> None:
        """Kill whatever is still in the run's cgroups, and remove them."""
        kill(self.root)
        remove(self.root)


def kill(folder: Path) -> None:
    """SIGKILL every process in `folder` and below, at once where the kernel can (5.14's
    cgroup.kill, which no fork escapes), else one by one until it is empty."""
    try:
        (folder / "cgroup.kill").write_text("1")
    except OSError:
        for _ in range(100):
            members = Cgroups.members(str(folder))
            if not members:
                break
            for pid in members:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.01)


def remove(folder: Path) -> None:
    """Remove `folder` and the cgroups below it once they are empty (killed processes take a
    moment to leave), within SETTLE."""
    deadline = time.monotonic() + SETTLE
    for inside, _, _ in sorted(os.walk(folder), key=lambda entry: -len(entry[0])):
        while True:
            try:
                os.rmdir(inside)
                break
            except FileNotFoundError:
                break
            except OSError:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.005)


def start_guard(root: Path) -> tuple[int, int]:
    """Fork the process that kills the run's cgroups if mprun dies without doing it (SIGKILL):
    its pid, and the descriptor mprun holds to keep it waiting (whose end of file wakes it).
    Called before mprun has any thread: the guard is a copy of mprun that must not inherit a
    lock held by one. Fork children must close the descriptor (child.guard does)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the guard
        try:
            os.setsid()  # not stopped with mprun's process group (a CI job's kill of it)
            for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                signal.signal(number, signal.SIG_IGN)
            devnull = os.open(os.devnull, os.O_RDWR)
            for standard in (0, 1, 2):  # not mprun's pipes: whoever reads them would wait for it
                os.dup2(devnull, standard)
            os.closerange(3, read)
            os.closerange(read + 1, 1 << 20)
            _warm_up(root.parent)
            while True:
                try:
                    os.read(read, 1)  # end of file: mprun has ended or closed its end
                    break
                except InterruptedError:
                    continue
            if root.exists():
                kill(root)
                remove(root)
        finally:
            os._exit(0)
    os.close(read)
    return pid, write


def _warm_up(own: Path) -> None:
    """Move this process into the cgroup it is in already. The first move into a cgroup costs
    5 to 10 ms (the kernel switches the cgroups' lock to its slow mode and waits for a grace
    period), and the moves that follow within a few milliseconds almost nothing: this one is
    made by the guard while mprun builds the run, rather than by the run's first process as it
    starts. Making a cgroup waits for it too (the same lock)."""
    try:
        with open(own / "cgroup.procs", "w") as procs:
            procs.write("0")
    except OSError:
        pass


def stop_guard(pid: int, descriptor: int) -> None:
    """Wake the guard (the run's cgroups are gone by now) and reap it."""
    os.close(descriptor)
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass
