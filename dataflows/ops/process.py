"""Start and stop the flows as child processes, each stopped by its PID.

A flow can also start as a warm standby (`dataflows.ops.launch`): imported and waiting,
it runs once `activate`d, so a restart after a crash skips the interpreter and imports.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from dataflows.ops.launch import GO, STANDBY_ENV
from dataflows.settings import Settings

FLOWS = ("persist", "trading", "gateway")


def init_recovery(directory: Path) -> None:
    """Create a one-partition Bytewax recovery store in `directory` unless it exists."""
    if directory.exists() and any(directory.iterdir()):
        return
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "bytewax.recovery", str(directory), "1"],
        check=True,
        capture_output=True,
    )


def flow_command(name: str, settings: Settings, recovery_dir: Path | None) -> list[str]:
    """The command line of flow `name`: `bytewax.run` through `dataflows.ops.launch`;
    `-i/-a` when `bytewax.process_id` makes it one process of a Bytewax cluster."""
    command = [sys.executable, "-m", "dataflows.ops.launch", f"dataflows.flows.{name}:build_flow()"]
    cluster = settings.bytewax
    if cluster.process_id >= 0 and cluster.addresses:
        command += ["-i", str(cluster.process_id), "-a", ";".join(cluster.addresses)]
    if cluster.workers_per_process > 1:
        command += ["-w", str(cluster.workers_per_process)]
    if recovery_dir is not None:
        recovery = settings.recovery
        command += [
            "-r",
            str(recovery_dir),
            "-s",
            str(recovery.snapshot_interval_s),
            "-b",
            str(recovery.backup_interval_s),
        ]
    return command


@dataclass(slots=True)
class Child:
    """A flow process and where its output goes."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def tail(self, lines: int = 30) -> str:
        """The last lines of the child's log."""
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def activate(self) -> bool:
        """Tell a standby to run its flow; False if it is gone (start a cold one then)."""
        return activate(self.process)


def start_flow(
    name: str,
    settings: Settings,
    run_dir: Path,
    env: Mapping[str, str],
    *,
    recovery: bool = True,
    standby: bool = False,
) -> Child:
    """Start flow `name` with its own recovery store under `run_dir` (or as a standby)."""
    recovery_dir = run_dir / "recovery" / name if recovery else None
    if recovery_dir is not None:
        init_recovery(recovery_dir)
    return start_child(
        name, flow_command(name, settings, recovery_dir), run_dir, env, standby=standby
    )


def start_cluster(
    name: str,
    settings: Settings,
    run_dir: Path,
    env: Mapping[str, str],
    addresses: Sequence[str],
) -> list[Child]:
    """Start flow `name` as a Bytewax cluster: one process per address (`host:port`, in
    process order), all sharing one recovery store under `run_dir`.

    Each gets `bytewax.process_id` and `bytewax.addresses` in its environment, so the
    flow knows the cluster's size (the trading flow assigns instruments to workers
    from it) and `flow_command` passes `-i/-a`. A Bytewax cluster lives and dies as
    one: when one process fails, the others stop too; restart all of them.
    """
    recovery_dir = run_dir / "recovery" / name
    init_recovery(recovery_dir)
    children = []
    for index in range(len(addresses)):
        cluster_env = {
            **env,
            "HFL_BYTEWAX__PROCESS_ID": str(index),
            "HFL_BYTEWAX__ADDRESSES": ",".join(addresses),
        }
        cluster = replace(
            settings,
            bytewax=replace(settings.bytewax, process_id=index, addresses=tuple(addresses)),
        )
        command = flow_command(name, cluster, recovery_dir)
        children.append(start_child(f"{name}-{index}", command, run_dir, cluster_env))
    return children


def start_child(
    name: str, command: list[str], run_dir: Path, env: Mapping[str, str], *, standby: bool = False
) -> Child:
    """Start `command` in its own session, its output appended to `run_dir/<name>.log`."""
    log = run_dir / f"{name}.log"
    return Child(name, spawn(command, log, env, standby=standby), log)


def spawn(
    command: Sequence[str], log: Path, env: Mapping[str, str], *, standby: bool = False
) -> subprocess.Popen[bytes]:
    """Start `command` in its own session (a stop reaches its children), output to `log`.

    A standby gets `HFL_STANDBY=1` and a pipe on stdin: it waits for `activate`, and
    exits without running when the pipe closes (`discard`, or this process died).
    """
    with log.open("ab") as out:
        return subprocess.Popen(
            list(command),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.PIPE if standby else subprocess.DEVNULL,
            env={**os.environ, **env, **({STANDBY_ENV: "1"} if standby else {})},
            start_new_session=True,
        )


def activate(process: subprocess.Popen[bytes]) -> bool:
    """Tell standby `process` to run; False if it already exited (it never runs then)."""
    if process.poll() is not None or process.stdin is None:
        return False
    try:
        process.stdin.write(GO)
        process.stdin.close()
    except BrokenPipeError:
        return False
    return True


def discard(process: subprocess.Popen[bytes], timeout_s: float = 10.0) -> None:
    """End a standby that was never activated: close its stdin, then kill it if it lingers."""
    if process.stdin is not None and not process.stdin.closed:
        with contextlib.suppress(BrokenPipeError):
            process.stdin.close()
    try:
        process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def stop(child: Child, timeout_s: float = 10.0) -> int:
    """Stop a child (SIGTERM, then SIGKILL) and return its exit code.

    A running Bytewax 0.21 flow does not react to SIGINT (its workers hold the
    interpreter in Rust), so it is terminated; with recovery on, a restart resumes
    from the last snapshot and the idempotent sinks absorb the replayed epoch.
    """
    if child.process.poll() is None:
        child.process.send_signal(signal.SIGTERM)
        try:
            child.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            child.process.kill()
            child.process.wait()
    return child.process.returncode


def wait_all(children: list[Child], timeout_s: float) -> dict[str, int | None]:
    """Wait until every child exits or the timeout passes; return their exit codes."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and any(c.process.poll() is None for c in children):
        time.sleep(0.1)
    return {child.name: child.process.poll() for child in children}
