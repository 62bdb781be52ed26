"""The leftover-process check behind the conftest fixture `no_child_outlives_its_test`."""

from __future__ import annotations

import os
import subprocess
import sys

from support.processes import descendants, reap_leftovers


def test_a_child_left_running_is_named_and_killed_by_pid() -> None:
    before = descendants(os.getpid())
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
    before = descendants(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.3)"])
    assert reap_leftovers(before, grace_s=20.0) == []
    child.wait()
