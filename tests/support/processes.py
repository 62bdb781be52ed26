"""Which processes a test left behind: every child of the test process is stopped by PID."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path


def children(pid: int) -> set[int]:
    """The live direct children of `pid` (zombies excluded)."""
    return set(_children_by_parent().get(pid, []))


def descendants(pid: int) -> set[int]:
    """Every live descendant of `pid`, by parent links in /proc (zombies excluded)."""
    parents = _children_by_parent()
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _children_by_parent() -> dict[int, list[int]]:
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] == "Z":
            continue
        parents.setdefault(int(fields[1]), []).append(int(entry.name))
    return parents


def describe(pid: int) -> str:
    """`pid: command line` (shortened), or `pid: ?` once it is gone."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        command = "?"
    return f"{pid}: {command.strip()[:160]}"


def leftovers(before: set[int]) -> set[int]:
    """The direct children of this process not in `before`, with their descendants.

    Children that were there before (a module's broker or demo) may start and stop
    processes of their own meanwhile: those belong to them, not to the test.
    """
    new = children(os.getpid()) - before
    return new.union(*(descendants(pid) for pid in new))


def reap_leftovers(before: set[int], grace_s: float) -> list[str]:
    """Wait up to `grace_s` for the children started since `before` (this process's
    children then) and their descendants to exit; kill the rest by PID (SIGKILL) and
    return their descriptions (empty when none was left)."""
    deadline = time.monotonic() + grace_s
    while (left := leftovers(before)) and time.monotonic() < deadline:
        time.sleep(0.1)
    described = [describe(pid) for pid in sorted(left)]
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return described
