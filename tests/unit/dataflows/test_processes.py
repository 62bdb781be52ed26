"""The leftover-process check behind the conftest fixture `no_child_outlives_its_test`."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from support.processes import children, descendants, reap_leftovers


def test_a_child_left_running_is_named_and_killed_by_pid() -> None:
    before = children(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert child.pid in descendants(os.getpid())
        left = reap_leftovers(before, grace_s=0.2)
        assert [line.split(":")[0] for line in left] == [str(child.pid)]
        assert "time.sleep(60)" in left[0]
        assert child.wait(5) == -9
    finally:
        child.kill()
        child.wait()


def test_a_child_that_exits_within_the_grace_is_not_a_leftover() -> None:
    before = children(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.3)"])
    assert reap_leftovers(before, grace_s=20.0) == []
    child.wait()


def test_processes_started_by_an_older_child_are_its_own() -> None:
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess, sys, time; "
            "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)']); "
            "time.sleep(30)",
        ]
    )
    try:
        before = children(os.getpid())  # the parent exists; its child comes later
        time.sleep(1.0)
        assert len(descendants(parent.pid)) >= 1
        assert reap_leftovers(before, grace_s=0.2) == []
    finally:
        for pid in descendants(parent.pid):
            os.kill(pid, 9)
        parent.kill()
        parent.wait()
