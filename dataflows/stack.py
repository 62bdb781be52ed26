"""`hfl up`: the whole system under the supervisor until SIGINT/SIGTERM.

The component list is data (`components`): the local broker (unless an external
one is used), the persist, trading and gateway flows with recovery on, optionally a
simulated feed, and any extra command given as `NAME=COMMAND` (a dashboard, say).

Before the flows start, and again whenever the local broker restarts, orders and
fills are reconciled between the log and the store (`hfl reconcile --startup`, see
`dataflows.reconcile`): a mismatch halts trading before it resumes.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import orjson

from connectors.broker import broker_command, wait_for_port
from connectors.kafka.admin import create_topics
from dataflows.process import FLOWS, flow_command, init_recovery
from dataflows.settings import Settings
from dataflows.supervisor import Component, Health, Supervisor, report_line
from risk.domain.error import HflError


def reconcile_before_trading(say: Callable[[str], None]) -> None:
    """Run `hfl reconcile --startup` (its own process: it may open the embedded store).

    Raises:
        HflError: the reconciliation could not even report (e.g. no broker).
    """
    done = subprocess.run(
        [sys.executable, "-m", "dataflows.cli", "reconcile", "--startup"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    say(f"startup reconciliation: {_counts(done.stdout)}")
    if done.returncode == 1:
        say("MISMATCH: trading starts HALTED (alert and audit written); check, then resume")
    elif done.returncode != 0:
        raise HflError(f"startup reconciliation failed: {done.stderr.strip()[-2000:]}")


def _counts(report: str) -> str:
    """The reconciliation's JSON with each id list shortened to its length.

    >>> _counts('{"orphan_fills": ["f1", "f2"], "consistent": false}')
    '{"orphan_fills":2,"consistent":false}'
    """
    try:
        found = orjson.loads(report)
    except orjson.JSONDecodeError:
        return report.strip()
    return orjson.dumps(
        {k: len(v) if isinstance(v, list) else v for k, v in found.items()}
    ).decode()


def broker_component(settings: Settings, say: Callable[[str], None]) -> Component:
    """The local Tansu broker; each (re)start recreates the topics it lost (memory
    storage) and reconciles before trading goes on."""
    broker, kafka = settings.broker, settings.kafka

    def ready() -> None:
        wait_for_port(broker.host, broker.port)
        create_topics(kafka.bootstrap, prefix=kafka.topic_prefix)
        reconcile_before_trading(say)

    return Component(
        name="broker", command=broker_command(broker.host, broker.port), after_start=ready
    )


def flow_components(
    settings: Settings, recovery_root: Path, env: dict[str, str] | None = None
) -> list[Component]:
    """The three flows, each resuming from its own recovery store (created if missing),
    each restarted from a warm standby."""
    components = []
    for name in FLOWS:
        directory = recovery_root / name
        init_recovery(directory)
        command = flow_command(name, settings, directory)
        components.append(Component(name=name, command=command, env=dict(env or {}), warm=True))
    return components


def feed_component(duration_s: float) -> Component:
    """The simulated feed in real time for `duration_s` (finishes, is not restarted)."""
    command = [sys.executable, "-m", "dataflows.cli", "feed", "simulate"]
    return Component(name="feed", command=[*command, "--duration", str(duration_s)])


def extra_component(spec: str) -> Component:
    """A component from `NAME=COMMAND`.

    >>> extra_component("dashboard=python -m http.server 8150").command
    ['python', '-m', 'http.server', '8150']
    """
    name, sep, command = spec.partition("=")
    if not sep or not name or not command.strip():
        raise HflError(f"--with expects NAME=COMMAND, got {spec!r}")
    return Component(name=name, command=shlex.split(command))


def components(
    settings: Settings,
    root: Path,
    *,
    local_broker: bool,
    feed_duration_s: float | None,
    extras: Sequence[str] = (),
    say: Callable[[str], None] = report_line,
) -> list[Component]:
    """Everything `hfl up` runs, in start order."""
    out = [broker_component(settings, say)] if local_broker else []
    out += flow_components(settings, root / settings.recovery.directory)
    if feed_duration_s:
        out.append(feed_component(feed_duration_s))
    out += [extra_component(spec) for spec in extras]
    return out


def run_up(
    settings: Settings,
    root: Path,
    *,
    local_broker: bool,
    feed_duration_s: float | None,
    extras: Sequence[str],
    report_every_s: float = 10.0,
) -> dict[str, int | None]:
    """Run the system until interrupted (SIGINT/SIGTERM), then stop it; return exit codes."""
    say = report_line
    supervisor = Supervisor(
        components(
            settings,
            root,
            local_broker=local_broker,
            feed_duration_s=feed_duration_s,
            extras=extras,
            say=say,
        ),
        root / "var" / "up",
        say=say,
    )
    if not local_broker:
        reconcile_before_trading(say)
    supervisor.start()
    try:
        supervisor.run(until=_never, report_every_s=report_every_s)
    except KeyboardInterrupt:
        pass
    finally:
        codes = supervisor.stop()
    return codes


def _never(health: list[Health]) -> bool:
    return False
