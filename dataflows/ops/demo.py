"""`hfl demo`: the whole trading path on local infrastructure, bounded, then a summary."""

from __future__ import annotations

import os
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
from connectors.kafka.end import FEED, write_end
from connectors.kafka.producer import CheckedProducer
from connectors.topic import TICKS
from dataflows.ops.process import FLOWS
from dataflows.ops.registry import RunRecord, keep_store, register, unregister
from dataflows.ops.report import RunWindow, analyse, load_run, render_report, write_manifest
from dataflows.ops.stack import flow_components
from dataflows.ops.summary import RunSummary, summarize
from dataflows.ops.supervisor import Component, ComponentState, Health, Supervisor, all_settled
from dataflows.settings import Secret, Settings, default_clickhouse_url
from risk.domain.error import HflError
from risk.performance import DAILY, Frequency

# The flows of a run: each ends by its data (`connectors.kafka.end`), never by a timer.
FLOW_NAMES = frozenset(FLOWS)
# The demo's own store (unless one is configured), apart from `hfl up`'s `var/clickhouse`.
DEMO_STORE = Path("var") / "demo" / "clickhouse"
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
    if settings.clickhouse.url.reveal() == default_clickhouse_url(root):
        # Its own store: a demo's rows must never meet `hfl up`'s startup reconciliation
        # (the demo's topics are gone once its broker stops).
        url = Secret(f"chdb://{(root / DEMO_STORE).resolve()}")
        settings = replace(settings, clickhouse=replace(settings.clickhouse, url=url))
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
    env["HFL_KAFKA__BOUNDED"] = "1"
    components = flow_components(settings, run_dir / "recovery", env)
    if dashboard:
        components.append(_dashboard(settings, run_dir, env, start_ns))
    supervisor = Supervisor(components, run_dir, say=log)
    register(root, _record(run_id, settings, start_ns))
    keep_store(run_dir, settings.clickhouse.url.reveal())  # `hfl report` finds it later
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
        unregister(root, run_id)
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


def _record(run_id: str, settings: Settings, start_ns: int) -> RunRecord:
    """What this demo listens on, for operator commands (`dataflows.ops.registry`)."""
    return RunRecord(
        name=run_id,
        kind="demo",
        pid=os.getpid(),
        topic_prefix=settings.kafka.topic_prefix,
        bootstrap=settings.kafka.bootstrap,
        clickhouse_url=settings.clickhouse.url.reveal(),
        dashboard_port=settings.dashboard.port,
        started_ns=start_ns,
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
    """Publish `ticks` simulated ticks in real time (event-time speed 1), then the feed's
    end-of-stream marker: the flows end once they have carried everything before it.

    Stops early, naming the flow, if the supervisor gave up on one while the feed runs.
    """
    records = _while_healthy(paced(simulate(config, ticks), 1.0), supervisor)
    flush_every = max(1, int(config.ticks_per_second))
    producer = CheckedProducer(bootstrap, linger_ms=FEED_LINGER_MS)
    with Progress(total=ticks, label="ticks fed") as progress:
        publish(tracked(records, progress), producer, topic, flush_every=flush_every)
    write_end(producer, bootstrap, FEED, [topic])


def _while_healthy(records: Iterator[T], supervisor: Supervisor, every: int = 500) -> Iterator[T]:
    for count, record in enumerate(records):
        if count % every == 0:
            _fail_if_any(supervisor.poll(), supervisor, {ComponentState.GAVE_UP})
        yield record


def _drain(supervisor: Supervisor, timeout_s: float) -> None:
    """Wait until every flow reached the end of its data and exited 0 (restarting
    crashed ones); fail loudly, naming the flow, if one was given up or the guard
    `timeout_s` passed first.

    The dashboard is not a flow: it serves until the supervisor stops it.
    """
    deadline = time.monotonic() + timeout_s

    def over(health: list[Health]) -> bool:
        flows = _flows(health)
        given_up = any(h.state is ComponentState.GAVE_UP for h in flows)
        return all_settled(flows) or given_up or time.monotonic() > deadline

    health = supervisor.run(until=over)
    _fail_if_any(
        _flows(health),
        supervisor,
        {ComponentState.GAVE_UP, ComponentState.RUNNING, ComponentState.BACKING_OFF},
        timeout_s,
    )
    log("flows reached the end of their data and exited")


def _flows(health: list[Health]) -> list[Health]:
    return [h for h in health if h.name in FLOW_NAMES]


def _fail_if_any(
    health: list[Health],
    supervisor: Supervisor,
    bad: set[ComponentState],
    timeout_s: float | None = None,
) -> None:
    for flow in health:
        if flow.state in bad:
            if flow.state is ComponentState.GAVE_UP:
                state = next(
                    (why for why in supervisor.gave_up() if why.startswith(flow.name)),
                    flow.render(),
                )
            else:
                state = f"did not reach the end of its data within the {timeout_s:.0f}s guard"
            msg = f"{flow.name} flow {state}; last log lines:\n{supervisor.tail(flow.name)}"
            raise HflError(msg)
