"""`hfl up`: the whole system under the supervisor until SIGINT/SIGTERM.

The component list is data (`components`): the local broker (unless an external
one is used), the persist, trading and gateway flows with recovery on, optionally a
simulated feed, and any extra command given as `NAME=COMMAND` (a dashboard, say).

Before the flows start, and again whenever the local broker restarts, orders and
fills are reconciled between the log and the store (`hfl reconcile --startup`, see
`dataflows.ops.reconcile`). A mismatch puts a start halt (`risk.start_halted`) in the
trading flow's environment: the gate applies it as it is built or resumed, before it
reads any input, so no model can trade on the first ticks. The halt carries the time
it was decided and the gate applies each one once: restarts of the trading flow keep
an operator's `hfl resume --confirm`, and a later mismatch halts again.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from connectors.broker import broker_command, wait_for_port
from connectors.codec import JSONDecodeError, dumps, loads
from connectors.kafka.admin import create_topics
from dataflows.ops.launch import GAVE_UP_EXIT
from dataflows.ops.process import FLOWS, flow_command, init_recovery
from dataflows.ops.reconcile import STARTUP_ACTOR
from dataflows.ops.registry import RunRecord, register, unregister
from dataflows.ops.supervisor import Component, ComponentState, Health, Supervisor, report_line
from dataflows.settings import Settings
from risk.domain.error import HflError


def reconcile_before_trading(say: Callable[[str], None], trading_env: dict[str, str]) -> None:
    """Run `hfl reconcile --startup` (its own process: it may open the embedded store);
    on a mismatch, make the trading flow's next start halted (`trading_env`).

    Raises:
        HflError: the reconciliation could not even report (e.g. no broker).
    """
    done = subprocess.run(
        [sys.executable, "-m", "dataflows.commands", "reconcile", "--startup"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    counts = _counts(done.stdout)
    say(f"startup reconciliation: {counts}")
    if done.returncode == 1:
        trading_env.update(start_halt_env(f"startup reconciliation mismatch: {counts}"))
        say("MISMATCH: trading starts HALTED (alert and audit written); check, then resume")
    elif done.returncode != 0:
        raise HflError(f"startup reconciliation failed: {done.stderr.strip()[-2000:]}")


def start_halt_env(reason: str) -> dict[str, str]:
    """The environment that starts the trading flow halted for `reason`, decided now."""
    return {
        "HFL_RISK__START_HALTED__REASON": reason,
        "HFL_RISK__START_HALTED__ACTOR": STARTUP_ACTOR,
        "HFL_RISK__START_HALTED__AT_NS": str(time.time_ns()),
    }


def _counts(report: str) -> str:
    """The reconciliation's JSON with each id list shortened to its length.

    >>> _counts('{"orphan_fills": ["f1", "f2"], "consistent": false}')
    '{"orphan_fills":2,"consistent":false}'
    """
    try:
        found = loads(report)
    except JSONDecodeError:
        return report.strip()
    return dumps({k: len(v) if isinstance(v, list) else v for k, v in found.items()}).decode()


def broker_component(
    settings: Settings, say: Callable[[str], None], trading_env: dict[str, str]
) -> Component:
    """The local Tansu broker; each (re)start recreates the topics it lost (memory
    storage) and reconciles before trading goes on."""
    broker, kafka = settings.broker, settings.kafka

    def ready() -> None:
        wait_for_port(broker.host, broker.port)
        create_topics(kafka.bootstrap, **kafka.topic_layout())
        reconcile_before_trading(say, trading_env)

    return Component(
        name="broker", command=broker_command(broker.host, broker.port), after_start=ready
    )


UP_RUN = "up"
# A flow exits GAVE_UP_EXIT when a bounded run's guard fired: a restart would repeat it.
_FINAL_EXITS = frozenset({GAVE_UP_EXIT})


def flow_components(
    settings: Settings,
    recovery_root: Path,
    env: dict[str, str] | None = None,
    *,
    trading_env: dict[str, str] | None = None,
) -> list[Component]:
    """The three flows, each resuming from its own recovery store (created if missing),
    each restarted from a warm standby.

    `trading_env`, when given, becomes the trading flow's environment itself, not a
    copy: a start halt put there later still reaches the flow's next (re)start (a
    standby spawned before it is not used).
    """
    components = []
    for name in FLOWS:
        directory = recovery_root / name
        init_recovery(directory)
        command = flow_command(name, settings, directory)
        own = dict(env or {})
        if name == "trading" and trading_env is not None:
            trading_env.update(own)
            own = trading_env
        components.append(
            Component(name=name, command=command, env=own, warm=True, final_exits=_FINAL_EXITS)
        )
    return components


def feed_component(duration_s: float) -> Component:
    """The simulated feed in real time for `duration_s` (finishes, is not restarted)."""
    command = [sys.executable, "-m", "dataflows.commands", "feed", "simulate"]
    return Component(name="feed", command=[*command, "--duration", str(duration_s)])


def live_feed_component(venues: str, symbols: str = "") -> Component:
    """`hfl feed live` for `venues` (comma-separated, or `all`): public trades and quotes
    from the real venues, restarted with backoff when it crashes; it reconnects by itself
    while it runs, so a restart means the process itself failed.

    >>> live_feed_component("coinbase,kraken", "BTC-USD").command[-4:]
    ['--venues', 'coinbase,kraken', '--symbols', 'BTC-USD']
    """
    command = [sys.executable, "-m", "dataflows.commands", "feed", "live"]
    if venues != "all":
        command += ["--venues", venues]
    if symbols:
        command += ["--symbols", symbols]
    return Component(name="feed", command=command)


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
    trading_env: dict[str, str] | None = None,
    feed_live: str = "",
    feed_symbols: str = "",
) -> list[Component]:
    """Everything `hfl up` runs, in start order; a startup reconciliation after a
    (re)start of the local broker halts trading through `trading_env`."""
    trading_env = {} if trading_env is None else trading_env
    out = [broker_component(settings, say, trading_env)] if local_broker else []
    out += flow_components(settings, root / settings.recovery.directory, trading_env=trading_env)
    if feed_duration_s and feed_live:
        raise HflError("one feed: --feed-duration (simulated) or --feed-live (venues), not both")
    if feed_duration_s:
        out.append(feed_component(feed_duration_s))
    if feed_live:
        out.append(live_feed_component(feed_live, feed_symbols))
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
    feed_live: str = "",
    feed_symbols: str = "",
) -> dict[str, int | None]:
    """Run the system until interrupted (SIGINT/SIGTERM), then stop it; return exit codes."""
    say = report_line
    trading_env: dict[str, str] = {}
    supervisor = Supervisor(
        components(
            settings,
            root,
            local_broker=local_broker,
            feed_duration_s=feed_duration_s,
            extras=extras,
            say=say,
            trading_env=trading_env,
            feed_live=feed_live,
            feed_symbols=feed_symbols,
        ),
        root / "var" / "up",
        say=say,
    )
    # Operator commands find this system in var/runs; its children address it as is.
    os.environ.setdefault("HFL_KAFKA__TOPIC_PREFIX", settings.kafka.topic_prefix)
    register(root, _record(settings))
    try:
        if not local_broker:
            reconcile_before_trading(say, trading_env)
        supervisor.start()
        supervisor.run(until=_given_up, report_every_s=report_every_s)
        raise HflError("stopping the system: " + "; ".join(supervisor.gave_up()))
    except KeyboardInterrupt:
        pass
    finally:
        unregister(root, UP_RUN)
        codes = supervisor.stop()
    return codes


def _record(settings: Settings) -> RunRecord:
    """What `hfl up` listens on, for operator commands (`dataflows.ops.registry`)."""
    return RunRecord(
        name=UP_RUN,
        kind="up",
        pid=os.getpid(),
        topic_prefix=settings.kafka.topic_prefix,
        bootstrap=settings.kafka.bootstrap,
        clickhouse_url=settings.clickhouse.url.reveal(),
        dashboard_port=settings.dashboard.port,
        started_ns=time.time_ns(),
    )


def _given_up(health: list[Health]) -> bool:
    """A component was given up: the system cannot go on as configured."""
    return any(h.state is ComponentState.GAVE_UP for h in health)
