"""The supervisor with real child processes: restart with backoff, finish, give up, stop."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from dataflows.ops.process import activate, discard, spawn
from dataflows.ops.stack import extra_component
from dataflows.ops.supervisor import (
    Backoff,
    Component,
    ComponentState,
    Health,
    Supervisor,
    all_settled,
)
from risk.domain.error import HflError

FAST = Backoff(base_s=0.05, max_s=0.2, stable_s=60.0, max_restarts=3, same_failure_limit=9)


def python(code: str, name: str = "job") -> Component:
    return Component(name=name, command=[sys.executable, "-c", code])


def crash_until_third_start(counter: Path) -> Component:
    """Exits 1 on its first two starts, 0 on the third (counts starts in a file)."""
    code = (
        "import pathlib, sys\n"
        f"p = pathlib.Path({str(counter)!r})\n"
        "n = int(p.read_text()) + 1 if p.exists() else 1\n"
        "p.write_text(str(n))\n"
        "sys.exit(0 if n >= 3 else 1)\n"
    )
    return python(code, "flaky")


def settle(supervisor: Supervisor, timeout_s: float = 30.0) -> list[Health]:
    deadline = time.monotonic() + timeout_s
    return supervisor.run(
        until=lambda health: all_settled(health) or time.monotonic() > deadline,
        interval_s=0.02,
    )


def test_crashing_component_restarts_until_it_finishes(tmp_path: Path) -> None:
    supervisor = Supervisor([crash_until_third_start(tmp_path / "n")], tmp_path, backoff=FAST)
    supervisor.start()
    (health,) = settle(supervisor)
    assert health.state is ComponentState.FINISHED
    assert health.restarts == 2
    assert (tmp_path / "n").read_text() == "3"


def test_component_that_always_crashes_is_given_up(tmp_path: Path) -> None:
    messages: list[str] = []
    supervisor = Supervisor(
        [python("raise SystemExit(7)")], tmp_path, backoff=FAST, say=messages.append
    )
    supervisor.start()
    (health,) = settle(supervisor)
    assert health.state is ComponentState.GAVE_UP
    assert health.last_exit == 7
    assert health.restarts == FAST.max_restarts
    assert "gave up" in messages[-1]


def test_stop_terminates_running_components_in_reverse_order(tmp_path: Path) -> None:
    sleeper = "import time\nwhile True: time.sleep(0.1)"
    supervisor = Supervisor(
        [python(sleeper, "first"), python(sleeper, "second")], tmp_path, backoff=FAST
    )
    supervisor.start()
    assert [h.state for h in supervisor.poll()] == [ComponentState.RUNNING] * 2
    codes = supervisor.stop()
    assert list(codes) == ["second", "first"]
    assert all(code is not None and code < 0 for code in codes.values())
    assert [h.state for h in supervisor.health()] == [ComponentState.STOPPED] * 2


def test_failing_start_hook_counts_as_a_crash(tmp_path: Path) -> None:
    def broken() -> None:
        raise OSError("port never opened")

    component = Component(
        name="hooked",
        command=[sys.executable, "-c", "import time; time.sleep(30)"],
        after_start=broken,
    )
    supervisor = Supervisor([component], tmp_path, backoff=FAST, say=lambda _: None)
    supervisor.start()
    (health,) = supervisor.health()
    assert health.state is ComponentState.BACKING_OFF
    assert health.restarts == 1
    supervisor.stop()


def test_duplicate_component_names_are_refused(tmp_path: Path) -> None:
    with pytest.raises(HflError, match="unique"):
        Supervisor([python("pass"), python("pass")], tmp_path)


@pytest.mark.parametrize("spec", ["dashboard", "=cmd", "name=  "])
def test_extra_component_without_name_or_command_is_refused(spec: str) -> None:
    with pytest.raises(HflError, match="NAME=COMMAND"):
        extra_component(spec)


def standby_flow(runs: Path, fail_runs: int) -> list[str]:
    """The command line of `tests/support/standby_flow.py` through `dataflows.ops.launch`."""
    flow = f"tests.support.standby_flow:build_flow({str(runs)!r}, {fail_runs})"
    return [sys.executable, "-m", "dataflows.ops.launch", flow]


def pids(path: Path, prefix: str = "") -> list[int]:
    lines = path.read_text().splitlines() if path.exists() else []
    return [int(line.removeprefix(prefix)) for line in lines if line.startswith(prefix)]


def test_warm_component_restarts_from_its_standby_which_runs_once(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    component = Component(name="flow", command=standby_flow(runs, fail_runs=1), warm=True)
    backoff = Backoff(base_s=1.0, max_s=1.0, stable_s=60.0, max_restarts=3)
    supervisor = Supervisor(
        [component], tmp_path, backoff=backoff, standby_delay_s=0.0, say=lambda _: None
    )
    supervisor.start()
    (health,) = settle(supervisor)
    supervisor.stop()
    assert health.state is ComponentState.FINISHED
    assert health.restarts == 1
    imported = pids(tmp_path / "flow.log", "imported ")
    ran = pids(runs)
    # Cold start, the standby spawned while it ran, then a fresh standby that never ran.
    # The fresh one may be stopped before it finished importing (a loaded machine), so
    # it need not have logged: what matters is that only the first two ever ran.
    assert 2 <= len(set(imported)) <= 3
    assert len(set(ran)) == len(ran) == 2
    assert set(ran) <= set(imported)
    for pid in imported:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_standby_exits_without_running_when_its_stdin_closes(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    log = tmp_path / "standby.log"
    standby = spawn(standby_flow(runs, fail_runs=0), log, {}, standby=True)
    deadline = time.monotonic() + 60
    while not pids(log, "imported ") and time.monotonic() < deadline:
        time.sleep(0.05)
    discard(standby)
    assert standby.returncode == 0
    assert pids(log, "imported ") == [standby.pid]
    assert not runs.exists()
    assert activate(standby) is False


def test_standby_spawned_before_its_environment_changed_is_not_used(tmp_path: Path) -> None:
    """A start halt added to the trading flow's environment must reach its restart."""
    runs = tmp_path / "runs"
    env: dict[str, str] = {}
    component = Component(name="flow", command=standby_flow(runs, fail_runs=1), env=env, warm=True)
    backoff = Backoff(base_s=1.0, max_s=1.0, stable_s=60.0, max_restarts=3)
    supervisor = Supervisor(
        [component], tmp_path, backoff=backoff, standby_delay_s=0.0, say=lambda _: None
    )
    supervisor.start()
    supervisor.poll()  # spawns the standby with the environment as it is now
    env["HFL_RISK__START_HALTED__REASON"] = "reconciliation mismatch"
    (health,) = settle(supervisor)
    supervisor.stop()
    assert health.state is ComponentState.FINISHED
    # Cold start, the stale standby (discarded), a cold restart, a fresh standby.
    assert len(set(pids(tmp_path / "flow.log", "imported "))) == 4
    assert len(set(pids(runs))) == 2


def test_component_failing_the_same_way_is_given_up_however_long_it_ran(tmp_path: Path) -> None:
    # Each attempt "stays up" past stable_s, which resets the restart count: only the
    # same-failure count stops the loop that restarted a gave-up trading flow forever.
    backoff = Backoff(base_s=0.01, max_s=0.02, stable_s=0.0, max_restarts=100, same_failure_limit=3)
    supervisor = Supervisor(
        [python("import time, sys; time.sleep(0.1); sys.exit(5)")], tmp_path, backoff=backoff
    )
    supervisor.start()
    (health,) = settle(supervisor)
    assert health.state is ComponentState.GAVE_UP
    assert health.last_exit == 5
    (why,) = supervisor.gave_up()
    assert "job exited with 5" in why
    assert "the same way 3 times" in why


def test_final_exit_code_is_never_restarted(tmp_path: Path) -> None:
    component = Component(
        name="flow",
        command=[sys.executable, "-c", "import sys; sys.exit(3)"],
        final_exits=frozenset({3}),
    )
    supervisor = Supervisor([component], tmp_path, backoff=FAST)
    supervisor.start()
    (health,) = settle(supervisor)
    assert health.state is ComponentState.GAVE_UP
    assert health.restarts == 0
    assert "exit 3 is final for flow" in supervisor.gave_up()[0]


def test_different_failures_are_restarted_until_the_restart_bound(tmp_path: Path) -> None:
    counter = tmp_path / "n"
    code = (
        "import pathlib, sys\n"
        f"p = pathlib.Path({str(counter)!r})\n"
        "n = int(p.read_text()) + 1 if p.exists() else 1\n"
        "p.write_text(str(n))\n"
        "sys.exit(10 + n % 2)\n"
    )
    backoff = Backoff(base_s=0.01, max_s=0.02, stable_s=60.0, max_restarts=4, same_failure_limit=2)
    supervisor = Supervisor([python(code)], tmp_path, backoff=backoff)
    supervisor.start()
    (health,) = settle(supervisor)
    assert health.state is ComponentState.GAVE_UP
    assert health.restarts == 4
    assert counter.read_text() == "5"


def test_deaths_by_signal_are_not_failures_of_the_same_kind(tmp_path: Path) -> None:
    code = "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"
    backoff = Backoff(base_s=0.01, max_s=0.02, stable_s=60.0, max_restarts=4, same_failure_limit=2)
    supervisor = Supervisor([python(code)], tmp_path, backoff=backoff)
    supervisor.start()
    (health,) = settle(supervisor)
    assert health.state is ComponentState.GAVE_UP
    assert health.restarts == 4  # bounded by max_restarts, not by the same-failure limit
    assert "4 restarts" in supervisor.gave_up()[0]
