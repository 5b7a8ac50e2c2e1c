"""Shutting down a local Ray runtime that this process started, without leaving any of it behind.

`ray.shutdown(wait_for_processes=True)` reaps the processes Ray tracks (raylet, GCS, agents). The
workers, trial actors among them, are the raylet's children and exit on their own once it is
gone; on a loaded 2-core machine a `ray::ImplicitFunc` trial actor was seen alive more than 10 s
after its driver had exited (tests/test_concurrency.py, docs/reliability.md). So the driver lists
its descendants before the shutdown (less those that were already there before `ray.init`, such
as a tracking server a test or notebook started), gives them `grace_s` to exit, and sends SIGKILL
to the rest.

Process identity comes from /proc (pid plus start time, so a recycled pid is never killed); where
/proc does not exist (macOS) only Ray's own shutdown runs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

Process = tuple[int, int]  # (pid, start time in clock ticks since boot)
GRACE_S = 5.0  # how long the workers get to exit after Ray's own shutdown


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/PID/stat from its third field (state, ppid, ...), or None if `pid` is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def descendants(pid: int) -> set[Process]:
    """Every live process below `pid`, as (pid, start time); empty without /proc."""
    parents: dict[Process, int] = {}
    proc = Path("/proc")
    for entry in proc.iterdir() if proc.is_dir() else ():
        fields = _stat_fields(int(entry.name)) if entry.name.isdigit() else None
        if fields is not None and fields[0] != "Z":
            parents[(int(entry.name), int(fields[19]))] = int(fields[1])
    found: set[Process] = set()
    frontier = {pid}
    while frontier:
        children = {child for child, parent in parents.items() if parent in frontier} - found
        found |= children
        frontier = {child[0] for child in children}
    return found


def is_alive(process: Process) -> bool:
    """Whether `process` still runs: same pid and start time, not a zombie."""
    fields = _stat_fields(process[0])
    return fields is not None and int(fields[19]) == process[1] and fields[0] != "Z"


def shutdown_local_ray(spared: set[Process], grace_s: float = GRACE_S) -> int:
    """Shut down the Ray runtime this process started with `ray.init()`; every process below
    this one, but those in `spared` (its descendants before `ray.init`), that is still alive
    `grace_s` seconds later gets SIGKILL. Returns how many did."""
    import ray

    workers = descendants(os.getpid()) - spared
    ray.shutdown(wait_for_processes=True)
    deadline = time.monotonic() + grace_s
    while any(is_alive(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    survivors = [p for p in workers if is_alive(p)]
    for pid, _ in survivors:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return len(survivors)
