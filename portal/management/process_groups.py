"""Stopping what `manage.py serve` started, stuck or not.

Each child (gunicorn, the Celery worker) is started as the leader of its own process group, so
its own children (gunicorn's workers, Celery's pool and beat) share that group. Stopping asks
each leader to stop (SIGTERM, their graceful shutdown), waits a bounded time for every process
of every group to be gone, then SIGKILLs whatever is left of the groups: a request thread stuck
in a slow regex or a hung read can no longer keep a worker alive after `serve` has returned.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Callable, Iterable

PROC = Path("/proc")


def _live_members(pgid: int) -> list[int]:
    """Processes of group `pgid` that are still running (zombies are already dead)."""
    members = []
    for stat in PROC.glob("[0-9]*/stat"):
        try:
            # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
            state, _ppid, pgrp = stat.read_text().rsplit(")", 1)[1].split()[:3]
        except (OSError, IndexError, ValueError):
            continue  # gone while we looked
        if int(pgrp) == pgid and state not in ("Z", "X"):
            members.append(int(stat.parent.name))
    return members


def group_alive(pgid: int) -> bool:
    if PROC.is_dir():
        return bool(_live_members(pgid))
    try:  # without /proc (not Linux): zombies count as alive, which only delays the SIGKILL
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def stop_process_groups(children: Iterable[subprocess.Popen], *, timeout: float,
                        say: Callable[[str], None] = lambda message: None) -> None:
    """SIGTERM each child, then SIGKILL every process left in their groups after `timeout` s.

    The children must have been started with `start_new_session=True` (pgid == pid).
    """
    children = list(children)
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    pending = {child.pid: child for child in children}
    while pending and time.monotonic() < deadline:
        for pgid, child in list(pending.items()):
            child.poll()  # reap the leader so it is not counted as a zombie member
            if child.returncode is not None and not group_alive(pgid):
                del pending[pgid]
        time.sleep(0.1)
    for pgid, child in pending.items():
        say(f"process group {pgid} ({' '.join(map(str, child.args[:4]))} ...) did not stop "
            f"within {timeout:g}s: killing it")
        _signal_group(pgid, signal.SIGKILL)
    for child in pending.values():
        child.wait()
    kill_deadline = time.monotonic() + 5
    while time.monotonic() < kill_deadline and any(group_alive(pgid) for pgid in pending):
        time.sleep(0.05)  # SIGKILL is not instant for a process in the kernel
