"""Run the system's processes, restart the ones that crash, stop them all cleanly.

A `Component` is data: a name, a command line and extra environment. The supervisor
starts each in its own session (so a stop reaches its children), restarts one that
exits with a non-zero code after an exponential backoff with jitter (reset once it
stayed up for `stable_s`), treats exit code 0 as finished, reports health, and stops
everything in reverse start order with SIGTERM, then SIGKILL. Bytewax 0.21 ignores
SIGINT while its workers run, hence SIGTERM; with recovery on, a restarted flow
resumes from its last snapshot.

A `warm` component (a flow started through `dataflows.ops.launch`) keeps a standby: a
second process of the same command that has already imported everything and waits.
A restart activates it instead of starting cold, which removes the interpreter and
import time from recovery (seconds on a loaded machine), unless the component's
environment changed since the standby was spawned (a start halt added to the trading
flow's): then the standby is discarded and the restart is cold. A new standby is spawned
`standby_delay_s` after each start, so its imports do not compete with the flow's
own start. Only the activated process ever runs the flow (a standby runs at most
once, and only after its predecessor exited); standbys are ended with the
supervisor, and end by themselves if it dies (their stdin pipe closes).
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from dataflows.ops.process import activate, discard, spawn
from risk.domain.error import HflError


class ComponentState(StrEnum):
    """Where a supervised component is in its life."""

    RUNNING = "running"
    BACKING_OFF = "backing_off"
    FINISHED = "finished"
    GAVE_UP = "gave_up"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True, kw_only=True)
class Component:
    """A process the supervisor keeps running.

    Attributes:
        name: Short name for logs and health (`trading`, `dashboard`, …).
        command: The command line.
        env: Environment on top of the supervisor's own.
        after_start: Called once the process started (e.g. wait for a port, create
            topics); raising makes the start count as a crash.
        final_exits: Exit codes that are never restarted: the component decided it
            cannot go on (a bounded flow whose end guard fired), so it is given up at once.
        warm: The command is a standby when started with `HFL_STANDBY=1` (waits for
            `run` on stdin, see `dataflows.ops.launch`): restarts activate a standby.
    """

    name: str
    command: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)
    after_start: Callable[[], None] | None = None
    final_exits: frozenset[int] = frozenset()
    warm: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Backoff:
    """Restart delays: `base_s * 2**(n-1)` capped at `max_s`, with equal jitter."""

    base_s: float = 0.5
    max_s: float = 30.0
    stable_s: float = 30.0
    max_restarts: int = 20
    # A component that fails the same way (same non-negative exit code) this many times
    # in a row is given up, however long each attempt ran: a restart would only repeat it.
    same_failure_limit: int = 3

    def delay_s(self, restarts: int, rng: random.Random) -> float:
        """Delay before restart number `restarts` (1-based): half fixed, half random.

        >>> Backoff(base_s=1.0, max_s=4.0).delay_s(5, random.Random(0)) <= 4.0
        True
        """
        step = min(self.max_s, self.base_s * 2 ** (restarts - 1))
        return step * (0.5 + 0.5 * rng.random())


@dataclass(frozen=True, slots=True, kw_only=True)
class Health:
    """One component's health as the supervisor sees it."""

    name: str
    state: ComponentState
    pid: int | None
    restarts: int
    uptime_s: float
    last_exit: int | None

    def render(self) -> str:
        """One short line, e.g. `trading running pid=123 up=12s restarts=0`."""
        exit_part = "" if self.last_exit is None else f" last_exit={self.last_exit}"
        return (
            f"{self.name} {self.state} pid={self.pid} up={self.uptime_s:.0f}s "
            f"restarts={self.restarts}{exit_part}"
        )


@dataclass(slots=True)
class _Slot:
    component: Component
    log: Path
    process: subprocess.Popen[bytes] | None = None
    state: ComponentState = ComponentState.STOPPED
    started_at: float = 0.0
    restarts: int = 0
    restart_at: float = 0.0
    last_exit: int | None = None
    last_failure: int | None = None
    same_failures: int = 0
    reason: str = ""
    standby: subprocess.Popen[bytes] | None = None
    standby_env: dict[str, str] = field(default_factory=dict)
    standby_at: float = 0.0


class Supervisor:
    """Keep `components` running; see the module docstring for the policy."""

    def __init__(
        self,
        components: Sequence[Component],
        log_dir: Path,
        *,
        backoff: Backoff | None = None,
        stop_timeout_s: float = 15.0,
        standby_delay_s: float = 2.0,
        say: Callable[[str], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        names = [component.name for component in components]
        if len(set(names)) != len(names):
            raise HflError(f"component names must be unique, got {names}")
        log_dir.mkdir(parents=True, exist_ok=True)
        self._slots = [_Slot(c, log_dir / f"{c.name}.log") for c in components]
        self._backoff = backoff or Backoff()
        self._stop_timeout_s = stop_timeout_s
        self._standby_delay_s = standby_delay_s
        self._say = say or report_line
        self._rng = rng or random.Random()

    def start(self) -> None:
        """Start every component in order."""
        for slot in self._slots:
            self._launch(slot)

    def poll(self) -> list[Health]:
        """Reap exits, restart what is due, and return everyone's health."""
        now = time.monotonic()
        for slot in self._slots:
            if slot.state is ComponentState.RUNNING:
                self._check(slot, now)
            if slot.state is ComponentState.BACKING_OFF and now >= slot.restart_at:
                self._launch(slot)
            self._keep_standby(slot, now)
        return self.health()

    def health(self) -> list[Health]:
        """Everyone's health, without side effects."""
        now = time.monotonic()
        return [
            Health(
                name=slot.component.name,
                state=slot.state,
                pid=slot.process.pid if slot.process is not None else None,
                restarts=slot.restarts,
                uptime_s=now - slot.started_at if slot.state is ComponentState.RUNNING else 0.0,
                last_exit=slot.last_exit,
            )
            for slot in self._slots
        ]

    def run(
        self,
        *,
        until: Callable[[list[Health]], bool],
        interval_s: float = 0.2,
        report_every_s: float = 10.0,
    ) -> list[Health]:
        """Poll until `until(health)` holds; print health every `report_every_s`."""
        last_report = time.monotonic()
        while True:
            health = self.poll()
            if until(health):
                return health
            if time.monotonic() - last_report >= report_every_s:
                self._say(" | ".join(h.render() for h in health))
                last_report = time.monotonic()
            time.sleep(interval_s)

    def stop(self) -> dict[str, int | None]:
        """Stop every component, last started first; return their exit codes."""
        codes: dict[str, int | None] = {}
        for slot in reversed(self._slots):
            self._drop_standby(slot)
            codes[slot.component.name] = self._terminate(slot)
        return codes

    def gave_up(self) -> list[str]:
        """Why each given-up component was given up (empty when none was)."""
        return [s.reason for s in self._slots if s.state is ComponentState.GAVE_UP]

    def tail(self, name: str, lines: int = 30) -> str:
        """The last lines of component `name`'s log."""
        slot = next(s for s in self._slots if s.component.name == name)
        try:
            return "\n".join(slot.log.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def _launch(self, slot: _Slot) -> None:
        component = slot.component
        standby, slot.standby = slot.standby, None
        fresh = slot.standby_env == dict(component.env)  # env may change (a start halt)
        if standby is not None and fresh and activate(standby):
            slot.process = standby
        else:
            if standby is not None:
                discard(standby)
            slot.process = spawn(component.command, slot.log, component.env)
        slot.state = ComponentState.RUNNING
        slot.started_at = time.monotonic()
        slot.standby_at = slot.started_at + self._standby_delay_s
        if component.after_start is not None:
            try:
                component.after_start()
            except Exception as exc:  # any failure of the hook is a failed start
                self._say(f"{component.name}: start hook failed: {exc}")
                self._terminate(slot)
                self._crashed(slot, time.monotonic(), -1)

    def _keep_standby(self, slot: _Slot, now: float) -> None:
        """Spawn a warm component's next standby once its latest start had its head start."""
        component = slot.component
        if not component.warm:
            return
        if slot.state not in (ComponentState.RUNNING, ComponentState.BACKING_OFF):
            self._drop_standby(slot)
        elif slot.standby is None and now >= slot.standby_at:
            slot.standby_env = dict(component.env)
            slot.standby = spawn(component.command, slot.log, component.env, standby=True)

    def _drop_standby(self, slot: _Slot) -> None:
        if slot.standby is not None:
            discard(slot.standby)
            slot.standby = None

    def _check(self, slot: _Slot, now: float) -> None:
        assert slot.process is not None
        code = slot.process.poll()
        if code is None:
            if slot.restarts and now - slot.started_at >= self._backoff.stable_s:
                slot.restarts = 0
            return
        slot.last_exit = code
        if code == 0:
            slot.state = ComponentState.FINISHED
            slot.same_failures, slot.last_failure = 0, None
            return
        self._crashed(slot, now, code)

    def _crashed(self, slot: _Slot, now: float, code: int) -> None:
        # A death by signal (negative code: an operator's or a chaos test's kill -9) is
        # not the program failing; it stays bounded by `max_restarts` alone.
        same = code >= 0 and slot.last_failure == code
        slot.same_failures = slot.same_failures + 1 if same else int(code >= 0)
        slot.last_failure = slot.last_exit = code
        name = slot.component.name
        why = ""
        if code in slot.component.final_exits:
            why = f"exit {code} is final for {name}"
        elif slot.same_failures >= self._backoff.same_failure_limit:
            why = f"it failed the same way {slot.same_failures} times in a row"
        elif slot.restarts >= self._backoff.max_restarts:
            why = f"{slot.restarts} restarts"
        if why:
            slot.state = ComponentState.GAVE_UP
            slot.reason = f"{name} exited with {code}; gave up: {why}"
            self._say(slot.reason + f"; last log line: {self.tail(name, 1)!r}")
            return
        slot.restarts += 1
        delay = self._backoff.delay_s(slot.restarts, self._rng)
        slot.state = ComponentState.BACKING_OFF
        slot.restart_at = now + delay
        self._say(f"{name} exited with {code}; restart {slot.restarts} in {delay:.1f}s")

    def _terminate(self, slot: _Slot) -> int | None:
        process = slot.process
        if process is None:
            return None
        if process.poll() is None:
            _signal_group(process, signal.SIGTERM)
            try:
                process.wait(self._stop_timeout_s)
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)
                process.wait()
        if slot.state in (ComponentState.RUNNING, ComponentState.BACKING_OFF):
            slot.state = ComponentState.STOPPED
        return process.returncode


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signum)


def report_line(message: str) -> None:
    """One line on stderr, prefixed `[hfl up]`: how the supervisor reports."""
    print(f"[hfl up] {message}", file=sys.stderr, flush=True)


def all_settled(health: list[Health]) -> bool:
    """True when no component runs or waits to restart (all finished, stopped or gave up)."""
    return all(h.state not in (ComponentState.RUNNING, ComponentState.BACKING_OFF) for h in health)
