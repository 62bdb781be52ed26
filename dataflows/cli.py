"""`hfl`: the command line of hedgefund-lite."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from risk.domain.error import HflError

if TYPE_CHECKING:
    from dataflows.settings import Settings

ROOT = Path.cwd()


def _settings() -> Settings:
    from dataflows.settings import load_settings

    return load_settings()


def _broker(args: argparse.Namespace) -> int:
    from connectors.broker import broker_status, start_broker, stop_broker

    broker = _settings().broker
    pid_file, log_file = ROOT / "var" / "broker.pid", ROOT / "var" / "broker.log"
    if args.action == "start":
        pid = start_broker(broker.host, broker.port, pid_file, log_file)
        print(f"broker running on {broker.host}:{broker.port} (pid {pid})")
    elif args.action == "stop":
        print("broker stopped" if stop_broker(pid_file) else "no broker was running")
    else:
        status = broker_status(broker.host, broker.port, pid_file)
        print(
            f"broker {status.address}: pid={status.pid} running={status.running} "
            f"reachable={status.reachable}"
        )
        return 0 if status.reachable else 1
    return 0


def _topics(args: argparse.Namespace) -> int:
    from connectors.kafka.admin import create_topics

    kafka = _settings().kafka
    created = create_topics(kafka.bootstrap, prefix=kafka.topic_prefix)
    print(f"created {len(created)} topics" + (f": {', '.join(created)}" if created else ""))
    return 0


def _db(args: argparse.Namespace) -> int:
    from sinks.client import connect
    from sinks.migration import migrate

    applied = migrate(connect(_settings().clickhouse.url.reveal()))
    print(f"applied migrations: {', '.join(applied) or 'none (up to date)'}")
    return 0


def _feed(args: argparse.Namespace) -> int:
    from connectors.feeds.progress import Progress, tracked
    from connectors.feeds.publisher import FEED_LINGER_MS, publish
    from connectors.feeds.replay import paced, read_records
    from connectors.feeds.simulator import SimulationConfig, simulate
    from connectors.kafka.producer import CheckedProducer
    from connectors.topic import TICKS

    settings = _settings()
    if args.source == "simulate":
        config = SimulationConfig(
            symbols=tuple(args.symbols.split(",")) if args.symbols else settings.feed.symbols,
            seed=args.seed if args.seed is not None else settings.feed.seed,
            ticks_per_second=args.rate or settings.feed.ticks_per_second,
            start_ns=time.time_ns(),
        )
        total = args.ticks or int(config.ticks_per_second * args.duration)
        records = paced(simulate(config, total), None if args.fast else 1.0)
    else:
        total = None
        records = paced(read_records(args.file, kind=args.kind), args.speed)
    with Progress(total=total, label="ticks") as progress:
        sent = publish(
            tracked(records, progress),
            CheckedProducer(settings.kafka.bootstrap, linger_ms=FEED_LINGER_MS),
            settings.kafka.topic_prefix + TICKS,
        )
    print(f"published {sent} records")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from dataflows.demo import run_demo

    started = time.monotonic()
    summary = run_demo(
        _settings(),
        ROOT,
        ticks=args.ticks,
        seed=args.seed,
        rate=args.rate,
        dashboard=not args.no_dashboard,
    )
    print(summary.render())
    print(f"demo finished in {time.monotonic() - started:.1f}s")
    return 0


def _sql(args: argparse.Namespace) -> int:
    from sinks.query import format_json, format_table, query

    columns, rows = query(_settings().clickhouse.url.reveal(), args.query)
    print(format_json(columns, rows) if args.format == "json" else format_table(columns, rows))
    return 0


def _models(args: argparse.Namespace) -> int:
    from dataflows import model_command as mc
    from risk.domain import ModelAction

    if args.action in ("show", "promote") and not args.model:
        raise HflError(f"models {args.action} needs a model name")
    settings = _settings()
    if args.action == "list":
        print(mc.list_models(settings, args.instrument))
    elif args.action == "checkpoints":
        from dataflows.model_checkpoint import list_checkpoints

        print(list_checkpoints(settings, args.instrument))
    elif args.action == "show":
        print(mc.show_model(settings, args.model, args.instrument))
    else:
        command = mc.model_command(
            ModelAction(args.action),
            model=args.model or "",
            instrument=args.instrument,
            actor=args.actor,
            reason=args.reason,
        )
        mc.send_command(settings, command)
        print(f"sent {command.action} {command.model} ({command.command_id})")
    return 0


def _bench(args: argparse.Namespace) -> int:
    if args.target == "risk":
        from dataflows.risk_bench import bench_risk

        bench_risk(_settings(), ROOT, decisions=args.decisions, kills=args.kills)
        return 0
    if args.target == "dashboard":
        from dataflows.observe import bench_dashboard

        bench_dashboard(
            _settings(), ROOT, clients=args.clients, duration_s=args.duration, port=args.port
        )
        return 0
    if args.target == "gateway":
        from dataflows.gateway_bench import bench_gateway

        bench_gateway(ticks=args.ticks, lead_s=args.lead_s)
        return 0
    if args.target == "models":
        from dataflows.model_bench import bench_models

        bench_models(
            _settings().model, ticks=args.ticks, batch_size=args.batch_size, budget_s=args.budget
        )
        return 0
    from dataflows.bench import bench_pipeline

    bench_pipeline(
        _settings(), ROOT, rate=args.rate, duration_s=args.duration, gateway=args.gateway
    )
    return 0


def _up(args: argparse.Namespace) -> int:
    from dataflows.stack import run_up

    codes = run_up(
        _settings(),
        ROOT,
        local_broker=not args.external_broker,
        feed_duration_s=args.feed_duration or None,
        extras=args.extra,
        report_every_s=args.report_every,
    )
    print(" ".join(f"{name}={code}" for name, code in codes.items()))
    return 0


def _chaos(args: argparse.Namespace) -> int:
    from dataflows.chaos import load_results, render_json, render_table, results_path

    results = load_results(results_path(ROOT))
    if not results:
        raise HflError("no chaos results yet: run `make chaos` (or `make chaos-ci`)")
    print(render_json(results) if args.json else render_table(results))
    return 0


def _reconcile(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    import orjson

    from dataflows.reconcile import reconcile_at_startup, reconcile_system

    if args.startup:
        startup = reconcile_at_startup(_settings())
        if startup is None:
            print("could not reconcile: alert and audit written; hfl up starts trading halted")
            return 1
        result = startup
    else:
        result = reconcile_system(_settings())
    print(orjson.dumps(asdict(result) | {"consistent": result.consistent}).decode())
    return 0 if result.consistent else 1


def _recover(args: argparse.Namespace) -> int:
    from dataflows.lost_log import recover_lost_log

    if not args.confirm:
        raise HflError("recover starts every flow over from the beginning: add --confirm")
    settings = _settings()
    done = recover_lost_log(settings, ROOT / settings.recovery.directory)
    for flow, problem in done.problems.items():
        print(f"{flow}: {problem}")
    print(f"old recovery stores moved to {done.archive}; {len(done.topics)} topics re-created")
    print("next: hfl feed replay <the feed's JSON lines>; hfl up; hfl reconcile")
    return 0


def _add_reliability(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    up = sub.add_parser("up", help="run broker, flows (and feed) supervised until Ctrl-C")
    up.add_argument("--external-broker", action="store_true", help="do not start Tansu")
    up.add_argument("--feed-duration", type=float, default=0.0, help="simulate a feed (s)")
    up.add_argument("--with", dest="extra", action="append", default=[], metavar="NAME=CMD")
    up.add_argument("--report-every", type=float, default=10.0, help="health line period (s)")
    up.set_defaults(run=_up)

    chaos = sub.add_parser("chaos", help="figures of the chaos suite (make chaos)")
    chaos.add_argument("action", choices=("report",))
    chaos.add_argument("--json", action="store_true", help="one JSON object keyed by test id")
    chaos.set_defaults(run=_chaos)

    reconcile = sub.add_parser("reconcile", help="orders and fills: Kafka log vs ClickHouse")
    reconcile.add_argument(
        "--startup",
        action="store_true",
        help="as hfl up does: audit the result, alert on a mismatch (exit 1: start halted)",
    )
    reconcile.set_defaults(run=_reconcile)

    recover = sub.add_parser("recover", help="start the flows over after the broker lost its log")
    recover.add_argument("--confirm", action="store_true", help="yes, start every flow over")
    recover.set_defaults(run=_recover)


def _dashboard(args: argparse.Namespace) -> int:
    from dataflows.observe import run_dashboard

    run_dashboard(_settings(), port=args.port, since_ns=args.since_ns, recovery=args.recovery)
    return 0


def _status(args: argparse.Namespace) -> int:
    from dataflows.observe import print_status

    return print_status(_settings(), ROOT)


def _trail(args: argparse.Namespace) -> int:
    from dataflows.observe import print_trail

    return print_trail(_settings(), ROOT, args.client_order_id)


def _add_observability(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    board = sub.add_parser("dashboard", help="web dashboard, /metrics and health on 127.0.0.1")
    board.add_argument("--port", type=int, default=None, help="default dashboard.port")
    board.add_argument("--since-ns", type=int, default=0, help="show rows from (default: run)")
    board.add_argument("--recovery", default="", help="recovery store to check snapshot age of")
    board.set_defaults(run=_dashboard)

    status = sub.add_parser("status", help="health: broker, ClickHouse, data freshness, snapshots")
    status.set_defaults(run=_status)

    trail = sub.add_parser("trail", help="every log line and row behind one client_order_id")
    trail.add_argument("client_order_id")
    trail.set_defaults(run=_trail)


def _control(args: argparse.Namespace) -> int:
    from dataflows.control import run_control_command

    return run_control_command(_settings(), args)


def _add_models(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `hfl models list|show|promote|rollback|checkpoints`."""
    models = sub.add_parser(
        "models",
        help="model registry: list, show, promote, rollback, checkpoints (warm start:"
        " set model.warm_start to latest or a checkpoint id)",
    )
    models.add_argument("action", choices=("list", "show", "promote", "rollback", "checkpoints"))
    models.add_argument("model", nargs="?", help="show/promote: the model name")
    models.add_argument("--instrument", default="", help="one instrument (default: all)")
    models.add_argument("--actor", default=os.environ.get("USER", "operator"))
    models.add_argument("--reason", default="manual")
    models.set_defaults(run=_models)


def _add_bench(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `hfl bench` with every target's options."""
    bench = sub.add_parser("bench", help="benchmarks that print figures")
    bench.add_argument("target", choices=("pipeline", "models", "dashboard", "risk", "gateway"))
    bench.add_argument("--rate", default="5000", help="pipeline: ticks per second, or 'max'")
    bench.add_argument("--duration", type=float, default=20.0, help="pipeline, dashboard: seconds")
    bench.add_argument(
        "--gateway",
        action="store_true",
        help="pipeline: run the gateway flow too (always, with risk.fill_sync event_time)",
    )
    bench.add_argument("--ticks", type=int, default=60_000, help="models, gateway: simulated ticks")
    bench.add_argument(
        "--lead-s", type=float, default=5.0, help="gateway: how far the ticks run ahead of the gate"
    )
    bench.add_argument("--batch-size", type=int, default=1_000, help="models: mini-batch rows")
    bench.add_argument("--budget", type=float, default=3.0, help="models: seconds per mode")
    bench.add_argument("--clients", type=int, default=10, help="dashboard: concurrent clients")
    bench.add_argument("--port", type=int, default=8169, help="dashboard: port to serve on")
    bench.add_argument("--decisions", type=int, default=20_000, help="risk: gate decisions")
    bench.add_argument("--kills", type=int, default=50, help="risk: kills to time")
    bench.set_defaults(run=_bench)


def parser() -> argparse.ArgumentParser:
    """The argument parser of `hfl`."""
    main = argparse.ArgumentParser(prog="hfl", description=__doc__)
    sub = main.add_subparsers(dest="command", required=True)

    broker = sub.add_parser("broker", help="the local Tansu broker on 127.0.0.1")
    broker.add_argument("action", choices=("start", "stop", "status"))
    broker.set_defaults(run=_broker)

    topics = sub.add_parser("topics", help="create every topic with its partitions")
    topics.add_argument("action", choices=("create",))
    topics.set_defaults(run=_topics)

    db = sub.add_parser("db", help="ClickHouse schema")
    db.add_argument("action", choices=("migrate",))
    db.set_defaults(run=_db)

    feed = sub.add_parser("feed", help="publish market data to md.ticks")
    feed_sub = feed.add_subparsers(dest="source", required=True)
    sim = feed_sub.add_parser("simulate", help="correlated GBM with regimes and jumps")
    sim.add_argument(
        "--ticks", type=int, default=0, help="how many ticks (default rate x duration)"
    )
    sim.add_argument("--rate", type=float, default=0.0, help="ticks per second of event time")
    sim.add_argument("--duration", type=float, default=60.0, help="seconds of event time")
    sim.add_argument("--seed", type=int, default=None)
    sim.add_argument("--symbols", default="", help="comma-separated, default from config")
    sim.add_argument("--fast", action="store_true", help="as fast as possible, not real time")
    replay = feed_sub.add_parser("replay", help="CSV, Parquet or JSON Lines file")
    replay.add_argument("file")
    replay.add_argument(
        "--speed",
        type=float,
        default=None,
        help="event-time speed factor (default: as fast as possible)",
    )
    replay.add_argument("--kind", choices=("trade", "quote", "bar", "jsonl"), default=None)
    feed.set_defaults(run=_feed)

    demo = sub.add_parser("demo", help="run the whole path for a bounded time, then summarise")
    demo.add_argument("--ticks", type=int, default=30_000)
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--rate", type=float, default=500.0, help="ticks per second")
    demo.add_argument("--no-dashboard", action="store_true", help="skip the dashboard")
    demo.set_defaults(run=_demo)

    sql = sub.add_parser("sql", help="ad-hoc read-only SQL on the ClickHouse store")
    sql.add_argument("query")
    sql.add_argument("--format", choices=("table", "json"), default="table")
    sql.set_defaults(run=_sql)

    from dataflows.control import add_control_parsers

    add_control_parsers(sub, _control)

    _add_models(sub)

    _add_bench(sub)

    _add_observability(sub)

    _add_reliability(sub)
    return main


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `hfl` console script.

    SIGTERM is handled like Ctrl-C so long commands stop their child processes.
    """
    signal.signal(signal.SIGTERM, _interrupt)
    args = parser().parse_args(argv)
    try:
        return int(args.run(args))
    except HflError as exc:
        print(f"hfl {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
