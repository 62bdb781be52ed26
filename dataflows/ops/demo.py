"""`hfl demo`: the whole trading path on local infrastructure, bounded, then a summary."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

from connectors.broker import broker_status, start_broker, stop_broker
from connectors.feeds.progress import Progress, tracked
from connectors.feeds.publisher import FEED_LINGER_MS, publish
from connectors.feeds.replay import paced
from connectors.feeds.simulator import SimulationConfig, simulate
from connectors.kafka.admin import create_topics
from connectors.kafka.producer import CheckedProducer
from connectors.topic import TICKS
from dataflows.ops.report import RunWindow, analyse, load_run, render_report, write_manifest
from dataflows.ops.stack import flow_components
from dataflows.ops.summary import RunSummary, summarize
from dataflows.ops.supervisor import Component, ComponentState, Health, Supervisor, all_settled
from dataflows.settings import Settings
from risk.domain.error import HflError
from risk.performance import DAILY, Frequency

# Each flow stops once its inputs have been idle this long after the feed ends;
# downstream flows wait longer so the last orders and events still reach them.
IDLE_EXIT_S = {"trading": 4.0, "gateway": 8.0, "persist": 12.0}
T = TypeVar("T")


def log(message: str) -> None:
    """Progress output on stderr."""
    print(f"[hfl demo] {message}", file=sys.stderr, flush=True)


def simulation(settings: Settings, seed: int, start_ns: int, rate: float) -> SimulationConfig:
    """The simulated market of a run: configured symbols, seeded, starting now."""
    return SimulationConfig(
        symbols=settings.feed.symbols, seed=seed, start_ns=start_ns, ticks_per_second=rate
    )


def run_demo(
    settings: Settings,
    root: Path,
    *,
    ticks: int,
    seed: int,
    rate: float,
    timeout_s: float = 600.0,
    dashboard: bool = True,
    frequency: Frequency = DAILY,
) -> RunSummary:
    """Run broker, feed, the three flows and the dashboard for `ticks` ticks; summarise.

    Everything runs under the supervisor (a crashed flow restarts from its snapshot);
    each flow stops by itself once idle after the feed ends. Every run gets its own
    topic namespace and recovery stores, so runs never mix; the ClickHouse store is
    shared and the summary selects this run by event time. The flows write their
    metrics under the run directory and the dashboard (on `settings.dashboard.port`)
    serves them on ``/metrics`` with the derived ones. The run ends by writing its
    report (``var/reports/<run id>.html``, statistics at `frequency`); its window is
    recorded in the run directory so `hfl report RUN_ID` can rebuild it.
    """
    start_ns = time.time_ns()
    run_id = f"demo-{seed}-{start_ns // 1_000_000_000}"
    run_dir = root / "var" / "runs" / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    prefix = f"{run_id}."
    settings = replace(settings, kafka=replace(settings.kafka, topic_prefix=prefix))
    pid_file = root / "var" / "broker.pid"
    broker = settings.broker
    log(f"run {run_id}: logs in {run_dir}")
    own_broker = not broker_status(broker.host, broker.port, pid_file).running
    start_broker(broker.host, broker.port, pid_file, root / "var" / "broker.log")
    metrics_dir = run_dir / "metrics"
    metrics_dir.mkdir(exist_ok=True)
    env = {
        "HFL_KAFKA__TOPIC_PREFIX": prefix,
        "HFL_RUN_ID": run_id,
        "HFL_CLICKHOUSE_URL": settings.clickhouse.url.reveal(),
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }
    components = [
        replace(c, env=c.env | {"HFL_KAFKA__EXIT_WHEN_IDLE_S": str(IDLE_EXIT_S[c.name])})
        for c in flow_components(settings, run_dir / "recovery", env)
    ]
    if dashboard:
        components.append(_dashboard(settings, run_dir, env, start_ns))
    supervisor = Supervisor(components, run_dir, say=log)
    try:
        create_topics(settings.kafka.bootstrap, prefix=prefix)
        supervisor.start()
        log(f"flows started; feeding {ticks} ticks at {rate:g}/s")
        _feed(
            settings.kafka.bootstrap,
            simulation(settings, seed, start_ns, rate),
            ticks,
            prefix + TICKS,
            supervisor,
        )
        _drain(supervisor, timeout_s)
    finally:
        supervisor.stop()
        if own_broker:
            stop_broker(pid_file)
    url = settings.clickhouse.url.reveal()
    window = RunWindow(
        run_id=run_id,
        account=settings.trading.account,
        initial_cash=float(settings.trading.initial_cash),
        since_ns=start_ns,
        until_ns=time.time_ns(),  # after every event: the simulated feed runs in real time
    )
    write_manifest(run_dir, window)
    data = load_run(url, window, frequency)
    analysis = analyse(data, frequency)
    path = render_report(data, analysis, root / "var" / "reports" / f"{run_id}.html")
    log(f"report written to {path}")
    return summarize(
        url,
        start_ns,
        settings.trading.account,
        settings.trading.initial_cash,
        analysis=analysis,
        report_path=str(path),
    )


def _dashboard(settings: Settings, run_dir: Path, env: dict[str, str], start_ns: int) -> Component:
    command = [
        sys.executable,
        "-m",
        "dataflows.commands",
        "dashboard",
        f"--since-ns={start_ns}",
        f"--recovery={run_dir / 'recovery'}",
    ]
    log(f"dashboard on http://127.0.0.1:{settings.dashboard.port} (metrics on /metrics)")
    return Component(name="dashboard", command=command, env=env)


def _feed(
    bootstrap: str, config: SimulationConfig, ticks: int, topic: str, supervisor: Supervisor
) -> None:
    """Publish `ticks` simulated ticks in real time (event-time speed 1).

    Stops early, naming the flow, if the supervisor gave up on one while the feed runs.
    """
    records = _while_healthy(paced(simulate(config, ticks), 1.0), supervisor)
    flush_every = max(1, int(config.ticks_per_second))
    with Progress(total=ticks, label="ticks fed") as progress:
        publish(
            tracked(records, progress),
            CheckedProducer(bootstrap, linger_ms=FEED_LINGER_MS),
            topic,
            flush_every=flush_every,
        )


def _while_healthy(records: Iterator[T], supervisor: Supervisor, every: int = 500) -> Iterator[T]:
    for count, record in enumerate(records):
        if count % every == 0:
            _fail_if_any(supervisor.poll(), supervisor, {ComponentState.GAVE_UP})
        yield record


def _drain(supervisor: Supervisor, timeout_s: float) -> None:
    """Wait until every flow went idle and exited (restarting crashed ones); fail loudly.

    The dashboard is not a flow: it serves until the supervisor stops it.
    """
    deadline = time.monotonic() + timeout_s
    health = supervisor.run(
        until=lambda health: all_settled(_flows(health)) or time.monotonic() > deadline
    )
    _fail_if_any(_flows(health), supervisor, {ComponentState.GAVE_UP, ComponentState.RUNNING})
    log("flows drained and stopped")


def _flows(health: list[Health]) -> list[Health]:
    return [h for h in health if h.name in IDLE_EXIT_S]


def _fail_if_any(health: list[Health], supervisor: Supervisor, bad: set[ComponentState]) -> None:
    for flow in health:
        if flow.state in bad:
            state = "did not finish" if flow.state is ComponentState.RUNNING else flow.render()
            msg = f"{flow.name} flow {state}; last log lines:\n{supervisor.tail(flow.name)}"
            raise HflError(msg)
